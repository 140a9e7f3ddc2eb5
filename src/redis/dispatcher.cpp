#include "dispatcher.hpp"

#include <algorithm>

#include <eventsourced/error.hpp>

namespace eventsourced::redis_internal {
namespace {

// The dispatcher whose reader thread this is, if any.
thread_local const dispatcher* reading_for = nullptr;

void leave(route& r) noexcept {
  if (r.in_flight.fetch_sub(1) == 1 && !r.active.load()) r.in_flight.notify_all();
}

}  // namespace

struct dispatcher::routing {
  std::unordered_map<std::string, std::vector<std::shared_ptr<route>>> by_type;  // + kAllEvents
  std::vector<std::shared_ptr<route>> all;

  const std::vector<std::shared_ptr<route>>& for_type(const std::string& type) const {
    const auto it = by_type.find(type);
    return it == by_type.end() ? all : it->second;
  }
};

dispatcher::~dispatcher() {
  stop();
  std::thread reader;
  {
    std::lock_guard lock(mutex_);
    reader = std::move(reader_);
  }
  if (reader.joinable()) reader.join();  // stop() from a handler left it running
}

bool dispatcher::on_reader_thread() const noexcept {
  return reading_for == this;
}

bool dispatcher::started() const {
  std::lock_guard lock(mutex_);
  return reader_.joinable();
}

std::shared_ptr<const dispatcher::routing> dispatcher::current_routes() const {
  std::lock_guard lock(mutex_);
  return routing_;
}

void dispatcher::rebuild_routes() {
  auto next = std::make_shared<routing>();
  for (const auto& r : routes_) {
    if (r->type == kAllEvents) next->all.push_back(r);
  }
  for (const auto& r : routes_) {
    if (r->type == kAllEvents || next->by_type.count(r->type) != 0) continue;
    auto& list = next->by_type[r->type];
    for (const auto& candidate : routes_) {
      if (candidate->type == r->type || candidate->type == kAllEvents) list.push_back(candidate);
    }
  }
  routing_ = std::move(next);
}

std::shared_ptr<route> dispatcher::add(std::string type, std::shared_ptr<event_handler> handler,
                                       const start_function& start) {
  auto r = std::make_shared<route>(std::move(type), std::move(handler));
  std::lock_guard lock(mutex_);
  if (stopped_) throw store_closed_error("eventsourced: the event bus is closed");
  routes_.push_back(r);
  try {
    rebuild_routes();
    if (!reader_.joinable()) {
      reader_function read = start();
      reader_ = std::thread([this, read = std::move(read)] {
        reading_for = this;
        read();
        reading_for = nullptr;
      });
    }
  } catch (...) {
    routes_.pop_back();
    rebuild_routes();
    throw;
  }
  return r;
}

void dispatcher::end(const std::shared_ptr<route>& r) noexcept {
  if (!r->active.exchange(false)) return;
  try {
    std::lock_guard lock(mutex_);
    const auto it = std::find(routes_.begin(), routes_.end(), r);
    if (it != routes_.end()) {
      routes_.erase(it);
      rebuild_routes();
    }
  } catch (...) {
    // Out of memory rebuilding the snapshot: `active` already keeps dispatches away.
  }
  if (on_reader_thread()) return;  // a handler: no other call of ours can be running
  for (int now = r->in_flight.load(); now > 0; now = r->in_flight.load()) r->in_flight.wait(now);
  r->handler.reset();
}

void dispatcher::deliver(const event& e, int max_attempts,
                         const std::function<void(const handler_failure&)>& on_failure) noexcept {
  const auto routes = current_routes();
  if (!routes) return;
  for (const auto& target : routes->for_type(e.type)) {
    if (stopping_.load()) return;
    route& r = *target;
    r.in_flight.fetch_add(1);
    if (!r.active.load()) {
      leave(r);
      continue;
    }
    std::exception_ptr error;
    int attempts = 0;
    while (attempts < max_attempts && (attempts == 0 || (r.active.load() && !stopping_.load()))) {
      ++attempts;
      try {
        r.handler->handle_event(e);
        error = nullptr;
        break;
      } catch (...) {
        error = std::current_exception();
      }
    }
    if (error && on_failure) {
      try {
        on_failure(handler_failure{e, r.type, error, attempts});
      } catch (...) {
        // Documented: the observer's exception is swallowed.
      }
    }
    leave(r);
  }
}

void dispatcher::stop() noexcept {
  stopping_.store(true);
  std::thread to_join;
  {
    std::lock_guard lock(mutex_);
    stopped_ = true;
    if (!on_reader_thread()) to_join = std::move(reader_);
  }
  if (to_join.joinable()) to_join.join();
}

}  // namespace eventsourced::redis_internal
