#include <eventsourced/engine/sqlite.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <shared_mutex>
#include <type_traits>
#include <utility>
#include <variant>

#include <eventsourced/error.hpp>

#include "engine/body_size.hpp"
#include "engine/sqlite_connection.hpp"
#include "engine/sqlite_query.hpp"
#include "engine/stored_json.hpp"

namespace eventsourced {
namespace {

using sqlite_detail::connection;
using sqlite_detail::operation_name;
using sqlite_detail::reader_pool;
using sqlite_detail::statement;
using sqlite_detail::write_transaction;

// PRAGMA user_version of a database this code created. A later layout gets a new number and a
// migration; a file with a number above this one was written by a newer library.
constexpr std::int64_t kSchemaVersion = 1;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS documents (
  collection TEXT NOT NULL,
  id TEXT NOT NULL,
  version INTEGER NOT NULL,
  body TEXT,  -- NULL: a tombstone, keeping the version a re-created document continues from
  PRIMARY KEY (collection, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
  -- The rowid: max + 1 on insert. Only truncate_stream deletes events, never a stream's latest,
  -- so the log's last event stays and a position is never reused; no AUTOINCREMENT, whose
  -- sqlite_sequence row would add a page write to every commit.
  position INTEGER PRIMARY KEY,
  event_id TEXT NOT NULL UNIQUE,
  stream_type TEXT NOT NULL,
  stream_id TEXT NOT NULL,
  stream_version INTEGER NOT NULL,
  type TEXT NOT NULL,
  timestamp_us INTEGER NOT NULL,
  data TEXT NOT NULL,
  metadata TEXT NOT NULL,
  UNIQUE (stream_type, stream_id, stream_version)
);
PRAGMA user_version = 1;
)sql";

constexpr const char* kEventColumns =
    "SELECT position, event_id, stream_type, stream_id, stream_version, type, timestamp_us, data, "
    "metadata FROM events ";

std::string in_quotes(std::string_view s) {
  return "'" + std::string(s) + "'";
}

// Buffers kept for reuse give their memory back when a value larger than this went through them.
constexpr std::size_t kMaxKeptBufferBytes = std::size_t{1} << 20;
// How many events of a read_stream are read on the idle writer connection (see read_stream).
constexpr std::size_t kWriterReadEvents = 64;

// Writes value's JSON text into out. `what` is a string, or a function building it, called only
// on failure.
template <typename What>
void dump_for_storage(const json& value, std::string& out, const What& what) {
  try {
    out = value.dump();
  } catch (const json::exception& e) {
    std::string name;
    if constexpr (std::is_invocable_v<const What&>) {
      name = what();
    } else {
      name = what;
    }
    throw serialization_error("eventsourced: sqlite: " + name +
                              " cannot be written as JSON: " + e.what());
  }
}

std::int64_t clamp_to_int64(std::size_t n) {
  constexpr auto kMax = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
  return static_cast<std::int64_t>(std::min(n, kMax));
}

// The columns of a kEventColumns row other than data and metadata.
recorded_event read_event_fields(const statement& row) {
  recorded_event e;
  e.position = row.column_int64(0);
  e.id = std::string(row.column_text(1));
  e.stream.type = std::string(row.column_text(2));
  e.stream.id = std::string(row.column_text(3));
  e.stream_version = row.column_int64(4);
  e.type = std::string(row.column_text(5));
  e.timestamp = std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::microseconds(row.column_int64(6))));
  return e;
}

// Parses an event's stored data and metadata text into e.
void parse_event_json(recorded_event& e, std::string_view data, std::string_view metadata) {
  auto what = [&] {
    return "event " + in_quotes(e.id) + " at position " + std::to_string(e.position);
  };
  e.data = engine_detail::read_event_json(data, [&] { return "sqlite: the data of " + what(); });
  e.metadata =
      engine_detail::read_event_json(metadata, [&] { return "sqlite: the metadata of " + what(); });
}

// One row of kEventColumns copied out of SQLite, its JSON not parsed yet (parsed after the
// connection's lock is released).
struct unparsed_event {
  recorded_event event;
  std::string data;
  std::string metadata;
};

