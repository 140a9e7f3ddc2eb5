// An event bus over NATS JetStream: durable, at-least-once delivery between processes, with
// server-side deduplication of republished events.
//
//   eventsourced::jetstream_bus bus({.connection = {.url = "nats://127.0.0.1:4222"}, .ns =
//   "game"});
//   // Every event from now on, to this process only (an ephemeral consumer):
//   subscription live = bus.subscribe(kAllEvents, [](const event& e) { ... });
//   // Every event ever stored and to come, kept for "billing" while it is down (a durable):
//   subscription billing = bus.subscribe("PlayerCreated", handler, {.durable = "billing"});
//   bus.publish(e);   // returns once the server has stored e (or recognised it as a duplicate)
//
// Stream. The bus creates (or updates to options.stream) the stream named ns with subjects
// `<ns>.>` when it is constructed. An event goes to subject `<ns>.<token of its type>`
// (subject.hpp) with payload serialize_event(e) (serializer.hpp) and the header Nats-Msg-Id set
// to the event id: the server stores an event id once within options.stream.duplicate_window,
// so publishing an event again (outbox_relay after a crash, a retried publish whose outcome was
// unknown) does not store a second copy. Beyond the window a republished event is stored again and
// consumers see a duplicate, which they recognise by its id (bus.hpp: at least once).
//
// Consumers. subscribe() without a durable name adds the handler to the bus's one ephemeral
// consumer (created by the first such subscribe(), deleted by close()): the handler gets the
// events published after subscribe() returned. As with nats_bus (dispatcher), one thread of the
// bus calls these handlers one at a time in subscription order, each event to all of them before
// the next event; a handler that throws is called again at once (after redelivery_delay), up to
// max_deliver calls, then reported; the event is acknowledged once every handler had it. The
// retries happen in this process because the consumer is this process's own: it dies with it.
// subscribe() with options.durable binds to the durable consumer of that name (created if
// missing): it delivers, from where that durable stopped, every event of the subscribed type
// since the durable was created (start_at_new == false: since the first event the stream holds),
// across restarts of the process. Each distinct durable gets every event. Several subscriptions
// with the same durable, in one process or many, compete: each event is handled by one of them
// (a NATS queue group), which is how a service scales out. A durable is bound to the type it was
// created for: subscribing to it with another type throws. Durables are not deleted by this
// library (a durable that is no longer used keeps its place in the stream; delete it with the
// nats CLI).
//
// Acknowledgement and failures (durables). Each durable subscription has a thread of its own that
// runs its handler, one event at a time. An event is acknowledged only after its handler returned
// normally. A handler that throws gets the event again (the event is negatively acknowledged,
// redelivered after options.redelivery_delay) until it was delivered options.max_deliver times in
// all (by any process of the durable); then options.on_handler_failure is called with it, and it is
// terminated: never delivered to that consumer again. A process that dies while handling an
// event leaves it unacknowledged: the server delivers it again after options.ack_wait. Messages
// on the stream that are not events are counted in malformed_messages() and terminated.
//
// Order. One consumer delivers events in stream order; a redelivered event comes after events
// delivered meanwhile, and competing subscriptions handle events concurrently.
//
// Outages. publish() throws engine_unavailable_error (retryable) while the connection is down,
// without waiting, and when the server does not confirm within
// nats_connection_options::request_timeout; the event may then have been stored or not, and
// publishing it again is safe (deduplication). The client reconnects in the background;
// consumers resume where they were, and unacknowledged events are redelivered.
//
// \par Thread safety
// Every member function may be called from any thread at once, and from inside a handler, except
// wait_idle() (not from a handler: it would wait for itself) and the destructor (not from a
// handler of this bus). See bus.hpp for unsubscribe's guarantees.
//
// \par Ownership
// The bus owns its connection. Subscriptions may outlive the bus; ending them then does nothing.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include <eventsourced/event/bus.hpp>
#include <eventsourced/event/memory_bus.hpp>  // handler_failure
#include <eventsourced/nats/connection_options.hpp>

