// in_memory_event_bus: copy-on-write routing tables, per-subscriber in-flight counters, and one
// bounded FIFO queue per worker.
//
// Routing. Subscribers live in an immutable `routing` snapshot (a shared_ptr<const routing>)
// replaced on every subscribe and unsubscribe; a dispatch takes the current snapshot under a short
// lock and then iterates it without any lock, so handlers may subscribe and unsubscribe freely.
// Each type's list already has the kAllEvents subscribers merged in, in subscription order, so
// dispatching an event is one hash lookup and one loop.
//
// Unsubscribe. A subscriber has an `active` flag and an `in_flight` count. A dispatch increments
// in_flight, then reads active; unsubscribe clears active, then waits for in_flight to reach 0.
// Both sides use sequentially consistent operations, so either the dispatch sees the flag
// cleared (and skips the handler), or unsubscribe sees its increment (and waits for it): after
// unsubscribe returns, the handler is neither running nor called again. A thread-local stack of
// the handler calls running on the thread lets unsubscribe (and close) recognise a call from
// inside the handler, which must not wait for itself.
#include <eventsourced/event/memory_bus.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <iterator>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>

#include <eventsourced/error.hpp>

namespace eventsourced {
namespace {

// Events a worker takes from its queue at once: fewer lock round trips under load, and still
// small enough that a publisher blocked on a full queue is released soon.
constexpr std::size_t kMaxBatch = 256;

struct subscriber {
  subscriber(std::string t, std::shared_ptr<event_handler> h)
      : type(std::move(t)), handler(std::move(h)) {}
  const std::string type;
  // Read by dispatches while active; released by unsubscribe once in_flight is 0 (no dispatch can
  // read it after that: every later one sees active == false).
  std::shared_ptr<event_handler> handler;
  std::atomic<bool> active{true};
  std::atomic<int> in_flight{0};  // dispatches between their increment and their decrement
};

using subscriber_list = std::vector<std::shared_ptr<subscriber>>;

struct string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

// An immutable snapshot of who receives what.
struct routing {
  std::unordered_map<std::string, subscriber_list, string_hash, std::equal_to<>> by_type;
  subscriber_list all;  // kAllEvents subscribers: what a type nobody subscribed to by name gets

  const subscriber_list& for_type(std::string_view type) const {
    const auto it = by_type.find(type);
    return it == by_type.end() ? all : it->second;
  }
};

// One handler call running on this thread; the frames form a stack through `outer`.
struct dispatch_frame {
  const void* bus;
  const subscriber* target;
  const dispatch_frame* outer;
};
thread_local const dispatch_frame* running_calls = nullptr;
// The bus whose worker this thread is, if any.
thread_local const void* worker_of = nullptr;

int calls_running_here(const void* bus, const subscriber* target) {
  int count = 0;
  for (const dispatch_frame* f = running_calls; f != nullptr; f = f->outer) {
    if (f->bus == bus && (target == nullptr || f->target == target)) ++count;
  }
  return count;
}

// Blocks until counter <= floor. Whoever decrements it calls notify_all when a waiter may care.
void wait_until_at_most(const std::atomic<int>& counter, int floor) {
  for (int now = counter.load(); now > floor; now = counter.load()) counter.wait(now);
}

struct worker_queue {
  std::mutex mutex;
  std::condition_variable not_empty;   // the worker waits here
  std::condition_variable not_full;    // publishers wait here
  std::condition_variable progressed;  // flush() waits here
  std::deque<event> items;             // GUARDED_BY(mutex)
  std::size_t pending = 0;             // GUARDED_BY(mutex): items + the batch being handled
  std::uint64_t accepted = 0;          // GUARDED_BY(mutex): events ever queued
  std::uint64_t handled = 0;           // GUARDED_BY(mutex): events ever handled
  bool closing = false;                // GUARDED_BY(mutex)
  std::thread thread;                  // started by the constructor, joined by close()
};

std::size_t stream_hash(const stream_ref& stream) {
  const std::size_t a = std::hash<std::string_view>{}(stream.type);
  const std::size_t b = std::hash<std::string_view>{}(stream.id);
  return a ^ (b + 0x9e3779b97f4a7c15ull + (a << 6) + (a >> 2));
}

store_closed_error bus_closed() {
  return store_closed_error("eventsourced: the event bus is closed");
}

}  // namespace

struct in_memory_event_bus::state {
  explicit state(in_memory_bus_options o) : options(std::move(o)) {}

