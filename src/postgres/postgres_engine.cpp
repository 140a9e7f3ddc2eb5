// The PostgreSQL engine (see include/eventsourced/engine/postgres.hpp for its contract).
#include <eventsourced/engine/postgres.hpp>

#include <poll.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <utility>

#include <eventsourced/engine/open.hpp>
#include <eventsourced/error.hpp>

#include "engine/body_size.hpp"
#include "engine/stored_json.hpp"
#include "postgres/pg_connection.hpp"
#include "postgres/pg_query.hpp"

namespace eventsourced {
namespace {

using postgres_detail::failure_kind;
using postgres_detail::get_int64;
using postgres_detail::get_text;
using postgres_detail::params;
using postgres_detail::pg_failure;
using postgres_detail::pool;
using postgres_detail::statement;
using clock_type = std::chrono::steady_clock;

std::string in_quotes(std::string_view s) {
  return "'" + std::string(s) + "'";
}

// JSON text for storage; serialization_error for what cannot be written (invalid UTF-8).
template <typename What>
std::string dump_for_storage(const json& value, const What& what) {
  try {
    return value.dump();
  } catch (const json::exception& e) {
    throw serialization_error(what() + " cannot be written as JSON: " + e.what());
  }
}

std::string quote_identifier(std::string_view name) {
  return "\"" + std::string(name) + "\"";
}

void validate_schema_name(std::string_view schema) {
  const bool ok = !schema.empty() && schema.size() <= 50 &&
                  (std::islower(schema[0]) || schema[0] == '_') &&
                  std::all_of(schema.begin(), schema.end(), [](char c) {
                    return std::islower(static_cast<unsigned char>(c)) ||
                           std::isdigit(static_cast<unsigned char>(c)) || c == '_';
                  });
  if (!ok) {
    throw invalid_argument_error("invalid postgresql schema name '" + std::string(schema) +
                                 "': use 1..50 characters of [a-z0-9_], starting with a letter "
                                 "or '_'");
  }
}

// "host:port/dbname" of a conninfo for messages (libpq's defaults where it names none).
std::string describe_conninfo(const std::string& conninfo) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &error);
  if (error != nullptr) PQfreemem(error);
  if (options == nullptr) return "?";
  std::string host = "localhost", port = "5432", db;
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (o->val == nullptr || *o->val == '\0') continue;
    const std::string_view keyword(o->keyword);
    if (keyword == "host" || (keyword == "hostaddr" && host == "localhost")) host = o->val;
    if (keyword == "port") port = o->val;
    if (keyword == "dbname") db = o->val;
  }
  PQconninfoFree(options);
  return host + ":" + port + "/" + db;
}

class postgres_engine final : public engine {
 public:
  explicit postgres_engine(const postgres_options& options)
      : options_(options),
        schema_(quote_identifier(options.schema)),
        documents_(schema_ + ".documents"),
        events_(schema_ + ".events"),
        head_table_(schema_ + ".log_head"),
        channel_("es_log_" + options.schema),
        server_(describe_conninfo(options.conninfo)),
        pool_(options.conninfo, options.pool_size, options.pool_wait_timeout) {
    prepare_statement_texts();
    create_schema();
  }

  ~postgres_engine() override { close(); }

  std::optional<stored_document> get(std::string_view collection, std::string_view id) override {
    validate_collection_name(collection);
    validate_id(id);
    const auto alive = enter();
    return run("read document " + where(collection, id), [&](postgres_detail::connection& c) {
      const auto r =
          c.exec(get_, params{std::string(collection), std::string(id)}, "read a document");
      if (PQntuples(r.get()) == 0) return std::optional<stored_document>();
      const std::int64_t version = get_int64(r.get(), 0, 0);
      return std::optional<stored_document>(stored_document{
          std::string(id), version,
          engine_detail::read_body(collection, id, version, *get_text(r.get(), 0, 1))});
    });
  }

  std::vector<stored_document> find(std::string_view collection, const query& q) override {
    validate_collection_name(collection);
    const auto alive = enter();
    return engine_detail::find_readable(q, [&](const query& run_query) {
      const auto statement = postgres_detail::translate_find(documents_, collection, run_query);
      return run("find in collection " + in_quotes(collection),
                 [&](postgres_detail::connection& c) {
                   const auto r = c.exec_params(statement.text, statement.values, "find documents");
                   engine_detail::found_rows rows(collection);
                   const int count = PQntuples(r.get());
                   for (int i = 0; i < count; ++i) {
                     rows.add(std::string(*get_text(r.get(), i, 0)), get_int64(r.get(), i, 1),
                              *get_text(r.get(), i, 2));
                   }
                   return rows;
                 });
    });
  }