namespace eventsourced {

enum class jetstream_storage { file, memory };
enum class jetstream_retention {
  limits,    // events are kept until max_age / max_messages / max_bytes remove the oldest
  interest,  // events are removed once every consumer acknowledged them
};

// The stream the bus creates, or updates to this configuration, when it is constructed.
struct jetstream_stream_options {
  jetstream_storage storage = jetstream_storage::file;
  jetstream_retention retention = jetstream_retention::limits;
  // How long the server remembers event ids for deduplication (> 0).
  std::chrono::milliseconds duplicate_window = std::chrono::minutes(2);
  // Limits; 0 (max_age) or -1 (the counts): none.
  std::chrono::milliseconds max_age{0};
  std::int64_t max_messages = -1;
  std::int64_t max_bytes = -1;
  // Copies in a JetStream cluster (1 to 5).
  int replicas = 1;
};

struct jetstream_bus_options {
  nats_connection_options connection{};
  // The first subject token of every event and the stream's name (subject.hpp rules).
  std::string ns = "events";
  jetstream_stream_options stream{};
  // Deliveries of an event to a consumer, the first included, before it is given up (>= 1).
  int max_deliver = 5;
  // How long the server waits for an acknowledgement before delivering an event again (> 0).
  // A handler that runs longer than this gets the event again while still handling it.
  std::chrono::milliseconds ack_wait = std::chrono::seconds(30);
  // Pause before an event whose handler threw is delivered again (>= 0).
  std::chrono::milliseconds redelivery_delay{0};
  // Unacknowledged events a consumer may have out at once (>= 1).
  int max_ack_pending = 1000;
  // Called with each event given up after max_deliver deliveries (attempts = deliveries), on the
  // subscription's thread, before the event is terminated. Exceptions it throws are swallowed.
  std::function<void(const handler_failure&)> on_handler_failure{};
};

struct jetstream_subscribe_options {
  // The durable consumer's name ([A-Za-z0-9_-], 1 to 64 characters); empty: an ephemeral one.
  std::string durable{};
  // A durable created by this call starts with the events published after it (true) or with
  // every event the stream holds (false). Ignored for an existing durable and ephemeral ones
  // (which always start with the next event).
  bool start_at_new = false;
};

class jetstream_bus final : public event_bus {
 public:
  // Connects and creates or updates the stream. Throws invalid_argument_error for bad options,
  // engine_unavailable_error when no server can be reached or JetStream does not answer,
  // engine_error when the server refuses (authentication, TLS, a stream configuration it cannot
  // change, JetStream disabled).
  explicit jetstream_bus(jetstream_bus_options options);
  // close(). Must not run on one of this bus's subscription threads.
  ~jetstream_bus() override;
  jetstream_bus(const jetstream_bus&) = delete;
  jetstream_bus& operator=(const jetstream_bus&) = delete;

  // Returns once the server stored the event (or found its id within the duplicate window).
  // Throws store_closed_error after close(); engine_unavailable_error (retryable; the event may
  // have been stored) while disconnected or without an answer in time; serialization_error for
  // an event that cannot be serialized; engine_error when the server refuses it (too large, a
  // full stream).
  void publish(const event& e) override;
  // Publishes the events in order, asynchronously, and returns once the server stored (or
  // deduplicated) all of them: one round trip per batch rather than per event. Same exceptions;
  // after a failure any part of the batch may be stored, and publishing it again is safe.
  // Concurrent batches from several threads are sent one after the other.
  void publish(std::span<const event> events) override;

  // A handler on the bus's ephemeral consumer: see the header comment. Throws
  // invalid_argument_error for an empty type or a null handler, store_closed_error after close(),
  // engine_unavailable_error while disconnected (when the consumer must be created).
  subscription subscribe(std::string_view type, std::shared_ptr<event_handler> handler) override;
  // A durable consumer (options.durable) or the ephemeral one. Also throws
  // invalid_argument_error for an invalid durable name or a durable that exists for another type,
  // engine_error for other refusals of the server.
  subscription subscribe(std::string_view type, std::shared_ptr<event_handler> handler,
                         const jetstream_subscribe_options& options);
  subscription subscribe(std::string_view type, event_handler_function handler,
                         const jetstream_subscribe_options& options);
  using event_bus::subscribe;

  // True once, for every subscription of this bus, its consumer has no event left to deliver
  // and none unacknowledged (everything stored so far was handled or given up); false on timeout.
  // Throws engine_unavailable_error while disconnected, store_closed_error after close(),
  // invalid_argument_error from a handler of this bus.
  bool wait_idle(std::chrono::milliseconds timeout = std::chrono::seconds(30));

  // Ends every subscription (waiting for running handlers, except the caller's own; their events
  // stay unacknowledged and are delivered again to the durable) and closes the connection. Later
  // publish/subscribe calls throw store_closed_error. Idempotent; never throws.
  void close() noexcept override;

  // The stream's name (the namespace).
  const std::string& stream_name() const;
  // Messages received that were not events; terminated.
  std::uint64_t malformed_messages() const;

 private:
  struct state;
  std::shared_ptr<state> state_;
};

}  // namespace eventsourced
