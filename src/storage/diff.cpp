#include <eventsourced/storage/diff.hpp>

#include <string>

namespace eventsourced {
namespace {

// Appends `key` to a JSON Pointer as one reference token (RFC 6901: '~' → "~0", '/' → "~1").
void append_token(std::string& pointer, const std::string& key) {
  pointer += '/';
  for (const char c : key) {
    if (c == '~') {
      pointer += "~0";
    } else if (c == '/') {
      pointer += "~1";
    } else {
      pointer += c;
    }
  }
}

// A JSON Patch operation {"op": op, "path": path[, "value": value]}, built member by member: a
// braced initializer list costs several times more (nlohmann::json copies each element twice).
json operation(const char* op, std::string path, const json* value = nullptr) {
  json out(json::value_t::object);
  auto& members = out.get_ref<json::object_t&>();
  members.emplace("op", op);
  members.emplace("path", std::move(path));
  if (value != nullptr) members.emplace("value", *value);
  return out;
}

}  // namespace

json create_merge_patch(const json& from, const json& to) {
  if (!from.is_object() || !to.is_object()) return to;
  json patch = json::object();
  for (const auto& [key, value] : from.items()) {
    if (!to.contains(key)) patch[key] = nullptr;
  }
  for (const auto& [key, value] : to.items()) {
    const auto old = from.find(key);
    if (old == from.end()) {
      patch[key] = value;
    } else if (*old != value) {
      patch[key] = create_merge_patch(*old, value);
    }
  }
  return patch;
}

diff make_diff(const json& before, const json& after, std::int64_t version) {
  diff d;
  d.is_new = before.is_null() && !after.is_null();
  d.is_deleted = !before.is_null() && after.is_null();
  d.version = version;
  if (!before.is_object() || !after.is_object()) {
    d.has_changes = before != after;
    if (d.has_changes) {
      d.json_patch = json::diff(before, after);
      d.merge_patch = after;
    }
    return d;
  }
  // Two documents (objects): one pass over their members, handing only the members that differ
  // to nlohmann's json::diff. The operations are exactly those of json::diff(before, after), in
  // the same order, without json::diff comparing every unchanged member again at each level.
  json ops = json::array();
  json merge = json::object();
  for (auto it = before.cbegin(); it != before.cend(); ++it) {
    const auto found = after.find(it.key());
    if (found == after.end()) {
      std::string path;
      append_token(path, it.key());
      ops.push_back(operation("remove", std::move(path)));
      merge[it.key()] = nullptr;
    } else if (*it != *found) {
      std::string path;
      append_token(path, it.key());
      for (json& op : json::diff(*it, *found, path)) ops.push_back(std::move(op));
      merge[it.key()] = create_merge_patch(*it, *found);
    }
  }
  for (auto it = after.cbegin(); it != after.cend(); ++it) {
    if (before.contains(it.key())) continue;
    std::string path;
    append_token(path, it.key());
    ops.push_back(operation("add", std::move(path), &it.value()));
    merge[it.key()] = it.value();
  }
  d.has_changes = !merge.empty();
  if (d.has_changes) {
    d.json_patch = std::move(ops);
    d.merge_patch = std::move(merge);
  }
  return d;
}

}  // namespace eventsourced