unparsed_event copy_event(const statement& row) {
  return unparsed_event{read_event_fields(row), std::string(row.column_text(7)),
                        std::string(row.column_text(8))};
}

recorded_event parse_event(unparsed_event u) {
  parse_event_json(u.event, u.data, u.metadata);
  return std::move(u.event);
}

// Reads one row of kEventColumns.
recorded_event read_event(const statement& row) {
  recorded_event e = read_event_fields(row);
  parse_event_json(e, row.column_text(7), row.column_text(8));
  return e;
}

void ensure_schema(connection& conn, const std::string& path) {
  const std::string operation = "create the schema of " + in_quotes(path);
  auto user_version = [&] {
    statement s(conn, "PRAGMA user_version", operation);
    s.step();
    return s.column_int64(0);
  };
  auto check_supported = [&](std::int64_t version) {
    if (version > kSchemaVersion) {
      throw engine_error("eventsourced: sqlite: " + in_quotes(path) + " has schema version " +
                         std::to_string(version) + "; this library reads up to version " +
                         std::to_string(kSchemaVersion) + " (a newer eventsourced wrote it)");
    }
  };
  const std::int64_t seen = user_version();
  check_supported(seen);
  if (seen == kSchemaVersion) return;
  // Another process may be creating it at the same moment: look again under the write lock.
  write_transaction tx(conn, operation);
  const std::int64_t locked = user_version();
  check_supported(locked);
  if (locked == 0) conn.exec(kSchema, operation);
  tx.commit();
}

class sqlite_engine final : public engine {
 public:
  explicit sqlite_engine(const sqlite_options& options)
      : options_(options), writer_(std::make_unique<connection>(options, /*read_only=*/false)) {
    ensure_schema(*writer_, options.path);
    if (options.path != ":memory:") {
      readers_ = std::make_unique<reader_pool>(options, options.max_readers);
    }
    last_position_ = max_position(*writer_);
  }

  ~sqlite_engine() override { close(); }

  std::optional<stored_document> get(std::string_view collection, std::string_view id) override {
    validate_collection_name(collection);
    validate_id(id);
    const auto alive = enter();
    // Every commit makes a reader drop its page cache and read the row's pages again from the
    // WAL file; the writer connection's cache stays current with its own commits. So when no
    // commit is in progress, read on the writer (never waiting for it: that is what the readers
    // are for). Outside a commit it is in autocommit mode and sees the latest committed state, as
    // a reader starting now would.
    if (readers_) {
      std::unique_lock writer(writer_mutex_, std::try_to_lock);
      if (writer.owns_lock()) return get_on(*writer_, collection, id, &writer);
    }
    return with_reader([&](connection& conn) { return get_on(conn, collection, id); });
  }

  // A reader's WAL snapshot may predate a commit in progress; the writer connection, taken
  // under writer_mutex_, reads after it. Used for retries, so a writer that lost a race does not
  // keep re-reading the state it lost on while the winner commits again.
  std::optional<stored_document> get_for_update(std::string_view collection,
                                                std::string_view id) override {
    validate_collection_name(collection);
    validate_id(id);
    const auto alive = enter();
    std::unique_lock writer(writer_mutex_);
    return get_on(*writer_, collection, id, &writer);
  }

  std::vector<stored_document> find(std::string_view collection, const query& q) override {
    validate_collection_name(collection);
    const auto alive = enter();
    const std::string operation = "find in collection " + in_quotes(collection);
    return engine_detail::find_readable(q, [&](const query& run) {
      // SQLite's JSON functions fail the whole statement on a row that is not JSON. Such a row
      // is not written by the library: the statement runs as it is, and only after that error
      // once more with every row's text checked first (json_valid), which costs a parse per row.
      try {
        return find_on_reader(collection, run, sqlite_detail::text_check::none, operation);
      } catch (const serialization_error&) {  // SQLite's "malformed JSON" (throw_sqlite_error)
        return find_on_reader(collection, run, sqlite_detail::text_check::json_valid, operation);
      }
    });
  }

