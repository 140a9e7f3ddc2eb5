// The MongoDB engine (see include/eventsourced/engine/mongodb.hpp for its contract).
//
// Stored layout, in the URI's database:
//   <collection>  {_id: id, version, body}      body null: a tombstone (version 0: a placeholder
//                                               left by a version check of a missing document)
//   _es:events    {_id: position, id, st, si, sv, type, ts (microseconds), data, metadata}
//                 unique indexes es_event_id {id} and es_stream_version {st, si, sv}
//   _es:log       {_id: "head", position}       the last position handed out
// The two bookkeeping collections hold a ':', which validate_collection_name() refuses, so no
// document collection (the library's own "_es_..." ones included) can share their names.
//
// Every commit is one multi-document transaction (read concern snapshot, write concern majority).
// MongoDB's transactions are snapshot isolated and first-writer-wins: a transaction writing a
// document that another transaction changed after this one's snapshot fails with a
// TransientTransactionError (WriteConflict) and is retried from the start. Version checks lean on
// that: every checked document is written (a check rewrites the document with a fresh nonce), so
// a document cannot change between the check and the commit. Every commit that records events
// increments the one _es:log document, so such commits are serialised (invariant 3: positions are
// handed out in commit order, and a reader never sees a position appear below one it has seen).
#include <mongoc/mongoc.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <limits>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <shared_mutex>
#include <stdexcept>
#include <thread>
#include <utility>

#include <eventsourced/engine/mongodb.hpp>
#include <eventsourced/engine/open.hpp>
#include <eventsourced/error.hpp>

#include "engine/body_size.hpp"
#include "engine/stored_json.hpp"
#include "mongodb/bson_json.hpp"
#include "mongodb/mongo_client.hpp"
#include "mongodb/mongo_query.hpp"

namespace eventsourced {
namespace {

using mongodb_detail::bson_ptr;
using mongodb_detail::client_pool;
using mongodb_detail::to_bson;
using mongodb_detail::to_json;
using clock_type = std::chrono::steady_clock;

constexpr const char* kEventsCollection = "_es:events";
constexpr const char* kLogCollection = "_es:log";
constexpr const char* kEventIdIndex = "es_event_id";
constexpr const char* kStreamIndex = "es_stream_version";
constexpr int kDuplicateKey = 11000;
constexpr int kWriteConflict = 112;
constexpr int kNamespaceExists = 48;

template <typename T, void (*Destroy)(T*)>
struct destroyer {
  void operator()(T* p) const noexcept {
    if (p != nullptr) Destroy(p);
  }
};
using collection_ptr =
    std::unique_ptr<mongoc_collection_t, destroyer<mongoc_collection_t, mongoc_collection_destroy>>;
using database_ptr =
    std::unique_ptr<mongoc_database_t, destroyer<mongoc_database_t, mongoc_database_destroy>>;
using cursor_ptr =
    std::unique_ptr<mongoc_cursor_t, destroyer<mongoc_cursor_t, mongoc_cursor_destroy>>;
using session_ptr =
    std::unique_ptr<mongoc_client_session_t,
                    destroyer<mongoc_client_session_t, mongoc_client_session_destroy>>;
using change_stream_ptr =
    std::unique_ptr<mongoc_change_stream_t,
                    destroyer<mongoc_change_stream_t, mongoc_change_stream_destroy>>;
using transaction_opts_ptr =
    std::unique_ptr<mongoc_transaction_opt_t,
                    destroyer<mongoc_transaction_opt_t, mongoc_transaction_opts_destroy>>;
using read_concern_ptr =
    std::unique_ptr<mongoc_read_concern_t,
                    destroyer<mongoc_read_concern_t, mongoc_read_concern_destroy>>;
using read_prefs_ptr =
    std::unique_ptr<mongoc_read_prefs_t, destroyer<mongoc_read_prefs_t, mongoc_read_prefs_destroy>>;
using write_concern_ptr =
    std::unique_ptr<mongoc_write_concern_t,
                    destroyer<mongoc_write_concern_t, mongoc_write_concern_destroy>>;

// A failed libmongoc call, before it becomes one of the library's errors (see rethrow()).
class mongo_failure : public std::runtime_error {
 public:
  mongo_failure(const bson_error_t& error, const bson_t* reply, const std::string& what)
      : std::runtime_error(what + ": " + error.message),
        domain_(error.domain),
        code_(error.code),
        transient_(reply != nullptr && mongoc_error_has_label(reply, "TransientTransactionError")),
        commit_unknown_(reply != nullptr &&
                        mongoc_error_has_label(reply, "UnknownTransactionCommitResult")) {}