  const in_memory_bus_options options;
  std::atomic<bool> closed{false};
  // Synchronous publish calls in progress; close() waits for them (same pattern as in_flight).
  std::atomic<int> publishing{0};

  mutable std::mutex routing_mutex;
  std::shared_ptr<const routing> routes = std::make_shared<routing>();  // GUARDED_BY(routing_mutex)
  subscriber_list subscribers;  // GUARDED_BY(routing_mutex), in subscription order

  // Asynchronous dispatch only; the vector itself never changes after construction.
  std::vector<std::unique_ptr<worker_queue>> queues;
  std::mutex join_mutex;  // one close() joins, concurrent ones wait for it

  mutable std::mutex failure_mutex;
  std::deque<handler_failure> dead_letters;  // GUARDED_BY(failure_mutex)
  std::uint64_t dropped = 0;                 // GUARDED_BY(failure_mutex)
  std::uint64_t reported = 0;                // GUARDED_BY(failure_mutex)

  std::shared_ptr<const routing> current_routes() const {
    std::lock_guard lock(routing_mutex);
    return routes;
  }

  // Rebuilds the snapshot from `subscribers`. Called with routing_mutex held.
  void rebuild_routes() {
    auto next = std::make_shared<routing>();
    for (const auto& s : subscribers) {
      if (s->type == kAllEvents) next->all.push_back(s);
    }
    for (const auto& s : subscribers) {
      if (s->type == kAllEvents || next->by_type.count(s->type) != 0) continue;
      subscriber_list& list = next->by_type[s->type];
      for (const auto& candidate : subscribers) {
        if (candidate->type == s->type || candidate->type == kAllEvents) list.push_back(candidate);
      }
    }
    routes = std::move(next);
  }

  void end(const std::shared_ptr<subscriber>& s) noexcept {
    if (!s->active.exchange(false)) return;
    try {
      std::lock_guard lock(routing_mutex);
      const auto it = std::find(subscribers.begin(), subscribers.end(), s);
      if (it != subscribers.end()) {
        subscribers.erase(it);
        rebuild_routes();
      }
    } catch (...) {
      // Out of memory rebuilding the snapshot: the old one still lists s, but active == false
      // keeps every dispatch away from it, which is all the promise needs.
    }
    if (calls_running_here(this, s.get()) > 0) return;  // from inside the handler: never wait
    wait_until_at_most(s->in_flight, 0);
    s->handler.reset();
  }

  static void leave(subscriber& s) noexcept {
    if (s.in_flight.fetch_sub(1) == 1 && !s.active.load()) s.in_flight.notify_all();
  }

  void deliver(subscriber& s, const event& e) noexcept {
    s.in_flight.fetch_add(1);
    if (!s.active.load()) {
      leave(s);
      return;
    }
    const dispatch_frame frame{this, &s, running_calls};
    running_calls = &frame;
    std::exception_ptr error;
    int attempts = 0;
    for (;;) {
      ++attempts;
      try {
        s.handler->handle_event(e);
        error = nullptr;
        break;
      } catch (...) {
        error = std::current_exception();
      }
      if (attempts >= options.max_attempts || !s.active.load()) break;
    }
    running_calls = frame.outer;
    leave(s);
    if (error) report(s, e, std::move(error), attempts);
  }

