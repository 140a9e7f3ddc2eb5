// The checked JSON parsers (engine/json_limits.hpp) on any text: the door every value from a
// client, a file or a server comes in through.
//
// Input: one byte choosing the depth limit (1..40: small limits, so that the fuzzer reaches them
// with short inputs), then the text. Promises checked:
// - neither parser ever builds a value over the limits (find_json_violation finds nothing);
// - parse_json and parse_json_lenient agree: both refuse text that is not JSON, the lenient one
//   reports a violation exactly when the strict one refuses the value for it, and for text within
//   the limits they build the same value;
// - text that is within the limits parses to what nlohmann's own parser builds, and text nlohmann
//   refuses is refused.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "fuzz_support.hpp"

using eventsourced::json;
namespace fuzz = eventsourced::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t max_depth = data[0] % 40 + 1;
  const std::string_view text = fuzz::as_text(data + 1, size - 1);

  enum class outcome { parsed, not_json, over_limits };
  outcome strict_outcome = outcome::parsed;
  std::optional<json> strict;
  try {
    strict = eventsourced::parse_json(text, max_depth);
  } catch (const eventsourced::serialization_error&) {
    strict_outcome = outcome::not_json;
  } catch (const eventsourced::invalid_argument_error&) {  // json_depth_error included
    strict_outcome = outcome::over_limits;
  }
  if (strict) {
    if (auto v = eventsourced::find_json_violation(*strict, max_depth)) {
      fuzz::fail("parse_json built a value over the limits at " + v->pointer);
    }
    // Within the limits, so nlohmann's recursive operations are safe on it.
    if (!json::accept(text)) fuzz::fail("parse_json accepted text nlohmann refuses");
    if (json::parse(text) != *strict) fuzz::fail("parse_json and json::parse differ");
  }
  if (strict_outcome == outcome::not_json && json::accept(text)) {
    fuzz::fail("parse_json called text nlohmann accepts not JSON");
  }

  try {
    const eventsourced::lenient_json lenient = eventsourced::parse_json_lenient(text, max_depth);
    if (auto v = eventsourced::find_json_violation(lenient.value, max_depth)) {
      fuzz::fail("parse_json_lenient built a value over the limits at " + v->pointer);
    }
    if (strict_outcome == outcome::not_json) {
      fuzz::fail("parse_json_lenient accepted text parse_json calls not JSON");
    }
    if (lenient.violation.has_value() != (strict_outcome == outcome::over_limits)) {
      fuzz::fail("parse_json_lenient and parse_json disagree about the limits");
    }
    if (strict && lenient.value != *strict) fuzz::fail("parse_json_lenient and parse_json differ");
  } catch (const eventsourced::serialization_error&) {
    // The strict parser stops at the first violation, before a syntax error further on.
    if (strict_outcome == outcome::parsed) {
      fuzz::fail("parse_json_lenient refused text parse_json accepts");
    }
  }
  return 0;
}