  commit_result commit(const commit_request& request) override {
    validate_commit_request(request);
    const auto alive = enter();
    int stream_retries = 0;
    for (int attempt = 1;; ++attempt) {
      commit_result result;
      bool commit_sent = false;
      try {
        auto lease = acquire_connection();
        try {
          commit_once(*lease, request, result, commit_sent);
        } catch (const pg_failure& f) {
          if (f.kind() == failure_kind::connection) lease.discard();
          throw;
        }
      } catch (const pg_failure& f) {
        if (commit_sent && f.kind() == failure_kind::connection) {
          return resolve_unknown_outcome(std::move(result), f);
        }
        // Another commit appended to one of our streams after we read its version (see
        // append()): it made progress, so retrying cannot go on forever while we lose.
        if (f.sqlstate() == "23505" && f.constraint() == "events_stream_key" &&
            stream_retries++ < kMaxStreamRetries) {
          --attempt;
          continue;
        }
        if (f.kind() != failure_kind::other && attempt < options_.max_attempts) {
          backoff(attempt);
          continue;
        }
        rethrow(f, "commit");
      }
      if (!result.events.empty()) note_head(result.events.back().position);
      return result;
    }
  }

  std::vector<recorded_event> read_stream(const stream_ref& stream, std::int64_t from_version,
                                          std::size_t max) override {
    validate_collection_name(stream.type, "stream type");
    validate_id(stream.id, "stream id");
    const auto alive = enter();
    if (max == 0) return {};
    return run("read stream " + where(stream.type, stream.id), [&](postgres_detail::connection& c) {
      const auto r = c.exec(
          read_stream_,
          params{stream.type, stream.id, std::to_string(from_version), std::to_string(clamp(max))},
          "read a stream");
      std::vector<recorded_event> out;
      const int rows = PQntuples(r.get());
      out.reserve(static_cast<std::size_t>(rows));
      for (int i = 0; i < rows; ++i) out.push_back(event_of(r.get(), i, &stream));
      return out;
    });
  }

  std::vector<recorded_event> read_all(std::int64_t after_position, std::size_t max) override {
    const auto alive = enter();
    if (max == 0) return {};
    return run("read the log", [&](postgres_detail::connection& c) {
      const auto r =
          c.exec(read_all_, params{std::to_string(after_position), std::to_string(clamp(max))},
                 "read the log");
      std::vector<recorded_event> out;
      const int rows = PQntuples(r.get());
      out.reserve(static_cast<std::size_t>(rows));
      for (int i = 0; i < rows; ++i) out.push_back(event_of(r.get(), i, nullptr));
      return out;
    });
  }

  // One DELETE (autocommit): positions and log_head are untouched, and the stream's latest
  // event stays, so stream_head_ (max of stream_version) never goes back. A retry after a lost
  // connection deletes what is still there: the count may then miss what the first try deleted.
  std::size_t truncate_stream(const stream_ref& stream, std::int64_t before_version) override {
    validate_truncate_stream(stream, before_version);
    const auto alive = enter();
    return run(
        "truncate stream " + where(stream.type, stream.id), [&](postgres_detail::connection& c) {
          const auto r = c.exec(truncate_stream_,
                                params{stream.type, stream.id, std::to_string(before_version)},
                                "truncate a stream");
          return static_cast<std::size_t>(std::stoull(PQcmdTuples(r.get())));
        });
  }

  bool wait_for(std::int64_t position, std::chrono::milliseconds timeout) override {
    const auto deadline = clock_type::now() + std::max(timeout, std::chrono::milliseconds::zero());
    start_listener();
    while (true) {
      // The log itself is the truth; notifications only end the wait early.
      {
        const auto alive = enter();
        const std::int64_t head = run("read the log head", [&](postgres_detail::connection& c) {
          return get_int64(c.exec(read_head_, params{}, "read the log head").get(), 0, 0);
        });
        if (head > position) return true;
        note_head(head);
      }
      const auto now = clock_type::now();
      if (now >= deadline) return false;
      std::unique_lock lock(notify_mutex_);
      // While LISTEN is down, look at the log more often.
      const auto interval = listening_
                                ? options_.poll_interval
                                : std::min(options_.poll_interval, std::chrono::milliseconds(100));
      committed_.wait_until(lock, std::min(deadline, now + interval),
                            [&] { return closing_ || known_head_ > position; });
      if (closing_) throw store_closed_error("eventsourced: postgresql engine is closed");
      if (known_head_ > position) return true;
    }
  }

  void close() override {
    {
      std::lock_guard lock(notify_mutex_);
      if (closing_) return;
      closing_ = true;
    }
    committed_.notify_all();
    if (listener_.joinable()) listener_.join();
    std::unique_lock lock(lifetime_mutex_);  // waits for calls in progress
    pool_.close();
  }

 private:
  // --- Statements ------------------------------------------------------------------------------

