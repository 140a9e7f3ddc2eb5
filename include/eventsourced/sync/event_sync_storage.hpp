// event_sync_storage: the seeds' EventSyncStorage — a store whose every write of a document also
// records a sync event, the document's vector clock and, every N writes, a snapshot, so that a
// client that went away can catch up with get_missing_events().
//
//   auto sync = eventsourced::event_sync_storage::open("sqlite:game.db", {.client_id = "server"});
//   sync->find_one_and_upsert("games", {{"id", "g1"}, {"gold", 0}});
//   sync->find_one_and_update("games", "g1", edit, {.event_metadata = {{"client_id", "ann"}}});
//   auto batch = sync->get_missing_events("games", "g1", {.version = 1});
//   // apply batch.snapshot (if any), then each event's data["json_patch"], in order
//
// What a write records, in the same engine commit as the document change (the store's mapper,
// sync_event_mapper below; DESIGN.md invariant 2 — a write whose sync event cannot be recorded
// commits nothing and throws):
//   stream    {kSyncStreamType, "<collection>/<id>"}; its stream version equals the document's
//             version (every write of the document, delete included, is one sync event)
//   type      "sync.created" | "sync.updated" | "sync.deleted"
//   data      {"op": "create"|"update"|"delete", "version": document version after the write,
//              "json_patch": RFC 6902 patch before → after (null stands for "does not exist"),
//              "client_id", "vector_clock": the document's vector clock after the write}
//   metadata  the store's "document" member, "client_id" and "vector_clock", and the members of
//             write_options::event_metadata.
// The client id of a write is write_options::event_metadata["client_id"] when set (a non-empty
// string), else sync_options::client_id.
//
// Vector clocks. A document's vector clock maps each client id to the number of writes that
// client made to the document; it lives in the sync events (each carries the clock after its
// write), so it commits with the write. Each write adds one to its client's counter: a clock
// never moves back. update_vector_clock() records what a *client* has seen of a document (the
// seed's state vector): element-wise max with what it acknowledged before, so a stale or lower
// acknowledgement changes nothing; it is kept as a document of the reserved collection
// kSyncStateCollection.
//
// Snapshots. After a write that brings a document to a version that is a multiple of
// sync_options::snapshot_interval, the body at that version (null when deleted) and its vector
// clock are written to the reserved collection kSyncSnapshotCollection, into one of
// snapshots_kept slots (version / interval modulo snapshots_kept), so only the latest
// snapshots_kept are kept and nothing needs cleaning up. The snapshot is written right after the
// write's commit, not in it (a mapper can only add events): if the process dies in between, or
// the snapshot write fails, the snapshot is missing — never wrong — and get_missing_events serves
// the client from an older snapshot or from the events. A snapshot failure does not fail the
// write (it is committed): snapshot_failures() counts them and sync_options::on_snapshot_error
// hears of them. This is the repository's snapshot policy.
//
// Compaction (retention). By default no event is ever deleted. With sync_options::compact_events,
// after a snapshot is written the document's sync events older than its oldest snapshot still
// kept are deleted (engine::truncate_stream): every client can still be served — a client whose
// version is no longer in the log, or 0, gets the latest snapshot and the events after it, which
// are never deleted (the oldest kept snapshot is at or before the latest, and the event at the
// oldest snapshot's version stays). Events not covered by a kept snapshot are never deleted: when
// a snapshot could not be written, nothing is compacted for it. A compaction failure is handled
// like a snapshot failure (counted by snapshot_failures(), reported to on_snapshot_error; the
// write stays committed); the next snapshot's compaction deletes what this one left.
//
// Transactions. with_transaction(fn) runs fn(sync_transaction&) as store::with_transaction
// (storage/transaction.hpp: all or nothing, serializable over the documents it touches by id,
// retried on conflict): every document it changes records its sync event — with its vector clock,
// and the transaction's client id — in the transaction's one commit, and a snapshot after it when
// the new version calls for one. Typed access: collection<T>(name) (sync_collection<T> below), and
// sync_transaction::collection<T>(name) inside a transaction.
//
// Writes that go around this class (store()->documents(...), store()->with_transaction) fail
// with invalid_argument_error: the mapper refuses a change without sync information, so no
// document of the store can change without its sync event. A document must be written through
// event_sync_storage from its first write on (its sync stream version equals its document
// version).
//
// \par Thread safety
// Safe to use from many threads at once, like the store it holds.
//
// \par Ownership
// Owns (shares) the store. close() — or the destructor — closes it.
//
// \par Exceptions
// invalid_argument_error for bad names, ids, client ids, clocks or client states (nothing is
// changed); not_found_error for a document with no sync history; conflict_error when a write
// keeps losing to concurrent writers (after store_options::retry.max_attempts); otherwise what the
// engine throws (store_closed_error, engine_unavailable_error, engine_error).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <eventsourced/detail/convert.hpp>
#include <eventsourced/event/event.hpp>
#include <eventsourced/event/mapper.hpp>
#include <eventsourced/storage/collection.hpp>
#include <eventsourced/storage/document_collection.hpp>
#include <eventsourced/storage/store.hpp>
#include <eventsourced/storage/transaction.hpp>

