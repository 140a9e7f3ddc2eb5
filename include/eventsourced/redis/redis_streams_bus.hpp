// An event bus over a Redis Stream with consumer groups: durable, at-least-once delivery between
// processes.
//
//   eventsourced::redis_streams_bus bus({.connection = {.uri = "redis://127.0.0.1:6379"},
//                                        .ns = "game"});
//   // Every event from now on, to this process only (the bus's ephemeral group):
//   subscription live = bus.subscribe(kAllEvents, [](const event& e) { ... });
//   // Every event to come (from_beginning: and every event the stream holds), kept for the
//   // group "billing" while it is down; subscriptions of one group, in any process, compete:
//   subscription billing = bus.subscribe("PlayerCreated", handler,
//                                        {.group = "billing", .consumer = "billing-1"});
//   bus.publish(e);   // XADD game:events * type PlayerCreated id <e.id> event <json>
//
// Stream. One stream per namespace, key `<ns>:events`. Each event is one entry with the fields
// `type` (the event type, for consumers that filter), `id` (the event id) and `event`
// (serialize_event(e), serializer.hpp). Any Redis client may read or add entries. Entries are
// kept until options.max_length trims the oldest (approximately: XADD MAXLEN ~), or for ever.
//
// Delivery is at least once: an event may reach a group more than once (a handler that threw, a
// consumer that died before acknowledging, outbox_relay publishing again after a crash — Redis
// does not deduplicate). Consumers recognise duplicates by event id (bus.hpp).
//
// Durable subscriptions (durable_subscription). Each has a thread and a connection of its own
// and reads the consumer group `group` (created on first use at the end of the stream, or at its
// beginning with from_beginning) as consumer `consumer`: XREADGROUP ... BLOCK. An entry is
// acknowledged (XACK) only after the handler returned normally; entries of other types are
// acknowledged without a call. A handler that throws leaves the entry pending: the same
// subscription takes it again (XCLAIM) once it was pending options.retry_delay, until it was
// delivered options.max_deliver times in all; then options.on_handler_failure is called with it
// and it is added to the dead-letter stream `<ns>:dead-letters` (fields type, id, event, group,
// consumer, deliveries, error, entry) and acknowledged. Entries pending on a consumer that went
// away (a crashed process, an unsubscribed subscription that had read a batch) are taken over by
// any other subscription of the group once they were idle options.reclaim_min_idle (XAUTOCLAIM,
// Redis >= 6.2); a restarted subscription with the same consumer name takes back its own pending
// entries first. A handler running longer than reclaim_min_idle may thus see its event handled
// a second time by a competing subscription. A group serves one event type (or kAllEvents): the
// bus records it in the hash `<ns>:groups`, and subscribing to a group with another type throws.
// Groups, like the stream, are never deleted by this library (XGROUP DESTROY them with redis-cli).
//
// Plain subscriptions (subscribe without durable_subscription) share the bus's ephemeral group
// (a unique name, created at the end of the stream by the first such subscribe(), destroyed by
// close()) and one thread, which calls the handlers one at a time in subscription order, each
// event to all of them before the next; a throwing handler is called again at once, up to
// options.max_deliver calls, then reported to on_handler_failure (no dead letter: the group is
// this process's own); the entry is acknowledged once every handler had it, and entries read on
// a connection that was lost before they were acknowledged are delivered again after
// reconnecting. A process that dies leaves its ephemeral group behind (remove it with XGROUP
// DESTROY).
//
// Outages. publish() throws engine_unavailable_error (retryable) when the server cannot be
// reached or does not answer in options.connection.command_timeout; the event may or may not have
// been added, and publishing it again is safe given at-least-once delivery. Subscription threads
// wait and reconnect by themselves (pausing options.poll_interval between attempts) and go on
// where their group stands; a group lost with the server's data (a server without persistence)
// is created again at the end of the stream.
//
// \par Thread safety
// Every member function may be called from any thread at once, and from inside a handler, except
// wait_idle() (not from a handler: it would wait for itself) and the destructor (not from a
// handler of this bus). See bus.hpp for unsubscribe's guarantees; unsubscribing waits for a
// running handler, and for the subscription's current read (at most options.poll_interval).
//
// \par Ownership
// The bus owns its connections and threads. Subscriptions may outlive the bus; ending them then
// does nothing.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include <eventsourced/event/bus.hpp>
#include <eventsourced/event/memory_bus.hpp>  // handler_failure
#include <eventsourced/redis/connection_options.hpp>