  commit_result commit(const commit_request& request) override {
    validate_commit_request(request);
    const auto alive = enter();
    commit_result result;
    result.versions.reserve(request.writes.size());
    {
      // Invariant 3 (one ordered log) rests on this lock and BEGIN IMMEDIATE: commits are
      // serialised in-process by writer_mutex_ and across processes by SQLite's write lock,
      // taken before anything is read. So the rowid (max + 1) hands out positions in commit order,
      // and a reader's snapshot (WAL) always holds a prefix of the log: a reader that has
      // seen position P can never later see a new event below P.
      std::lock_guard lock(writer_mutex_);
      write_transaction tx(*writer_, "commit");
      for (const document_write& w : request.writes) {
        result.versions.push_back(apply_write(w, request.version_field, request.max_body_bytes));
      }
      std::vector<stream_append> derived;
      if (request.derived_appends) {
        derived = request.derived_appends(result.versions);
        validate_derived_appends(request, derived);
      }
      const auto now =
          std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
      std::size_t event_count = 0;
      for (const std::vector<stream_append>* appends :
           {&request.appends, &std::as_const(derived)}) {
        for (const stream_append& a : *appends) event_count += a.events.size();
      }
      result.events.reserve(event_count);
      for (const stream_append& a : request.appends) append(a, now, result.events);
      for (stream_append& a : derived) append(a, now, result.events);
      tx.commit();
    }
    if (!result.events.empty()) {
      {
        std::lock_guard lock(notify_mutex_);
        last_position_ = std::max(last_position_, result.events.back().position);
      }
      committed_.notify_all();
    }
    return result;
  }

  // Like get(): the writer connection's page cache stays current with its commits, a reader's is
  // dropped by every commit. So the first kWriterReadEvents events are read on the writer when
  // no commit is in progress (copied out under its lock, parsed after), the rest on a reader.
  // Events never change and a reader starting later sees at least what the writer saw, so the
  // two parts join up exactly — unless a truncate_stream in between deleted events the second
  // part should have started with: then the whole read is done again on the reader, whose one
  // statement sees one state. Short reads are the common case: an aggregate's tail after a kept
  // state or a snapshot.
  std::vector<recorded_event> read_stream(const stream_ref& stream, std::int64_t from_version,
                                          std::size_t max) override {
    validate_collection_name(stream.type, "stream type");
    validate_id(stream.id, "stream id");
    const auto alive = enter();
    const auto operation = [&] {
      return "read stream " + in_quotes(stream.type) + " id " + in_quotes(stream.id);
    };
    std::vector<recorded_event> out;
    const std::int64_t requested_from = from_version;
    const std::size_t requested_max = max;
    if (readers_ && max > 0) {
      std::unique_lock writer(writer_mutex_, std::try_to_lock);
      if (writer.owns_lock()) {
        const std::size_t first = std::min(max, kWriterReadEvents);
        std::vector<unparsed_event> rows;
        read_stream_on(*writer_, stream, from_version, first, operation,
                       [&](const statement& row) { rows.push_back(copy_event(row)); });
        writer.unlock();
        out.reserve(rows.size());
        for (unparsed_event& row : rows) out.push_back(parse_event(std::move(row)));
        if (rows.size() < first || out.size() == max) return out;
        from_version = out.back().stream_version + 1;
        max -= out.size();
      }
    }
    const std::size_t joined = out.size();
    with_reader([&](connection& conn) {
      read_stream_on(conn, stream, from_version, max, operation,
                     [&](const statement& row) { out.push_back(read_event(row)); });
      if (joined > 0 && out.size() > joined && out[joined].stream_version != from_version) {
        out.clear();  // truncated in between (see above)
        read_stream_on(conn, stream, requested_from, requested_max, operation,
                       [&](const statement& row) { out.push_back(read_event(row)); });
      }
    });
    return out;
  }

