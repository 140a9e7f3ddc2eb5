#include <eventsourced/event/upcaster.hpp>

#include <mutex>
#include <string>
#include <utility>

#include <eventsourced/error.hpp>

namespace eventsourced {

std::int64_t schema_version_of(const json& metadata) {
  if (!metadata.is_object()) return 1;
  auto it = metadata.find(kSchemaVersionKey);
  if (it == metadata.end()) return 1;
  if (!it->is_number_integer() || it->get<std::int64_t>() < 1) {
    throw serialization_error(
        "eventsourced: event schema_version must be a positive integer, was " + it->dump());
  }
  return it->get<std::int64_t>();
}

void upcaster_chain::add(std::string type, std::int64_t from_version, upcaster fn) {
  if (type.empty()) throw invalid_argument_error("eventsourced: upcaster for an empty event type");
  if (from_version < 1) {
    throw invalid_argument_error("eventsourced: upcaster for " + type +
                                 ": schema versions start at 1, from_version was " +
                                 std::to_string(from_version));
  }
  if (!fn) throw invalid_argument_error("eventsourced: null upcaster for " + type);
  std::unique_lock lock(mutex_);
  auto& versions = upcasters_[type];
  if (!versions.try_emplace(from_version, std::move(fn)).second) {
    throw invalid_argument_error("eventsourced: an upcaster for " + type + " from schema version " +
                                 std::to_string(from_version) + " is already registered");
  }
}

std::int64_t upcaster_chain::current_version(std::string_view type) const {
  std::shared_lock lock(mutex_);
  auto it = upcasters_.find(type);
  std::int64_t version = 1;
  if (it == upcasters_.end()) return version;
  while (it->second.count(version) != 0) ++version;
  return version;
}

void upcaster_chain::upcast(event& e) const {
  std::shared_lock lock(mutex_);
  auto it = upcasters_.find(e.type);
  if (it == upcasters_.end()) return;
  std::int64_t version = schema_version_of(e.metadata);
  bool changed = false;
  for (auto step = it->second.find(version); step != it->second.end();
       step = it->second.find(version)) {
    try {
      e.data = step->second(e);
    } catch (const json::exception& ex) {
      throw serialization_error("eventsourced: upcasting event " + e.id + " (" + e.type +
                                " schema version " + std::to_string(version) +
                                ") failed: " + ex.what());
    }
    ++version;
    changed = true;
  }
  if (changed) {
    if (!e.metadata.is_object()) e.metadata = json::object();
    e.metadata[std::string(kSchemaVersionKey)] = version;
  }
}

void upcaster_chain::stamp(new_event& e) const {
  if (e.metadata.is_object() && e.metadata.contains(kSchemaVersionKey)) return;
  std::int64_t version = current_version(e.type);
  if (version == 1) return;
  if (e.metadata.is_null()) e.metadata = json::object();
  if (!e.metadata.is_object()) return;  // the engine rejects it with a clear message
  e.metadata[std::string(kSchemaVersionKey)] = version;
}

bool upcaster_chain::empty() const {
  std::shared_lock lock(mutex_);
  return upcasters_.empty();
}

}  // namespace eventsourced
