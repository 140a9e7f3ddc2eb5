// An event bus over Redis Pub/Sub: fire-and-forget, between processes.
//
//   eventsourced::redis_pubsub_bus bus({.connection = {.uri = "redis://127.0.0.1:6379"},
//                                       .ns = "game"});
//   subscription s = bus.subscribe("PlayerCreated", [](const event& e) { ... });
//   bus.publish(e);   // PUBLISH game:e:PlayerCreated <serialize_event(e)>
//
// Channels. An event goes to channel `<ns>:e:<type>`, the type %-encoded (every byte outside
// [A-Za-z0-9_.-]: "a:b*" becomes "a%3Ab%2A"), so that no type can reach another type's channel
// or act as a glob pattern. The payload is serialize_event(e) (serializer.hpp). Any Redis client
// may publish or subscribe there.
//
// Delivery: at most once. Redis keeps nothing: an event reaches the subscribers connected when
// it is published; a subscriber that is down, disconnected or reconnecting at that moment misses
// it (use redis_streams_bus for durable delivery).
//
// Dispatch. The first subscribe() opens one subscriber connection for the whole bus
// (PSUBSCRIBE `<ns>:e:*`), kept until close(); one thread of the bus reads it and calls the
// handlers subscribed to each event's type and to kAllEvents, one call at a time, in
// subscription order: every handler of the bus has seen event N before any sees event N+1, and
// events published by one thread arrive in publish order. A bus with subscriptions thus receives
// every event of its namespace; a bus that only publishes receives nothing.
//
// Failures. A handler that throws is called again at once, up to options.max_attempts calls; when
// the last throws, options.on_handler_failure is called (on the dispatch thread) and the event is
// dropped. Messages that are not events are counted in malformed_messages() and dropped.
//
// Outages. publish() throws engine_unavailable_error (retryable) when the server cannot be
// reached. The subscriber thread reconnects by itself (pausing options.poll_interval between
// attempts) and subscribes again, missing what was published meanwhile.
//
// \par Thread safety
// Every member function may be called from any thread at once, and from inside a handler, except
// flush() (not from a handler: it would wait for itself) and the destructor (not from a handler
// of this bus). See bus.hpp for unsubscribe's guarantees.
//
// \par Ownership
// The bus owns its connections and its thread. Subscriptions may outlive the bus; ending them
// then does nothing.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <eventsourced/event/bus.hpp>
#include <eventsourced/event/memory_bus.hpp>  // handler_failure
#include <eventsourced/redis/connection_options.hpp>

namespace eventsourced {

struct redis_pubsub_bus_options {
  redis_connection_options connection{};
  // The channel prefix (1 to 64 characters from [A-Za-z0-9_.-]).
  std::string ns = "events";
  // Calls of a throwing handler per event, the first included (>= 1).
  int max_attempts = 1;
  // How often the subscriber thread looks at close() while no message arrives, and the pause
  // between reconnection attempts (> 0).
  std::chrono::milliseconds poll_interval{100};
  // Called with each event a handler failed on max_attempts times, on the dispatch thread.
  // Exceptions it throws are swallowed.
  std::function<void(const handler_failure&)> on_handler_failure{};
};

class redis_pubsub_bus final : public event_bus {
 public:
  // Checks the options; connects lazily. Throws invalid_argument_error for bad options or URI.
  explicit redis_pubsub_bus(redis_pubsub_bus_options options);
  // close(). Must not run on this bus's subscriber thread.
  ~redis_pubsub_bus() override;
  redis_pubsub_bus(const redis_pubsub_bus&) = delete;
  redis_pubsub_bus& operator=(const redis_pubsub_bus&) = delete;

  // PUBLISH; returns once the server routed the event to the subscribers connected now.
  // Throws store_closed_error after close(), serialization_error for an event that cannot be
  // serialized, engine_unavailable_error (retryable) when the server is unreachable or silent,
  // engine_error when it refuses.
  void publish(const event& e) override;
  using event_bus::publish;

  // The first call subscribes on the server before returning: events published after any
  // subscribe() returned are received. Throws invalid_argument_error for an empty type or a null
  // handler, store_closed_error after close(), engine_unavailable_error / engine_error when the
  // subscriber connection cannot be opened.
  subscription subscribe(std::string_view type, std::shared_ptr<event_handler> handler) override;
  using event_bus::subscribe;

  // Returns true once every event this bus published before the call has been handled by this
  // bus's subscriptions (a marker message on the bus's own channel `<ns>:flush:<id>` follows
  // them); true at once without subscriptions; false on timeout (also when the subscriber was
  // disconnected meanwhile and missed the marker). Throws engine_unavailable_error when the server
  // is unreachable, store_closed_error after close(), invalid_argument_error from a handler of
  // this bus.
  bool flush(std::chrono::milliseconds timeout = std::chrono::seconds(10));

  // Ends every subscription (waiting for a running handler, except the caller's own) and drops
  // the connections. Later publish/subscribe calls throw store_closed_error. Idempotent; never
  // throws.
  void close() noexcept override;

  // The channel an event of this type goes to on this bus.
  std::string channel_of(std::string_view type) const;
  // Messages received that were not events; dropped.
  std::uint64_t malformed_messages() const;

 private:
  struct state;
  std::shared_ptr<state> state_;
};

}  // namespace eventsourced