  std::vector<recorded_event> read_all(std::int64_t after_position, std::size_t max) override {
    const auto alive = enter();
    return with_reader([&](connection& conn) {
      statement s(conn,
                  std::string(kEventColumns) + "WHERE position > ?1 ORDER BY position LIMIT ?2",
                  "read the event log");
      s.bind(1, after_position);
      s.bind(2, clamp_to_int64(max));
      std::vector<recorded_event> out;
      while (s.step()) out.push_back(read_event(s));
      return out;
    });
  }

  // One DELETE under the write lock; the (stream_type, stream_id, stream_version) index finds
  // both the stream's latest version and the rows to delete.
  std::size_t truncate_stream(const stream_ref& stream, std::int64_t before_version) override {
    validate_truncate_stream(stream, before_version);
    const auto alive = enter();
    const auto operation = [&] {
      return "truncate stream " + in_quotes(stream.type) + " id " + in_quotes(stream.id);
    };
    static const std::string kDelete =
        "DELETE FROM events WHERE stream_type = ?1 AND stream_id = ?2 AND stream_version < "
        "min(?3, (SELECT max(stream_version) FROM events WHERE stream_type = ?1 AND "
        "stream_id = ?2))";
    std::lock_guard lock(writer_mutex_);
    write_transaction tx(*writer_, operation);
    {
      statement s(*writer_, kDelete, operation);
      s.bind(1, stream.type);
      s.bind(2, stream.id);
      s.bind(3, before_version);
      s.step();
    }
    const auto deleted = static_cast<std::size_t>(sqlite3_changes64(writer_->handle()));
    tx.commit();
    return deleted;
  }

  bool wait_for(std::int64_t position, std::chrono::milliseconds timeout) override {
    const auto deadline =
        std::chrono::steady_clock::now() + std::max(timeout, std::chrono::milliseconds::zero());
    while (true) {
      // The database is the truth (it sees other processes' commits); the notification only
      // shortens the wait for this object's own.
      {
        const auto alive = enter();
        if (with_reader([&](connection& conn) { return max_position(conn); }) > position) {
          return true;
        }
      }
      const auto now = std::chrono::steady_clock::now();
      if (now >= deadline) return false;
      std::unique_lock lock(notify_mutex_);
      committed_.wait_until(lock, std::min(deadline, now + options_.poll_interval),
                            [&] { return closing_ || last_position_ > position; });
      if (closing_) throw store_closed_error("eventsourced: sqlite engine is closed");
      if (last_position_ > position) return true;
    }
  }

  void close() override {
    {
      std::lock_guard lock(notify_mutex_);
      closing_ = true;
    }
    committed_.notify_all();
    // Waits for calls in progress; later ones see closing_ and throw.
    std::unique_lock lock(lifetime_mutex_);
    if (readers_) readers_->close();
    std::lock_guard writer_lock(writer_mutex_);
    writer_.reset();
  }

 private:
  // Holds lifetime_mutex_ shared for one call, so close() cannot free a connection in use.
  // Checking closing_ before locking too keeps a stream of new calls from starving close().
  std::shared_lock<std::shared_mutex> enter() {
    if (closing_) throw store_closed_error("eventsourced: sqlite engine is closed");
    std::shared_lock lock(lifetime_mutex_);
    if (closing_) throw store_closed_error("eventsourced: sqlite engine is closed");
    return lock;
  }

  engine_detail::found_rows find_on_reader(std::string_view collection, const query& q,
                                           sqlite_detail::text_check check,
                                           const std::string& operation) {
    const sqlite_detail::sql_statement sql = sqlite_detail::translate_find(collection, q, check);
    return with_reader([&](connection& conn) {
      statement s(conn, sql.text, operation);
      for (std::size_t i = 0; i < sql.params.size(); ++i) {
        std::visit([&](const auto& value) { s.bind(static_cast<int>(i + 1), value); },
                   sql.params[i]);
      }
      engine_detail::found_rows rows(collection);
      while (s.step()) rows.add(std::string(s.column_text(0)), s.column_int64(1), s.column_text(2));
      return rows;
    });
  }

