// The engine (backend) API: the few primitives every store implements.
//
// An engine keeps versioned JSON documents and an append-only event log, and commits document
// writes together with event appends atomically. Everything else (typed collections, diffs,
// retries, caches, mappers, buses, projections, sync state) is built on these primitives by the
// layers above, once. Engine code knows nothing of those layers.
//
// Versions. A document's version is 1 when it is first written and grows by one with every
// write. Deleting a document leaves a tombstone carrying the next version, so a (collection, id)
// never reuses a version: a later re-creation continues after the tombstone. An expected_version
// of 0 means "must not exist now" (never written, or deleted).
//
// Events. Each recorded event gets a global position (strictly increasing in commit order as seen
// by readers: a reader that has seen position P never later sees a new event below P) and a
// stream version (consecutive per stream, starting at 1). Events never change; the only way
// one leaves the log is truncate_stream(), which deletes old events of one stream and never its
// latest, so a stream's version never goes back and positions are never reused.
//
// Names. Collection names and stream types must satisfy validate_collection_name(); ids must
// satisfy validate_id(). Engines check both before touching storage and never splice either into
// SQL. Names beginning with kReservedPrefix are for the library's own bookkeeping collections
// (checkpoints, snapshots, ...); user-facing layers refuse them, engines accept them.
//
// \par Thread safety
// Every engine is safe to use from many threads at once. close() may race with other calls: calls
// that start after close() throw store_closed_error.
//
// \par Exception safety
// commit() is all or nothing: when it throws, nothing of the request is visible.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <eventsourced/engine/query.hpp>

namespace eventsourced {

// Collections whose name starts with this prefix are reserved for the library.
inline constexpr std::string_view kReservedPrefix = "_es_";
// Longest accepted document id, in bytes.
inline constexpr std::size_t kMaxIdBytes = 1024;

// Throws invalid_argument_error unless name is 1..128 bytes of [A-Za-z0-9_.-] starting with a
// letter or '_'. `what` names the argument in the message ("collection", "stream type").
void validate_collection_name(std::string_view name, std::string_view what = "collection");
// Throws invalid_argument_error unless id is 1..kMaxIdBytes bytes, valid UTF-8, without NUL.
void validate_id(std::string_view id, std::string_view what = "document id");

struct commit_request;
struct stream_append;
// Throws invalid_argument_error for a malformed commit request: invalid names or ids, two writes
// to one document, two appends to one stream, a put whose body is not an object, an event with an
// empty id or type, metadata that is neither an object nor null, one event id used twice, and
// json_depth_error for a body deeper than request.max_json_depth or any value deeper than
// kMaxJsonDepth (json_limits.hpp; a non-finite number: invalid_argument_error). Every
// engine calls it before touching storage; a duplicate of an id already in the log is the
// engine's to detect.
void validate_commit_request(const commit_request& request);
// Throws invalid_argument_error for appends returned by commit_request::derived_appends that are
// malformed on their own or together with request.appends (same rules as above).
void validate_derived_appends(const commit_request& request,
                              const std::vector<stream_append>& derived);

struct stream_ref;
// Throws invalid_argument_error for bad arguments of engine::truncate_stream: an invalid stream
// type or id, a negative version. Every engine calls it before touching storage.
void validate_truncate_stream(const stream_ref& stream, std::int64_t before_version);

struct stored_document {
  std::string id;
  std::int64_t version = 0;
  json body;
};

enum class write_op {
  put,    // create (expected_version 0) or replace (expected_version = current version)
  erase,  // delete; leaves a tombstone at version expected_version + 1
  check,  // change nothing, only require the version (read validation in transactions)
};

// One version-checked write.
struct document_write {
  std::string collection{};
  std::string id{};
  std::int64_t expected_version = 0;  // 0: must not exist
  write_op op = write_op::put;
  json body{};  // put only; must be a JSON object
};

struct stream_ref {
  std::string type{};  // aggregate type; validated like a collection name
  std::string id{};    // aggregate id; validated like a document id
  friend bool operator==(const stream_ref&, const stream_ref&) = default;
};

// An event to append; the engine assigns position, stream version and timestamp.
struct new_event {
  std::string id{};    // unique across the log (a UUID); a duplicate fails the commit
  std::string type{};  // non-empty
  json data{};
  json metadata{};  // object or null
};

struct recorded_event {
  std::string id;
  std::string type;
  stream_ref stream;
  std::int64_t stream_version = 0;
  std::int64_t position = 0;
  std::chrono::system_clock::time_point timestamp;  // commit time, microsecond precision
  json data;
  json metadata;
};

// Events for one stream, optionally version-checked.
struct stream_append {
  stream_ref stream;
  std::optional<std::int64_t> expected_version{};  // nullopt: any; 0: stream must be empty
  std::vector<new_event> events{};
};

struct commit_request {
  std::vector<document_write> writes{};  // at most one write per (collection, id)
  std::vector<stream_append> appends{};  // at most one append per stream
  // When non-empty, the engine sets this member of every put body to the version the document
  // gets, so a body always carries its own version (the caller cannot know it beforehand when a
  // document is re-created after a tombstone).
  std::string version_field{};
  // When non-zero, a put whose serialized body is longer than this many bytes fails the commit
  // with invalid_argument_error (the engine measures what it stores, so the body is serialized
  // once).
  std::size_t max_body_bytes = 0;
  // When non-zero, a put whose body is nested deeper than this many levels fails the commit with
  // json_depth_error (json_limits.hpp). Zero, or a value above it: kMaxJsonDepth, which every
  // engine enforces on every body, event data and event metadata anyway.
  std::size_t max_json_depth = 0;
  // Optional: appends that depend on the versions the writes get. When set, the engine calls it
  // exactly once per successful version check, inside the commit, after every write has been
  // checked and given its version (`versions`: one per write, as in commit_result::versions) and
  // before any event is recorded. The appends it returns are validated like `appends` (together
  // with them: still at most one append per stream, no event id twice) and committed with the
  // writes, after `appends`. It runs while the engine holds its write lock: it must be quick and
  // must not call the engine. If it throws, nothing is committed and the exception propagates
  // unchanged. (The storage layer records each write's events this way: a re-created document's
  // version is only known here.)
  std::function<std::vector<stream_append>(std::span<const std::int64_t> versions)>
      derived_appends{};
};

struct commit_result {
  // One per write, in request order: the document's version after the commit (for erase, the
  // tombstone's version; for check, the checked version).
  std::vector<std::int64_t> versions;
  // Every appended event as recorded, in request order.
  std::vector<recorded_event> events;
};

class engine {
 public:
  virtual ~engine() = default;

