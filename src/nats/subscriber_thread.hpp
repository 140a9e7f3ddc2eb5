// Private: the subscriptions of a NATS bus, each a synchronous natsSubscription read by a thread
// of its own. Both buses use it; what happens to a message is theirs (on_message).
//
// Why a thread per subscription rather than nats.c's asynchronous callbacks: unsubscribe() must
// return only once the handler is idle (bus.hpp), which nats.c does not promise for its
// callbacks; joining our own thread does. A handler ending its own subscription is recognised by
// a thread-local pointer and not waited for; its thread is joined later by close().
#pragma once

#include <nats/nats.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <eventsourced/event/bus.hpp>

namespace eventsourced::nats_internal {

struct subscriber {
  subscriber(std::string t, std::shared_ptr<event_handler> h)
      : type(std::move(t)), handler(std::move(h)) {}
  const std::string type;  // what was subscribed to (kAllEvents for every event)
  std::string durable;     // JetStream: the durable consumer's name, if any
  const std::shared_ptr<event_handler> handler;  // released with the subscriber
  std::atomic<bool> stopping{false};             // no handler call starts once set
  std::atomic<std::uint64_t> completed{0};       // messages fully processed by on_message

  std::mutex mutex;
  natsSubscription* sub = nullptr;  // GUARDED_BY(mutex); destroyed by the thread as it ends
  std::thread thread;               // started by subscriber_set::start; joined by end/close
};

// A message taken from the subscription; on_message processes it (the subscriber destroys the
// message afterwards). Must not throw.
using message_function = std::function<void(subscriber&, natsMsg*)>;

class subscriber_set {
 public:
  subscriber_set() = default;
  // close(), then destroys the subscriptions whose retirement was deferred: the connection must
  // be closed by then.
  ~subscriber_set();
  subscriber_set(const subscriber_set&) = delete;
  subscriber_set& operator=(const subscriber_set&) = delete;

  // The connection the subscriptions belong to; set once, before start().
  void set_connection(natsConnection* nc) { nc_ = nc; }
  // Takes ownership of s->sub and starts reading it. Throws store_closed_error after close().
  void start(const std::shared_ptr<subscriber>& s, message_function on_message);
  // Ends s: no handler call starts after it; waits for a running one unless called from it.
  // Idempotent; never throws.
  void end(const std::shared_ptr<subscriber>& s) noexcept;
  // Ends every subscriber, joins every thread except the caller's. Idempotent; never throws.
  void close() noexcept;
  // The subscribers not ended.
  std::vector<std::shared_ptr<subscriber>> active() const;
  // True when pred(s) holds for an active subscriber (called with the set's lock held).
  template <typename Pred>
  bool any(Pred pred) const {
    std::lock_guard lock(mutex_);
    for (const auto& s : active_) {
      if (pred(*s)) return true;
    }
    return false;
  }
  // Unsubscribes and destroys a subscription that was never started, safely (see retire()).
  void discard(natsSubscription* sub) noexcept;
  // True when the calling thread is one of the subscribers' threads.
  static bool on_subscriber_thread() noexcept;

 private:
  void run(subscriber& s, const message_function& on_message) noexcept;
  // Destroys s's (unsubscribed) natsSubscription once that is safe; see the .cpp.
  void retire(subscriber& s) noexcept;
  void destroy_retired() noexcept;

  natsConnection* nc_ = nullptr;

  mutable std::mutex mutex_;
  bool closed_ = false;                               // GUARDED_BY(mutex_)
  std::vector<std::shared_ptr<subscriber>> active_;   // GUARDED_BY(mutex_)
  std::vector<std::shared_ptr<subscriber>> to_join_;  // GUARDED_BY(mutex_): ended from inside
  std::vector<natsSubscription*> graveyard_;          // GUARDED_BY(mutex_): destroyed last
};

}  // namespace eventsourced::nats_internal
