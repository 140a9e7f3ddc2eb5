// Limits on JSON values: nesting depth and finite numbers (docs/limits.md).
//
// nlohmann::json copies, compares, dumps and diffs values recursively, one stack frame per level
// of nesting, so a value nested 100,000 deep that reaches any of them overflows the stack. The
// library therefore checks every JSON value at the door where it comes in — before anything
// recursive runs on it — and bounds all nesting:
//
// - Depth: a scalar has depth 0, `{}` and `[]` depth 1, `{"a": [1]}` depth 2: the number of objects
//   and arrays on the way from the root to the deepest value, the root included. Values from
//   users (document bodies, update operands, filters, event data and metadata, sync messages) may
//   be nested at most `max_json_depth` deep, an option of the store and of the sync service,
//   kDefaultMaxJsonDepth by default, at most kMaxJsonDepthSetting. Values the library builds
//   around them (events carrying diffs, snapshots, protocol envelopes) add a few levels.
// - Every engine refuses to store, and refuses to read back, a value nested deeper than
//   kMaxJsonDepth, so no code path ever sees a deeper value. That bounds every recursion below.
// - Numbers: NaN and infinities have no JSON form (nlohmann writes them as null), so values built
//   in C++ holding them are refused wherever they come in. Text such as 1e999 never makes one:
//   nlohmann's parser refuses it (not JSON).
//
// \par Thread safety
// Free functions without shared state.
//
// \par Errors
// Over the depth limit: json_depth_error (an invalid_argument_error). A non-finite number, or a
// `discarded` value: invalid_argument_error. Text that is not JSON: serialization_error. Each
// message names the value (`what`) and the JSON pointer of the offending place.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace eventsourced {

using json = nlohmann::json;

// The default of every max_json_depth option.
inline constexpr std::size_t kDefaultMaxJsonDepth = 128;
// The largest value a max_json_depth option accepts: leaves room below kMaxJsonDepth for the
// levels the library's own envelopes add.
inline constexpr std::size_t kMaxJsonDepthSetting = 512;
// No engine stores or reads back a value nested deeper than this: values at this depth still work
// in SQLite's JSON functions (which stop past 2,000 levels in SQLite 3.40, Debian 12's) and in
// PostgreSQL's jsonb. MongoDB has its own, lower limit (mongodb.hpp).
inline constexpr std::size_t kMaxJsonDepth = 1000;

// What is wrong with a JSON value, and where.
struct json_limit_violation {
  enum class kind { too_deep, not_finite, discarded };
  kind problem = kind::too_deep;
  std::string pointer;  // JSON pointer of the offending value (shortened when very long)

  // Throws the error this violation means, for a value described by `what` (for instance
  // "the body of 'players/p1'") checked against max_depth.
  [[noreturn]] void raise(std::string_view what, std::size_t max_depth) const;
};

// The first violation of the limits in value (depth above max_depth, a non-finite number, a
// discarded value), or nullopt. Walks at most max_depth + 1 levels deep: safe on any value.
std::optional<json_limit_violation> find_json_violation(const json& value, std::size_t max_depth);

// Throws (see the header comment) unless value is within the limits.
void check_json(const json& value, std::size_t max_depth, std::string_view what);

// Throws invalid_argument_error unless max_depth is 1..kMaxJsonDepthSetting; `option` names the
// option in the message.
void validate_max_json_depth(std::size_t max_depth, std::string_view option);

// Parses JSON text, enforcing the limits while parsing (the parser never builds anything deeper
// than max_depth). Throws serialization_error for text that is not JSON (`what` names it) and
// the errors of check_json for a violation.
json parse_json(std::string_view text, std::size_t max_depth, std::string_view what = "JSON text");

// For protocol servers that answer every request, even one over the limits: parses like
// parse_json but keeps going past a violation, putting null in place of each value over the
// depth limit (without building it), and reports the first violation. Throws
// serialization_error only for text that is not JSON.
struct lenient_json {
  json value;
  std::optional<json_limit_violation> violation;
};
lenient_json parse_json_lenient(std::string_view text, std::size_t max_depth);

}  // namespace eventsourced