namespace eventsourced {

// Reserved names (engine.hpp: kReservedPrefix).
inline constexpr std::string_view kSyncStreamType = "_es_sync";
inline constexpr std::string_view kSyncSnapshotCollection = "_es_sync_snapshots";
inline constexpr std::string_view kSyncStateCollection = "_es_sync_states";
// Stream type of the records of client writes by mutation id (apply_client_write).
inline constexpr std::string_view kSyncMutationStreamType = "_es_sync_mutations";
// Metadata member naming the client that made a write.
inline constexpr std::string_view kClientIdKey = "client_id";
inline constexpr std::string_view kVectorClockKey = "vector_clock";
// The write_options::event_metadata member through which event_sync_storage tells the mapper
// the client id, version and vector clock a write starts from.
inline constexpr std::string_view kSyncMetadataKey = "_es_sync";

// Client id → number of writes (or, for an acknowledgement, writes seen).
using vector_clock_map = std::map<std::string, std::int64_t, std::less<>>;

// The stream holding a document's sync events.
stream_ref sync_stream(std::string_view collection, std::string_view id);
// The stream recording a client write by mutation id (apply_client_write).
stream_ref sync_mutation_stream(std::string_view client_id, std::string_view mutation_id);

// Records the sync event of every change (header comment), after the events of an optional
// inner mapper (e.g. a default_event_mapper). It reads the clock the write starts from out of
// the change's metadata, where event_sync_storage puts it (member "_es_sync": reserved members of
// write_options::event_metadata reach mappers but are never copied into events). A change without
// it throws invalid_argument_error; one whose version is not the expected successor throws
// conflict_error (event_sync_storage then retries on fresh state).
// \par Thread safety
// map() may be called from many threads at once.
class sync_event_mapper : public event_mapper {
 public:
  explicit sync_event_mapper(std::shared_ptr<const event_mapper> inner = nullptr)
      : inner_(std::move(inner)) {}
  std::vector<mapped_event> map(const document_change& change) const override;

