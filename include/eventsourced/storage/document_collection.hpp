// The untyped face of a collection: every storage operation on JSON bodies.
//
// collection<T> (collection.hpp) is a thin typed wrapper around this class; most users want that.
// Bodies always carry the document's id and version in the fields named by store_options
// (id_field, version_field): the store writes them on every write, so they cannot drift.
//
// \par Thread safety
// A document_collection is a cheap handle (a store pointer and a name). Handles may be copied
// and used from many threads at once, like the store itself.
//
// \par Exception safety
// Every operation either commits fully or changes nothing. See error.hpp for what each error
// means; every operation throws store_closed_error once the store is closed.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <eventsourced/engine/engine.hpp>
#include <eventsourced/engine/query.hpp>
#include <eventsourced/storage/diff.hpp>
#include <eventsourced/storage/edit.hpp>
#include <eventsourced/storage/retry.hpp>

namespace eventsourced {

class store;

// Options of find_many.
struct find_options {
  std::vector<sort_key> sort{};        // then id ascending
  std::optional<std::size_t> limit{};  // nullopt: all
  std::size_t skip = 0;
};

// Per-call options of the writing operations.
struct write_options {
  std::optional<retry_options> retry{};  // nullopt: the store's retry options
  // Members added to the metadata of every event the write records (correlation_id,
  // causation_id, client_id, ...; see event/event.hpp). Must be an object or null. Members whose
  // name starts with kReservedPrefix reach the mapper (document_change::metadata) but are not
  // copied into events: the library passes its own per-write information that way (sync).
  json event_metadata{};
};

// The outcome of a write: the document after it (before it, for a delete), what changed, and
// the events recorded with it (empty when the store has no mapper or nothing was written).
template <typename T>
struct update_result {
  T document;
  eventsourced::diff diff;
  std::vector<recorded_event> events{};
};

class document_collection {
 public:
  using edit_function = std::function<edit_result<json>(const json&)>;

  // Throws invalid_argument_error for an invalid name, or one with the reserved prefix.
  document_collection(std::shared_ptr<store> owner, std::string_view name);

  const std::string& name() const noexcept { return name_; }
  // The id a body carries in the store's id field ("" when it has none).
  std::string id_of(const json& body) const;

  // The document, or nullopt when it does not exist.
  std::optional<json> find_one(std::string_view id) const;

  // Documents matching a MongoDB-style filter (query.hpp), executed by the engine. A stored
  // document whose body cannot be read never matches: it is passed over and reported to
  // store_options::on_unreadable_document. A filter nested deeper than
  // store_options::max_json_depth throws json_depth_error.
  std::vector<json> find_many(const json& filter = json::object(), const find_options& = {}) const;

  // The stored documents of this collection whose body cannot be read (error.hpp), each also
  // reported to store_options::on_unreadable_document. Reads the whole collection. Remove one
  // with delete_one, then write it anew if needed.
  std::vector<unreadable_document> find_unreadable() const;

  // Creates the document if no document with its id exists, otherwise returns the existing one
  // unchanged (diff.has_changes false). The id is read from the body's id field. Retry options
  // do not apply: a conflict here means another writer created the document, which is then
  // returned.
  update_result<json> find_one_and_upsert(json body, const write_options& = {});

  // Reads the document, runs edit on it and writes the result if it differs, checked against the
  // version that was read. On a conflict, re-reads and re-runs edit (retry_options). Throws
  // not_found_error when the document does not exist, conflict_error when retries are off or run
  // out, invalid_argument_error when the edit changes the id.
  update_result<json> find_one_and_update(std::string_view id, const edit_function& edit,
                                          const write_options& = {});

  // Applies MongoDB update operators (update_operators.hpp) under the same version check and
  // retries. The id and version fields may not be updated.
  update_result<json> update_one(std::string_view id, const json& update,
                                 const write_options& = {});

  // Edits the sub-tree at a dotted path. A concurrent write that leaves this sub-tree unchanged is
  // not a conflict: the edited sub-tree is written into the fresh document without re-running
  // edit, whatever the retry options. Only a concurrent change of the same sub-tree re-runs edit
  // (or surfaces as conflict_error when retries are off). edit receives null when the path is
  // missing; returning the sub-tree unchanged writes nothing.
  update_result<json> update_section(std::string_view id, std::string_view path,
                                     const std::function<json(json)>& edit,
                                     const write_options& = {});

  // Deletes the document. Returns false when it did not exist. Works on a document whose body
  // cannot be read (find_one throws unreadable_document_error for it): it is deleted at the
  // version stored with it, and the mapper sees it change from an empty object to deleted.
  bool delete_one(std::string_view id, const write_options& = {});

 private:
  enum class when_missing { throw_not_found, return_empty };
  std::optional<update_result<json>> update(std::string_view id, const edit_function& edit,
                                            const write_options& options, when_missing missing);

  std::shared_ptr<store> store_;
  std::string name_;
};

}  // namespace eventsourced
