// The event bus: publish events, subscribe handlers to a type or to every event.
//
// Buses carry events that are already committed to the log (outbox_relay publishes them; see
// relay.hpp). Delivery through a bus is at least once: handlers must tolerate duplicates, which
// they recognise by event id.
//
// \par Thread safety
// Every bus is safe to use from many threads at once: publish, subscribe and unsubscribe may race.
// A handler may subscribe or unsubscribe (even itself) from inside its own call.
//
// \par Ownership
// subscribe() returns a subscription handle; destroying the handle (or calling unsubscribe())
// ends the subscription. After unsubscribe() returns, the handler is not running and will not be
// called again, unless unsubscribe() is called from inside that handler (then it returns at once
// and no call starts after it; a bus that runs one handler on several threads at once — a
// kAllEvents handler on an asynchronous bus with several workers — may still be finishing calls
// on the other threads).
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include <eventsourced/event/event.hpp>

namespace eventsourced {

// A handler as an object (the seeds' HandleEvent).
class event_handler {
 public:
  virtual ~event_handler() = default;
  // A throw counts as a failed delivery: see the bus's failure policy.
  virtual void handle_event(const event& e) = 0;
};

using event_handler_function = std::function<void(const event&)>;

// Subscribing to this "type" means every event.
inline constexpr std::string_view kAllEvents = "*";

// RAII handle on a subscription. Movable, not copyable. Destroying it unsubscribes.
class subscription {
 public:
  // What a bus gives a handle to end the subscription; called at most once, must not throw.
  using cancel_function = std::function<void()>;

  subscription() = default;
  explicit subscription(cancel_function cancel) : cancel_(std::move(cancel)) {}
  subscription(subscription&& other) noexcept : cancel_(std::move(other.cancel_)) {
    other.cancel_ = nullptr;
  }
  subscription& operator=(subscription&& other) noexcept {
    if (this != &other) {
      unsubscribe();
      cancel_ = std::move(other.cancel_);
      other.cancel_ = nullptr;
    }
    return *this;
  }
  subscription(const subscription&) = delete;
  subscription& operator=(const subscription&) = delete;
  ~subscription() { unsubscribe(); }

  // Ends the subscription (see the header comment for when the handler is guaranteed idle).
  // Idempotent; never throws.
  void unsubscribe() noexcept {
    if (cancel_) {
      auto cancel = std::move(cancel_);
      cancel_ = nullptr;
      cancel();
    }
  }
  bool active() const noexcept { return static_cast<bool>(cancel_); }

 private:
  cancel_function cancel_;
};

class event_bus {
 public:
  virtual ~event_bus() = default;

  // Delivers e to every subscriber of e.type and of kAllEvents. Whether handlers run before
  // publish returns depends on the bus (in_memory_event_bus: sync or async dispatch). Throws
  // store_closed_error after close().
  virtual void publish(const event& e) = 0;
  // Publishes events in order; a bus may batch them.
  virtual void publish(std::span<const event> events) {
    for (const event& e : events) publish(e);
  }

  // Subscribes to one event type, or to every event with kAllEvents. Throws
  // invalid_argument_error for an empty type or a null handler.
  virtual subscription subscribe(std::string_view type, std::shared_ptr<event_handler> handler) = 0;
  subscription subscribe(std::string_view type, event_handler_function handler);

  // Stops delivery: pending asynchronous deliveries are finished (or abandoned, as the bus
  // documents), later publish calls throw store_closed_error. Idempotent; never throws.
  virtual void close() noexcept = 0;
};

}  // namespace eventsourced
