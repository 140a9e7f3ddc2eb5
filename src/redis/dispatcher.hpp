// Private: the plain (non-durable) subscriptions of a Redis bus: one reader thread per bus that
// takes each event from the server (an ephemeral consumer group, or a Pub/Sub connection) and
// routes it to the bus's handlers in subscription order (redis_streams_bus' ephemeral group,
// redis_pubsub_bus).
//
// Why one reader and not one per handler: handlers of one bus then see event N before any sees
// event N+1, a handler that unsubscribes another stops events already read for it, and the server
// serves one reader per bus rather than one per subscribe() (the NATS dispatcher's reasoning).
//
// Unsubscribe uses the in-memory bus's protocol (memory_bus.cpp): a route has an `active` flag
// and an `in_flight` count; the dispatch increments in_flight, then reads active; end() clears
// active, then waits for in_flight to reach 0, unless it runs on the reader thread (a handler),
// where no other handler call of this dispatcher can be running.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <eventsourced/event/bus.hpp>
#include <eventsourced/event/memory_bus.hpp>  // handler_failure

namespace eventsourced::redis_internal {

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
  // Runs on the reader thread until stopping() (it must look at it at least every poll
  // interval). Must not throw.
  using reader_function = std::function<void()>;
  // Prepares the server side (creates the group, subscribes) and returns the reader; throws.
  using start_function = std::function<reader_function()>;

  dispatcher() = default;
  ~dispatcher();  // stop(), then joins a reader left running by a stop() from a handler
  dispatcher(const dispatcher&) = delete;
  dispatcher& operator=(const dispatcher&) = delete;

  // Adds a route; the first call runs start (under the dispatcher's lock) and starts the reader.
  // Throws what start throws, store_closed_error after stop().
  std::shared_ptr<route> add(std::string type, std::shared_ptr<event_handler> handler,
                             const start_function& start);
  // Ends a route (see the header comment). Idempotent; never throws.
  void end(const std::shared_ptr<route>& r) noexcept;

  // On the reader thread: calls every active route for e's type (and kAllEvents), in order, each
  // up to max_attempts times, reporting a route's final failure to on_failure. Returns early when
  // stopping.
  void deliver(const event& e, int max_attempts,
               const std::function<void(const handler_failure&)>& on_failure) noexcept;

  // True once a reader runs (the first add() succeeded).
  bool started() const;
  bool stopping() const noexcept { return stopping_.load(); }
  // True on this dispatcher's reader thread.
  bool on_reader_thread() const noexcept;
  // Stops the reader; joins it unless called on it. No add() afterwards. Idempotent.
  void stop() noexcept;

 private:
  struct routing;
  void rebuild_routes();  // with mutex_ held
  std::shared_ptr<const routing> current_routes() const;

  mutable std::mutex mutex_;
  bool stopped_ = false;                        // GUARDED_BY(mutex_)
  std::vector<std::shared_ptr<route>> routes_;  // GUARDED_BY(mutex_), in subscription order
  std::shared_ptr<const routing> routing_;      // GUARDED_BY(mutex_)
  std::thread reader_;                          // GUARDED_BY(mutex_)
  std::atomic<bool> stopping_{false};
};

}  // namespace eventsourced::redis_internal