namespace eventsourced {

struct redis_streams_bus_options {
  redis_connection_options connection{};
  // The key prefix: stream `<ns>:events`, dead letters `<ns>:dead-letters`, group types
  // `<ns>:groups` (1 to 64 characters from [A-Za-z0-9_.-]).
  std::string ns = "events";
  // Entries the stream keeps, approximately (XADD MAXLEN ~); 0: no trimming.
  std::size_t max_length = 0;
  // Deliveries of an entry to a group, the first included, before it is given up (>= 1); for
  // plain subscriptions, calls of a throwing handler.
  int max_deliver = 5;
  // How long an entry whose handler threw stays pending before its subscription takes it again
  // (>= 0).
  std::chrono::milliseconds retry_delay{1000};
  // How long an entry must have been pending on a consumer before another consumer of the group
  // takes it over (> 0).
  std::chrono::milliseconds reclaim_min_idle = std::chrono::seconds(30);
  // Longest blocking read (XREADGROUP BLOCK) and the pause between reconnection attempts: how
  // soon a subscription notices unsubscribe/close and retries (> 0).
  std::chrono::milliseconds poll_interval{100};
  // Entries read per XREADGROUP (>= 1).
  std::size_t read_count = 64;
  // Called with each event given up (durable: after max_deliver deliveries, before it goes to
  // the dead letters; plain: after max_deliver calls), on the subscription's thread. Exceptions
  // it throws are swallowed.
  std::function<void(const handler_failure&)> on_handler_failure{};
};

// A durable subscription's consumer group and consumer name (1 to 64 characters from
// [A-Za-z0-9_.-] each). Two subscriptions live at once must not share a consumer name.
struct durable_subscription {
  std::string group;
  // Empty: a unique name is made up (the subscription then cannot take back its own pending
  // entries after a restart; other consumers reclaim them after reclaim_min_idle), and the
  // consumer is removed from the group when the subscription ends without pending entries.
  std::string consumer{};
  // A group created by this subscription starts at the first entry the stream holds (true) or
  // with the entries added after it (false). Ignored for an existing group.
  bool from_beginning = false;
};

class redis_streams_bus final : public event_bus {
 public:
  // Checks the options; connects lazily (the first publish or subscribe). Throws
  // invalid_argument_error for bad options or URI.
  explicit redis_streams_bus(redis_streams_bus_options options);
  // close(). Must not run on one of this bus's subscription threads.
  ~redis_streams_bus() override;
  redis_streams_bus(const redis_streams_bus&) = delete;
  redis_streams_bus& operator=(const redis_streams_bus&) = delete;

  // XADD; returns once the server added the entry. Throws store_closed_error after close(),
  // serialization_error for an event that cannot be serialized, engine_unavailable_error
  // (retryable; the event may have been added) when the server is unreachable or silent,
  // engine_error when it refuses (authentication, out of memory, a key of another type).
  void publish(const event& e) override;
  // Publishes the events in order in one round trip (pipelined XADDs). Same exceptions; after a
  // failure any prefix of the batch may have been added.
  void publish(std::span<const event> events) override;

  // A plain subscription (the ephemeral group: see the header comment). Subscribed on the
  // server before returning: events published afterwards are delivered. Throws
  // invalid_argument_error for an empty type or a null handler, store_closed_error after close(),
  // engine_unavailable_error / engine_error as publish() when the group must be created.
  subscription subscribe(std::string_view type, std::shared_ptr<event_handler> handler) override;
  // A durable subscription. Creates the group if missing before returning. Also throws
  // invalid_argument_error for bad names or a group bound to another type.
  subscription subscribe(std::string_view type, std::shared_ptr<event_handler> handler,
                         const durable_subscription& durable);
  subscription subscribe(std::string_view type, event_handler_function handler,
                         const durable_subscription& durable);
  using event_bus::subscribe;

  // True once, for every group this bus's subscriptions read, every entry of the stream has been
  // delivered and acknowledged (handled, skipped or given up); false on timeout. Throws
  // engine_unavailable_error when the server is unreachable, store_closed_error after close(),
  // invalid_argument_error from a handler of this bus.
  bool wait_idle(std::chrono::milliseconds timeout = std::chrono::seconds(30));

  // Ends every subscription (waiting for running handlers, except the caller's own; entries read
  // and not handled stay pending for their group), destroys the ephemeral group (best effort) and
  // drops the connections. Later publish/subscribe calls throw store_closed_error. Idempotent;
  // never throws.
  void close() noexcept override;

  const std::string& stream_key() const;       // <ns>:events
  const std::string& dead_letter_key() const;  // <ns>:dead-letters
  // Entries read that were not events (no or unparsable `event` field); acknowledged and dropped.
  std::uint64_t malformed_messages() const;

 private:
  struct state;
  std::shared_ptr<state> state_;
};

}  // namespace eventsourced
