#include <eventsourced/storage/diff.hpp>

namespace eventsourced {

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
  d.has_changes = before != after;
  d.version = version;
  if (d.has_changes) {
    d.json_patch = json::diff(before, after);
    d.merge_patch = create_merge_patch(before, after);
  }
  return d;
}

}  // namespace eventsourced
