// Events as JSON: what buses put on the wire and what external consumers read.
//
// The format (one JSON object; members in any order, unknown members ignored so that a newer
// writer can add some):
//
//   {"id": "0190...", "type": "PlayerCreated",
//    "stream": {"type": "players", "id": "ann"},
//    "stream_version": 3, "position": 42, "timestamp_us": 1717000000123456,
//    "data": {...any JSON...}, "metadata": {...} or null}
//
// Every member is required. id and type are non-empty strings; stream.type and stream.id are
// strings; stream_version and position are integers >= 0; timestamp_us is the event's timestamp
// in microseconds since the Unix epoch (the precision the log keeps); metadata is an object or
// null; data is any JSON value.
//
// \par Thread safety
// Free functions without shared state: safe to call from any thread.
//
// \par Exceptions
// Every function here throws serialization_error (error.hpp) and nothing else of its own: the
// message says which member is missing or wrong and, when it is known, the event's id.
#pragma once

#include <string>
#include <string_view>

#include <eventsourced/event/event.hpp>

namespace eventsourced {

// The event as a JSON object in the format above. Throws serialization_error when metadata is
// neither an object nor null.
json event_to_json(const event& e);

// The event a JSON value in the format above describes. Throws serialization_error when j is not
// an object, a member is missing or has the wrong type, id or type is empty, a number is out of
// range or not finite, data or metadata is nested deeper than kMaxJsonDepth
// (engine/json_limits.hpp).
event event_from_json(const json& j);

// event_to_json(e) as compact JSON text. Also throws serialization_error when a string in the
// event is not valid UTF-8 (JSON text cannot carry it).
std::string serialize_event(const event& e);

// Parses text (one JSON object, surrounding whitespace allowed) into an event. Throws
// serialization_error for text that is not JSON (malformed, truncated, invalid UTF-8, trailing
// garbage) and for everything event_from_json refuses; the depth limit is checked while parsing,
// so no text, however deep, builds a value deeper than it.
event deserialize_event(std::string_view text);

}  // namespace eventsourced