  // Runs use(connection) on a reader connection, or for ":memory:" (one connection holds the
  // whole database) on the writer under its mutex.
  template <typename F>
  std::invoke_result_t<F, connection&> with_reader(F&& use) {
    if (!readers_) {
      std::lock_guard lock(writer_mutex_);
      return use(*writer_);
    }
    const auto lease = readers_->acquire();
    return use(*lease);
  }

  // Reads a live document on conn. `held`, when given, is the lock that guards conn: it is
  // released once the row is copied out, so the body is parsed without holding it.
  static std::optional<stored_document> get_on(connection& conn, std::string_view collection,
                                               std::string_view id,
                                               std::unique_lock<std::mutex>* held = nullptr) {
    // Message strings are built only if an error is thrown.
    const auto what = [&] {
      return "collection " + in_quotes(collection) + " id " + in_quotes(id);
    };
    const auto operation = [&] { return "get from " + what(); };
    static const std::string kSelect =
        "SELECT version, body FROM documents WHERE collection = ?1 AND id = ?2 AND "
        "body IS NOT NULL";
    // The row's text, copied out to parse it after unlocking (kept per thread: no allocation).
    thread_local std::string text;
    std::int64_t version = 0;
    {
      statement s(conn, kSelect, operation);
      s.bind(1, collection);
      s.bind(2, id);
      if (!s.step()) return std::nullopt;
      version = s.column_int64(0);
      if (held == nullptr) {
        return stored_document{std::string(id), version,
                               engine_detail::read_body(collection, id, version, s.column_text(1))};
      }
      text.assign(s.column_text(1));
    }  // the statement is reset: conn is no longer used
    held->unlock();
    stored_document doc{std::string(id), version,
                        engine_detail::read_body(collection, id, version, text)};
    if (text.capacity() > kMaxKeptBufferBytes) std::string().swap(text);
    return doc;
  }

  template <typename Operation, typename Row>
  static void read_stream_on(connection& conn, const stream_ref& stream, std::int64_t from_version,
                             std::size_t max, const Operation& operation, Row&& row) {
    static const std::string kSelect =
        std::string(kEventColumns) +
        "WHERE stream_type = ?1 AND stream_id = ?2 AND stream_version >= ?3 "
        "ORDER BY stream_version LIMIT ?4";
    statement s(conn, kSelect, operation);
    s.bind(1, stream.type);
    s.bind(2, stream.id);
    s.bind(3, from_version);
    s.bind(4, clamp_to_int64(max));
    while (s.step()) row(s);
  }

  static std::int64_t max_position(connection& conn) {
    statement s(conn, "SELECT coalesce(max(position), 0) FROM events", "read the log position");
    s.step();
    return s.column_int64(0);
  }

  // The version a (collection, id) row holds, tombstone or not (0: no row), and the live
  // document's version (0 when absent or deleted), read inside the commit transaction.
  struct row_versions {
    std::int64_t stored = 0;
    std::int64_t live = 0;
  };
  row_versions read_versions(const document_write& w, const operation_name& operation) {
    static const std::string kSelect =
        "SELECT version, body IS NULL FROM documents WHERE collection = ?1 AND id = ?2";
    statement s(*writer_, kSelect, operation);
    s.bind(1, w.collection);
    s.bind(2, w.id);
    row_versions v;
    if (s.step()) {
      v.stored = s.column_int64(0);
      v.live = s.column_int64(1) != 0 ? 0 : v.stored;
    }
    return v;
  }

  // Throws the conflict of `w` unless the live document's version is the expected one.
  void require_expected_version(const document_write& w, const operation_name& operation) {
    const std::int64_t live = read_versions(w, operation).live;
    if (live != w.expected_version) {
      throw conflict_error(conflict_target::document, w.collection, w.id, w.expected_version, live);
    }
  }

  // Writes the JSON text stored for a put at `version` into body_text_: its body with the version
  // field set to it.
  template <typename What>
  void write_body_text(const document_write& w, std::int64_t version,
                       const std::string& version_field, const What& what) {
    const auto stamped = version_field.empty() ? w.body.end() : w.body.find(version_field);
    if (version_field.empty() || (stamped != w.body.end() && *stamped == version)) {
      dump_for_storage(w.body, body_text_, what);  // no copy on the common path
      return;
    }
    json body = w.body;
    body[version_field] = version;
    dump_for_storage(body, body_text_, what);
  }