  void prepare_statement_texts() {
    const std::string& d = documents_;
    const std::string& e = events_;
    get_ = {"es_get",
            "SELECT version, coalesce(body_exact, body::text) FROM " + d +
                " WHERE collection = $1::text AND id = $2::text AND body IS NOT NULL",
            2};
    versions_ = {
        "es_versions",
        "SELECT version, body IS NULL FROM " + d + " WHERE collection = $1::text AND id = $2::text",
        2};
    // A check of a live document locks its row until the commit ends, so nobody changes it in
    // between; a check that the document does not exist first makes sure a row exists to lock
    // (a version-0 tombstone: "never written", the next creation gets version 1).
    check_lock_ = {"es_check_lock",
                   "SELECT version, body IS NULL FROM " + d +
                       " WHERE collection = $1::text AND id = $2::text FOR SHARE",
                   2};
    placeholder_ = {"es_placeholder",
                    "INSERT INTO " + d +
                        " (collection, id, version, body) VALUES ($1::text, $2::text, 0, NULL) "
                        "ON CONFLICT (collection, id) DO NOTHING",
                    2};
    // A creation (or the deletion of a document that must not exist: $3 NULL): a new row at
    // version 1, or a tombstone's row continued after its version. A live row is left alone
    // and returns nothing: the conflict.
    create_ = {"es_create",
               "INSERT INTO " + d +
                   " AS doc (collection, id, version, body, body_exact) VALUES ($1::text, "
                   "$2::text, 1, $3::jsonb, $4::text) ON CONFLICT (collection, id) DO UPDATE SET "
                   "version = doc.version + 1, body = EXCLUDED.body, body_exact = "
                   "EXCLUDED.body_exact WHERE doc.body IS NULL RETURNING doc.version",
               4};
    restamp_ = {"es_restamp",
                "UPDATE " + d +
                    " SET body = $3::jsonb, body_exact = $4::text WHERE collection = $1::text AND "
                    "id = $2::text",
                4};
    // A replacement ($3 the body) or deletion ($3 NULL) of a live document at version $4.
    update_ = {"es_update",
               "UPDATE " + d +
                   " SET version = version + 1, body = $3::jsonb, body_exact = $5::text WHERE "
                   "collection = $1::text AND id = $2::text AND version = $4::bigint AND body IS "
                   "NOT NULL RETURNING version",
               5};
    stream_head_ = {"es_stream_head",
                    "SELECT coalesce(max(stream_version), 0) FROM " + e +
                        " WHERE stream_type = $1::text AND stream_id = $2::text",
                    2};
    // All events of a commit in one statement, sent together with COMMIT. Invariant 3 (see the
    // header): the CTE's UPDATE takes the log_head row lock, held until that COMMIT, and hands
    // out positions top - $5 + 1 .. top in row order; the notification goes out at COMMIT to
    // every LISTENing engine. $1 is a JSON array of the rows' scalar columns, $2 and $3 JSON
    // arrays of their data and metadata (separate, because json's -> operator rejects a \u0000
    // anywhere in the object it reads from, and data may hold one), $4 the commit time in
    // microseconds since the epoch, $5 the number of events, $6 the notification channel.
    insert_events_ = {
        "es_insert_events",
        "WITH head AS (UPDATE " + head_table_ +
            " SET position = position + $5::bigint RETURNING position, pg_notify($6::text, "
            "position::text)) INSERT INTO " +
            e +
            " (position, id, stream_type, stream_id, stream_version, type, recorded_at, data, "
            "metadata) SELECT (SELECT position FROM head) - $5::bigint + n, r->>'id', r->>'st', "
            "r->>'si', (r->>'sv')::bigint, r->>'t', timestamptz 'epoch' + $4::bigint * interval "
            "'1 microsecond', d, m FROM json_array_elements($1::json) WITH ORDINALITY AS rows(r, "
            "n) JOIN json_array_elements($2::json) WITH ORDINALITY AS datas(d, n) USING (n) "
            "JOIN json_array_elements($3::json) WITH ORDINALITY AS metadatas(m, n) USING (n) "
            "RETURNING position",
        6};
    const std::string columns =
        "id, type, stream_type, stream_id, stream_version, position, "
        "(extract(epoch FROM recorded_at) * 1000000)::bigint, data::text, metadata::text FROM " +
        e;
    read_stream_ = {"es_read_stream",
                    "SELECT " + columns +
                        " WHERE stream_type = $1::text AND stream_id = $2::text AND "
                        "stream_version >= $3::bigint ORDER BY stream_version LIMIT $4::bigint",
                    4};
    read_all_ = {
        "es_read_all",
        "SELECT " + columns + " WHERE position > $1::bigint ORDER BY position LIMIT $2::bigint", 2};
    truncate_stream_ = {
        "es_truncate_stream",
        "DELETE FROM " + e +
            " WHERE stream_type = $1::text AND stream_id = $2::text AND stream_version < "
            "LEAST($3::bigint, (SELECT max(stream_version) FROM " +
            e + " WHERE stream_type = $1::text AND stream_id = $2::text))",
        3};
    read_head_ = {"es_read_head", "SELECT position FROM " + head_table_, 0};
    find_event_ = {"es_find_event", "SELECT 1 FROM " + e + " WHERE id = $1::text", 1};
  }

