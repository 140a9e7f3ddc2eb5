// The store: an engine plus the storage layer's options, and the entry point of the library.
//
//   auto store = eventsourced::open("sqlite:game.db");   // or "memory:", "sqlite::memory:"
//   auto players = store->collection<Player>("players");
//
// \par Thread safety
// A store is safe to use from many threads at once; so are the collection handles it gives out.
// close() may be called while other threads use the store: their later calls throw
// store_closed_error.
//
// \par Ownership
// open() returns a shared_ptr; collection handles share ownership, so a store lives as long as
// any handle to it. The store owns its engine.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <eventsourced/engine/engine.hpp>
#include <eventsourced/engine/json_limits.hpp>
#include <eventsourced/error.hpp>
#include <eventsourced/event/mapper.hpp>
#include <eventsourced/event/upcaster.hpp>
#include <eventsourced/storage/cache.hpp>
#include <eventsourced/storage/collection.hpp>
#include <eventsourced/storage/retry.hpp>
#include <eventsourced/storage/transaction.hpp>

namespace eventsourced {

// The default of store_options::on_unreadable_document: one line on stderr naming the document.
void report_unreadable_document(const unreadable_document& document);

struct store_options {
  // Body fields the store keeps equal to the document's id and version.
  std::string id_field = "id";
  std::string version_field = "version";
  // How conflicts are retried; per-call write_options override it.
  retry_options retry{};
  // Optional read-through cache (memory_cache, or a Redis cache); nullptr: none.
  std::shared_ptr<eventsourced::cache> cache{};
  // Largest accepted document, as serialized JSON. Larger writes throw invalid_argument_error.
  std::size_t max_document_bytes = 16 * 1024 * 1024;
  // Deepest nesting accepted in what the store is given (engine/json_limits.hpp): document
  // bodies (also as they are after update operators), update operands, section values, filters,
  // event metadata. Deeper: json_depth_error, nothing written. 1..kMaxJsonDepthSetting.
  std::size_t max_json_depth = kDefaultMaxJsonDepth;
  // Called for each stored document a find_many (or find_unreadable) passes over because its
  // body cannot be read (error.hpp: unreadable_document), on the calling thread. It may throw to
  // fail the find. The default writes one line to stderr; an empty function reports nothing.
  std::function<void(const unreadable_document&)> on_unreadable_document =
      report_unreadable_document;
  // Turns each write into the events recorded in the same commit (event/mapper.hpp), e.g. a
  // default_event_mapper. nullptr: writes record no events. Shared: it must outlive no one.
  std::shared_ptr<const event_mapper> mapper{};
  // Event schema evolution (event/upcaster.hpp). When set, every event the mapper makes is
  // stamped with its type's current schema version, and event_log(store) and repository(store)
  // upcast every event they read through it. nullptr: events are read as stored.
  std::shared_ptr<const upcaster_chain> upcasters{};
};

class store : public std::enable_shared_from_this<store> {
 public:
  // Opens the engine for uri (engine/open.hpp). Throws invalid_argument_error for a bad URI or
  // options, and whatever the engine throws when it cannot open.
  static std::shared_ptr<store> open(std::string_view uri, store_options options = {});
  // Wraps an engine you made yourself (a custom engine, a fault-injecting wrapper, ...).
  static std::shared_ptr<store> wrap(std::unique_ptr<engine> engine, store_options options = {});

  store(const store&) = delete;
  store& operator=(const store&) = delete;
  ~store();

  // A typed handle on a collection. Throws invalid_argument_error for an invalid or reserved name.
  template <typename T>
  eventsourced::collection<T> collection(std::string_view name) {
    return eventsourced::collection<T>(shared_from_this(), name);
  }
  document_collection documents(std::string_view name) {
    return document_collection(shared_from_this(), name);
  }

  // Runs fn(transaction&) and commits what it did atomically; see transaction.hpp. Returns
  // what fn returns.
  template <typename F>
  auto with_transaction(F&& fn, const write_options& options = {}) {
    using result = std::invoke_result_t<F&, transaction&>;
    if constexpr (std::is_void_v<result>) {
      run_transaction([&](transaction& tx) { fn(tx); }, options);
    } else {
      std::optional<result> out;
      run_transaction([&](transaction& tx) { out.emplace(fn(tx)); }, options);
      return std::move(*out);
    }
  }