 private:
  std::shared_ptr<const event_mapper> inner_;
};

struct sync_options {
  // The store's options. Its mapper, if any, is kept as the inner mapper of a sync_event_mapper.
  store_options storage{};
  // The client id of writes that do not name one (event_metadata["client_id"]).
  std::string client_id = "server";
  // A snapshot every this many versions of a document (>= 1).
  std::int64_t snapshot_interval = 100;
  // How many snapshots of a document are kept (>= 1).
  std::size_t snapshots_kept = 2;
  // A client missing more events than this gets a snapshot first (>= 1).
  std::size_t max_missing_events = 100;
  // After a snapshot is written, events older than the oldest snapshot still kept are deleted
  // (see "Compaction" in the header comment): storage per document stays bounded by about
  // snapshot_interval * snapshots_kept events. Off: every event is kept.
  bool compact_events = false;
  // Called (on the writing thread) with what a snapshot write or a compaction threw, as the
  // repository's on_snapshot_error (aggregate/repository.hpp): the write itself succeeded. May be
  // empty.
  std::function<void(const stream_ref& document, std::exception_ptr error)> on_snapshot_error{};
};

// A write a client sends (the sync service's "write" message). Made at most once per
// (client_id, mutation_id): a resend returns the first outcome and changes nothing.
struct client_write {
  enum class kind { put, patch, remove };
  std::string client_id;
  // Chosen by the client, unique among its writes: 1..kMaxMutationIdBytes bytes of UTF-8.
  std::string mutation_id;
  kind op = kind::put;
  // put: the whole body, an object (its id field, when present, must be the document's id).
  json document{};
  // patch: an RFC 6902 JSON Patch (an array) applied to the current body with
  // apply_json_patch (storage/json_patch.hpp): at most 1,000 operations, none nesting the body
  // deeper than the store's max_json_depth, copies of at most max_document_bytes in all.
  json patch{};
  // When set, the write applies only to this version of the document, else conflict_error (not
  // retried: the client decides). When unset, it applies to whatever version is current.
  std::optional<std::int64_t> base_version{};
};

inline constexpr std::size_t kMaxMutationIdBytes = 128;
// A synced document's collection name and id together, in bytes: the library keeps its sync
// bookkeeping (snapshot slots) under ids made of both plus a 16-byte suffix, and those must fit
// in kMaxIdBytes. Longer: invalid_argument_error.
inline constexpr std::size_t kMaxSyncDocumentKeyBytes = kMaxIdBytes - 16;

struct client_write_result {
  // The document's version after the write (for a duplicate: after its first application).
  std::int64_t version = 0;
  // The mutation id was applied before: nothing was done now.
  bool duplicate = false;
  // The write changed the document (false: it already had that content, or a delete found
  // nothing); the outcome is recorded either way.
  bool changed = false;
};

// What a client has of a document: the version (stream version) it last applied; 0: nothing.
struct client_state {
  std::int64_t version = 0;
};

// A snapshot of a document.
struct sync_snapshot {
  std::int64_t version = 0;  // the document's version
  json document;             // the body at that version; null: deleted at that version
  vector_clock_map vector_clock;
};

// What get_missing_events returns: apply snapshot (when set) then events, in order.
struct sync_batch {
  std::optional<sync_snapshot> snapshot{};
  std::vector<event> events{};
  // The version the client has after applying the batch.
  std::int64_t version = 0;
};

class event_sync_storage;
template <typename T>
class sync_collection;

// The transaction event_sync_storage::with_transaction hands its function: transaction's
// operations (storage/transaction.hpp), on user collections only. The first time it touches a
// document it also reads the vector clock and version the document's next sync event starts from;
// at commit each changed document gets its sync event, in the same commit. Throws
// invalid_argument_error for reserved or invalid names and ids, and what transaction throws.
// \par Thread safety
// Belongs to the thread running the function; do not share it or keep it past the function.
class sync_transaction {
 public:
  sync_transaction(const sync_transaction&) = delete;
  sync_transaction& operator=(const sync_transaction&) = delete;

  template <typename T>
  transaction_collection<T, sync_transaction> collection(std::string_view name) {
    return transaction_collection<T, sync_transaction>(*this, name);
  }

  std::optional<json> find_one(std::string_view collection, std::string_view id);
  // Creates or replaces the document with this body (its id is read from the id field).
  void put(std::string_view collection, json body);
  // Throws not_found_error when the document does not exist. Returns the new body (null when the
  // edit deleted it).
  json find_one_and_update(std::string_view collection, std::string_view id,
                           const std::function<edit_result<json>(const json&)>& edit);
  // Returns false when the document did not exist.
  bool delete_one(std::string_view collection, std::string_view id);

 private:
  friend class event_sync_storage;
  sync_transaction(event_sync_storage& owner, transaction& tx, std::string client_id)
      : owner_(owner), tx_(tx), client_(std::move(client_id)) {}

  struct touched {
    std::int64_t base_version = 0;
    vector_clock_map base_clock;
    json before;  // as the transaction first read it; null: missing
  };
  // Reads the document into the transaction and, the first time, its sync base.
  touched& touch(std::string_view collection, std::string_view id);
  // The snapshots this attempt's commit calls for (documents whose new version is a multiple of
  // the snapshot interval), as (collection, id, snapshot).
  struct due_snapshot {
    std::string collection;
    std::string id;
    sync_snapshot snapshot;
  };
  std::vector<due_snapshot> snapshots_due();

  event_sync_storage& owner_;
  transaction& tx_;
  std::string client_;
  std::map<std::pair<std::string, std::string>, touched> touched_;
};

class event_sync_storage {
 public:
  // Opens the store at uri with a sync_event_mapper. Throws invalid_argument_error for bad
  // options, and what store::open throws.
  static std::unique_ptr<event_sync_storage> open(std::string_view uri, sync_options options = {});
  // The same over an engine you made yourself (store::wrap).
  static std::unique_ptr<event_sync_storage> wrap(std::unique_ptr<eventsourced::engine> engine,
                                                  sync_options options = {});

  event_sync_storage(const event_sync_storage&) = delete;
  event_sync_storage& operator=(const event_sync_storage&) = delete;
  ~event_sync_storage();