  void create_schema() {
    // Several processes may open a new database at once: the DDL runs under a transaction-level
    // advisory lock, so CREATE ... IF NOT EXISTS never races itself.
    const std::string ddl =
        "BEGIN;"
        "SELECT pg_advisory_xact_lock(7466457, hashtext(" +
        quote_literal(options_.schema) +
        "));"
        "CREATE SCHEMA IF NOT EXISTS " +
        schema_ +
        ";"
        "CREATE TABLE IF NOT EXISTS " +
        documents_ +
        " (collection text COLLATE \"C\" NOT NULL, id text COLLATE \"C\" NOT NULL, "
        "version bigint NOT NULL, body jsonb, body_exact text, PRIMARY KEY (collection, id));"
        "CREATE TABLE IF NOT EXISTS " +
        events_ +
        " (position bigint PRIMARY KEY, id text COLLATE \"C\" NOT NULL, "
        "stream_type text COLLATE \"C\" NOT NULL, stream_id text COLLATE \"C\" NOT NULL, "
        "stream_version bigint NOT NULL, type text NOT NULL, recorded_at timestamptz NOT NULL, "
        "data json NOT NULL, metadata json, CONSTRAINT events_id_key UNIQUE (id), "
        "CONSTRAINT events_stream_key UNIQUE (stream_type, stream_id, stream_version));"
        "CREATE TABLE IF NOT EXISTS " +
        head_table_ +
        " (singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton), "
        "position bigint NOT NULL);"
        "INSERT INTO " +
        head_table_ +
        " (singleton, position) VALUES (true, 0) ON CONFLICT DO NOTHING;"
        "COMMIT;";
    run("create the schema", [&](postgres_detail::connection& c) {
      try {
        c.exec(ddl, "create the schema");
      } catch (...) {
        if (c.ok()) PQclear(PQexec(c.handle(), "ROLLBACK"));
        throw;
      }
      return 0;
    });
  }

  // The schema name is validated to [a-z0-9_], so this quoting is exact.
  static std::string quote_literal(std::string_view s) { return "'" + std::string(s) + "'"; }

  // --- Commit ----------------------------------------------------------------------------------

  // Rolls the transaction back unless committed; a connection that cannot roll back is dropped
  // by the pool (it is not idle).
  struct transaction {
    postgres_detail::connection& c;
    bool done = false;
    ~transaction() {
      if (!done && c.ok()) PQclear(PQexec(c.handle(), "ROLLBACK"));
    }
  };

  // One attempt. `result` is filled as the commit goes (so an unknown outcome can be resolved);
  // commit_sent is set just before COMMIT goes to the server. Round trips: BEGIN with the first
  // write, one per further write, one per stream appended to, and the events with COMMIT.
  void commit_once(postgres_detail::connection& c, const commit_request& request,
                   commit_result& result, bool& commit_sent) {
    result.versions.reserve(request.writes.size());
    c.begin_with_next_statement();
    transaction tx{c};
    for (const document_write& w : request.writes) {
      result.versions.push_back(apply_write(c, w, request.version_field, request.max_body_bytes));
    }
    std::vector<stream_append> derived;
    if (request.derived_appends) {
      derived = request.derived_appends(result.versions);
      validate_derived_appends(request, derived);
    }
    std::size_t event_count = 0;
    for (const auto* appends : {&request.appends, &std::as_const(derived)}) {
      for (const stream_append& a : *appends) event_count += a.events.size();
    }
    if (event_count == 0) {
      if (!c.begin_pending()) {
        commit_sent = true;
        c.exec(std::string("COMMIT"), "commit");
      }
      tx.done = true;
      return;
    }
    const auto now =
        std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
    result.events.reserve(event_count);
    for (const stream_append& a : request.appends) append(c, a, now, result.events);
    for (stream_append& a : derived) append(c, a, now, result.events);
    commit_sent = true;
    insert_events_and_commit(c, result.events, now);
    tx.done = true;
  }

