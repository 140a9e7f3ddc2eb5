// MongoDB (target eventsourced::mongodb, libmongoc): the seeds' original store, shared by many
// processes.
//
// STATUS: complete as code, but NEVER RUN AGAINST A SERVER by this project's own test suite: no
// MongoDB server can be installed on the machines the project is built on. What needs no server
// (BSON <-> JSON, filter translation, URI and name checks, the error when no server answers) is
// tested on every run; the engine conformance suite runs against it only when
// EVENTSOURCED_TEST_MONGODB_URI names a replica set (see the README), and is reported skipped
// otherwise. Treat this engine as untested until you have run that suite against your server.
//
// Stored layout, in the URI's database:
//   - one MongoDB collection per document collection, same name: {_id: id, version, body}
//     (body null: a tombstone, which keeps the version so a re-creation continues after it);
//   - "_es:events": {_id: position, id, st, si, sv, type, ts, data, metadata} with unique indexes
//     on the event id and on (stream type, stream id, stream version);
//   - "_es:log": one document {_id: "head", position}, the last position handed out.
//   The two bookkeeping names hold ':', which collection names of the library never do.
// Every commit is one multi-document transaction (read concern snapshot, write concern
// majority), which MongoDB offers only on a replica set or a sharded cluster: a standalone server
// is refused with an error that says so (a one-member replica set will do). MongoDB 5.0 or later
// ($getField in filters).
//
// Version checks. MongoDB transactions are snapshot isolated, first writer wins: a transaction
// writing a document that another one changed after its snapshot fails with a write conflict.
// Every document a commit checks is therefore written by it (a version check rewrites the
// document with a fresh nonce), so nothing can change it between the check and the commit; the
// losing commit is retried from the start (up to transaction_timeout), and reports conflict_error
// only when it reads a different version.
//
// Global order (invariant 3). A commit that records events increments the "_es:log" document in
// its transaction and takes its positions from it, so commits with events are serialised on that
// one document: the later of two concurrent ones conflicts and is retried after the earlier one
// is visible. Readers therefore see the log grow as a prefix, never a gap filled in later. The
// cost: under concurrency, commits with events retry (optimistically) instead of waiting on a
// lock as in the PostgreSQL engine — throughput of event-recording commits is bounded by one
// transaction at a time, plus retries. Commits without events, and reads, run in parallel.
//
// Reads: get and find read the primary (read concern of the URI, default local); a find that
// returns many batches is not one snapshot across batches. read_stream() repeats a read that a
// concurrent truncate_stream() split. wait_for() is woken by a change stream on "_es:log" (also
// for commits of other processes), and polls (poll_interval, 100 ms while the change stream is
// down) as a fallback.
//
// Errors: no server within serverSelectionTimeoutMS → engine_unavailable_error; transient
// failures (write conflicts, a failover, a connection lost before the commit) are retried until
// transaction_timeout, then engine_unavailable_error; a commit whose outcome stays unknown after
// retrying commitTransaction → commit_outcome_unknown_error.
//
// URI: any MongoDB connection string libmongoc accepts, e.g.
//   mongodb://user:password@host1:27017,host2:27017/game?replicaSet=rs0&tls=true
// The database is the URI's path (default "eventsourced"). Every option must be one libmongoc
// knows (libmongoc itself only warns about an unknown one and ignores it: a misspelt
// "replSet=rs0" would silently connect without it). serverSelectionTimeoutMS defaults to 10000:
// that long at most before a call fails with engine_unavailable_error when no server answers.
//
// \par Thread safety
// The engine is safe from many threads and from many processes against one database.
// parse_mongodb_uri and validate_mongodb_collection_name are pure functions.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <eventsourced/engine/engine.hpp>

namespace eventsourced {

struct mongodb_options {
  // The connection string, as given (libmongoc parses it).
  std::string uri{};
  // The database holding the collections (from the URI's path; default "eventsourced").
  std::string database = "eventsourced";
  // How long to look for a suitable server before a call fails (serverSelectionTimeoutMS).
  std::chrono::milliseconds server_selection_timeout{std::chrono::seconds(10)};
  // How long a commit (or truncate_stream) keeps retrying transient failures — write conflicts
  // with concurrent commits above all — before engine_unavailable_error.
  std::chrono::milliseconds transaction_timeout{std::chrono::seconds(120)};
  // How often wait_for() reads the log head itself (at least this often even while the change
  // stream is up).
  std::chrono::milliseconds poll_interval{std::chrono::seconds(1)};
};

// Checks a mongodb:// or mongodb+srv:// URI and reads the options above from it. Throws
// invalid_argument_error for another scheme, a URI libmongoc refuses, an unknown or malformed
// option, or an invalid database name; the message never repeats the password.
mongodb_options parse_mongodb_uri(std::string_view uri);

// Throws invalid_argument_error unless `name` is a collection name the library accepts
// (validate_collection_name) that MongoDB also accepts: not starting with "system." (MongoDB's
// own collections). '$' and NUL, which MongoDB refuses, are already refused by
// validate_collection_name.
void validate_mongodb_collection_name(std::string_view name);

// MongoDB stores no document nested more than 100 levels deep, counting the document the engine
// wraps around a body or an event's data: bodies, event data and metadata may be nested at most
// this deep on this engine (the other engines take kMaxJsonDepth). Deeper: json_depth_error.
inline constexpr std::size_t kMongodbMaxJsonDepth = 99;

// Throws json_depth_error for a put body, event data or metadata in `request` (or in the appends
// its derived_appends returned) nested deeper than kMongodbMaxJsonDepth.
void check_mongodb_depth(const commit_request& request,
                         const std::vector<stream_append>& derived = {});

// Connects, checks the server can run transactions, creates the event collections and their
// indexes if missing. Throws invalid_argument_error for bad options, engine_unavailable_error
// when no server answers, engine_error for a standalone server or a refusal (authentication,
// permissions).
std::unique_ptr<engine> make_mongodb_engine(const mongodb_options& options);

// Makes open_engine() accept mongodb:// and mongodb+srv:// URIs. Called for you by the inline
// variable below in every program that includes this header; idempotent.
void register_mongodb_engine_scheme();

namespace detail {
inline const bool mongodb_scheme_registered = (register_mongodb_engine_scheme(), true);
}  // namespace detail

}  // namespace eventsourced