  // The live document, or nullopt when it does not exist (never written, or deleted).
  virtual std::optional<stored_document> get(std::string_view collection, std::string_view id) = 0;

  // Like get(), but first waits for commits this engine object has in progress, so a
  // read-modify-write retried after a conflict sees the write it lost to instead of reading the
  // same stale snapshot again. The default is get(), right for engines whose reads never lag.
  virtual std::optional<stored_document> get_for_update(std::string_view collection,
                                                        std::string_view id) {
    return get(collection, id);
  }

  // Live documents of a collection matching q, in q's order.
  virtual std::vector<stored_document> find(std::string_view collection, const query& q) = 0;

  // Applies every write and append, or none. Throws conflict_error naming the first write or
  // append whose expected version differs from the stored one; invalid_argument_error for a
  // malformed request (bad names, two writes to one document, a non-object body, a duplicate
  // event id). Returns versions and recorded events.
  virtual commit_result commit(const commit_request& request) = 0;

  // Events of one stream with stream_version >= from_version, at most max, in stream order.
  // The events returned are consecutive (one read, never split by a concurrent truncate_stream).
  virtual std::vector<recorded_event> read_stream(const stream_ref& stream,
                                                  std::int64_t from_version, std::size_t max) = 0;

  // Events with position > after_position, at most max, in position order.
  virtual std::vector<recorded_event> read_all(std::int64_t after_position, std::size_t max) = 0;

  // Deletes the events of `stream` with stream_version < before_version, except the stream's
  // latest event, which is always kept (before_version is clamped to the latest version), so the
  // stream's version and version-checked appends to it are unaffected. Atomic: a reader sees the
  // events either all there or all gone. Afterwards read_stream returns the remaining events
  // (from_version below the first remaining one starts at it) and read_all skips the deleted
  // ones; every remaining event keeps its position and stream version, so a reader at a position
  // never sees an event twice nor a new one below it. Other streams are untouched. Returns how
  // many events were deleted (0 for an unknown stream, or when nothing is older). Idempotent.
  // The ids of deleted events may be accepted again by later appends. Throws
  // invalid_argument_error for an invalid stream type or id or a negative before_version.
  // (Used for retention: event_sync_storage's compaction, after a snapshot covers the events.)
  virtual std::size_t truncate_stream(const stream_ref& stream, std::int64_t before_version) = 0;

  // Blocks until an event with position > `position` is visible (true) or the timeout passes
  // (false). Wakes on commits of this engine object at once; commits by other processes are
  // noticed by polling where the engine has no notification channel.
  virtual bool wait_for(std::int64_t position, std::chrono::milliseconds timeout) = 0;

  // Releases resources. Idempotent. Later calls throw store_closed_error.
  virtual void close() = 0;
};

}  // namespace eventsourced
