// Event schema evolution: upcasters rewrite old events into the shape the code expects now.
//
// Every event carries a schema version in its metadata (kSchemaVersionKey; an event without one
// is at version 1). An upcaster turns the data of one event type at schema version N into the
// data of version N + 1; a chain applies them in turn, so a v1 event read by code that knows v3
// goes through v1 → v2 → v3. Stored events are never rewritten: upcasting happens on every read,
// on every read path that is given the chain (event_log and so subscriptions, projections, the
// relay and watches; the repository when loading aggregates; the store's own event_log).
//
//   auto chain = std::make_shared<eventsourced::upcaster_chain>();
//   chain->add("PlayerJoined", 1, [](const eventsourced::event& e) {  // v1 had "name" only
//     auto data = e.data;
//     data["display_name"] = data.at("name");
//     return data;
//   });
//   // store_options{.upcasters = chain}: new PlayerJoined events are written as v2, old ones
//   // are read as v2.
//
// Writing. New events must say which shape they have: stamp() sets the schema version of an
// event whose type has upcasters to current_version(type), unless the event already carries one.
// The repository and the store's mapper path stamp every event they write when given a chain;
// code that appends through the engine directly calls stamp() itself.
//
// \par Thread safety
// Every member is safe to call from any thread, also add() while others upcast (an event read
// during an add() sees the chain before or after it). Register upcasters at startup.
//
// \par Errors
// add() throws invalid_argument_error for bad arguments. upcast() throws what an upcaster throws;
// a json::exception from an upcaster (a member missing, a wrong type) becomes serialization_error
// naming the event. A schema version that is not a positive integer is serialization_error.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <utility>

#include <eventsourced/engine/engine.hpp>
#include <eventsourced/event/event.hpp>

namespace eventsourced {

// The metadata member holding an event's schema version.
inline constexpr std::string_view kSchemaVersionKey = "schema_version";

// The schema version of an event: its metadata's schema_version, or 1 when it has none. Throws
// serialization_error when the member is present but not a positive integer.
std::int64_t schema_version_of(const json& metadata);

class upcaster_chain {
 public:
  // Receives an event at schema version from_version and returns its data at from_version + 1.
  using upcaster = std::function<json(const event& e)>;

  // Registers the upcaster of (type, from_version). Throws invalid_argument_error for an empty
  // type, from_version < 1, a null function, or a (type, from_version) registered before.
  void add(std::string type, std::int64_t from_version, upcaster fn);

  // The newest schema version of type: 1 + the number of consecutive upcasters from version 1
  // (1 when type has none).
  std::int64_t current_version(std::string_view type) const;

  // Rewrites e in place through every upcaster from its schema version on, and sets its
  // metadata's schema_version to the version reached (only when an upcaster ran). An event
  // already at or past the newest version is left as it is.
  void upcast(event& e) const;

  // Sets the schema version of a new event whose type has upcasters to current_version(type)
  // unless its metadata already has one. Events of types without upcasters are left as they are
  // (their version is 1 either way).
  void stamp(new_event& e) const;

  bool empty() const;

 private:
  mutable std::shared_mutex mutex_;
  // type -> from_version -> upcaster; guarded by mutex_.
  std::map<std::string, std::map<std::int64_t, upcaster>, std::less<>> upcasters_;
};

}  // namespace eventsourced