  void insert_events_and_commit(postgres_detail::connection& c, std::vector<recorded_event>& events,
                                std::chrono::sys_time<std::chrono::microseconds> now) {
    std::string rows = "[", datas = "[", metadatas = "[";
    for (const recorded_event& e : events) {
      const auto what = [&](const char* part) {
        return [&e, part] { return std::string(part) + " of event " + in_quotes(e.id); };
      };
      if (rows.size() > 1) {
        rows += ',';
        datas += ',';
        metadatas += ',';
      }
      rows += dump_for_storage(json{{"id", e.id},
                                    {"st", e.stream.type},
                                    {"si", e.stream.id},
                                    {"sv", e.stream_version},
                                    {"t", e.type}},
                               what("the id or type"));
      datas += dump_for_storage(e.data, what("the data"));
      metadatas += dump_for_storage(e.metadata, what("the metadata"));
    }
    rows += ']';
    datas += ']';
    metadatas += ']';
    postgres_detail::result r;
    try {
      r = c.exec_then_commit(
          insert_events_,
          params{rows, datas, metadatas, std::to_string(now.time_since_epoch().count()),
                 std::to_string(events.size()), channel_},
          "record events and commit");
    } catch (const pg_failure& f) {
      if (f.sqlstate() == "23505" && f.constraint() == "events_id_key") {
        std::string ids;
        for (const auto& e : events) ids += (ids.empty() ? "" : ", ") + in_quotes(e.id);
        throw invalid_argument_error(
            "an event id of this commit is already in the log (ids: " + ids + ")");
      }
      if (f.sqlstate() == "22P05") {
        throw invalid_argument_error(
            "an event id or type of this commit contains U+0000, which PostgreSQL text cannot "
            "hold: " +
            std::string(f.what()));
      }
      throw;
    }
    // The positions handed out are consecutive, in row order.
    std::int64_t first = std::numeric_limits<std::int64_t>::max();
    for (int i = 0; i < PQntuples(r.get()); ++i) first = std::min(first, get_int64(r.get(), i, 0));
    for (auto& e : events) e.position = first++;
  }

  template <typename What>
  std::string body_text(const document_write& w, std::int64_t version,
                        const std::string& version_field, const What& what) {
    if (version_field.empty()) return dump_for_storage(w.body, what);
    const auto stamped = w.body.find(version_field);
    if (stamped != w.body.end() && *stamped == version) return dump_for_storage(w.body, what);
    json body = w.body;
    body[version_field] = version;
    return dump_for_storage(body, what);
  }

  // The live version of a document (0 when absent or deleted), read inside the transaction.
  std::int64_t live_version(postgres_detail::connection& c, const document_write& w,
                            const statement& s) {
    const auto r = c.exec(s, params{w.collection, w.id}, "read a document's version");
    if (PQntuples(r.get()) == 0) return 0;
    const bool tombstone = *get_text(r.get(), 0, 1) == "t";
    return tombstone ? 0 : get_int64(r.get(), 0, 0);
  }

  [[noreturn]] void conflict(const document_write& w, std::int64_t live) {
    throw conflict_error(conflict_target::document, w.collection, w.id, w.expected_version, live);
  }

  std::int64_t apply_write(postgres_detail::connection& c, const document_write& w,
                           const std::string& version_field, std::size_t max_body_bytes) {
    const auto body_what = [&] { return "the body of " + where(w.collection, w.id); };
    if (w.op == write_op::check) {
      if (w.expected_version == 0) {
        c.exec(placeholder_, params{w.collection, w.id}, "check a document's version");
      }
      const std::int64_t live = live_version(c, w, check_lock_);
      if (live != w.expected_version) conflict(w, live);
      return w.expected_version;
    }
    std::optional<std::string> text;
    if (w.op == write_op::put) {
      // A creation gets version 1 unless it continues a tombstone (restamped below).
      const std::int64_t version = w.expected_version == 0 ? 1 : w.expected_version + 1;
      try {
        text = body_text(w, version, version_field, body_what);
      } catch (const serialization_error&) {
        // A conflict is reported before a body that cannot be stored, as if checked first.
        if (const auto live = live_version(c, w, versions_); live != w.expected_version) {
          conflict(w, live);
        }
        throw;
      }
      if (max_body_bytes != 0 && text->size() > max_body_bytes) {
        if (const auto live = live_version(c, w, versions_); live != w.expected_version) {
          conflict(w, live);
        }
        engine_detail::check_body_size(w, text->size(), max_body_bytes);
      }
    }
    if (w.expected_version == 0) {
      const auto r = write_statement(c, create_, body_params(w, text), w);
      if (PQntuples(r.get()) == 0) conflict(w, live_version(c, w, versions_));
      const std::int64_t version = get_int64(r.get(), 0, 0);
      if (version != 1 && text && !version_field.empty()) {
        // Re-created after a tombstone: the body carries the version it really got.
        const std::string restamped = body_text(w, version, version_field, body_what);
        engine_detail::check_body_size(w, restamped.size(), max_body_bytes);
        write_statement(c, restamp_, body_params(w, restamped), w);
      }
      return version;
    }
    params values = body_params(w, text);
    values.insert(values.begin() + 3, std::to_string(w.expected_version));
    const auto r = write_statement(c, update_, values, w);
    if (PQntuples(r.get()) == 0) conflict(w, live_version(c, w, versions_));
    return get_int64(r.get(), 0, 0);
  }

