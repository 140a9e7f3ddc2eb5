// sync_service: the transport-agnostic server side of client sync (docs/sync_protocol.md).
//
//   auto service = eventsourced::sync_service::start(storage);  // shared_ptr<event_sync_storage>
//   // when a client connects (after the transport authenticated it as "ann"):
//   auto connection = service->connect("ann", [socket](const std::string& text) {
//     socket->queue_text_frame(text);  // must not block for long (see "Delivery")
//   });
//   // for every text message the client sends:
//   service->receive(connection, text);
//   // when it goes away:
//   service->disconnect(connection);
//
// The messages are JSON objects (docs/sync_protocol.md has them all). A client subscribes to
// documents with the versions it has (its state vector); the service answers with what each one
// misses (a snapshot when it is too far behind, then the events after it — get_missing_events)
// and from then on pushes every new sync event of those documents as it is committed, by any
// process writing to the same store. Clients acknowledge what they applied (update_vector_clock)
// and may send writes with a mutation id (apply_client_write: a resend changes nothing).
//
// Every client request gets exactly one reply, "ok" or "error" (carrying its "request_id" when it
// had one), in order with the events of its connection — unless a "resync_needed" dropped it. A
// malformed message gets an "error" reply and changes nothing; receive() does not throw for
// anything a client sends. Clients are assumed hostile (docs/limits.md): a message is checked
// against options.max_json_depth while it is parsed, so nothing nested deeper is ever built (the
// reply is "too_deep", still carrying the request's id), and a patch is applied one checked
// operation at a time (storage/json_patch.hpp).
//
// Ordering. For each subscribed document a connection receives versions in order, each once,
// without gaps: the catch-up first, then live events. A live event that arrives ahead of what
// the connection has (the log tail had not reached the catch-up yet, or the other way round) is
// preceded by the missing ones, read from the store.
//
// Delivery. Messages for a connection wait in its queue; options.delivery_threads threads call
// the connections' send functions, one call at a time per connection, in order. A live event
// that finds options.max_queued_messages messages waiting — a client that does not keep up — drops
// the queue, ends the connection's subscriptions and queues one "resync_needed" message instead:
// the client subscribes again with the versions it has. A subscribe's catch-up is queued whole
// (its size is bounded by the request: per document at most a snapshot, max_missing_events or
// snapshot_interval events); replies overflow the queue at twice max_queued_messages (a client
// that sends requests and never reads). So memory per connection stays bounded. A send function
// that blocks holds one delivery thread: with N delivery threads, N - 1 blocked clients cannot
// delay the others; transports should queue without blocking (a socket's write queue) and close
// clients they cannot serve.
//
// \par Thread safety
// connect, disconnect and receive may be called from any threads at once; receive() calls for
// one connection are handled one at a time, in call order. Send functions are called on the
// service's delivery threads, never while the service holds a lock, never concurrently for one
// connection, and never after disconnect() has returned.
//
// \par Ownership
// Shares the event_sync_storage. The destructor (or stop()) ends the log-tail and delivery
// threads; queued messages are dropped.
//
// \par Exceptions
// start(): invalid_argument_error for bad options. connect(): invalid_argument_error for an
// invalid client id or a null send function. receive(): invalid_argument_error for a connection
// that is not connected (never registered, or disconnected) — client input errors are replies,
// not exceptions. After stop(), connect and receive throw store_closed_error.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <eventsourced/engine/json_limits.hpp>
#include <eventsourced/sync/event_sync_storage.hpp>

namespace eventsourced {

struct sync_service_options {
  // Messages a connection may have waiting before it is told to resync (>= 1).
  std::size_t max_queued_messages = 10000;
  // Documents one connection may subscribe to (>= 1).
  std::size_t max_subscriptions = 10000;
  // Larger messages from a client are refused with an error reply (>= 1).
  std::size_t max_message_bytes = 1 << 20;
  // Deepest nesting of a value in a client's message (a document, a patch value; see
  // engine/json_limits.hpp), checked while the message is parsed: deeper values are never built,
  // and the request gets an error reply with code "too_deep". 1..kMaxJsonDepthSetting. Writes
  // are also held to the store's own store_options::max_json_depth.
  std::size_t max_json_depth = kDefaultMaxJsonDepth;
  // Threads calling send functions (>= 1).
  std::size_t delivery_threads = 2;
  // How long the log tail waits for new events before looking again (wakes on commits of this
  // process at once, and of other processes when the engine signals them: PostgreSQL NOTIFY).
  std::chrono::milliseconds poll_interval{200};
};

// A connection's identity inside the service; 0 is never used.
using sync_connection_id = std::uint64_t;

// Counters, for monitoring and tests.
struct sync_service_stats {
  std::int64_t connections = 0;    // connected now
  std::int64_t messages_sent = 0;  // send calls made
  std::int64_t events_pushed = 0;  // live event messages queued for connections
  std::int64_t resyncs = 0;        // "resync_needed" messages queued
  std::int64_t send_failures = 0;  // send calls that threw (counted once the connection is dropped)
  std::int64_t log_position = 0;   // the log tail's position
};

class sync_service {
 public:
  // Called with one message (a JSON text) for the connection's client.
  using send_function = std::function<void(const std::string& message)>;

  // Starts the log tail (from the log's current end) and the delivery threads.
  static std::unique_ptr<sync_service> start(std::shared_ptr<event_sync_storage> storage,
                                             sync_service_options options = {});
  ~sync_service();
  sync_service(const sync_service&) = delete;
  sync_service& operator=(const sync_service&) = delete;

  // Registers a connection of client_id (one client may have several connections). The client
  // id is the one the transport authenticated; it is what acknowledgements and writes of this
  // connection are recorded under.
  sync_connection_id connect(std::string client_id, send_function send);
  // Ends the connection's subscriptions and drops its queue. Waits for a send of it in progress
  // on another thread to return; from inside the connection's own send it returns at once (and a
  // disconnect from another thread meanwhile waits for that send). Unknown ids are ignored;
  // never throws.
  void disconnect(sync_connection_id connection) noexcept;
  // Handles one message from the connection's client (see the header comment). Returns false
  // when the message was malformed — the "invalid_message" error reply is queued — so a transport
  // may close a client that does not speak the protocol; true for every other message, answered
  // by "ok" or another error.
  bool receive(sync_connection_id connection, std::string_view message);

  sync_service_stats stats() const;
  // Waits until the log tail has handled every event committed before the call (or the timeout
  // passes; then false). For tests and orderly shutdowns.
  bool wait_until_caught_up(std::chrono::milliseconds timeout) const;

  // Stops the threads and refuses further calls. Idempotent; never throws.
  void stop() noexcept;

  const std::shared_ptr<event_sync_storage>& storage() const noexcept;

 private:
  struct impl;
  explicit sync_service(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

}  // namespace eventsourced