  // Checks and applies one write inside the commit transaction; returns its resulting version.
  std::int64_t apply_write(const document_write& w, const std::string& version_field,
                           std::size_t max_body_bytes) {
    // Message strings are built only if an error is thrown.
    const auto what = [&] {
      return "collection " + in_quotes(w.collection) + " id " + in_quotes(w.id);
    };
    const auto operation_text = [&] { return "commit a write to " + what(); };
    const operation_name operation(operation_text);
    const auto body_what = [&] { return "the body of " + what(); };

    if (w.op == write_op::check || w.expected_version == 0) {
      const row_versions v = read_versions(w, operation);
      if (v.live != w.expected_version) {
        throw conflict_error(conflict_target::document, w.collection, w.id, w.expected_version,
                             v.live);
      }
      if (w.op == write_op::check) return w.expected_version;
      // A creation: the row is absent or a tombstone, whose version the new document continues.
      const std::int64_t version = v.stored + 1;
      static const std::string kUpsert =
          "INSERT INTO documents (collection, id, version, body) VALUES (?1, ?2, ?3, ?4) "
          "ON CONFLICT (collection, id) DO UPDATE SET version = excluded.version, "
          "body = excluded.body";
      statement upsert(*writer_, kUpsert, operation);
      upsert.bind(1, w.collection);
      upsert.bind(2, w.id);
      upsert.bind(3, version);
      if (w.op == write_op::put) {
        write_body_text(w, version, version_field, body_what);
        engine_detail::check_body_size(w, body_text_.size(), max_body_bytes);
        upsert.bind_static(4, body_text_);
      }  // erase of a document that must not exist: ?4 stays NULL, the tombstone
      upsert.step();
      return version;
    }

    // A replacement or deletion of a live document: its version is known, so the version check
    // is the UPDATE's own condition, and the row is read only to report a conflict.
    const std::int64_t version = w.expected_version + 1;
    if (w.op == write_op::put) {
      // A conflict is reported before a body that cannot be stored, as if checked first.
      try {
        write_body_text(w, version, version_field, body_what);
      } catch (const serialization_error&) {
        require_expected_version(w, operation);
        throw;
      }
      if (max_body_bytes != 0 && body_text_.size() > max_body_bytes) {
        require_expected_version(w, operation);
        engine_detail::check_body_size(w, body_text_.size(), max_body_bytes);
      }
    }
    static const std::string kUpdate =
        "UPDATE documents SET version = ?3, body = ?4 "
        "WHERE collection = ?1 AND id = ?2 AND version = ?5 AND body IS NOT NULL";
    {
      statement update(*writer_, kUpdate, operation);
      update.bind(1, w.collection);
      update.bind(2, w.id);
      update.bind(3, version);
      if (w.op == write_op::put) update.bind_static(4, body_text_);  // erase: ?4 NULL, a tombstone
      update.bind(5, w.expected_version);
      update.step();
    }
    if (sqlite3_changes(writer_->handle()) == 1) return version;
    const std::int64_t live = read_versions(w, operation).live;  // never the expected one here
    throw conflict_error(conflict_target::document, w.collection, w.id, w.expected_version, live);
  }