  // (collection, id, body as jsonb, exact body text): jsonb cannot hold U+0000 in a string, so a
  // body containing one is stored exactly in body_exact (what reads return) and, for filters, as
  // jsonb with each U+0000 replaced by U+FFFD. Otherwise body_exact is NULL.
  static params body_params(const document_write& w, const std::optional<std::string>& text) {
    if (!text || !has_escaped_nul(*text)) return params{w.collection, w.id, text, std::nullopt};
    return params{w.collection, w.id, replace_escaped_nul(*text), text};
  }

  // Whether JSON text (as nlohmann writes it) contains the escape \u0000: a backslash that is
  // not itself escaped (preceded by an even number of backslashes) followed by u0000.
  static bool has_escaped_nul(std::string_view text) {
    return find_escaped_nul(text, 0) != std::string_view::npos;
  }
  static std::size_t find_escaped_nul(std::string_view text, std::size_t from) {
    for (std::size_t i = text.find("\\u0000", from); i != std::string_view::npos;
         i = text.find("\\u0000", i + 1)) {
      std::size_t backslashes = 0;
      while (i > backslashes && text[i - backslashes - 1] == '\\') ++backslashes;
      if (backslashes % 2 == 0) return i;
    }
    return std::string_view::npos;
  }
  static std::string replace_escaped_nul(std::string_view text) {
    std::string out;
    std::size_t from = 0;
    for (std::size_t i = find_escaped_nul(text, 0); i != std::string_view::npos;
         i = find_escaped_nul(text, from)) {
      out.append(text.substr(from, i - from)).append("\\ufffd");
      from = i + 6;
    }
    return out.append(text.substr(from));
  }

  // Runs a write; jsonb's refusals of a body become invalid_argument_error.
  postgres_detail::result write_statement(postgres_detail::connection& c, const statement& s,
                                          const params& values, const document_write& w) {
    try {
      return c.exec(s, values, "write a document");
    } catch (const pg_failure& f) {
      // 22P05: a character jsonb cannot hold (U+0000); 22P02 / 2202x: text jsonb refuses.
      if (f.sqlstate() == "22P05" || f.sqlstate() == "22P02" || f.sqlstate().starts_with("2202")) {
        throw invalid_argument_error("the body of " + where(w.collection, w.id) +
                                     " cannot be stored as PostgreSQL jsonb: " + f.what());
      }
      throw;
    }
  }

  // Checks one append's expected version and adds its events to `recorded` (positions are
  // handed out by the insert). The stream's version is read before the log_head lock is taken,
  // to keep the lock short: a concurrent append to the same stream that commits in between makes
  // the insert fail on the (stream, version) unique key, and the commit is retried (see
  // commit()), reading the new version.
  template <typename Append>
  void append(postgres_detail::connection& c, Append& a,
              std::chrono::sys_time<std::chrono::microseconds> now,
              std::vector<recorded_event>& recorded) {
    std::int64_t current = get_int64(
        c.exec(stream_head_, params{a.stream.type, a.stream.id}, "read a stream's version").get(),
        0, 0);
    if (a.expected_version && *a.expected_version != current) {
      throw conflict_error(conflict_target::stream, a.stream.type, a.stream.id, *a.expected_version,
                           current);
    }
    for (auto& e : a.events) {
      ++current;
      if constexpr (std::is_const_v<Append>) {
        recorded.push_back(
            recorded_event{e.id, e.type, a.stream, current, 0, now, e.data, e.metadata});
      } else {
        recorded.push_back(recorded_event{std::move(e.id), std::move(e.type), a.stream, current, 0,
                                          now, std::move(e.data), std::move(e.metadata)});
      }
    }
  }

