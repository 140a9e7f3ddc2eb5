// apply_json_patch (storage/json_patch.hpp) with any document and any patch: what a client's
// "patch" write runs on a stored document.
//
// Input: the document on the first line, the patch on the second (JSON). The limits are small, so
// that short inputs reach them. Promises checked: a patch is applied or refused with
// invalid_argument_error (json_depth_error included); what it leaves is within the depth limit
// and finite, whatever the operations did on the way; a patch applied within the limits gives
// what nlohmann's json::patch gives; and a "remove" of a path that does not exist fails the patch
// (RFC 6902 4.2; the header: "a path that does not exist").
#include <cstddef>
#include <cstdint>
#include <string>

#include <eventsourced/storage/json_patch.hpp>

#include "fuzz_support.hpp"

using eventsourced::json;
namespace es = eventsourced;
namespace fuzz = eventsourced::fuzz;

namespace {

constexpr es::json_patch_limits kLimits{
    .max_depth = 12, .max_operations = 64, .max_copied_bytes = 4096};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto input = fuzz::lines(fuzz::as_text(data, size), 2);
  if (input.size() < 2) return 0;
  // The document as a store holds it: within the limit. The patch may be deeper (its values are
  // what the limit is about); the sync service bounds it a few levels above.
  const auto document = fuzz::parse_line(input[0], kLimits.max_depth);
  const auto patch = fuzz::parse_line(input[1], kLimits.max_depth + 4);
  if (!document || !patch) return 0;
  json after;
  try {
    after = es::apply_json_patch(*document, *patch, kLimits);
  } catch (const es::invalid_argument_error&) {
    return 0;
  }
  if (auto v = es::find_json_violation(after, kLimits.max_depth)) {
    fuzz::fail("the patched document breaks the limits at " + v->pointer + ": " + after.dump());
  }
  // Within the limits, nlohmann applies the same operations the same way.
  json reference;
  try {
    reference = document->patch(*patch);
  } catch (const json::exception& e) {
    fuzz::fail(std::string("apply_json_patch applied a patch json::patch refuses: ") + e.what());
  }
  if (reference != after) fuzz::fail("apply_json_patch and json::patch differ");
  // Each remove against the document as the operations before it left it (every operation
  // applied, so the pointers are well formed).
  json state = *document;
  for (const json& op : *patch) {
    if (op.at("op") == "remove" &&
        !state.contains(json::json_pointer(op.at("path").get<std::string>()))) {
      fuzz::fail("a remove of the missing path " + op.at("path").dump() + " applied, in " +
                 document->dump());
    }
    state = state.patch(json::array({op}));
  }
  return 0;
}