  // No server could be selected, or the connection broke.
  bool unavailable() const noexcept {
    return domain_ == MONGOC_ERROR_SERVER_SELECTION || domain_ == MONGOC_ERROR_STREAM;
  }
  bool server_selection() const noexcept { return domain_ == MONGOC_ERROR_SERVER_SELECTION; }
  // Retrying the whole transaction may succeed.
  bool transient() const noexcept { return transient_ || code_ == kWriteConflict; }
  bool commit_unknown() const noexcept { return commit_unknown_; }
  bool duplicate_key() const noexcept { return code_ == kDuplicateKey; }
  std::uint32_t code() const noexcept { return code_; }

 private:
  std::uint32_t domain_;
  std::uint32_t code_;
  bool transient_;
  bool commit_unknown_;
};

[[noreturn]] void fail(const bson_error_t& error, const bson_t* reply, const std::string& what) {
  throw mongo_failure(error, reply, what);
}

// The reply of a libmongoc write call as JSON, after destroying it; throws mongo_failure when the
// call failed (the reply carries the error labels).
json finish(bool ok, bson_t& reply, const bson_error_t& error, const std::string& what) {
  if (!ok) {
    const mongo_failure f(error, &reply, what);
    bson_destroy(&reply);
    throw f;
  }
  json answer = to_json(reply);
  bson_destroy(&reply);
  return answer;
}

std::string in_quotes(std::string_view s) {
  return "'" + std::string(s) + "'";
}

std::string where(std::string_view collection, std::string_view id) {
  return in_quotes(collection) + " id " + in_quotes(id);
}

// A JSON object as BSON, with the session appended (so the operation joins its transaction).
bson_ptr options_in(mongoc_client_session_t* session, const json& extra = json::object()) {
  bson_ptr opts = to_bson(extra);
  if (session != nullptr) {
    bson_error_t error;
    if (!mongoc_client_session_append(session, opts.get(), &error)) {
      fail(error, nullptr, "join the transaction");
    }
  }
  return opts;
}

// Every document of a cursor, as JSON.
std::vector<json> drain(mongoc_cursor_t* cursor, const std::string& what) {
  std::vector<json> out;
  const bson_t* doc = nullptr;
  while (mongoc_cursor_next(cursor, &doc)) out.push_back(to_json(*doc));
  bson_error_t error;
  const bson_t* reply = nullptr;
  if (mongoc_cursor_error_document(cursor, &error, &reply)) fail(error, reply, what);
  return out;
}

std::int64_t int_of(const json& doc, const char* key) {
  const auto it = doc.find(key);
  if (it == doc.end() || !it->is_number_integer()) {
    throw engine_error(std::string("eventsourced: mongodb: a stored document lacks the integer '") +
                       key + "': " + doc.dump().substr(0, 200));
  }
  return it->get<std::int64_t>();
}

std::string string_of(const json& doc, const char* key) {
  const auto it = doc.find(key);
  if (it == doc.end() || !it->is_string()) {
    throw engine_error(std::string("eventsourced: mongodb: a stored document lacks the string '") +
                       key + "': " + doc.dump().substr(0, 200));
  }
  return it->get<std::string>();
}

// The body of a stored document (null for a tombstone, and for a document without one).
const json& body_of(const json& doc) {
  static const json null_body;
  const auto it = doc.find("body");
  return it == doc.end() ? null_body : *it;
}

recorded_event event_of(json doc) {
  recorded_event e;
  e.position = int_of(doc, "_id");
  e.id = string_of(doc, "id");
  e.type = string_of(doc, "type");
  e.stream = stream_ref{string_of(doc, "st"), string_of(doc, "si")};
  e.stream_version = int_of(doc, "sv");
  e.timestamp = std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::microseconds(int_of(doc, "ts"))));
  e.data = std::move(doc["data"]);
  e.metadata = std::move(doc["metadata"]);
  return e;
}

class mongodb_engine final : public engine {
 public:
  explicit mongodb_engine(const mongodb_options& options) : options_(options), pool_(options) {
    pool_.check_server();
    create_bookkeeping();
  }

  ~mongodb_engine() override { close(); }