  // The connection broke after COMMIT was sent. A commit with events is decided by looking for
  // its first event (ids are unique): present, it was committed and `result` is what it
  // recorded; absent, it was not. (This relies on the broken connection's server process no
  // longer being able to commit, which holds when the server closed or lost the connection.)
  // Without events nothing tells: commit_outcome_unknown_error.
  commit_result resolve_unknown_outcome(commit_result result, const pg_failure& f) {
    const std::string what =
        std::string("the connection was lost while committing (") + f.what() + ")";
    if (result.events.empty()) {
      throw commit_outcome_unknown_error("eventsourced: postgresql: " + what +
                                         "; the commit may or may not have been applied");
    }
    // The server may be restarting: ask until it answers or outcome_timeout passes.
    bool present = false;
    const auto deadline = clock_type::now() + options_.outcome_timeout;
    while (true) {
      try {
        present =
            run("look up a commit whose outcome was unknown", [&](postgres_detail::connection& c) {
              return PQntuples(
                         c.exec(find_event_, params{result.events.front().id}, "look up an event")
                             .get()) > 0;
            });
        break;
      } catch (const engine_unavailable_error& e) {
        if (clock_type::now() >= deadline) {
          throw commit_outcome_unknown_error(
              "eventsourced: postgresql: " + what +
              "; the commit may or may not have been applied, and the server could not be asked: " +
              e.what());
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
    if (!present) {
      throw engine_unavailable_error("eventsourced: postgresql: " + what + "; it was not applied");
    }
    note_head(result.events.back().position);
    return result;
  }

  static constexpr int kMaxStreamRetries = 1000;

  // --- Reads, retries, errors ------------------------------------------------------------------

  // Runs fn on a pooled connection, retrying on a lost connection, a deadlock or a serialization
  // failure (nothing fn does writes outside a transaction of its own).
  template <typename Fn>
  auto run(const std::string& operation, Fn&& fn)
      -> decltype(fn(std::declval<postgres_detail::connection&>())) {
    for (int attempt = 1;; ++attempt) {
      try {
        auto lease = acquire_connection();
        try {
          return fn(*lease);
        } catch (const pg_failure& f) {
          if (f.kind() == failure_kind::connection) lease.discard();
          throw;
        }
      } catch (const pg_failure& f) {
        if (f.kind() != failure_kind::other && attempt < options_.max_attempts) {
          backoff(attempt);
          continue;
        }
        rethrow(f, operation);
      }
    }
  }

  pool::lease acquire_connection() { return pool_.acquire(); }

  void backoff(int attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50) * (1 << std::min(attempt - 1, 5)));
  }

  [[noreturn]] void rethrow(const pg_failure& f, const std::string& operation) {
    const std::string what =
        "eventsourced: postgresql (" + server_ + "): " + operation + ": " + f.what();
    switch (f.kind()) {
      case failure_kind::connection:
      case failure_kind::transient:
        throw engine_unavailable_error(what);
      case failure_kind::other:
        break;
    }
    throw engine_error(what);
  }

  recorded_event event_of(const PGresult* r, int row, const stream_ref* stream) {
    recorded_event e;
    e.id = std::string(*get_text(r, row, 0));
    e.type = std::string(*get_text(r, row, 1));
    if (stream != nullptr) {
      e.stream = *stream;
    } else {
      e.stream = stream_ref{std::string(*get_text(r, row, 2)), std::string(*get_text(r, row, 3))};
    }
    e.stream_version = get_int64(r, row, 4);
    e.position = get_int64(r, row, 5);
    e.timestamp = std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::microseconds(get_int64(r, row, 6))));
    const auto what = [&](const char* part) {
      return "postgresql: the " + std::string(part) + " of event " + in_quotes(e.id);
    };
    e.data = engine_detail::read_event_json(*get_text(r, row, 7), [&] { return what("data"); });
    const auto metadata = get_text(r, row, 8);
    e.metadata = metadata
                     ? engine_detail::read_event_json(*metadata, [&] { return what("metadata"); })
                     : json(nullptr);
    return e;
  }

  static std::int64_t clamp(std::size_t n) {
    constexpr auto kMax = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
    return static_cast<std::int64_t>(n > kMax ? kMax : n);
  }

  static std::string where(std::string_view collection, std::string_view id) {
    return in_quotes(collection) + " id " + in_quotes(id);
  }

  // --- Lifetime and notifications --------------------------------------------------------------

  std::shared_lock<std::shared_mutex> enter() {
    if (closing_) throw store_closed_error("eventsourced: postgresql engine is closed");
    std::shared_lock lock(lifetime_mutex_);
    if (closing_) throw store_closed_error("eventsourced: postgresql engine is closed");
    return lock;
  }

  void note_head(std::int64_t head) {
    {
      std::lock_guard lock(notify_mutex_);
      if (head <= known_head_) return;
      known_head_ = head;
    }
    committed_.notify_all();
  }

  void start_listener() {
    std::call_once(listener_started_, [this] {
      std::lock_guard lock(notify_mutex_);
      if (!closing_) listener_ = std::thread([this] { listen_loop(); });
    });
  }

  // Keeps one connection LISTENing on the channel; every notification carries the new head.
  void listen_loop() {
    std::unique_ptr<postgres_detail::connection> c;
    const auto stopping = [&] {
      std::lock_guard lock(notify_mutex_);
      return closing_.load();
    };
    while (!stopping()) {
      if (!c || !c->ok()) {
        set_listening(false);
        try {
          c = std::make_unique<postgres_detail::connection>(options_.conninfo);
          c->exec("LISTEN " + quote_identifier(channel_), "listen for commits");
          set_listening(true);
          committed_.notify_all();  // waiters look at the log again: commits may have been missed
        } catch (const pg_failure&) {
          c.reset();
          std::unique_lock lock(notify_mutex_);
          committed_.wait_for(lock, std::chrono::milliseconds(200),
                              [&] { return closing_.load(); });
          continue;
        }
      }
      pollfd fd{PQsocket(c->handle()), POLLIN, 0};
      if (::poll(&fd, 1, 100) <= 0) continue;
      if (PQconsumeInput(c->handle()) == 0) {
        c.reset();
        continue;
      }
      while (PGnotify* n = PQnotifies(c->handle())) {
        std::int64_t head = 0;
        const std::string_view payload(n->extra);
        std::from_chars(payload.data(), payload.data() + payload.size(), head);
        PQfreemem(n);
        note_head(head);
      }
    }
    set_listening(false);
  }

  void set_listening(bool on) {
    std::lock_guard lock(notify_mutex_);
    listening_ = on;
  }

  statement get_, versions_, check_lock_, placeholder_, create_, restamp_, update_, stream_head_,
      insert_events_, read_stream_, read_all_, truncate_stream_, read_head_, find_event_;

  const postgres_options options_;
  const std::string schema_;      // quoted
  const std::string documents_;   // quoted, schema-qualified
  const std::string events_;      // quoted, schema-qualified
  const std::string head_table_;  // quoted, schema-qualified
  const std::string channel_;     // the NOTIFY channel
  std::string server_;            // host:port/db for messages (never the password)
  pool pool_;

  std::shared_mutex lifetime_mutex_;  // shared by every call, exclusive by close()
  std::atomic<bool> closing_{false};  // set under notify_mutex_

  std::mutex notify_mutex_;
  std::condition_variable committed_;  // a higher head is known, the listener (re)started, close
  std::int64_t known_head_ = 0;        // GUARDED_BY(notify_mutex_)
  bool listening_ = false;             // GUARDED_BY(notify_mutex_)
  std::once_flag listener_started_;
  std::thread listener_;
};

}  // namespace

