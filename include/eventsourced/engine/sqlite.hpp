// The SQLite engine: the embedded default.
//
// One database file holds documents (one table, the collection name a column, never part of SQL
// text), tombstones and the event log. The file is opened in WAL mode so readers never block the
// writer. In one process, commits are serialised on one writer connection; reads use a small pool
// of reader connections. Several processes may share one file: each commit is a
// BEGIN IMMEDIATE transaction, and a process waits up to busy_timeout for another's lock before
// the commit fails with engine_unavailable_error (retryable). Prepared statements are cached per
// connection.
//
// URI forms accepted by open() / parse_sqlite_uri():
//   sqlite:path/to/file.db            sqlite:///absolute/path.db         sqlite::memory:
// with optional query parameters, e.g. sqlite:game.db?synchronous=full&busy_timeout_ms=10000
//   synchronous      off | normal | full   (default normal; WAL makes normal crash-safe,
//                                           full also survives power loss of the last commits)
//   busy_timeout_ms  how long to wait for another process's lock (default 5000)
//   max_readers      size of the reader connection pool (default 4)
//
// Filters and sorts run as SQL over SQLite's JSON functions, with the semantics of query.hpp, but
// for one corner: SQLite's JSON functions end a string at U+0000, so a filter or sort sees a string
// holding that character as its part before it ("a\u0000b" equals "a"). Reads return it exactly.
//
// \par Thread safety
// Safe from many threads and from several processes on one file.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include <eventsourced/engine/engine.hpp>

namespace eventsourced {

enum class sqlite_synchronous { off, normal, full };

struct sqlite_options {
  // File path, or ":memory:" for a private in-memory database (one connection, no file).
  std::string path{};
  sqlite_synchronous synchronous = sqlite_synchronous::normal;
  // How long a commit waits for another process holding the write lock.
  std::chrono::milliseconds busy_timeout{5000};
  // Reader connections kept open for concurrent reads (ignored for ":memory:").
  std::size_t max_readers = 4;
  // How often wait_for() looks for commits made by other processes.
  std::chrono::milliseconds poll_interval{20};
};

// Throws invalid_argument_error for a URI that is not sqlite:..., or an unknown or malformed
// query parameter.
sqlite_options parse_sqlite_uri(std::string_view uri);

// Opens (creating if needed) the database and its schema. Throws engine_error when the file
// cannot be opened or is not a database, engine_unavailable_error when it stays locked.
std::unique_ptr<engine> make_sqlite_engine(const sqlite_options& options);

}  // namespace eventsourced
