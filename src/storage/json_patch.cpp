#include <eventsourced/storage/json_patch.hpp>

#include <algorithm>
#include <string>

#include <eventsourced/error.hpp>

namespace eventsourced {
namespace {

// The length of a value's JSON text, roughly, counting no further than `budget` + 1.
// Recursive, but only as deep as the value, which is within the document's depth.
std::size_t text_bytes(const json& value, std::size_t budget) {
  switch (value.type()) {
    case json::value_t::object: {
      std::size_t n = 2;
      for (const auto& [key, member] : value.get_ref<const json::object_t&>()) {
        if (n > budget) break;
        n += key.size() + 4 + text_bytes(member, budget - std::min(n, budget));
      }
      return n;
    }
    case json::value_t::array: {
      std::size_t n = 2;
      for (const json& item : value.get_ref<const json::array_t&>()) {
        if (n > budget) break;
        n += 1 + text_bytes(item, budget - std::min(n, budget));
      }
      return n;
    }
    case json::value_t::string:
      return value.get_ref<const json::string_t&>().size() + 2;
    default:
      return 8;
  }
}

const std::string& string_member(const json& op, const char* name, std::size_t index) {
  const auto it = op.find(name);
  if (it == op.end() || !it->is_string()) {
    throw invalid_argument_error("JSON patch operation " + std::to_string(index) +
                                 " needs a string \"" + name + "\"");
  }
  return it->get_ref<const std::string&>();
}

// The number of reference tokens in a JSON pointer ("" has none, "/a/0" two).
std::size_t tokens(const std::string& pointer) {
  return static_cast<std::size_t>(std::count(pointer.begin(), pointer.end(), '/'));
}

std::string shortened(std::string text) {
  constexpr std::size_t kMax = 300;
  if (text.size() > kMax) text = text.substr(0, kMax) + "...";
  return text;
}

}  // namespace

json apply_json_patch(json doc, const json& patch, const json_patch_limits& limits) {
  if (!patch.is_array()) {
    throw invalid_argument_error(std::string("a JSON patch is an array of operations, got ") +
                                 patch.type_name());
  }
  if (patch.size() > limits.max_operations) {
    throw invalid_argument_error("a JSON patch of " + std::to_string(patch.size()) +
                                 " operations; at most " + std::to_string(limits.max_operations));
  }
  // Before any operation is copied or compared: every value within the limit (the array and an
  // operation object are two levels around it).
  if (auto violation = find_json_violation(patch, limits.max_depth + 2)) {
    violation->raise("a value in the JSON patch", limits.max_depth);
  }
  std::size_t copied = 0;
  json single = json::array();
  for (std::size_t i = 0; i < patch.size(); ++i) {
    const json& op = patch[i];
    if (!op.is_object()) {
      throw invalid_argument_error("JSON patch operation " + std::to_string(i) +
                                   " is not an object");
    }
    const std::string& name = string_member(op, "op", i);
    const std::string& path = string_member(op, "path", i);
    const std::size_t depth_at_path = tokens(path);
    // A value placed at `path` must fit in what is left of the depth limit.
    const auto check_depth = [&](const json& value) {
      const std::size_t room =
          limits.max_depth > depth_at_path ? limits.max_depth - depth_at_path : 0;
      const bool fits = room > 0 ? !find_json_violation(value, room).has_value()
                                 : !value.is_object() && !value.is_array();
      if (!fits || depth_at_path > limits.max_depth) {
        throw json_depth_error("JSON patch operation " + std::to_string(i) + " (" + name + " at " +
                                   shortened(path) + ") would nest the document deeper " +
                                   "than the limit of " + std::to_string(limits.max_depth) +
                                   " levels",
                               limits.max_depth);
      }
    };
    try {
      // What nlohmann's patch in Debian's 3.11.2 does not check itself: an add under a scalar
      // aborts on an assertion (JSON_ASSERT), and a remove through one does nothing.
      const json::json_pointer pointer(path);
      if (name == "add" || name == "copy" || name == "move") {
        if (!pointer.empty()) {
          const json& parent = doc.at(pointer.parent_pointer());
          if (!parent.is_object() && !parent.is_array()) {
            throw invalid_argument_error("JSON patch operation " + std::to_string(i) + " (" + name +
                                         " at " + shortened(path) + "): the parent is a " +
                                         parent.type_name() + ", not an object or an array");
          }
        }
      } else if (name == "remove" || name == "replace") {
        doc.at(pointer);  // must exist: throws out_of_range
      }
      if (name == "add" || name == "replace") {
        const auto value = op.find("value");
        if (value != op.end()) check_depth(*value);
      } else if (name == "copy" || name == "move") {
        const json& from = doc.at(json::json_pointer(string_member(op, "from", i)));
        check_depth(from);
        const std::size_t left = limits.max_copied_bytes - copied;
        copied += text_bytes(from, left);
        if (copied > limits.max_copied_bytes) {
          throw invalid_argument_error(
              "JSON patch operation " + std::to_string(i) + " (" + name + "): the patch copies " +
              "more than " + std::to_string(limits.max_copied_bytes) + " bytes of JSON in all");
        }
      }
      single.get_ref<json::array_t&>().assign(1, op);
      doc.patch_inplace(single);
    } catch (const json::exception& e) {
      throw invalid_argument_error("JSON patch operation " + std::to_string(i) +
                                   " cannot be applied: " + shortened(e.what()));
    }
  }
  return doc;
}

}  // namespace eventsourced