  const store_options& options() const noexcept { return options_; }
  // The engine, for the layers built on the store (events, projections, sync).
  eventsourced::engine& engine();

  // Closes the engine; later calls throw store_closed_error. Idempotent.
  void close();
  bool closed() const noexcept { return closed_.load(); }

 private:
  friend class document_collection;
  friend class transaction;

  // One write as the storage layer prepares it: the engine write plus the state it replaces.
  struct pending_write {
    document_write write;
    json before;  // null: did not exist
  };

  store(std::unique_ptr<eventsourced::engine> engine, store_options options);

  void check_open() const;
  // Throws invalid_argument_error for an invalid collection name or one with the reserved prefix.
  static void check_user_collection(std::string_view name);
  // The id in a body's id field; throws invalid_argument_error when it has none.
  std::string id_in(const json& body, std::string_view collection) const;
  // Throws (json_limits.hpp) unless a value the store was given is within max_json_depth and
  // finite. Called before anything recursive (copies, comparisons, diffs) runs on the value.
  // `what` builds the value's description, only on failure.
  template <typename What>
  void check_input(const json& value, const What& what) const {
    if (auto violation = find_json_violation(value, options_.max_json_depth)) {
      violation->raise(what(), options_.max_json_depth);
    }
  }
  // Where a read may come from: the cache if it has the document (first attempts), the
  // engine (transactions: their read versions are checked at commit), or the engine after its
  // commits in progress (retries after a conflict; engine::get_for_update).
  enum class read_source { cache, engine, engine_latest };
  // Reads from `source`, refreshing the cache from engine reads.
  std::optional<stored_document> read(std::string_view collection, std::string_view id,
                                      read_source source);
  // Checks that a body read from the engine is an object (serialization_error otherwise) and
  // stamps its id and version.
  void accept_stored(stored_document& doc, std::string_view collection) const;
  // Checks the body an edit of collection/id returned (an object whose id, if it has one, is
  // still `id`; invalid_argument_error otherwise) and stamps it with id and `version`.
  void accept_edited(json& body, std::string_view collection, std::string_view id,
                     std::int64_t version) const;
  // Sets the id and version fields of a body about to be written at `version`.
  void stamp(json& body, std::string_view id, std::int64_t version) const;
  // What commit_writes reports per write: the document after it (before it, for a delete), the
  // diff, and the events recorded for it.
  struct committed_write {
    json document;
    eventsourced::diff diff;
    std::vector<recorded_event> events{};
  };
  // Commits writes in one engine commit together with the events options_.mapper makes of them
  // (size checks first), refreshes the cache, and reports each write. On conflict, drops the
  // conflicting document from the cache and rethrows.
  std::vector<committed_write> commit_writes(std::vector<pending_write> writes,
                                             const write_options& options);
  committed_write commit_write(pending_write write, const write_options& options);
  // The events of the writes in `request`, as the engine's derived_appends: diffs each change
  // at the version the engine gives it (into diffs[i]; into after[i] the stamped body when that
  // version is not the predicted one), maps it with options_.mapper, and groups the events by
  // stream; owner[k] is the write that produced the k-th event of the result.
  std::vector<stream_append> map_changes(const commit_request& request,
                                         std::span<const std::int64_t> versions,
                                         const std::vector<pending_write>& writes,
                                         const json& event_metadata,
                                         std::vector<eventsourced::diff>& diffs,
                                         std::vector<std::optional<json>>& after,
                                         std::vector<std::size_t>& owner) const;
  void run_transaction(const std::function<void(transaction&)>& fn, const write_options& options);
  const retry_options& retry_for(const write_options& options) const {
    return options.retry ? *options.retry : options_.retry;
  }

  std::unique_ptr<eventsourced::engine> engine_;
  const store_options options_;
  std::atomic<bool> closed_{false};
};

// Same as store::open.
inline std::shared_ptr<store> open(std::string_view uri, store_options options = {}) {
  return store::open(uri, std::move(options));
}

}  // namespace eventsourced
