// The PostgreSQL engine (target eventsourced::postgres, libpq): the shared store for several
// application processes.
//
// Tables, in one schema (default "eventsourced", created if missing):
//   documents (collection, id, version, body jsonb)   body NULL: a tombstone
//   events    (position, id, stream_type, stream_id, stream_version, type, recorded_at,
//              data jsonb, metadata jsonb)            unique: id; (stream_type, stream_id,
//                                                     stream_version)
//   log_head  (position)                              one row: the last position handed out
// Collection names, ids, filters and values are always bound parameters, never SQL text; the
// schema name is the only identifier in SQL text, validated ([a-z_][a-z0-9_]*, at most 63 bytes)
// and quoted.
//
// Global order (invariant 3). A commit that records events takes the log_head row lock (an
// UPDATE of its one row) after its document writes and holds it until it commits; positions are
// handed out under it. PostgreSQL makes a transaction visible before it releases its locks, so
// the next appender can only take positions after the previous one is visible: readers see the
// log grow as a prefix, never a gap filled in later (a plain sequence would allow that: a
// transaction that drew a lower number can commit after one that drew a higher number). The cost:
// commits that record events are serialised for the time of one round trip (the events' INSERT is
// sent together with COMMIT) and the commit itself. Commits without events, and every read, run
// fully in parallel.
//
// wait_for() is woken by LISTEN/NOTIFY (each commit with events notifies, also across
// processes), with a poll as a fallback while the listening connection is down.
//
// Connections: a pool of up to pool_size connections, opened on demand; the fixed statements are
// prepared once per connection. A lost connection is dropped and the call retried on a fresh one
// (up to max_attempts, with a short backoff), as are a deadlock and a serialization failure, but
// only when nothing can have been committed. When the connection is lost after COMMIT was sent,
// a commit that records events asks the server (for up to outcome_timeout) whether its first
// event is in the log: if so it returns normally, if not it throws engine_unavailable_error
// (nothing was applied; this assumes the lost connection's server process cannot still commit,
// which holds when the server closed, restarted or crashed). Without events, or when the server
// does not answer in time: commit_outcome_unknown_error (never retried for you). When the server
// stays unreachable calls throw engine_unavailable_error (retryable). Error messages name host,
// port and database, never the password.
//
// URI (what open_engine() accepts; also "postgres://..."): any libpq connection URI, e.g.
//   postgresql://user:password@host:5432/dbname?sslmode=verify-full&sslrootcert=ca.pem
// Every libpq parameter (TLS: sslmode, sslrootcert, sslcert, sslkey; passfile,
// target_session_attrs, connect_timeout, ...) passes through to libpq unchanged, plus these of the
// engine's own:
//   schema        the schema of the tables (default eventsourced)
//   pool_size     most connections kept open (default 8)
//   max_attempts  attempts of a call on connection loss, deadlock or serialization failure
//                 (default 3)
// connect_timeout defaults to 10 seconds when the URI does not set it.
//
// JSON: bodies are stored as jsonb. jsonb cannot hold the character U+0000 in a string (such a
// write fails with invalid_argument_error) and orders object keys by length, then bytes; the
// engine returns objects as nlohmann::json does (sorted keys), so only filters comparing whole
// objects or sorting by them can see the difference (see postgres_query.hpp).
//
// \par Thread safety
// Safe from many threads and from many processes against one database.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include <eventsourced/engine/engine.hpp>

namespace eventsourced {

struct postgres_options {
  // A libpq connection string or URI (without the engine's own parameters).
  std::string conninfo{};
  std::string schema = "eventsourced";
  std::size_t pool_size = 8;
  int max_attempts = 3;
  // How long a call waits for a free pooled connection before engine_unavailable_error.
  std::chrono::milliseconds pool_wait_timeout{std::chrono::seconds(30)};
  // After the connection is lost during COMMIT, how long to keep asking the server whether the
  // commit was applied (see above) before giving up with commit_outcome_unknown_error.
  std::chrono::milliseconds outcome_timeout{std::chrono::seconds(10)};
  // How often wait_for() checks the log itself while the LISTEN connection is down (and at
  // least this often anyway).
  std::chrono::milliseconds poll_interval{std::chrono::seconds(1)};
};

// Splits a postgresql:// or postgres:// URI into libpq's part and the engine's parameters.
// Throws invalid_argument_error for another scheme or a malformed engine parameter (the message
// never repeats the password).
postgres_options parse_postgres_uri(std::string_view uri);

// Connects, creates the schema and tables if missing. Throws invalid_argument_error for bad
// options, engine_unavailable_error when the server cannot be reached, engine_error when it
// refuses (authentication, permissions).
std::unique_ptr<engine> make_postgres_engine(const postgres_options& options);

// Makes open_engine() accept postgresql:// and postgres:// URIs. Called for you by the inline
// variable below in every program that includes this header; idempotent.
void register_postgres_engine_scheme();

namespace detail {
inline const bool postgres_scheme_registered = (register_postgres_engine_scheme(), true);
}  // namespace detail

}  // namespace eventsourced
