#include <eventsourced/event/type_registry.hpp>

#include <mutex>

namespace eventsourced {

void event_type_registry::add_registration(std::string type_name, registration r) {
  if (type_name.empty()) {
    throw invalid_argument_error("eventsourced: an event type name must not be empty");
  }
  std::unique_lock lock(mutex_);
  const auto named = by_name_.find(type_name);
  const auto typed = by_type_.find(r.type);
  if (named != by_name_.end() && typed != by_type_.end() && named->second.type == r.type) {
    return;  // the same registration again
  }
  if (named != by_name_.end()) {
    throw invalid_argument_error("eventsourced: event type '" + type_name +
                                 "' is already registered for another C++ type");
  }
  if (typed != by_type_.end()) {
    throw invalid_argument_error("eventsourced: cannot register event type '" + type_name +
                                 "': its C++ type is already registered as '" + typed->second +
                                 "'");
  }
  by_type_.emplace(r.type, type_name);
  by_name_.emplace(std::move(type_name), r);
}

decoded_event event_type_registry::decode(const event& e) const {
  std::any (*convert)(const json&) = nullptr;
  {
    std::shared_lock lock(mutex_);
    if (const auto it = by_name_.find(e.type); it != by_name_.end()) convert = it->second.decode;
  }
  // The conversion (user code) runs without the lock, so a from_json that uses this registry
  // cannot deadlock.
  if (convert == nullptr) return decoded_event(e, std::any());
  try {
    return decoded_event(e, convert(e.data));
  } catch (const json::exception& error) {
    throw serialization_error("eventsourced: event '" + e.id + "' of type '" + e.type +
                              "' does not convert to its registered type: " + error.what());
  }
}

bool event_type_registry::contains(std::string_view type_name) const {
  std::shared_lock lock(mutex_);
  return by_name_.find(type_name) != by_name_.end();
}

std::optional<std::string> event_type_registry::name_of(std::type_index type) const {
  std::shared_lock lock(mutex_);
  const auto it = by_type_.find(type);
  if (it == by_type_.end()) return std::nullopt;
  return it->second;
}

}  // namespace eventsourced