  void report(const subscriber& s, const event& e, std::exception_ptr error,
              int attempts) noexcept {
    {
      std::lock_guard lock(failure_mutex);
      ++reported;  // counted first: whatever fails below, the failure is not lost silently
    }
    try {
      handler_failure failure{e, s.type, std::move(error), attempts};
      {
        std::lock_guard lock(failure_mutex);
        if (options.dead_letter_capacity == 0) {
          ++dropped;
        } else {
          if (dead_letters.size() >= options.dead_letter_capacity) {
            dead_letters.pop_front();
            ++dropped;
          }
          dead_letters.push_back(failure);
        }
      }
      if (options.on_handler_failure) {
        try {
          options.on_handler_failure(failure);
        } catch (...) {
          // Documented: the failure is already recorded; a throwing observer cannot undo that.
        }
      }
    } catch (...) {
      std::lock_guard lock(failure_mutex);
      ++dropped;  // could not even copy the event (out of memory)
    }
  }

  void dispatch(const routing& r, const event& e) noexcept {
    for (const auto& s : r.for_type(e.type)) deliver(*s, e);
  }

  void publish_synchronously(const event& e) {
    publishing.fetch_add(1);
    struct leave_publish {
      state& st;
      ~leave_publish() {
        // close() may wait for a floor above 0 (its own enclosing publishes): notify every time.
        st.publishing.fetch_sub(1);
        if (st.closed.load()) st.publishing.notify_all();
      }
    } guard{*this};
    if (closed.load()) throw bus_closed();
    const auto r = current_routes();
    dispatch(*r, e);
  }

  void publish_asynchronously(const event& e) {
    worker_queue& q = *queues[stream_hash(e.stream) % queues.size()];
    // A handler on one of our workers must not wait for room: the room may only come from itself.
    const bool from_worker = worker_of == this;
    std::unique_lock lock(q.mutex);
    if (!from_worker) {
      q.not_full.wait(lock, [&] { return q.pending < options.queue_capacity || q.closing; });
    }
    if (q.closing) throw bus_closed();
    q.items.push_back(e);
    ++q.pending;
    ++q.accepted;
    lock.unlock();
    q.not_empty.notify_one();
  }

  void run_worker(worker_queue& q) noexcept {
    worker_of = this;
    std::vector<event> batch;
    std::unique_lock lock(q.mutex);
    for (;;) {
      q.not_empty.wait(lock, [&] { return !q.items.empty() || q.closing; });
      if (q.items.empty()) break;  // closing, and drained
      const std::size_t n = std::min(q.items.size(), kMaxBatch);
      try {
        batch.assign(std::make_move_iterator(q.items.begin()),
                     std::make_move_iterator(q.items.begin() + static_cast<std::ptrdiff_t>(n)));
        q.items.erase(q.items.begin(), q.items.begin() + static_cast<std::ptrdiff_t>(n));
      } catch (...) {
        // Out of memory for the batch: hand them over one at a time instead.
        batch.clear();
        batch.push_back(std::move(q.items.front()));
        q.items.pop_front();
      }
      lock.unlock();
      // Read after taking the batch: a subscription made before an event was published is in it.
      const auto r = current_routes();
      for (const event& e : batch) dispatch(*r, e);
      const std::size_t done = batch.size();
      batch.clear();
      lock.lock();
      q.pending -= done;
      q.handled += done;
      q.not_full.notify_all();
      q.progressed.notify_all();
    }
  }