  // Checks one append's expected version and records its events inside the commit transaction.
  // A non-const append (derived_appends' result, the engine's own) gives its events' contents to
  // the recorded events instead of copying them.
  template <typename Append>
  void append(Append& a, std::chrono::sys_time<std::chrono::microseconds> now,
              std::vector<recorded_event>& recorded) {
    // Message strings are built only if an error is thrown.
    const auto what = [&] {
      return "stream " + in_quotes(a.stream.type) + " id " + in_quotes(a.stream.id);
    };
    const auto operation_text = [&] { return "commit an append to " + what(); };
    const operation_name operation(operation_text);
    std::int64_t current = 0;
    {
      // Served by the (stream_type, stream_id, stream_version) unique index.
      static const std::string kSelect =
          "SELECT coalesce(max(stream_version), 0) FROM events WHERE stream_type = ?1 AND "
          "stream_id = ?2";
      statement s(*writer_, kSelect, operation);
      s.bind(1, a.stream.type);
      s.bind(2, a.stream.id);
      s.step();
      current = s.column_int64(0);
    }
    if (a.expected_version && *a.expected_version != current) {
      throw conflict_error(conflict_target::stream, a.stream.type, a.stream.id, *a.expected_version,
                           current);
    }
    static const std::string kInsert =
        "INSERT INTO events (event_id, stream_type, stream_id, stream_version, "
        "type, timestamp_us, data, metadata) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
    const auto timestamp_us = static_cast<std::int64_t>(now.time_since_epoch().count());
    for (auto& e : a.events) {
      statement insert(*writer_, kInsert, operation);
      const auto event_what = [&] { return "event " + in_quotes(e.id) + " of " + what(); };
      insert.bind(1, e.id);
      insert.bind(2, a.stream.type);
      insert.bind(3, a.stream.id);
      insert.bind(4, ++current);
      insert.bind(5, e.type);
      insert.bind(6, timestamp_us);
      dump_for_storage(e.data, event_text_, [&] { return "the data of " + event_what(); });
      insert.bind_static(7, event_text_);
      dump_for_storage(e.metadata, metadata_text_,
                       [&] { return "the metadata of " + event_what(); });
      insert.bind_static(8, metadata_text_);
      const int rc = insert.step_code();
      if (rc == SQLITE_CONSTRAINT_UNIQUE &&
          std::string_view(sqlite3_errmsg(writer_->handle())).find("events.event_id") !=
              std::string_view::npos) {
        throw invalid_argument_error("event id " + in_quotes(e.id) + " is already in the log");
      }
      if (rc != SQLITE_DONE) insert.fail(rc);
      const std::int64_t position = sqlite3_last_insert_rowid(writer_->handle());
      if constexpr (std::is_const_v<Append>) {
        recorded.push_back(
            recorded_event{e.id, e.type, a.stream, current, position, now, e.data, e.metadata});
      } else {
        recorded.push_back(recorded_event{std::move(e.id), std::move(e.type), a.stream, current,
                                          position, now, std::move(e.data), std::move(e.metadata)});
      }
    }
    for (std::string* text : {&event_text_, &metadata_text_}) {
      if (text->capacity() > kMaxKeptBufferBytes) std::string().swap(*text);
    }
  }

  const sqlite_options options_;
  std::shared_mutex lifetime_mutex_;  // shared by every call, exclusive by close()
  std::atomic<bool> closing_{false};  // set under notify_mutex_, read anywhere

  std::mutex writer_mutex_;
  std::unique_ptr<connection> writer_;  // GUARDED_BY(writer_mutex_)
  // GUARDED_BY(writer_mutex_): the JSON text of the put being written, bound without a copy.
  std::string body_text_;
  // GUARDED_BY(writer_mutex_): the JSON text of the event data and metadata being appended.
  std::string event_text_;
  std::string metadata_text_;
  std::unique_ptr<reader_pool> readers_;  // null for ":memory:"; set once, internally locked

  std::mutex notify_mutex_;
  std::condition_variable committed_;  // notified after each commit with events, and on close
  std::int64_t last_position_ = 0;     // GUARDED_BY(notify_mutex_): highest committed here
};

}  // namespace

std::unique_ptr<engine> make_sqlite_engine(const sqlite_options& options) {
  if (options.path.empty()) {
    throw invalid_argument_error("sqlite_options.path is empty (use \":memory:\" for no file)");
  }
  if (options.max_readers == 0) throw invalid_argument_error("sqlite_options.max_readers is 0");
  if (options.busy_timeout.count() < 0) {
    throw invalid_argument_error("sqlite_options.busy_timeout is negative");
  }
  if (options.poll_interval.count() <= 0) {
    throw invalid_argument_error("sqlite_options.poll_interval must be positive");
  }
  return std::make_unique<sqlite_engine>(options);
}

}  // namespace eventsourced
