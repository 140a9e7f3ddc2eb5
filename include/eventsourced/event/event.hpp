// The event model: what the log records and what buses, subscriptions and projections deliver.
//
// An event is a recorded_event (engine/engine.hpp): a unique id, a type, the stream it belongs to
// (aggregate type + aggregate id), its version in that stream (consecutive from 1), its global
// position in the log (strictly increasing in commit order), the commit timestamp, data and
// metadata. Events are values: copy them freely.
//
// Metadata is a JSON object (or null). The library reads and writes these members:
//   "correlation_id", "causation_id"  strings: which request a chain of events belongs to, and
//                                     which event or command caused this one
//   "document"                        {"collection", "id", "version"} on events the store records
//                                     for a document write: which write produced the event (watch
//                                     and the crash tests rely on it)
// Other members are the application's.
//
// \par Thread safety
// Free functions here are safe to call from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <eventsourced/engine/engine.hpp>

namespace eventsourced {

using event = recorded_event;

inline constexpr std::string_view kCorrelationIdKey = "correlation_id";
inline constexpr std::string_view kCausationIdKey = "causation_id";
inline constexpr std::string_view kDocumentKey = "document";

// A new unique event id: a UUID version 7 (time-ordered, 74 random bits) in canonical text form.
// Never throws.
std::string make_event_id();

// A new_event with a fresh id. metadata must be an object or null (checked at commit).
new_event make_event(std::string type, json data, json metadata = nullptr);

// Metadata accessors; nullopt when the member is absent or not a string.
std::optional<std::string> correlation_id(const event& e);
std::optional<std::string> causation_id(const event& e);

// The document write an event was recorded for (metadata "document"); nullopt for events not
// recorded by a document write.
struct document_ref {
  std::string collection;
  std::string id;
  std::int64_t version = 0;
  friend bool operator==(const document_ref&, const document_ref&) = default;
};
std::optional<document_ref> document_of(const event& e);

}  // namespace eventsourced
