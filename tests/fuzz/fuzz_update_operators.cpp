// apply_update (storage/update_operators.hpp) with any document and any update: what update_one
// runs on a client's request.
//
// Input: the document on the first line, the update on the second (JSON). Promises checked:
// anything refused is an invalid_argument_error; an update that applies leaves an object in
// which every operator did what the header says. Conflicting paths are refused, so the operators
// commute and each one's effect must hold in the final result:
//   $set        the path holds the operand
//   $unset      the path is missing (or null, for an array element)
//   $inc $mul   the path holds a number
//   $min $max   the path holds a value no greater / no smaller than the operand
//   $push       the array ends with the values pushed
//   $addToSet   the array holds each value (query equality)
//   $pull       the array holds no element matching the condition
//   $rename     the target holds what the source held, and the source is gone
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include <eventsourced/engine/query.hpp>
#include <eventsourced/storage/update_operators.hpp>

#include "fuzz_support.hpp"

using eventsourced::json;
namespace es = eventsourced;
namespace fuzz = eventsourced::fuzz;

namespace {

constexpr std::size_t kMaxDepth = 32;

// Equality as queries and $addToSet define it.
bool query_equal(const json* field, const json& value) {
  return field != nullptr && es::filter::parse({{"v", {{"$eq", value}}}}).matches({{"v", *field}});
}

// The values $push / $addToSet add: one value, or {"$each": [...]}.
json added_values(const json& operand) {
  if (operand.is_object() && operand.contains("$each")) return operand.at("$each");
  return json::array({operand});
}

void check_effect(const std::string& op, const std::string& dotted, const json& operand,
                  const json& before, const json& after) {
  const es::field_path path = es::field_path::parse(dotted);
  const json* field = path.resolve(after);
  const auto broken = [&](const std::string& why) {
    fuzz::fail(op + " on '" + dotted + "' with " + operand.dump() + ": " + why + "; before " +
               before.dump() + ", after " + after.dump());
  };
  if (op == "$set") {
    if (field == nullptr || *field != operand) broken("the path does not hold the operand");
  } else if (op == "$unset") {
    if (field != nullptr && !field->is_null()) broken("the path still holds a value");
  } else if (op == "$inc" || op == "$mul") {
    if (field == nullptr || !field->is_number()) broken("the path does not hold a number");
  } else if (op == "$min" || op == "$max") {
    if (field == nullptr) broken("the path is missing");
    const int c = es::compare_for_sort(field, &operand);
    if (op == "$min" ? c > 0 : c < 0) broken("the field is on the wrong side of the operand");
  } else if (op == "$push") {
    const json values = added_values(operand);
    if (field == nullptr || !field->is_array() || field->size() < values.size() ||
        !std::equal(values.begin(), values.end(),
                    field->end() - static_cast<std::ptrdiff_t>(values.size()))) {
      broken("the array does not end with the values pushed");
    }
  } else if (op == "$addToSet") {
    if (field == nullptr || !field->is_array()) broken("the path does not hold an array");
    for (const json& value : added_values(operand)) {
      if (std::none_of(field->begin(), field->end(),
                       [&](const json& element) { return query_equal(&element, value); })) {
        broken("a value is missing from the set");
      }
    }
  } else if (op == "$pull") {
    if (field == nullptr) return;
    const bool is_condition =
        operand.is_object() && !operand.empty() && operand.begin().key().starts_with('$');
    const es::filter condition =
        es::filter::parse({{"v", is_condition ? operand : json{{"$eq", operand}}}});
    if (std::any_of(field->begin(), field->end(), [&](const json& element) {
          return condition.matches({{"v", element}});
        })) {
      broken("an element matching the condition is left");
    }
  } else if (op == "$rename") {
    const json* source = path.resolve(before);
    if (source == nullptr) return;
    const json* target = es::field_path::parse(operand.get<std::string>()).resolve(after);
    if (target == nullptr || *target != *source) broken("the target does not hold the source");
    if (field != nullptr) broken("the source is still there");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto input = fuzz::lines(fuzz::as_text(data, size), 2);
  if (input.size() < 2) return 0;
  const auto document = fuzz::parse_line(input[0], kMaxDepth);
  const auto update = fuzz::parse_line(input[1], kMaxDepth);
  if (!document || !update) return 0;
  json after;
  try {
    after = es::apply_update(*document, *update);
  } catch (const es::invalid_argument_error&) {
    return 0;
  }
  if (!after.is_object()) fuzz::fail("apply_update returned a " + std::string(after.type_name()));
  for (const auto& [op, paths] : update->items()) {
    for (const auto& [dotted, operand] : paths.items()) {
      check_effect(op, dotted, operand, *document, after);
    }
  }
  return 0;
}
