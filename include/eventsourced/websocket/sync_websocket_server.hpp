// sync_websocket_server: the reference transport of sync_service over WebSocket (target
// eventsourced::websocket, Boost.Beast). Clients speak docs/sync_protocol.md, one JSON text
// message per WebSocket text message.
//
//   auto service = std::shared_ptr(eventsourced::sync_service::start(storage));
//   eventsourced::sync_websocket_server_options options;
//   options.port = 8080;
//   options.authenticate = [](std::string_view token) -> std::optional<std::string> {
//     return token == "secret-of-ann" ? std::optional<std::string>("ann") : std::nullopt;
//   };
//   auto server = eventsourced::sync_websocket_server::start(service, options);
//   // browsers connect to ws://host:8080/sync?token=secret-of-ann
//
// Authentication. The token is the `token` query parameter of the upgrade request (browsers cannot
// set headers on a WebSocket) or, when that is absent, an `Authorization: Bearer <token>` header.
// options.authenticate maps it to the client id the connection acts as (what its writes and
// acknowledgements are recorded under), or refuses it: the upgrade is answered with HTTP 401 and
// no WebSocket is opened. A callback that throws refuses too. A token in the query string can end
// up in the logs of proxies in between: prefer short-lived tokens.
//
// Closing misbehaving clients (each closes that client only; the server and other clients go on).
// The close code and reason tell the client why:
//   - a message over max_message_bytes                  1009 (too big)
//   - a binary message                                   1003 (unsupported data)
//   - a message the service refuses as invalid_message   1008 (policy): not JSON, not an object,
//     (not JSON, unknown type, missing members, ...)     ...; its "error" reply is sent first
//   - more than max_queued_messages messages waiting     1008 (policy) "too slow": a client that
//     to be written to the client                        does not read; when even the close frame
//                                                        cannot be written within close_timeout,
//                                                        the TCP connection is dropped
//   - no data (not even a pong to the server's pings)    the connection is dropped
//     for idle_timeout
//   - disconnect_client()                                1000 (normal) with the given reason
//   - stop()                                             1001 (going away)
//
// Static files. When static_root is set, plain HTTP GET requests for other paths are answered with
// the files under it (index.html for "/"; no directory listings, nothing outside the root). Meant
// for demos and development; put a real web server in front in production. Without static_root
// such requests get 404. TLS is not offered: terminate it in a proxy in front of the server.
//
// Threads. options.threads I/O threads run the sockets. A client's messages are handed to
// sync_service::receive() on an I/O thread, one at a time per connection; receive() reads and
// writes the store (a subscribe reads what the client misses, a write commits), so with a slow
// store one client's request holds one I/O thread for that long.
//
// \par Thread safety
// All member functions may be called from any thread. stop() (and the destructor) closes every
// connection and joins the I/O threads; it must not be called from inside the authenticate
// callback.
//
// \par Exceptions
// start(): invalid_argument_error for bad options (no authenticate callback, a zero limit, an
// address that does not parse, a static_root that is not a directory), engine_unavailable_error
// when the port cannot be bound (in use, no permission).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <eventsourced/sync/sync_service.hpp>

namespace eventsourced {

struct sync_websocket_server_options {
  // The address to listen on; the default accepts loopback connections only.
  std::string address = "127.0.0.1";
  // 0: a free port chosen by the system (see sync_websocket_server::port()).
  std::uint16_t port = 0;
  // The path of the WebSocket endpoint.
  std::string path = "/sync";
  // Token -> client id, or nullopt to refuse (required).
  std::function<std::optional<std::string>(std::string_view token)> authenticate{};
  // Largest message accepted from a client (>= 1).
  std::size_t max_message_bytes = 1 << 20;
  // Messages waiting to be written to one client before it is closed as too slow (>= 1). (The
  // sync service's own queue, sync_service_options::max_queued_messages, comes before this one:
  // it asks a slow client to resync; this one closes a client that does not read at all.)
  std::size_t max_queued_messages = 1000;
  // I/O threads (>= 1).
  std::size_t threads = 2;
  // Time allowed for the HTTP request and the WebSocket handshake.
  std::chrono::milliseconds handshake_timeout{std::chrono::seconds(10)};
  // A connection that sends nothing for this long is dropped; the server pings at half of it, and
  // a client's automatic pong counts.
  std::chrono::milliseconds idle_timeout{std::chrono::seconds(60)};
  // How long a closing connection may take to send its close frame before it is dropped.
  std::chrono::milliseconds close_timeout{std::chrono::seconds(2)};
  // Directory of static files served over plain HTTP (empty: none).
  std::filesystem::path static_root{};
};

// Counters, for monitoring and tests.
struct sync_websocket_server_stats {
  std::int64_t connections = 0;      // WebSocket connections open now
  std::int64_t accepted = 0;         // WebSocket connections opened in all
  std::int64_t refused = 0;          // upgrades refused (token missing or refused, wrong path)
  std::int64_t closed_too_big = 0;   // closed for a message over max_message_bytes
  std::int64_t closed_invalid = 0;   // closed for a binary or invalid message
  std::int64_t closed_too_slow = 0;  // closed for not reading (max_queued_messages)
  std::int64_t files_served = 0;     // static files served
};

class sync_websocket_server {
 public:
  // Binds, listens and starts the I/O threads.
  static std::unique_ptr<sync_websocket_server> start(std::shared_ptr<sync_service> service,
                                                      sync_websocket_server_options options);
  ~sync_websocket_server();
  sync_websocket_server(const sync_websocket_server&) = delete;
  sync_websocket_server& operator=(const sync_websocket_server&) = delete;

  // The port the server listens on.
  std::uint16_t port() const noexcept;

  // Closes every connection of client_id with close code 1000 and `reason` (at most 123 bytes
  // are sent). Returns how many connections were told to close. Never throws.
  std::size_t disconnect_client(std::string_view client_id, std::string_view reason) noexcept;

  sync_websocket_server_stats stats() const noexcept;

  // Stops accepting, closes every connection (1001), waits up to close_timeout for them, and
  // joins the I/O threads. Idempotent; never throws.
  void stop() noexcept;

 private:
  struct impl;
  explicit sync_websocket_server(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

}  // namespace eventsourced
