// An event bus inside one process: handlers run on the publishing thread (synchronous dispatch)
// or on worker threads behind bounded queues (asynchronous dispatch).
//
//   in_memory_event_bus bus({.dispatch = bus_dispatch::asynchronous, .workers = 2});
//   subscription s = bus.subscribe("PlayerCreated", [](const event& e) { ... });
//   bus.publish(e);
//   bus.flush();  // every event published so far has been handled
//
// Delivery. Each subscriber of an event's type and each kAllEvents subscriber gets the event
// once, in subscription order. With asynchronous dispatch, events of one stream (stream type +
// id) are handled in the order they were published, one at a time, even with several workers:
// each stream is assigned to one worker by a hash of its type and id, and each worker has its own
// FIFO queue. Events of different streams may be handled concurrently and in any order. (Events
// of one stream published concurrently from several threads are ordered as their publish calls
// entered the queue.)
//
// Back-pressure. A worker's queue holds at most options.queue_capacity events, counting those
// it is handling; publish() blocks while the queue its event goes to is full. Memory is thus
// bounded by workers × queue_capacity events. One exception keeps handlers from deadlocking the
// bus: a publish() made by a handler running on one of this bus's workers never blocks, it may
// overfill the queue (a handler publishing follow-up events would otherwise wait for itself).
//
// Failures. A handler that throws never stops the other handlers of the event, nor later events.
// The call is retried at once, up to options.max_attempts calls in all (unless unsubscribed in
// between). When the last attempt throws, the failure is reported: it is appended to the
// dead-letter list (dead_letters(); bounded by options.dead_letter_capacity, the oldest dropped
// first and counted in dead_letters_dropped()) and passed to options.on_handler_failure when set.
// publish() itself does not throw for a handler's failure, in either dispatch mode.
//
// Close. close() refuses new publishes (they throw store_closed_error, including those blocked
// by back-pressure at that moment), then drains: every event already accepted is handled, and the
// worker threads are joined. After close() returns no handler of this bus is running, unless
// close() was called from a handler: then it returns without waiting (the workers finish the
// queues on their own and the destructor joins them).
//
// \par Thread safety
// Every member function may be called from any number of threads at once, and from inside a
// handler, with these exceptions: flush() from a handler on a worker of this bus throws (it would
// wait for itself); the bus must not be destroyed from one of its own handlers. unsubscribe()
// waits for a running call of its handler (see bus.hpp): two handlers that unsubscribe each other
// while both are running on different threads wait for each other forever; handlers that
// unsubscribe themselves do not wait.
//
// \par Ownership
// The bus keeps a shared_ptr to each handler until the subscription ends: unsubscribe() releases
// it before returning (when called from the handler itself, once the dispatch of the event in
// hand has ended).
// Subscriptions may outlive the bus; ending them then does nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <eventsourced/event/bus.hpp>

namespace eventsourced {

enum class bus_dispatch {
  synchronous,   // handlers run on the publishing thread; publish returns after all of them
  asynchronous,  // handlers run on worker threads; publish returns once the event is queued
};

// A handler call that failed on every attempt.
struct handler_failure {
  event failed_event;
  std::string subscribed_type;  // what the handler subscribed to (kAllEvents for every event)
  std::exception_ptr error;     // what the last attempt threw
  int attempts = 0;             // how many calls were made
};

struct in_memory_bus_options {
  // Where handlers run; see bus_dispatch.
  bus_dispatch dispatch = bus_dispatch::synchronous;
  // Asynchronous dispatch: the number of worker threads (>= 1). Streams are spread over them.
  std::size_t workers = 1;
  // Asynchronous dispatch: the most events one worker's queue holds (>= 1), the one it is
  // handling included; publish() blocks beyond that.
  std::size_t queue_capacity = 65536;
  // Calls of a throwing handler per event, the first included (>= 1; 1 means no retry).
  int max_attempts = 1;
  // Called with every reported failure, on the thread that ran the handler, after the failure
  // has been added to the dead letters; with several workers, possibly from several threads at
  // once. Exceptions it throws are swallowed (the failure is already recorded). Must not destroy
  // or close() the bus (with synchronous dispatch, close() would wait for the publish it runs in).
  std::function<void(const handler_failure&)> on_handler_failure{};
  // The most failures dead_letters() keeps; older ones are dropped (and counted) first. 0 keeps
  // none (only on_handler_failure and the count then see failures).
  std::size_t dead_letter_capacity = 1024;
};

class in_memory_event_bus final : public event_bus {
 public:
  // Starts the worker threads for asynchronous dispatch. Throws invalid_argument_error for
  // options out of range (0 workers, 0 capacity, max_attempts < 1).
  explicit in_memory_event_bus(in_memory_bus_options options = {});
  // close(). Must not run on one of this bus's workers (from a handler).
  ~in_memory_event_bus() override;
  in_memory_event_bus(const in_memory_event_bus&) = delete;
  in_memory_event_bus& operator=(const in_memory_event_bus&) = delete;

  // Synchronous: runs every subscribed handler before returning. Asynchronous: queues the event
  // (copied) on its stream's worker, blocking while that queue is full. Throws store_closed_error
  // after close(). Does not throw for handlers' failures.
  void publish(const event& e) override;
  using event_bus::publish;

  // Throws invalid_argument_error for an empty type or a null handler, store_closed_error after
  // close(). A subscription made while an event is being dispatched may or may not receive it.
  subscription subscribe(std::string_view type, std::shared_ptr<event_handler> handler) override;
  using event_bus::subscribe;

  // Returns once every event published before the call has been handled by every handler (with
  // synchronous dispatch, at once). Events published meanwhile by other threads are not waited
  // for. Throws invalid_argument_error when called from a handler on one of this bus's workers.
  void flush();

  // See the header comment. Idempotent; never throws.
  void close() noexcept override;

  // Events accepted and not yet handled (always 0 with synchronous dispatch).
  std::size_t pending() const;
  // Reported failures still kept, oldest first.
  std::vector<handler_failure> dead_letters() const;
  // Failures dropped from the dead letters because they were full.
  std::uint64_t dead_letters_dropped() const;
  // Every failure reported since construction.
  std::uint64_t failures_reported() const;

 private:
  struct state;  // shared with the subscriptions (weakly) and the workers; see memory_bus.cpp
  std::shared_ptr<state> state_;
};

}  // namespace eventsourced