postgres_options parse_postgres_uri(std::string_view uri) {
  const bool scheme_ok = uri.starts_with("postgresql://") || uri.starts_with("postgres://");
  if (!scheme_ok) {
    throw invalid_argument_error(
        "invalid postgresql URI: it must start with \"postgresql://\" or \"postgres://\"");
  }
  postgres_options options;
  std::string_view base = uri;
  std::string_view query;
  if (const auto q = uri.find('?'); q != std::string_view::npos) {
    base = uri.substr(0, q);
    query = uri.substr(q + 1);
  }
  std::string kept;
  bool has_connect_timeout = false;
  const auto parse_count = [](std::string_view name, std::string_view value, long long min) {
    long long n = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (ec != std::errc() || end != value.data() + value.size() || value.empty() || n < min) {
      throw invalid_argument_error("invalid postgresql URI: parameter '" + std::string(name) +
                                   "' must be an integer >= " + std::to_string(min) + ", got '" +
                                   std::string(value) + "'");
    }
    return n;
  };
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view item = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (item.empty()) continue;
    const auto eq = item.find('=');
    const std::string_view name = item.substr(0, eq);
    const std::string_view value =
        eq == std::string_view::npos ? std::string_view() : item.substr(eq + 1);
    if (name == "schema") {
      options.schema = std::string(value);
    } else if (name == "pool_size") {
      options.pool_size = static_cast<std::size_t>(parse_count(name, value, 1));
    } else if (name == "max_attempts") {
      options.max_attempts = static_cast<int>(parse_count(name, value, 1));
    } else {
      if (name == "connect_timeout") has_connect_timeout = true;
      kept += (kept.empty() ? "" : "&") + std::string(item);
    }
  }
  if (!has_connect_timeout) kept += std::string(kept.empty() ? "" : "&") + "connect_timeout=10";
  options.conninfo = std::string(base) + "?" + kept;
  validate_schema_name(options.schema);
  return options;
}

std::unique_ptr<engine> make_postgres_engine(const postgres_options& options) {
  validate_schema_name(options.schema);
  if (options.pool_size == 0) throw invalid_argument_error("postgres_options.pool_size is 0");
  if (options.max_attempts < 1) {
    throw invalid_argument_error("postgres_options.max_attempts must be at least 1");
  }
  if (options.poll_interval.count() <= 0) {
    throw invalid_argument_error("postgres_options.poll_interval must be positive");
  }
  return std::make_unique<postgres_engine>(options);
}

void register_postgres_engine_scheme() {
  static std::once_flag once;
  std::call_once(once, [] {
    const engine_factory factory = [](std::string_view uri) {
      return make_postgres_engine(parse_postgres_uri(uri));
    };
    register_engine_scheme("postgresql", factory);
    register_engine_scheme("postgres", factory);
  });
}

}  // namespace eventsourced
