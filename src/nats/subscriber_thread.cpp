#include "subscriber_thread.hpp"

#include <algorithm>

#include <eventsourced/error.hpp>

namespace eventsourced::nats_internal {
namespace {

// Longest wait in NextMsg before looking at `stopping` again. Unsubscribing wakes the reader at
// once; this only bounds the rare case of a stop without an unsubscribe (connection closed).
constexpr int64_t kPollMs = 200;
// Longest wait for the flush that makes destroying an unsubscribed subscription safe.
constexpr int64_t kRetireFlushMs = 5000;

thread_local const subscriber* current_subscriber = nullptr;

void stop(subscriber& s) noexcept {
  s.stopping.store(true);
  std::lock_guard lock(s.mutex);
  // Wakes the reader blocked in NextMsg. For a JetStream consumer this call created (an
  // ephemeral one), it also deletes the consumer on the server.
  if (s.sub != nullptr) natsSubscription_Unsubscribe(s.sub);
}

}  // namespace

subscriber_set::~subscriber_set() {
  close();
  std::vector<std::shared_ptr<subscriber>> left;
  {
    std::lock_guard lock(mutex_);
    left.swap(to_join_);
  }
  for (auto& s : left) {
    if (s->thread.joinable() && current_subscriber != s.get()) s->thread.join();
  }
  destroy_retired();
}

bool subscriber_set::on_subscriber_thread() noexcept {
  return current_subscriber != nullptr;
}

void subscriber_set::start(const std::shared_ptr<subscriber>& s, message_function on_message) {
  std::lock_guard lock(mutex_);
  if (closed_) {
    natsSubscription_Unsubscribe(s->sub);
    graveyard_.push_back(s->sub);  // the connection is closed or about to be
    s->sub = nullptr;
    throw store_closed_error("eventsourced: the event bus is closed");
  }
  active_.push_back(s);
  try {
    s->thread = std::thread([this, s, on_message = std::move(on_message)] { run(*s, on_message); });
  } catch (...) {
    active_.pop_back();
    natsSubscription_Unsubscribe(s->sub);
    graveyard_.push_back(s->sub);
    s->sub = nullptr;
    throw;
  }
}

void subscriber_set::run(subscriber& s, const message_function& on_message) noexcept {
  current_subscriber = &s;
  natsSubscription* sub = nullptr;
  {
    std::lock_guard lock(s.mutex);
    sub = s.sub;
  }
  while (!s.stopping.load()) {
    natsMsg* msg = nullptr;
    const natsStatus status = natsSubscription_NextMsg(&msg, sub, kPollMs);
    if (status == NATS_TIMEOUT || status == NATS_SLOW_CONSUMER) continue;
    if (status != NATS_OK) {
      // Unsubscribed or closed: the subscription is over. Anything else (none is documented for
      // NextMsg) is treated the same rather than spinning.
      break;
    }
    if (!s.stopping.load()) on_message(s, msg);
    natsMsg_Destroy(msg);
    s.completed.fetch_add(1);
  }
  retire(s);
}

void subscriber_set::retire(subscriber& s) noexcept {
  natsSubscription* sub = nullptr;
  {
    std::lock_guard lock(s.mutex);
    sub = s.sub;
    s.sub = nullptr;
  }
  discard(sub);
}

void subscriber_set::discard(natsSubscription* sub) noexcept {
  if (sub == nullptr) return;
  natsSubscription_Unsubscribe(sub);  // usually done already; harmless then
  // nats.c 3.4.1's reader thread may still be delivering a message to a subscription that was
  // just unsubscribed, without holding a reference to it: destroying the subscription at once
  // is a use after free (seen under load). A flush returns once the reader has processed our
  // PING's answer, hence everything it read before: then nothing can reach the subscription. If
  // the flush fails, the subscription is destroyed after the connection is closed.
  if (natsConnection_FlushTimeout(nc_, kRetireFlushMs) == NATS_OK) {
    natsSubscription_Destroy(sub);
    return;
  }
  std::lock_guard lock(mutex_);
  try {
    graveyard_.push_back(sub);
  } catch (...) {
    // Out of memory: leak the subscription rather than risk the use after free.
  }
}

void subscriber_set::destroy_retired() noexcept {
  std::vector<natsSubscription*> dead;
  {
    std::lock_guard lock(mutex_);
    dead.swap(graveyard_);
  }
  for (auto* sub : dead) natsSubscription_Destroy(sub);
}

void subscriber_set::end(const std::shared_ptr<subscriber>& s) noexcept {
  {
    std::lock_guard lock(mutex_);
    const auto it = std::find(active_.begin(), active_.end(), s);
    if (it == active_.end()) return;  // already ended (or by close())
    active_.erase(it);
    if (current_subscriber == s.get()) to_join_.push_back(s);  // from its own handler
  }
  stop(*s);
  if (current_subscriber != s.get() && s->thread.joinable()) s->thread.join();
}

void subscriber_set::close() noexcept {
  std::vector<std::shared_ptr<subscriber>> ending, finished;
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
    ending.swap(active_);
    finished.swap(to_join_);
  }
  for (auto& s : ending) stop(*s);
  std::vector<std::shared_ptr<subscriber>> mine;
  for (auto* list : {&ending, &finished}) {
    for (auto& s : *list) {
      if (current_subscriber == s.get()) {
        mine.push_back(s);  // a handler closing its own bus: joined by the destructor
      } else if (s->thread.joinable()) {
        s->thread.join();
      }
    }
  }
  std::lock_guard lock(mutex_);
  for (auto& s : mine) to_join_.push_back(s);
}

std::vector<std::shared_ptr<subscriber>> subscriber_set::active() const {
  std::lock_guard lock(mutex_);
  return active_;
}

}  // namespace eventsourced::nats_internal
