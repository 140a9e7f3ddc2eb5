// How eventsourced::redis connects to a Redis server: address, credentials, database, timeouts
// and the connection pool. Shared by redis_streams_bus, redis_pubsub_bus and redis_cache.
//
//   eventsourced::redis_connection_options o{.uri = "redis://app:secret@redis1:6379/2"};
//
// URI: redis://[user[:password]@]host[:port][/db]
//   - user and password: Redis 6 ACL credentials (AUTH user password); a password alone
//     (redis://:secret@host) authenticates the "default" user (AUTH password). Both may be
//     %-encoded (%40 for '@', %3A for ':').
//   - host: a name, an IPv4 address or an IPv6 address in brackets ([::1]); port: 6379 if absent.
//   - db: the database index (SELECT db); 0 if absent.
//   rediss:// (TLS) is refused with invalid_argument_error: the hiredis version this library is
//   built with (Debian 12's 0.14) has no TLS support. Query strings are refused too.
//
// Secrets: passwords never appear in exception messages; errors name the server as
// "redis host:port/db".
//
// Connections. Commands borrow a connection from a small pool (connections are made on demand;
// up to pool_size idle ones are kept). Blocking reads (a streams subscription's XREADGROUP BLOCK,
// a Pub/Sub subscriber) use connections of their own. A connection found lost is dropped and a
// new one is made on the next use: there is no background reconnection, and a command that fails
// because the server is unreachable throws engine_unavailable_error (retryable) at once.
//
// \par Thread safety
// Plain values: copy them freely; concurrent reads are safe. parse_redis_uri is a pure function.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

namespace eventsourced {

struct redis_connection_options {
  std::string uri = "redis://127.0.0.1:6379";
  // Longest wait for the TCP connection (and AUTH/SELECT) to one server (> 0).
  std::chrono::milliseconds connect_timeout{2000};
  // Longest wait for the answer to one command (> 0); a command without an answer in time throws
  // engine_unavailable_error and its connection is dropped (the command may have been applied).
  std::chrono::milliseconds command_timeout{5000};
  // Idle connections kept for reuse (>= 1); more are made when more threads need one at once.
  std::size_t pool_size = 4;
};

// A parsed redis:// URI.
struct redis_endpoint {
  std::string host;
  int port = 6379;
  std::string user;      // empty: AUTH with the password alone (when there is one)
  std::string password;  // empty: no AUTH
  int db = 0;

  // "redis host:port/db": how messages name the server (never with credentials).
  std::string describe() const;
};

// Parses uri (format above). Throws invalid_argument_error for a malformed URI, a scheme other
// than redis:// (rediss:// included: no TLS), a bad port or database index, a query string. The
// message never contains the password.
redis_endpoint parse_redis_uri(std::string_view uri);

}  // namespace eventsourced
