// Private to the engines that store JSON as text (SQLite, PostgreSQL): reading it back.
//
// What an engine reads back went through validate_commit_request when the library wrote it, but a
// row written around the library (or a damaged file) may hold anything. A document body that is
// not JSON, not an object, nested deeper than kMaxJsonDepth or holding a number beyond double's
// range is unreadable (error.hpp): get() throws unreadable_document_error for it, and find()
// passes over it (query::on_unreadable) so one bad row never makes a collection unreadable.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <eventsourced/engine/engine.hpp>
#include <eventsourced/engine/json_limits.hpp>
#include <eventsourced/error.hpp>

namespace eventsourced::engine_detail {

// The body of a stored document, parsed and checked. Throws unreadable_document_error.
json read_body(std::string_view collection, std::string_view id, std::int64_t version,
               std::string_view text);
// The same for a body an engine decoded itself (MongoDB's BSON).
json check_body(std::string_view collection, std::string_view id, std::int64_t version, json body);

// Stored event JSON (data or metadata). Throws serialization_error naming the event:
// `describe` builds its description, only on failure.
template <typename Describe>
json read_event_json(std::string_view text, const Describe& describe) {
  try {
    return parse_json(text, kMaxJsonDepth, "stored JSON");
  } catch (const error& e) {
    throw serialization_error(describe() + " cannot be read: " + e.what());
  }
}

// The rows of one find, parsed as they come.
class found_rows {
 public:
  explicit found_rows(std::string_view collection) : collection_(collection) {}
  void add(std::string id, std::int64_t version, std::string_view body_text);
  void add_decoded(std::string id, std::int64_t version, json body);
  bool any_unreadable() const noexcept { return !unreadable_.empty(); }
  // The readable documents, after skipping `skip` and keeping at most `limit` of them; reports
  // each unreadable row to q.on_unreadable.
  std::vector<stored_document> finish(const query& q, std::size_t skip,
                                      std::optional<std::size_t> limit) &&;

 private:
  std::string collection_;
  std::vector<stored_document> documents_;
  std::vector<unreadable_document> unreadable_;
};

// Runs a find whose SQL applies limit and skip. `run(q)` executes q and returns its found_rows.
// When a row turned out unreadable and the query pages, the rows it took the place of are
// missing: the find runs again without limit and skip, which are then applied here.
template <typename Run>
std::vector<stored_document> find_readable(const query& q, const Run& run) {
  found_rows rows = run(q);
  if (!rows.any_unreadable() || (!q.limit && q.skip == 0)) {
    return std::move(rows).finish(q, 0, std::nullopt);
  }
  query every = q;
  every.limit.reset();
  every.skip = 0;
  return run(every).finish(q, q.skip, q.limit);
}

}  // namespace eventsourced::engine_detail