  void close() noexcept {
    const bool already = closed.exchange(true);
    if (queues.empty()) {
      // Synchronous: wait for the publish calls in progress, except those this thread is inside
      // (one per handler call of ours running here).
      const int mine = calls_running_here(this, nullptr);
      wait_until_at_most(publishing, mine);
      return;
    }
    if (!already) {
      for (auto& q : queues) {
        {
          std::lock_guard lock(q->mutex);
          q->closing = true;
        }
        q->not_empty.notify_all();
        q->not_full.notify_all();
      }
    }
    if (worker_of == this) return;  // a handler of ours: the workers drain on their own
    std::lock_guard lock(join_mutex);
    for (auto& q : queues) {
      if (q->thread.joinable()) q->thread.join();
    }
  }
};

in_memory_event_bus::in_memory_event_bus(in_memory_bus_options options) {
  if (options.max_attempts < 1) {
    throw invalid_argument_error("eventsourced: in_memory_bus_options.max_attempts must be >= 1");
  }
  if (options.dispatch == bus_dispatch::asynchronous) {
    if (options.workers == 0) {
      throw invalid_argument_error("eventsourced: in_memory_bus_options.workers must be >= 1");
    }
    if (options.queue_capacity == 0) {
      throw invalid_argument_error(
          "eventsourced: in_memory_bus_options.queue_capacity must be >= 1");
    }
  }
  state_ = std::make_shared<state>(std::move(options));
  if (state_->options.dispatch == bus_dispatch::asynchronous) {
    for (std::size_t i = 0; i < state_->options.workers; ++i) {
      state_->queues.push_back(std::make_unique<worker_queue>());
    }
    try {
      for (auto& q : state_->queues) {
        q->thread = std::thread([st = state_.get(), queue = q.get()] { st->run_worker(*queue); });
      }
    } catch (...) {
      state_->close();  // joins the workers already started
      throw;
    }
  }
}

in_memory_event_bus::~in_memory_event_bus() {
  state_->close();
  // close() from a handler left the workers to finish on their own: join them now.
  std::lock_guard lock(state_->join_mutex);
  for (auto& q : state_->queues) {
    if (q->thread.joinable()) q->thread.join();
  }
}

void in_memory_event_bus::publish(const event& e) {
  if (state_->queues.empty()) {
    state_->publish_synchronously(e);
  } else {
    state_->publish_asynchronously(e);
  }
}

subscription in_memory_event_bus::subscribe(std::string_view type,
                                            std::shared_ptr<event_handler> handler) {
  if (type.empty()) {
    throw invalid_argument_error("eventsourced: subscribe needs an event type, got an empty one");
  }
  if (!handler) throw invalid_argument_error("eventsourced: subscribe needs a handler, got null");
  auto s = std::make_shared<subscriber>(std::string(type), std::move(handler));
  {
    std::lock_guard lock(state_->routing_mutex);
    if (state_->closed.load()) throw bus_closed();
    state_->subscribers.push_back(s);
    try {
      state_->rebuild_routes();
    } catch (...) {
      state_->subscribers.pop_back();
      throw;
    }
  }
  return subscription([bus = std::weak_ptr<state>(state_), s]() noexcept {
    if (const auto st = bus.lock()) {
      st->end(s);
    } else {
      s->active.store(false);  // the bus is gone; nothing can call the handler any more
    }
  });
}

void in_memory_event_bus::flush() {
  if (state_->queues.empty()) return;  // synchronous: every publish that returned was handled
  if (worker_of == state_.get()) {
    throw invalid_argument_error(
        "eventsourced: flush() called from a handler running on the bus's own worker would wait "
        "for itself");
  }
  for (auto& q : state_->queues) {
    std::unique_lock lock(q->mutex);
    const std::uint64_t target = q->accepted;
    q->progressed.wait(lock, [&] { return q->handled >= target; });
  }
}

void in_memory_event_bus::close() noexcept {
  state_->close();
}

std::size_t in_memory_event_bus::pending() const {
  std::size_t total = 0;
  for (const auto& q : state_->queues) {
    std::lock_guard lock(q->mutex);
    total += q->pending;
  }
  return total;
}

std::vector<handler_failure> in_memory_event_bus::dead_letters() const {
  std::lock_guard lock(state_->failure_mutex);
  return {state_->dead_letters.begin(), state_->dead_letters.end()};
}

std::uint64_t in_memory_event_bus::dead_letters_dropped() const {
  std::lock_guard lock(state_->failure_mutex);
  return state_->dropped;
}

std::uint64_t in_memory_event_bus::failures_reported() const {
  std::lock_guard lock(state_->failure_mutex);
  return state_->reported;
}

}  // namespace eventsourced