  // The document, or nullopt.
  std::optional<json> find_one(std::string_view collection, std::string_view id) const;
  // As document_collection's operations (document_collection.hpp); each write records its sync
  // event, vector clock and snapshot as described above. Conflicts are retried on fresh state.
  update_result<json> find_one_and_upsert(std::string_view collection, json body,
                                          const write_options& options = {});
  update_result<json> find_one_and_update(std::string_view collection, std::string_view id,
                                          const document_collection::edit_function& edit,
                                          const write_options& options = {});
  bool delete_one(std::string_view collection, std::string_view id,
                  const write_options& options = {});
  // The documents of a collection matching filter (engine/query.hpp), as
  // document_collection::find_many.
  std::vector<json> find_many(std::string_view collection, const json& filter = json::object(),
                              const find_options& options = {}) const;

  // Typed access to one collection (sync_collection below). Throws invalid_argument_error for an
  // invalid or reserved name.
  template <typename T>
  sync_collection<T> collection(std::string_view name);

  // Runs fn(sync_transaction&) and commits what it did atomically, each changed document with its
  // sync event (header comment, "Transactions"); returns what fn returns. The client id is
  // options.event_metadata["client_id"] or sync_options::client_id. fn may run several times
  // (conflicts are retried per options.retry or store_options::retry); if it throws, nothing is
  // written and the exception propagates. Throws conflict_error when retries run out, and what
  // the store throws.
  template <typename F>
  auto with_transaction(F&& fn, const write_options& options = {}) {
    using result = std::invoke_result_t<F&, sync_transaction&>;
    if constexpr (std::is_void_v<result>) {
      run_transaction([&](sync_transaction& tx) { fn(tx); }, options);
    } else {
      std::optional<result> out;
      run_transaction([&](sync_transaction& tx) { out.emplace(fn(tx)); }, options);
      return std::move(*out);
    }
  }

  // The document's vector clock after its latest write (deleted documents included). Throws
  // not_found_error for a document never written.
  vector_clock_map vector_clock(std::string_view collection, std::string_view id) const;

  // Applies a client's write once per (client_id, mutation_id). The outcome is recorded in the
  // same commit as the write — an event on stream {kSyncMutationStreamType, <client, mutation
  // id>} — so a resend (even racing the first send, from another process) returns the first
  // outcome with duplicate = true and changes nothing; a write that changes nothing is recorded
  // too. The write's sync event carries data["mutation_id"]. Throws invalid_argument_error for a
  // bad client id, mutation id, op payload or a body whose id differs, or a patch that cannot be
  // applied (a failing "test" op included); not_found_error for a patch of a document that does not
  // exist; conflict_error when base_version is set and the document is at another version.
  // Nothing is changed when it throws.
  // Retention: the records are kept for ever — one small event per client write, also with
  // compact_events (which deletes only documents' sync events): nothing prunes them yet, so a
  // resend is recognised however late it comes.
  client_write_result apply_client_write(std::string_view collection, std::string_view id,
                                         const client_write& write);

  // Records that client_id has seen `seen` of the document: the stored acknowledgement becomes
  // the element-wise max of the old one and `seen`; returns it. Throws invalid_argument_error for
  // an empty/invalid client id, a negative counter, or a counter above the document's own clock
  // (a state from the future); not_found_error for a document never written. Nothing is changed
  // when it throws. An acknowledgement is one document of kSyncStateCollection per (client,
  // document), kept for ever (also after the document is deleted).
  vector_clock_map update_vector_clock(std::string_view collection, std::string_view id,
                                       std::string_view client_id, const vector_clock_map& seen);
  // What client_id acknowledged for the document; nullopt when nothing.
  std::optional<vector_clock_map> acknowledged_vector_clock(std::string_view collection,
                                                            std::string_view id,
                                                            std::string_view client_id) const;

  // The latest snapshot of the document, or nullopt.
  std::optional<sync_snapshot> latest_snapshot(std::string_view collection,
                                               std::string_view id) const;

  // What a client at `state` is missing: the events after state.version, in stream order,
  // preceded by the latest snapshot when the client misses more than max_missing_events events
  // (or when the event after its version is no longer in the log: compacted). Reads the stream from
  // the client's version (and at most snapshots_kept snapshot slots), so the cost grows with what
  // is missing, not with the document's history. Throws invalid_argument_error for a negative
  // version or one above the document's (a state from the future); not_found_error for a
  // document never written.
  sync_batch get_missing_events(std::string_view collection, std::string_view id,
                                client_state state) const;

  // Snapshots that could not be written, and compactions that failed (see the header comment).
  std::int64_t snapshot_failures() const noexcept { return snapshot_failures_.load(); }