  std::optional<stored_document> get(std::string_view collection, std::string_view id) override {
    validate_mongodb_collection_name(collection);
    validate_id(id);
    const auto alive = enter();
    return run("read document " + where(collection, id), [&](mongoc_client_t* client) {
      auto doc = find_by_id(client, nullptr, std::string(collection), id);
      if (!doc || body_of(*doc).is_null()) return std::optional<stored_document>();
      const std::int64_t version = int_of(*doc, "version");
      return std::optional<stored_document>(stored_document{
          std::string(id), version,
          engine_detail::check_body(collection, id, version, std::move((*doc)["body"]))});
    });
  }

  std::vector<stored_document> find(std::string_view collection, const query& q) override {
    validate_mongodb_collection_name(collection);
    const auto alive = enter();
    return engine_detail::find_readable(q, [&](const query& run_query) {
      const bson_ptr pipeline = to_bson({{"pipeline", mongodb_detail::find_pipeline(run_query)}});
      return run("find in collection " + in_quotes(collection), [&](mongoc_client_t* client) {
        const collection_ptr c = collection_of(client, std::string(collection));
        const cursor_ptr cursor(mongoc_collection_aggregate(
            c.get(), MONGOC_QUERY_NONE, pipeline.get(), nullptr, primary_.get()));
        engine_detail::found_rows rows(collection);
        for (json& doc : drain(cursor.get(), "find documents")) {
          rows.add_decoded(string_of(doc, "_id"), int_of(doc, "version"), std::move(doc["body"]));
        }
        return rows;
      });
    });
  }

  commit_result commit(const commit_request& request) override {
    validate_commit_request(request);
    for (const document_write& w : request.writes) validate_mongodb_collection_name(w.collection);
    check_mongodb_depth(request);
    const auto alive = enter();
    for (const document_write& w : request.writes) ensure_collection(w.collection);
    commit_result result =
        in_transaction("commit", [&](mongoc_client_t* client, mongoc_client_session_t* session) {
          return commit_once(client, session, request);
        });
    if (!result.events.empty()) note_head(result.events.back().position);
    return result;
  }

  std::vector<recorded_event> read_stream(const stream_ref& stream, std::int64_t from_version,
                                          std::size_t max) override {
    validate_collection_name(stream.type, "stream type");
    validate_id(stream.id, "stream id");
    const auto alive = enter();
    if (max == 0) return {};
    const bson_ptr filter =
        to_bson({{"st", stream.type}, {"si", stream.id}, {"sv", {{"$gte", from_version}}}});
    const bson_ptr opts = to_bson({{"sort", {{"sv", 1}}}, {"limit", clamp(max)}});
    return run("read stream " + where(stream.type, stream.id), [&](mongoc_client_t* client) {
      // A truncate_stream() between two batches of the cursor could leave a hole; the events
      // returned must be consecutive, so such a read is repeated (the truncation only removes
      // events below the stream's latest, and it is one transaction: the next read is whole).
      for (int attempt = 1;; ++attempt) {
        const collection_ptr events = collection_of(client, kEventsCollection);
        const cursor_ptr cursor(mongoc_collection_find_with_opts(events.get(), filter.get(),
                                                                 opts.get(), primary_.get()));
        std::vector<recorded_event> out;
        for (json& doc : drain(cursor.get(), "read a stream"))
          out.push_back(event_of(std::move(doc)));
        bool consecutive = true;
        for (std::size_t i = 1; i < out.size(); ++i) {
          consecutive = consecutive && out[i].stream_version == out[i - 1].stream_version + 1;
        }
        if (consecutive) return out;
        // Still split after several reads: not a truncation in progress but a hole made around
        // the engine (events deleted by hand).
        if (attempt == 10) {
          throw engine_error("eventsourced: mongodb: stream " + where(stream.type, stream.id) +
                             " has a hole in its versions (events deleted around the engine?)");
        }
      }
    });
  }

  std::vector<recorded_event> read_all(std::int64_t after_position, std::size_t max) override {
    const auto alive = enter();
    if (max == 0) return {};
    const bson_ptr filter = to_bson({{"_id", {{"$gt", after_position}}}});
    const bson_ptr opts = to_bson({{"sort", {{"_id", 1}}}, {"limit", clamp(max)}});
    return run("read the log", [&](mongoc_client_t* client) {
      const collection_ptr events = collection_of(client, kEventsCollection);
      const cursor_ptr cursor(
          mongoc_collection_find_with_opts(events.get(), filter.get(), opts.get(), primary_.get()));
      std::vector<recorded_event> out;
      for (json& doc : drain(cursor.get(), "read the log")) out.push_back(event_of(std::move(doc)));
      return out;
    });
  }

