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

// One walk over both documents that yields the same operations, in the same order, as
// json::diff(source, target) (appended to `ops`) and the merge patch of create_merge_patch(source,
// target) (into `merge`, only when something changed). Unlike json::diff, it compares each value
// once (json::diff compares every sub-tree again at each level) and builds a path only for an
// operation it emits. Returns whether source and target differ (source != target).
bool walk(const json& source, const json& target, std::string& path, json& ops, json& merge) {
  if (source.is_object() && target.is_object()) {
    const std::size_t length = path.size();
    bool changed = false;
    for (auto it = source.cbegin(); it != source.cend(); ++it) {
      const auto found = target.find(it.key());
      append_token(path, it.key());
      if (found != target.end()) {
        json child;
        if (walk(it.value(), *found, path, ops, child)) {
          if (!changed) merge = json::object();
          merge[it.key()] = std::move(child);
          changed = true;
        }
      } else {
        ops.push_back(json::object({{"op", "remove"}, {"path", path}}));
        if (!changed) merge = json::object();
        merge[it.key()] = nullptr;
        changed = true;
      }
      path.resize(length);
    }
    for (auto it = target.cbegin(); it != target.cend(); ++it) {
      if (source.find(it.key()) != source.end()) continue;
      append_token(path, it.key());
      ops.push_back({{"op", "add"}, {"path", path}, {"value", it.value()}});
      path.resize(length);
      if (!changed) merge = json::object();
      merge[it.key()] = it.value();
      changed = true;
    }
    return changed;
  }
  if (source.is_array() && target.is_array()) {
    const std::size_t length = path.size();
    const std::size_t before = ops.size();
    std::size_t i = 0;
    json unused;  // a merge patch replaces arrays whole
    for (; i < source.size() && i < target.size(); ++i) {
      path += '/';
      path += std::to_string(i);
      walk(source[i], target[i], path, ops, unused);
      path.resize(length);
    }
    // Removals of the trailing elements go in reverse order, so each index is still valid.
    const auto end_index = static_cast<json::difference_type>(ops.size());
    for (; i < source.size(); ++i) {
      ops.insert(ops.begin() + end_index,
                 json::object({{"op", "remove"}, {"path", path + "/" + std::to_string(i)}}));
    }
    for (; i < target.size(); ++i) {
      ops.push_back({{"op", "add"}, {"path", path + "/-"}, {"value", target[i]}});
    }
    if (ops.size() == before) return false;
    merge = target;
    return true;
  }
  if (source == target) return false;
  ops.push_back({{"op", "replace"}, {"path", path}, {"value", target}});
  merge = target;
  return true;
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
  std::string path;
  json merge;
  d.has_changes = walk(before, after, path, d.json_patch, merge);
  if (d.has_changes) d.merge_patch = std::move(merge);
  return d;
}

}  // namespace eventsourced
