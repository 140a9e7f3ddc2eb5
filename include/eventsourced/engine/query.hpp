// Queries over documents: a MongoDB-style filter subset, sort keys, limit and skip.
//
// A filter is parsed once (and validated: an unknown operator or a malformed operand throws
// invalid_argument_error before any engine is touched), then each engine executes it its own way:
// the memory engine with filter::matches(), SQLite by translating it to SQL over json_extract().
// Both must agree; the engine conformance suite checks that they do.
//
// Supported: {field: value} (equality), $eq $ne $gt $gte $lt $lte $in $nin $exists, $and $or,
// several fields or several operators in one object (implicit AND), dotted paths into nested
// objects ("stats.level"); a segment made only of digits indexes an array ("items.0.name").
//
// Semantics (identical on every engine):
// - Equality compares whole values. Numbers compare numerically (1 == 1.0); objects and arrays
//   compare by their canonical JSON text. There is no implicit array traversal: {tags: "a"} does
//   not match {tags: ["a"]}. {field: null} matches a missing field or an explicit null.
// - $ne and $nin are the negations of $eq and $in (so they also match a missing field).
// - $gt $gte $lt $lte take a number or a string and only match a field of the same kind.
// - $exists: true matches a present field, including one whose value is null.
// - Sort order across kinds: missing/null < numbers < strings < objects < arrays < booleans
//   (false < true); objects and arrays compare by canonical JSON text. Ties are broken by
//   document id, ascending, so paging with skip/limit is deterministic.
//
// \par Thread safety
// field_path, filter and query are immutable values after construction: const methods may be
// called from any number of threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include <eventsourced/engine/json_limits.hpp>
#include <eventsourced/error.hpp>

namespace eventsourced {

using json = nlohmann::json;

// A dotted path into a document. Segments are non-empty; they may not contain '"', '\\', control
// characters, or start with '$'. A segment made only of digits indexes an array.
class field_path {
 public:
  // Throws invalid_argument_error when the path is empty or a segment is invalid.
  static field_path parse(std::string_view dotted);

  const std::string& str() const noexcept { return dotted_; }
  const std::vector<std::string>& segments() const noexcept { return segments_; }
  // True when segment i is an array index (only digits).
  bool is_index(std::size_t i) const;

  // The value at this path, or nullptr when the path does not exist in doc.
  const json* resolve(const json& doc) const;

 private:
  std::string dotted_;
  std::vector<std::string> segments_;
};

enum class filter_op { eq, ne, gt, gte, lt, lte, in, nin, exists, all_of, any_of };

// One node of a parsed filter. Leaf nodes (eq ... exists) carry a path and an operand; all_of /
// any_of ($and / $or, and the implicit AND of several conditions) carry children.
struct filter_node {
  filter_op op = filter_op::all_of;
  std::optional<field_path> path;  // leaves only
  json operand;                    // leaves only: the value, the $in array, the $exists bool
  std::vector<filter_node> children;
};

class filter {
 public:
  // Matches every document.
  filter() = default;
  // Parses a MongoDB-style filter object. Throws invalid_argument_error, naming the offending
  // part, for anything outside the supported subset, and the errors of check_json
  // (json_limits.hpp) for a spec nested deeper than max_depth or holding a non-finite number.
  static filter parse(const json& spec, std::size_t max_depth = kDefaultMaxJsonDepth);

  // True when this filter matches every document (an empty filter).
  bool matches_all() const noexcept { return !root_.has_value(); }
  // Evaluates the filter against one document body (the reference semantics).
  bool matches(const json& doc) const;
  // The parsed tree; empty when matches_all().
  const std::optional<filter_node>& root() const noexcept { return root_; }

 private:
  std::optional<filter_node> root_;
};

enum class sort_order { ascending, descending };

struct sort_key {
  std::string path{};  // dotted path, validated when the query runs
  sort_order order = sort_order::ascending;
};

// What find_many asks of an engine.
struct query {
  filter where{};
  std::vector<sort_key> sort{};        // applied in order, then id ascending
  std::optional<std::size_t> limit{};  // nullopt: no limit
  std::size_t skip = 0;
  // Stored documents whose body cannot be read (error.hpp: unreadable_document) are not
  // documents to a query: they never match, and never count for limit or skip. The engine calls
  // this, on the calling thread, for each one it passed over (empty: passed over silently).
  std::function<void(const unreadable_document&)> on_unreadable{};
};

// The total order used for sorting (see above): negative, zero or positive like strcmp.
// nullptr stands for a missing field.
int compare_for_sort(const json* a, const json* b);

}  // namespace eventsourced