  const std::shared_ptr<eventsourced::store>& store() const noexcept { return store_; }
  const sync_options& options() const noexcept { return options_; }

  // Closes the store. Idempotent; never throws.
  void close() noexcept;

 private:
  friend class sync_transaction;
  event_sync_storage(std::shared_ptr<eventsourced::store> store, sync_options options);
  void run_transaction(const std::function<void(sync_transaction&)>& fn,
                       const write_options& options);

  // The clock and version a write of the document starts from.
  struct sync_base {
    std::int64_t version = 0;
    vector_clock_map clock;
  };
  sync_base base_of(std::string_view collection, std::string_view id) const;
  // The latest sync event of the document, if any.
  std::optional<event> head_event(std::string_view collection, std::string_view id) const;
  // Runs attempt (one store write, retries off) with the base stamped into its metadata, and
  // again on fresh state after a conflict. attempt returns whether it wrote, and the body after
  // the write (null for a delete). Writes the snapshot when the new version calls for one.
  void write(std::string_view collection, std::string_view id, const write_options& options,
             const std::function<bool(const write_options&, json& after)>& attempt);
  // Writes s into its slot, then compacts when sync_options::compact_events is set. Never throws:
  // failures are counted and reported (header comment).
  void write_snapshot(std::string_view collection, std::string_view id, const sync_snapshot& s);
  // Deletes the document's sync events before its oldest kept snapshot. Throws what the engine
  // throws.
  void compact(std::string_view collection, std::string_view id);
  // One attempt of get_missing_events; nullopt when a concurrent compaction changed the stream
  // between its reads (the caller tries again).
  std::optional<sync_batch> try_get_missing_events(std::string_view collection, std::string_view id,
                                                   client_state state) const;
  std::string client_of(const write_options& options) const;

  std::shared_ptr<eventsourced::store> store_;
  sync_options options_;
  std::atomic<std::int64_t> snapshot_failures_{0};
};

// Typed access to the documents of one collection of an event_sync_storage: the operations of
// collection<T> (storage/collection.hpp) that event_sync_storage offers, each write recording its
// sync event. A body that does not convert to T throws serialization_error and changes nothing.
// \par Thread safety
// A cheap, copyable handle, usable from many threads; it refers to the storage, which must
// outlive it.
template <typename T>
class sync_collection {
 public:
  sync_collection(event_sync_storage& owner, std::string_view name) : owner_(&owner), name_(name) {
    validate_collection_name(name_);
    if (name_.starts_with(kReservedPrefix)) {
      throw invalid_argument_error("eventsourced: collection '" + name_ +
                                   "' has the reserved prefix " + std::string(kReservedPrefix));
    }
  }

  const std::string& name() const noexcept { return name_; }

  std::optional<T> find_one(std::string_view id) const {
    auto body = owner_->find_one(name_, id);
    if (!body) return std::nullopt;
    return detail::from_body<T>(*body, name_, id);
  }
  std::vector<T> find_many(const json& filter = json::object(),
                           const find_options& options = {}) const {
    std::vector<T> out;
    for (const json& body : owner_->find_many(name_, filter, options)) {
      out.push_back(detail::from_body<T>(body, name_, body_id(body)));
    }
    return out;
  }
  update_result<T> find_one_and_upsert(const T& document, const write_options& options = {}) {
    return typed(owner_->find_one_and_upsert(name_, detail::to_body(document, name_), options));
  }
  // edit: T(T) or edit_result<T>(T). See edit.hpp.
  template <typename F>
  update_result<T> find_one_and_update(std::string_view id, F edit,
                                       const write_options& options = {}) {
    return typed(owner_->find_one_and_update(
        name_, id,
        [&](const json& body) { return detail::run_typed_edit<T>(edit, body, name_, id); },
        options));
  }
  bool delete_one(std::string_view id, const write_options& options = {}) {
    return owner_->delete_one(name_, id, options);
  }

 private:
  std::string body_id(const json& body) const {
    auto it = body.find(owner_->store()->options().id_field);
    return it != body.end() && it->is_string() ? it->template get<std::string>() : std::string();
  }
  update_result<T> typed(update_result<json> r) const {
    return {detail::from_body<T>(r.document, name_, body_id(r.document)), std::move(r.diff),
            std::move(r.events)};
  }

  event_sync_storage* owner_;
  std::string name_;
};

template <typename T>
sync_collection<T> event_sync_storage::collection(std::string_view name) {
  return sync_collection<T>(*this, name);
}

}  // namespace eventsourced