  // One transaction: read the stream's latest version, delete what is below both it and
  // before_version. Readers see the events all there or all gone.
  std::size_t truncate_stream(const stream_ref& stream, std::int64_t before_version) override {
    validate_truncate_stream(stream, before_version);
    const auto alive = enter();
    return in_transaction(
        "truncate stream " + where(stream.type, stream.id),
        [&](mongoc_client_t* client, mongoc_client_session_t* session) -> std::size_t {
          const collection_ptr events = collection_of(client, kEventsCollection);
          const std::int64_t latest = stream_head(events.get(), session, stream);
          const std::int64_t below = std::min(before_version, latest);
          if (below <= 1) return 0;
          const bson_ptr filter =
              to_bson({{"st", stream.type}, {"si", stream.id}, {"sv", {{"$lt", below}}}});
          const bson_ptr opts = options_in(session);
          bson_t reply;
          bson_error_t error;
          const json answer = finish(
              mongoc_collection_delete_many(events.get(), filter.get(), opts.get(), &reply, &error),
              reply, error, "delete events");
          return static_cast<std::size_t>(answer.value("deletedCount", std::int64_t{0}));
        });
  }

  bool wait_for(std::int64_t position, std::chrono::milliseconds timeout) override {
    const auto deadline = clock_type::now() + std::max(timeout, std::chrono::milliseconds::zero());
    start_watcher();
    while (true) {
      // The log itself is the truth; the change stream only ends the wait early.
      {
        const auto alive = enter();
        const std::int64_t head = run("read the log head", [&](mongoc_client_t* client) {
          const auto doc = find_by_id(client, nullptr, kLogCollection, "head");
          return doc ? int_of(*doc, "position") : std::int64_t{0};
        });
        if (head > position) return true;
        note_head(head);
      }
      const auto now = clock_type::now();
      if (now >= deadline) return false;
      std::unique_lock lock(notify_mutex_);
      const auto interval = watching_
                                ? options_.poll_interval
                                : std::min(options_.poll_interval, std::chrono::milliseconds(100));
      committed_.wait_until(lock, std::min(deadline, now + interval),
                            [&] { return closing_ || known_head_ > position; });
      if (closing_) throw store_closed_error("eventsourced: mongodb engine is closed");
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
    if (watcher_.joinable()) watcher_.join();
    std::unique_lock lock(lifetime_mutex_);  // waits for calls in progress
  }

 private:
  // --- Collections -----------------------------------------------------------------------------

  collection_ptr collection_of(mongoc_client_t* client, const std::string& name) {
    return collection_ptr(
        mongoc_client_get_collection(client, options_.database.c_str(), name.c_str()));
  }

  // Runs a database command; a NamespaceExists error counts as success when `exists_ok`.
  void database_command(mongoc_client_t* client, const json& command, bool exists_ok,
                        const std::string& what) {
    const database_ptr db(mongoc_client_get_database(client, options_.database.c_str()));
    const bson_ptr cmd = to_bson(command);
    bson_t reply;
    bson_error_t error;
    const bool ok =
        mongoc_database_write_command_with_opts(db.get(), cmd.get(), nullptr, &reply, &error);
    if (!ok && !(exists_ok && error.code == kNamespaceExists)) {
      const mongo_failure f(error, &reply, what);
      bson_destroy(&reply);
      throw f;
    }
    bson_destroy(&reply);
  }

  // Collections are created outside transactions (creating one inside a transaction has
  // restrictions that vary between server versions): the bookkeeping ones when the engine opens,
  // a document collection before the first commit of this engine object that writes to it.
  void create_bookkeeping() {
    run("create the event log", [&](mongoc_client_t* client) {
      database_command(client, {{"create", kEventsCollection}}, true, "create the events");
      database_command(client, {{"create", kLogCollection}}, true, "create the log head");
      database_command(
          client,
          {{"createIndexes", kEventsCollection},
           {"indexes",
            json::array({{{"key", {{"id", 1}}}, {"name", kEventIdIndex}, {"unique", true}},
                         {{"key", {{"st", 1}, {"si", 1}, {"sv", 1}}},
                          {"name", kStreamIndex},
                          {"unique", true}}})}},
          false, "index the events");
      return 0;
    });
  }

  void ensure_collection(const std::string& name) {
    {
      std::lock_guard lock(collections_mutex_);
      if (collections_.contains(name)) return;
    }
    run("create collection " + in_quotes(name), [&](mongoc_client_t* client) {
      database_command(client, {{"create", name}}, true, "create the collection");
      return 0;
    });
    std::lock_guard lock(collections_mutex_);
    collections_.insert(name);
  }

  std::optional<json> find_by_id(mongoc_client_t* client, mongoc_client_session_t* session,
                                 const std::string& collection, std::string_view id) {
    const collection_ptr c = collection_of(client, collection);
    const bson_ptr filter = to_bson({{"_id", id}});
    const bson_ptr opts = options_in(session, {{"limit", 1}});
    const cursor_ptr cursor(
        mongoc_collection_find_with_opts(c.get(), filter.get(), opts.get(), primary_.get()));
    auto docs = drain(cursor.get(), "read a document");
    if (docs.empty()) return std::nullopt;
    return std::move(docs.front());
  }

  // --- Commit ----------------------------------------------------------------------------------

  commit_result commit_once(mongoc_client_t* client, mongoc_client_session_t* session,
                            const commit_request& request) {
    commit_result result;
    result.versions.reserve(request.writes.size());
    for (const document_write& w : request.writes) {
      result.versions.push_back(apply_write(client, session, w, request));
    }
    std::vector<stream_append> derived;
    if (request.derived_appends) {
      derived = request.derived_appends(result.versions);
      validate_derived_appends(request, derived);
      check_mongodb_depth(commit_request{}, derived);
    }
    std::size_t event_count = 0;
    for (const auto* appends : {&request.appends, &std::as_const(derived)}) {
      for (const stream_append& a : *appends) event_count += a.events.size();
    }
    if (event_count == 0) return result;
    const auto now =
        std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
    const collection_ptr events = collection_of(client, kEventsCollection);
    result.events.reserve(event_count);
    for (const auto* appends : {&request.appends, &std::as_const(derived)}) {
      for (const stream_append& a : *appends) {
        std::int64_t current = stream_head(events.get(), session, a.stream);
        if (a.expected_version && *a.expected_version != current) {
          throw conflict_error(conflict_target::stream, a.stream.type, a.stream.id,
                               *a.expected_version, current);
        }
        for (const new_event& e : a.events) {
          result.events.push_back(
              recorded_event{e.id, e.type, a.stream, ++current, 0, now, e.data, e.metadata});
        }
      }
    }
    // Positions last: the increment of the log head is what serialises commits with events, so
    // it is held for as short a time as possible.
    const std::int64_t top = advance_head(client, session, static_cast<std::int64_t>(event_count));
    std::int64_t position = top - static_cast<std::int64_t>(event_count);
    std::vector<bson_ptr> docs;
    docs.reserve(event_count);
    for (recorded_event& e : result.events) {
      e.position = ++position;
      docs.push_back(to_bson({{"_id", e.position},
                              {"id", e.id},
                              {"st", e.stream.type},
                              {"si", e.stream.id},
                              {"sv", e.stream_version},
                              {"type", e.type},
                              {"ts", now.time_since_epoch().count()},
                              {"data", e.data},
                              {"metadata", e.metadata}}));
    }
    // A plain array: a std::vector<const bson_t*> would drop bson_t's alignment attribute.
    struct pointer_array {
      const bson_t** data;
      ~pointer_array() { delete[] data; }
    } pointers{new const bson_t*[docs.size()]};
    for (std::size_t i = 0; i < docs.size(); ++i) pointers.data[i] = docs[i].get();
    const bson_ptr opts = options_in(session, {{"validate", false}, {"ordered", true}});
    bson_t reply;
    bson_error_t error;
    try {
      finish(mongoc_collection_insert_many(events.get(), pointers.data, docs.size(), opts.get(),
                                           &reply, &error),
             reply, error, "record events");
    } catch (const mongo_failure& f) {
      if (f.duplicate_key() && std::string(f.what()).find(kEventIdIndex) != std::string::npos) {
        std::string ids;
        for (const auto& e : result.events) ids += (ids.empty() ? "" : ", ") + in_quotes(e.id);
        throw invalid_argument_error(
            "an event id of this commit is already in the log (ids: " + ids + ")");
      }
      throw;
    }
    return result;
  }

  // The stream's latest version (0 when it has no events), read inside the transaction.
  std::int64_t stream_head(mongoc_collection_t* events, mongoc_client_session_t* session,
                           const stream_ref& stream) {
    const bson_ptr filter = to_bson({{"st", stream.type}, {"si", stream.id}});
    const bson_ptr opts =
        options_in(session, {{"sort", {{"sv", -1}}}, {"limit", 1}, {"projection", {{"sv", 1}}}});
    const cursor_ptr cursor(
        mongoc_collection_find_with_opts(events, filter.get(), opts.get(), primary_.get()));
    const auto docs = drain(cursor.get(), "read a stream's version");
    return docs.empty() ? 0 : int_of(docs.front(), "sv");
  }

  // Adds n to the log head inside the transaction and returns the new head (an update, then a
  // read of it: the transaction sees its own write).
  std::int64_t advance_head(mongoc_client_t* client, mongoc_client_session_t* session,
                            std::int64_t n) {
    const collection_ptr log = collection_of(client, kLogCollection);
    const bson_ptr filter = to_bson({{"_id", "head"}});
    const bson_ptr update = to_bson({{"$inc", {{"position", n}}}});
    const bson_ptr opts = options_in(session, {{"upsert", true}});
    bson_t reply;
    bson_error_t error;
    finish(mongoc_collection_update_one(log.get(), filter.get(), update.get(), opts.get(), &reply,
                                        &error),
           reply, error, "advance the log head");
    const auto head = find_by_id(client, session, kLogCollection, "head");
    if (!head) throw engine_error("eventsourced: mongodb: the log head vanished in a transaction");
    return int_of(*head, "position");
  }

  // Checks one write's version and applies it; returns the version the document has afterwards.
  // Every path writes the document, so a concurrent change to it makes this transaction fail
  // with a write conflict (and be retried) instead of committing on a stale check.
  std::int64_t apply_write(mongoc_client_t* client, mongoc_client_session_t* session,
                           const document_write& w, const commit_request& request) {
    const auto stored = find_by_id(client, session, w.collection, w.id);
    const bool live = stored && !body_of(*stored).is_null();
    const std::int64_t stored_version = stored ? int_of(*stored, "version") : 0;
    const std::int64_t live_version = live ? stored_version : 0;
    if (live_version != w.expected_version) {
      throw conflict_error(conflict_target::document, w.collection, w.id, w.expected_version,
                           live_version);
    }
    json doc = {{"_id", w.id}};
    std::int64_t version = 0;
    switch (w.op) {
      case write_op::check:
        version = w.expected_version;
        doc["version"] = stored_version;
        doc["body"] = stored ? body_of(*stored) : json(nullptr);
        doc["nonce"] = next_nonce();
        break;
      case write_op::erase:
        version = stored_version + 1;
        doc["version"] = version;
        doc["body"] = nullptr;
        break;
      case write_op::put: {
        // A creation continues after a tombstone's version.
        version = stored_version + 1;
        json body = w.body;
        if (!request.version_field.empty()) body[request.version_field] = version;
        if (request.max_body_bytes != 0) {
          std::string text;
          try {
            text = body.dump();
          } catch (const json::exception& e) {
            throw serialization_error("the body of " + where(w.collection, w.id) +
                                      " cannot be written as JSON: " + e.what());
          }
          engine_detail::check_body_size(w, text.size(), request.max_body_bytes);
        }
        doc["version"] = version;
        doc["body"] = std::move(body);
        break;
      }
    }
    bson_ptr replacement;
    try {
      replacement = to_bson(doc);
    } catch (const invalid_argument_error& e) {
      throw invalid_argument_error("the body of " + where(w.collection, w.id) +
                                   " cannot be stored in MongoDB: " + e.what());
    }
    const collection_ptr c = collection_of(client, w.collection);
    const bson_ptr filter = to_bson({{"_id", w.id}});
    const bson_ptr opts = options_in(session, {{"upsert", true}, {"validate", false}});
    bson_t reply;
    bson_error_t error;
    finish(mongoc_collection_replace_one(c.get(), filter.get(), replacement.get(), opts.get(),
                                         &reply, &error),
           reply, error, "write document " + where(w.collection, w.id));
    return version;
  }

  std::int64_t next_nonce() {
    std::lock_guard lock(nonce_mutex_);
    return static_cast<std::int64_t>(nonce_source_() >> 1);
  }

  // --- Transactions, retries, errors -----------------------------------------------------------

  // Runs fn(client, session) in a transaction and commits it. A transient failure (a write
  // conflict with a concurrent transaction, a failover, a lost connection before the commit)
  // starts the whole transaction again, with a short growing backoff, until
  // options_.transaction_timeout has passed. The library's own exceptions (conflict_error,
  // invalid_argument_error, what derived_appends throws) abort the transaction and propagate.
  template <typename Fn>
  auto in_transaction(const std::string& operation, Fn&& fn)
      -> decltype(fn(std::declval<mongoc_client_t*>(), std::declval<mongoc_client_session_t*>())) {
    const auto deadline = clock_type::now() + options_.transaction_timeout;
    for (int attempt = 1;; ++attempt) {
      try {
        auto client = pool_.acquire();
        bson_error_t error;
        const session_ptr session(mongoc_client_start_session(client.get(), nullptr, &error));
        if (!session) fail(error, nullptr, "start a session");
        if (!mongoc_client_session_start_transaction(session.get(), transaction_options_.get(),
                                                     &error)) {
          fail(error, nullptr, "start a transaction");
        }
        auto result = fn(client.get(), session.get());
        commit_transaction(session.get());
        return result;  // the session's destructor aborts a transaction not committed
      } catch (const mongo_failure& f) {
        // A duplicate key here is a concurrent creation of the same document (a duplicate
        // event id was turned into invalid_argument_error already): the next attempt sees it.
        const bool retry = !f.server_selection() && (f.transient() || f.duplicate_key()) &&
                           clock_type::now() < deadline;
        if (retry) {
          backoff(attempt);
          continue;
        }
        rethrow(f, operation);
      }
    }
  }

  // Commits; retries the commit itself while its outcome is unknown (the drivers' specification
  // makes commitTransaction safe to repeat). Still unknown after that:
  // commit_outcome_unknown_error.
  void commit_transaction(mongoc_client_session_t* session) {
    for (int attempt = 1;; ++attempt) {
      bson_t reply;
      bson_error_t error;
      const bool ok = mongoc_client_session_commit_transaction(session, &reply, &error);
      if (ok) {
        bson_destroy(&reply);
        return;
      }
      const mongo_failure f(error, &reply, "commit");
      bson_destroy(&reply);
      if (!f.commit_unknown()) throw f;
      if (attempt >= 3) {
        throw commit_outcome_unknown_error(std::string("eventsourced: mongodb (") + pool_.hosts() +
                                           "): " + f.what() +
                                           "; the commit may or may not have been applied");
      }
      backoff(attempt);
    }
  }

  // Runs fn on a pooled client; a lost connection is retried a few times (reads only: nothing fn
  // does writes outside a transaction of its own, or repeating it is harmless).
  template <typename Fn>
  auto run(const std::string& operation, Fn&& fn)
      -> decltype(fn(std::declval<mongoc_client_t*>())) {
    for (int attempt = 1;; ++attempt) {
      try {
        auto client = pool_.acquire();
        return fn(client.get());
      } catch (const mongo_failure& f) {
        if (f.unavailable() && !f.server_selection() && attempt < 3) {
          backoff(attempt);
          continue;
        }
        rethrow(f, operation);
      }
    }
  }

  void backoff(int attempt) {
    thread_local std::minstd_rand jitter(std::random_device{}());
    const int base = 5 << std::min(attempt - 1, 6);  // 5 ms .. 320 ms
    std::this_thread::sleep_for(std::chrono::milliseconds(
        base / 2 + static_cast<int>(jitter() % static_cast<unsigned>(base))));
  }

  [[noreturn]] void rethrow(const mongo_failure& f, const std::string& operation) {
    const std::string what =
        "eventsourced: mongodb (" + pool_.hosts() + "): " + operation + ": " + f.what();
    if (f.unavailable() || f.transient()) throw engine_unavailable_error(what);
    throw engine_error(what);
  }

  static std::int64_t clamp(std::size_t n) {
    constexpr auto kMax = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
    return static_cast<std::int64_t>(n > kMax ? kMax : n);
  }

  static transaction_opts_ptr make_transaction_options() {
    transaction_opts_ptr opts(mongoc_transaction_opts_new());
    const read_concern_ptr read(mongoc_read_concern_new());
    mongoc_read_concern_set_level(read.get(), MONGOC_READ_CONCERN_LEVEL_SNAPSHOT);
    const write_concern_ptr write(mongoc_write_concern_new());
    mongoc_write_concern_set_w(write.get(), MONGOC_WRITE_CONCERN_W_MAJORITY);
    mongoc_transaction_opts_set_read_concern(opts.get(), read.get());
    mongoc_transaction_opts_set_write_concern(opts.get(), write.get());
    return opts;
  }

  // --- Lifetime and notifications --------------------------------------------------------------

  std::shared_lock<std::shared_mutex> enter() {
    if (closing_) throw store_closed_error("eventsourced: mongodb engine is closed");
    std::shared_lock lock(lifetime_mutex_);
    if (closing_) throw store_closed_error("eventsourced: mongodb engine is closed");
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

  void start_watcher() {
    std::call_once(watcher_started_, [this] {
      std::lock_guard lock(notify_mutex_);
      if (!closing_) watcher_ = std::thread([this] { watch_loop(); });
    });
  }

  // Keeps a change stream open on the log head; every change carries the new head (also from
  // other processes). While it is down, wait_for() polls more often.
  void watch_loop() {
    const auto stopping = [&] {
      std::lock_guard lock(notify_mutex_);
      return closing_.load();
    };
    const bson_ptr pipeline = to_bson({{"pipeline", json::array()}});
    const bson_ptr opts = to_bson({{"fullDocument", "updateLookup"}, {"maxAwaitTimeMS", 200}});
    while (!stopping()) {
      try {
        auto client = pool_.acquire();
        const collection_ptr log = collection_of(client.get(), kLogCollection);
        const change_stream_ptr stream(
            mongoc_collection_watch(log.get(), pipeline.get(), opts.get()));
        bool opened = false;
        while (!stopping()) {
          const bson_t* change = nullptr;
          if (mongoc_change_stream_next(stream.get(), &change)) {
            const json doc = to_json(*change);
            const auto full = doc.find("fullDocument");
            if (full != doc.end() && full->is_object() && full->contains("position")) {
              note_head((*full)["position"].get<std::int64_t>());
            }
            continue;
          }
          bson_error_t error;
          const bson_t* reply = nullptr;
          if (mongoc_change_stream_error_document(stream.get(), &error, &reply)) break;
          if (!opened) {
            opened = true;
            set_watching(true);
            committed_.notify_all();  // waiters look at the log again: changes may have been missed
          }
        }
      } catch (const std::exception&) {
        // Not expected (a reply that does not convert); fall through to the pause and reopen.
      }
      set_watching(false);
      std::unique_lock lock(notify_mutex_);
      committed_.wait_for(lock, std::chrono::milliseconds(200), [&] { return closing_.load(); });
    }
    set_watching(false);
  }

  void set_watching(bool on) {
    std::lock_guard lock(notify_mutex_);
    watching_ = on;
  }

  const mongodb_options options_;
  client_pool pool_;
  const transaction_opts_ptr transaction_options_ = make_transaction_options();
  // Every read goes to the primary, whatever readPreference the URI names: a secondary could
  // return a version older than one this engine has just committed.
  const read_prefs_ptr primary_{mongoc_read_prefs_new(MONGOC_READ_PRIMARY)};

  std::mutex collections_mutex_;
  std::set<std::string> collections_;  // GUARDED_BY(collections_mutex_): known to exist

  std::mutex nonce_mutex_;
  std::mt19937_64 nonce_source_{std::random_device{}()};  // GUARDED_BY(nonce_mutex_)

  std::shared_mutex lifetime_mutex_;  // shared by every call, exclusive by close()
  std::atomic<bool> closing_{false};  // set under notify_mutex_

  std::mutex notify_mutex_;
  std::condition_variable committed_;  // a higher head is known, the watcher (re)started, close
  std::int64_t known_head_ = 0;        // GUARDED_BY(notify_mutex_)
  bool watching_ = false;              // GUARDED_BY(notify_mutex_)
  std::once_flag watcher_started_;
  std::thread watcher_;
};

}  // namespace

std::unique_ptr<engine> make_mongodb_engine(const mongodb_options& options) {
  if (options.poll_interval.count() <= 0) {
    throw invalid_argument_error("mongodb_options.poll_interval must be positive");
  }
  if (options.transaction_timeout.count() <= 0) {
    throw invalid_argument_error("mongodb_options.transaction_timeout must be positive");
  }
  return std::make_unique<mongodb_engine>(options);
}

void register_mongodb_engine_scheme() {
  static std::once_flag once;
  std::call_once(once, [] {
    const engine_factory factory = [](std::string_view uri) {
      return make_mongodb_engine(parse_mongodb_uri(uri));
    };
    register_engine_scheme("mongodb", factory);
    register_engine_scheme("mongodb+srv", factory);
  });
}

}  // namespace eventsourced
