// Event mappers: what turns a committed document change into the events recorded with it.
//
// A store opened with a mapper (store_options::mapper) calls it for every document a write
// changes, inside the engine commit that makes the change: the events it returns are appended in
// that same commit, so there is never a document version without its events nor an event without
// its write (DESIGN.md, invariant 2). A mapper may return zero, one or several events for one
// change, on any streams.
//
// default_event_mapper records one event per change:
//   type     the collection's registered created/updated/deleted type; for a collection never
//            registered, "<collection>.created", "<collection>.updated", "<collection>.deleted"
//            (e.g. "players.updated")
//   stream   {aggregate type, document id}; the aggregate type is the registered one, or the
//            collection name
//   data     {"version": the document's version after the write (the tombstone's for a delete),
//             "json_patch": RFC 6902 patch before → after, "merge_patch": RFC 7396 patch}
// The store then adds to every event's metadata (keeping members the mapper set):
//   "document": {"collection", "id", "version"} and the members of write_options::event_metadata
//   (correlation_id, causation_id, ...). An event whose id the mapper left empty gets a fresh one.
//
// \par Thread safety
// map() is called from every thread that writes, concurrently: implementations must be safe for
// that (default_event_mapper is; register collections before the store uses it, or at any time —
// registration takes a lock).
//
// \par Exceptions
// A mapper that throws fails the write: nothing is committed and the exception reaches the
// caller unchanged (writes are not retried for it).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include <eventsourced/engine/engine.hpp>
#include <eventsourced/event/event.hpp>
#include <eventsourced/storage/diff.hpp>

namespace eventsourced {

// One committed change of one document, as a mapper sees it. Valid only during map().
struct document_change {
  std::string_view collection;
  std::string_view id;
  const json& before;  // null: the document did not exist
  const json& after;   // null: the write deleted it
  const eventsourced::diff& diff;
  const json& metadata;  // write_options::event_metadata of the write (object or null)
};

// An event a mapper emits, and the stream it goes to.
struct mapped_event {
  stream_ref stream;
  new_event event;  // an empty id is replaced by make_event_id()
};

class event_mapper {
 public:
  virtual ~event_mapper() = default;
  // The events for one change, in order. Runs inside the commit while the engine holds its write
  // lock: keep it quick and never use the store from it.
  virtual std::vector<mapped_event> map(const document_change& change) const = 0;
};

// Event type names (and aggregate type) of one collection. Empty members take the defaults
// described above.
struct collection_event_types {
  std::string created{};
  std::string updated{};
  std::string deleted{};
  std::string aggregate_type{};  // the stream type; must be a valid collection name
};

class default_event_mapper : public event_mapper {
 public:
  // Throws invalid_argument_error for an invalid collection name or aggregate type, or an event
  // type name that is empty after defaults apply (it never is).
  void register_collection_event_types(std::string_view collection, collection_event_types types);
  // The types used for a collection: registered ones, defaults for the rest.
  collection_event_types event_types_for(std::string_view collection) const;

  // One event per change, as described in the header comment.
  std::vector<mapped_event> map(const document_change& change) const override;

 protected:
  // The default event of a change; for mappers that derive from this one and add events.
  mapped_event default_event(const document_change& change) const;

 private:
  mutable std::shared_mutex mutex_;
  std::map<std::string, collection_event_types, std::less<>> registered_;  // GUARDED_BY(mutex_)
};

// A mapper from a function (a lambda). The function must be safe to call from many threads.
class function_event_mapper : public event_mapper {
 public:
  using function = std::function<std::vector<mapped_event>(const document_change&)>;
  explicit function_event_mapper(function fn);  // throws invalid_argument_error for an empty fn
  std::vector<mapped_event> map(const document_change& change) const override {
    return fn_(change);
  }

 private:
  function fn_;
};

}  // namespace eventsourced
