// MongoDB (target eventsourced::mongodb, libmongoc): the seeds' original store.
//
// STATUS (issue 6, in progress): this header has the parts that are done — the URI, the options
// and the name rules. The engine itself (make_mongodb_engine, the "mongodb:" scheme of
// open_engine) is not in yet; until it is, open_engine("mongodb://...") fails as an unknown
// scheme. The design it will follow:
//   - one MongoDB collection per document collection: {_id: id, version, body} (body null: a
//     tombstone); events in "_es_events" with a unique index on (stream type, stream id, stream
//     version) and one on position;
//   - a gap-safe global position: a commit that records events increments the one counter document
//     of "_es_log" inside its transaction, so such commits serialise on it (a write conflict makes
//     the later one retry) and a reader never sees a position appear below one it has seen —
//     the same cost as the PostgreSQL engine's log_head row;
//   - multi-document transactions, which MongoDB offers only on a replica set (or a sharded
//     cluster): a standalone server is refused with an error that says so;
//   - filters as $expr aggregation expressions with the library's own semantics (no implicit
//     array traversal; see src/mongodb/mongo_query.hpp).
//
// URI: any MongoDB connection string libmongoc accepts, e.g.
//   mongodb://user:password@host1:27017,host2:27017/game?replicaSet=rs0&tls=true
// The database is the URI's path (default "eventsourced"). Every option must be one libmongoc
// knows (libmongoc itself only warns about an unknown one and ignores it: a misspelt
// "replSet=rs0" would silently connect without it). serverSelectionTimeoutMS defaults to 10000:
// that long at most before a call fails with engine_unavailable_error when no server answers.
//
// \par Thread safety
// parse_mongodb_uri and validate_mongodb_collection_name are pure functions.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace eventsourced {

struct mongodb_options {
  // The connection string, as given (libmongoc parses it).
  std::string uri{};
  // The database holding the collections (from the URI's path; default "eventsourced").
  std::string database = "eventsourced";
  // How long to look for a suitable server before a call fails (serverSelectionTimeoutMS).
  std::chrono::milliseconds server_selection_timeout{std::chrono::seconds(10)};
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

}  // namespace eventsourced
