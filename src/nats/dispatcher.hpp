// Private: one server subscription per bus, read by one thread that routes each event to the
// bus's handlers in subscription order (nats_bus; jetstream_bus's ephemeral subscriptions).
//
// Why not one server subscription per handler: handlers of one bus would then run on different
// threads in no relation to each other, and a handler that unsubscribes another could not stop
// events already queued for it (the bus conformance suite expects the in-process buses' lockstep:
// every handler sees event N before any sees event N+1). One reader also means one server round
// trip per bus rather than per subscribe(). The cost: a bus with any such subscription receives
// every event of its namespace and drops the types nobody on it subscribed to.
//
// Unsubscribe uses the in-memory bus's protocol (memory_bus.cpp): a route has an `active` flag
// and an `in_flight` count; the dispatch increments in_flight, then reads active; end() clears
// active, then waits for in_flight to reach 0, unless it runs on the reader thread (a handler),
// where no other handler call of this dispatcher can be running.
#pragma once

#include <nats/nats.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <eventsourced/event/bus.hpp>
#include <eventsourced/event/memory_bus.hpp>  // handler_failure

namespace eventsourced::nats_internal {

struct route {
  route(std::string t, std::shared_ptr<event_handler> h)
      : type(std::move(t)), handler(std::move(h)) {}
  const std::string type;
  std::shared_ptr<event_handler> handler;  // released by end() once no call is running
  std::atomic<bool> active{true};
  std::atomic<int> in_flight{0};
};

class dispatcher {
 public:
  // Makes the server subscription (its messages are read by the reader thread); throws.
  using subscribe_function = std::function<natsSubscription*()>;
  // What the reader does with a message (it destroys the message afterwards). Must not throw.
  using message_function = std::function<void(natsMsg*)>;

  dispatcher() = default;
  // stop(), then joins and destroys what is left: the connection must be closed by then.
  ~dispatcher();
  dispatcher(const dispatcher&) = delete;
  dispatcher& operator=(const dispatcher&) = delete;

  // Adds a route; the first call makes the server subscription and starts the reader. Throws
  // what make_subscription throws, store_closed_error after stop().
  std::shared_ptr<route> add(std::string type, std::shared_ptr<event_handler> handler,
                             const subscribe_function& make_subscription,
                             message_function on_message);
  // Ends a route (see the header comment). Idempotent; never throws.
  void end(const std::shared_ptr<route>& r) noexcept;

  // On the reader thread: calls every active route for e's type (and kAllEvents), in order, each
  // up to max_attempts times (pausing `pause` between attempts), reporting a route's final
  // failure to on_failure. Returns early when stopped.
  void deliver(const event& e, int max_attempts, std::chrono::milliseconds pause,
               const std::function<void(const handler_failure&)>& on_failure) noexcept;

  // True on this dispatcher's reader thread.
  bool on_reader_thread() const noexcept;
  // Calls f(sub) with the server subscription (nullptr before the first add()) under the lock.
  template <typename F>
  auto with_subscription(F f) const {
    std::lock_guard lock(mutex_);
    return f(sub_);
  }
  // Messages the reader has finished with.
  std::uint64_t completed() const noexcept { return completed_.load(); }

  // Unsubscribes and stops the reader; joins it unless called on it. No add() afterwards.
  void stop() noexcept;

 private:
  struct routing;
  void read(natsSubscription* from, const message_function& on_message) noexcept;
  void rebuild_routes();  // with mutex_ held
  std::shared_ptr<const routing> current_routes() const;

  mutable std::mutex mutex_;
  bool stopped_ = false;                        // GUARDED_BY(mutex_)
  std::vector<std::shared_ptr<route>> routes_;  // GUARDED_BY(mutex_), in subscription order
  std::shared_ptr<const routing> routing_;      // GUARDED_BY(mutex_)
  natsSubscription* sub_ = nullptr;             // GUARDED_BY(mutex_)
  std::thread reader_;                          // GUARDED_BY(mutex_)
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> completed_{0};
};

}  // namespace eventsourced::nats_internal
