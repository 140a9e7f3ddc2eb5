// An event bus over core NATS subjects: fire-and-forget, between processes.
//
//   eventsourced::nats_bus bus({.connection = {.url = "nats://127.0.0.1:4222"}, .ns = "game"});
//   subscription s = bus.subscribe("PlayerCreated", [](const event& e) { ... });
//   bus.publish(e);   // subject game.PlayerCreated, payload serialize_event(e) (serializer.hpp)
//
// Subjects. An event goes to `<ns>.<token of its type>` (subject.hpp: types with '.', '*', '>',
// spaces or other bytes outside [A-Za-z0-9_-] are %-encoded). subscribe(type) listens on that
// subject, subscribe(kAllEvents) on `<ns>.>`. Any NATS client may publish or subscribe there.
//
// Delivery: at most once. Core NATS keeps nothing: an event reaches the subscriptions that exist
// (in any process) when the server routes it; a subscriber that is down, slow beyond
// options.max_pending_messages, or disconnected at that moment misses it. Use jetstream_bus for
// at-least-once delivery.
//
// Dispatch. The first subscribe() makes one server subscription on `<ns>.>` for the whole bus,
// kept until close(); one thread of the bus reads it and calls the handlers subscribed to each
// event's type and to kAllEvents, one call at a time, in subscription order, like
// in_memory_event_bus's synchronous dispatch: every handler of the bus has seen event N before
// any sees event N+1, and events published by one connection arrive in publish order. A bus with
// subscriptions thus receives every event of its namespace (and drops the types nobody on it
// subscribed to); a bus that only publishes receives nothing.
//
// Failures. A handler that throws is called again at once, up to options.max_attempts calls;
// when the last throws, options.on_handler_failure is called (on the bus's dispatch thread) and
// the event is dropped. Messages on the namespace that are not events (serializer.hpp) are
// counted in malformed_messages() and dropped.
//
// Outages. publish() throws engine_unavailable_error (retryable) while the connection is down;
// the client reconnects in the background (nats_connection_options) and subscriptions resume
// by themselves, missing what was published meanwhile.
//
// \par Thread safety
// Every member function may be called from any thread at once, and from inside a handler, except
// flush() (not from a handler: it would wait for itself) and the destructor (not from a handler
// of this bus). See bus.hpp for unsubscribe's guarantees.
//
// \par Ownership
// The bus owns its connection. Subscriptions may outlive the bus; ending them then does nothing.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <eventsourced/event/bus.hpp>
#include <eventsourced/event/memory_bus.hpp>  // handler_failure
#include <eventsourced/nats/connection_options.hpp>

namespace eventsourced {

struct nats_bus_options {
  nats_connection_options connection{};
  // The first subject token of every event (subject.hpp rules: [A-Za-z0-9_-], 1 to 64 chars).
  std::string ns = "events";
  // Calls of a throwing handler per event, the first included (>= 1).
  int max_attempts = 1;
  // Messages a subscription may hold received and not yet handled (>= 1); beyond that the client
  // drops what arrives (a slow consumer), as core NATS does. publish() (except from a handler of
  // this bus) waits while a subscription of this same bus holds more than half of it: back-
  // pressure within one process; subscribers in other processes get no such protection.
  int max_pending_messages = 65536;
  // Called with each event a handler failed on max_attempts times, on the dispatch thread.
  // Exceptions it throws are swallowed.
  std::function<void(const handler_failure&)> on_handler_failure{};
};

class nats_bus final : public event_bus {
 public:
  // Connects. Throws invalid_argument_error for bad options (URL, namespace, max_attempts,
  // max_pending_messages),
  // engine_unavailable_error when no server can be reached, engine_error when the server refuses
  // the connection (authentication, TLS).
  explicit nats_bus(nats_bus_options options);
  // close(). Must not run on one of this bus's subscription threads.
  ~nats_bus() override;
  nats_bus(const nats_bus&) = delete;
  nats_bus& operator=(const nats_bus&) = delete;

  // Hands the event to the client library for sending; returns before it reaches the server. May
  // wait while one of this bus's subscriptions is far behind (nats_bus_options).
  // Throws store_closed_error after close(), engine_unavailable_error while disconnected,
  // serialization_error for an event that cannot be serialized, engine_error for a message over
  // the server's max payload.
  void publish(const event& e) override;
  using event_bus::publish;

  // Subscribes on the server before returning: events published after it returns are received.
  // Throws invalid_argument_error for an empty type or a null handler, store_closed_error after
  // close(), engine_unavailable_error while disconnected.
  subscription subscribe(std::string_view type, std::shared_ptr<event_handler> handler) override;
  using event_bus::subscribe;

  // Returns true once every event this bus published before the call has reached the server and
  // every subscription of this bus has finished handling every message it received before that:
  // with publisher and subscribers on this bus, everything published has been handled. false on
  // timeout. Throws engine_unavailable_error while disconnected, store_closed_error after close(),
  // invalid_argument_error from a handler of this bus.
  bool flush(std::chrono::milliseconds timeout = std::chrono::seconds(10));

  // Ends every subscription (waiting for running handlers, except the caller's own) and closes
  // the connection. Later publish/subscribe calls throw store_closed_error. Idempotent; never
  // throws.
  void close() noexcept override;

  // Messages received on the namespace that were not events; dropped.
  std::uint64_t malformed_messages() const;

 private:
  struct state;
  std::shared_ptr<state> state_;
};

}  // namespace eventsourced
