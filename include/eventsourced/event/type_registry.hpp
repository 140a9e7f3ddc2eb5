// Event types as C++ types: which struct an event's data converts to, by event type name.
//
//   struct player_created { std::string name; int gold = 0; };   // with to_json / from_json
//   event_type_registry types;
//   types.add<player_created>("PlayerCreated");
//   new_event e = types.encode(player_created{"ann", 10});          // type "PlayerCreated"
//   decoded_event d = types.decode(recorded);
//   if (const auto* created = d.get_if<player_created>()) { ... }
//
// Conversions use the nlohmann::json ADL convention (to_json / from_json in T's namespace).
// An event whose type is not registered decodes to a generic decoded_event that still carries
// the event and its JSON data: consumers skip or inspect it, it is not an error (an older
// consumer meets event types a newer producer added).
//
// \par Thread safety
// Every member function may be called from any number of threads at once, add() included
// (a shared_mutex guards the tables). Registering every type before the first decode is still the
// natural use: an event decoded before its type is added is generic.
//
// \par Exceptions
// add() and encode() throw invalid_argument_error for misuse (see each); decode() and encode()
// throw serialization_error when data does not convert. Nothing is changed when they throw.
#pragma once

#include <any>
#include <functional>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <typeindex>
#include <typeinfo>
#include <unordered_map>
#include <utility>

#include <eventsourced/error.hpp>
#include <eventsourced/event/event.hpp>

namespace eventsourced {

// An event together with its data as the registered C++ type, when its type is registered.
// A value: copy it freely.
class decoded_event {
 public:
  decoded_event(event e, std::any value) : event_(std::move(e)), value_(std::move(value)) {}

  // The event as it was recorded (its data as JSON included).
  const event& source() const noexcept { return event_; }
  const std::string& type() const noexcept { return event_.type; }
  const json& data() const noexcept { return event_.data; }

  // True when the event's type is registered (the data is available as that type).
  bool known() const noexcept { return value_.has_value(); }

  // The data as T when the event's type is registered as T; nullptr otherwise (an unknown type,
  // or another T). The pointer lives as long as this object.
  template <typename T>
  const T* get_if() const noexcept {
    return std::any_cast<T>(&value_);
  }

 private:
  event event_;
  std::any value_;  // empty for an unregistered type
};

class event_type_registry {
 public:
  // Registers T under type_name. Adding the same (type_name, T) again does nothing. Throws
  // invalid_argument_error for an empty type_name, a type_name already registered for another
  // type, or a T already registered under another name (encode must know the one name of T).
  template <typename T>
  void add(std::string type_name);

  // The event with its data converted to the registered type; a generic decoded_event (known()
  // false) when e.type is not registered. Throws serialization_error naming the event type and
  // id when the type is registered but the data does not convert (from_json threw a
  // nlohmann::json exception); other exceptions from a user's from_json propagate unchanged.
  decoded_event decode(const event& e) const;

  // A new_event (fresh id) of T's registered type, with value converted to JSON as data. Throws
  // invalid_argument_error when T is not registered; serialization_error when to_json throws a
  // nlohmann::json exception.
  template <typename T>
  new_event encode(const T& value, json metadata = nullptr) const;

  // Whether type_name is registered.
  bool contains(std::string_view type_name) const;
  // The name T is registered under; nullopt when it is not.
  template <typename T>
  std::optional<std::string> type_name_of() const {
    return name_of(typeid(T));
  }

 private:
  struct registration {
    std::type_index type;
    std::any (*decode)(const json& data);
  };
  struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };

  void add_registration(std::string type_name, registration r);
  std::optional<std::string> name_of(std::type_index type) const;

  mutable std::shared_mutex mutex_;
  // GUARDED_BY(mutex_)
  std::unordered_map<std::string, registration, string_hash, std::equal_to<>> by_name_;
  // GUARDED_BY(mutex_)
  std::unordered_map<std::type_index, std::string> by_type_;
};

template <typename T>
void event_type_registry::add(std::string type_name) {
  add_registration(std::move(type_name), registration{typeid(T), [](const json& data) -> std::any {
                                                        return std::any(data.get<T>());
                                                      }});
}

template <typename T>
new_event event_type_registry::encode(const T& value, json metadata) const {
  std::optional<std::string> name = name_of(typeid(T));
  if (!name) {
    throw invalid_argument_error(std::string("eventsourced: no event type is registered for ") +
                                 typeid(T).name());
  }
  json data;
  try {
    data = value;
  } catch (const json::exception& e) {
    throw serialization_error("eventsourced: an event of type '" + *name +
                              "' does not convert to JSON: " + e.what());
  }
  return make_event(std::move(*name), std::move(data), std::move(metadata));
}

}  // namespace eventsourced
