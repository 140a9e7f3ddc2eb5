// The exception hierarchy of eventsourced.
//
// Every error the library throws derives from eventsourced::error. Each says what failed, on
// which collection / stream / id where that applies, and whether trying again can help
// (retryable()). A missing document is never an error: reads return an empty std::optional.
//
//   error
//   ├── conflict_error             a version check failed (retryable: re-read and re-apply)
//   ├── not_found_error            an update of a document that does not exist
//   ├── invalid_argument_error     bad input: names, ids, filters, operators, sizes
//   │   └── json_depth_error               JSON nested deeper than the limit (docs/limits.md)
//   ├── serialization_error        JSON that does not parse, or does not convert to/from T
//   │   └── unreadable_document_error      a stored body that cannot be read (corrupt row)
//   ├── engine_unavailable_error   the engine is busy or unreachable (retryable)
//   ├── store_closed_error         the store (or engine) was closed
//   └── engine_error               anything else the engine reported (I/O, corruption, ...)
//       └── commit_outcome_unknown_error   a server connection was lost after a commit was sent
//
// \par Thread safety
// Exception objects are immutable after construction; copies may be shared across threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace eventsourced {

class error : public std::runtime_error {
 public:
  explicit error(const std::string& what, bool retryable = false)
      : std::runtime_error(what), retryable_(retryable) {}
  // True when the same operation may succeed if attempted again unchanged (after re-reading
  // state, or after the engine becomes available). False when retrying cannot help.
  bool retryable() const noexcept { return retryable_; }

 private:
  bool retryable_;
};

// What a conflict_error is about: a document's version, or an event stream's version.
enum class conflict_target { document, stream };

// A version check failed: the stored version was not the one the write was based on.
// For a document, collection()/id() name it; for a stream, collection() is the stream type and
// id() the stream id. actual_version() is 0 when the document or stream does not exist.
class conflict_error : public error {
 public:
  conflict_error(conflict_target target, std::string collection, std::string id,
                 std::int64_t expected_version, std::int64_t actual_version);
  conflict_target target() const noexcept { return target_; }
  const std::string& collection() const noexcept { return collection_; }
  const std::string& id() const noexcept { return id_; }
  std::int64_t expected_version() const noexcept { return expected_version_; }
  std::int64_t actual_version() const noexcept { return actual_version_; }

 private:
  conflict_target target_;
  std::string collection_;
  std::string id_;
  std::int64_t expected_version_;
  std::int64_t actual_version_;
};

// An update (find_one_and_update, update_one, update_section) named a document that does not
// exist. Not retryable.
class not_found_error : public error {
 public:
  not_found_error(std::string collection, std::string id);
  const std::string& collection() const noexcept { return collection_; }
  const std::string& id() const noexcept { return id_; }

 private:
  std::string collection_;
  std::string id_;
};

// Bad input: an invalid collection name or id, an unknown filter or update operator, an operator
// applied to a field of the wrong type, a document over the size limit. Nothing was changed.
class invalid_argument_error : public error {
 public:
  explicit invalid_argument_error(const std::string& what) : error(what, false) {}
};

// A JSON value nested deeper than the depth limit in force (engine/json_limits.hpp): at most
// max_depth() levels were allowed. Nothing was changed. Not retryable.
class json_depth_error : public invalid_argument_error {
 public:
  json_depth_error(const std::string& what, std::size_t max_depth)
      : invalid_argument_error(what), max_depth_(max_depth) {}
  std::size_t max_depth() const noexcept { return max_depth_; }

 private:
  std::size_t max_depth_;
};

// JSON that does not parse (for instance a corrupt body in the database file), or a document
// that does not convert to or from the caller's type T. Nothing was changed.
class serialization_error : public error {
 public:
  explicit serialization_error(const std::string& what) : error(what, false) {}
};

// A stored document whose body cannot be read: not JSON, not an object, nested deeper than
// kMaxJsonDepth, or holding a number outside the range of a double. Only a write made around the
// library (or a damaged file) leaves one.
struct unreadable_document {
  std::string collection;
  std::string id;
  std::int64_t version = 0;  // the version stored with the body (a delete names it)
  std::string reason;        // why the body cannot be read
};

// Reading an unreadable document by its id throws this. find_many skips such rows and reports
// them (store_options::on_unreadable_document), document_collection::find_unreadable lists them
// and delete_one removes them (docs/limits.md, "Unreadable documents"). Not retryable.
class unreadable_document_error : public serialization_error {
 public:
  explicit unreadable_document_error(unreadable_document document);
  const unreadable_document& document() const noexcept { return document_; }

 private:
  unreadable_document document_;
};

// The engine could not be reached or stayed busy beyond its timeout (a locked SQLite file, a lost
// server connection). Retryable: nothing of the failed call was committed. (When that cannot be
// known, the engine throws commit_outcome_unknown_error instead.)
class engine_unavailable_error : public error {
 public:
  explicit engine_unavailable_error(const std::string& what) : error(what, true) {}
};

// The store or engine was closed; every later call throws this. Not retryable.
class store_closed_error : public error {
 public:
  explicit store_closed_error(const std::string& what = "eventsourced: the store is closed")
      : error(what, false) {}
};

// Any other failure the engine reported (I/O error, disk full, corrupt file, ...).
class engine_error : public error {
 public:
  explicit engine_error(const std::string& what, bool retryable = false) : error(what, retryable) {}
};

// The connection to a database server was lost after a commit had been sent and before its
// answer arrived: the commit may or may not have been applied. Not retryable as it stands (a
// blind retry could apply a write twice): re-read the state to learn whether it was applied.
class commit_outcome_unknown_error : public engine_error {
 public:
  explicit commit_outcome_unknown_error(const std::string& what) : engine_error(what, false) {}
};

}  // namespace eventsourced
