#include <eventsourced/event/serializer.hpp>

#include <chrono>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>

#include <eventsourced/engine/json_limits.hpp>
#include <eventsourced/error.hpp>

namespace eventsourced {
namespace {

using std::chrono::microseconds;
using std::chrono::system_clock;

// system_clock counts nanoseconds on our platforms: microsecond values beyond this would overflow
// when converted.
constexpr std::int64_t kMaxTimestampMicroseconds =
    std::chrono::duration_cast<microseconds>(system_clock::duration::max()).count();

// Names the event in messages once its id is known (the id is read first).
std::string about(std::string_view id) {
  return id.empty() ? std::string("event") : "event '" + std::string(id) + "'";
}

[[noreturn]] void refuse(std::string_view id, const std::string& why) {
  throw serialization_error("eventsourced: cannot read " + about(id) + ": " + why);
}

const json& member(const json& object, std::string_view name, std::string_view id) {
  const auto it = object.find(name);
  if (it == object.end()) refuse(id, "member \"" + std::string(name) + "\" is missing");
  return *it;
}

std::string string_member(const json& object, std::string_view name, std::string_view id,
                          bool allow_empty) {
  const json& value = member(object, name, id);
  if (!value.is_string()) {
    refuse(id, "member \"" + std::string(name) + "\" must be a string, got " + value.type_name());
  }
  std::string text = value.get<std::string>();
  if (!allow_empty && text.empty()) {
    refuse(id, "member \"" + std::string(name) + "\" must not be empty");
  }
  return text;
}

std::int64_t integer_member(const json& object, std::string_view name, std::string_view id,
                            std::int64_t min, std::int64_t max) {
  const json& value = member(object, name, id);
  // Floats are refused even when whole: a writer that produced 3.0 is not writing this format.
  if (!value.is_number_integer()) {
    refuse(id, "member \"" + std::string(name) + "\" must be an integer, got " + value.type_name());
  }
  const bool too_large = value.is_number_unsigned()
                             ? value.get<std::uint64_t>() > static_cast<std::uint64_t>(max)
                             : value.get<std::int64_t>() > max;
  if (too_large || (!value.is_number_unsigned() && value.get<std::int64_t>() < min)) {
    refuse(id, "member \"" + std::string(name) + "\" is out of range: " + value.dump());
  }
  return value.get<std::int64_t>();
}

}  // namespace

json event_to_json(const event& e) {
  if (!e.metadata.is_object() && !e.metadata.is_null()) {
    throw serialization_error("eventsourced: cannot write " + about(e.id) +
                              ": metadata must be an object or null, got " +
                              e.metadata.type_name());
  }
  return json{
      {"id", e.id},
      {"type", e.type},
      {"stream", {{"type", e.stream.type}, {"id", e.stream.id}}},
      {"stream_version", e.stream_version},
      {"position", e.position},
      {"timestamp_us",
       std::chrono::duration_cast<microseconds>(e.timestamp.time_since_epoch()).count()},
      {"data", e.data},
      {"metadata", e.metadata},
  };
}

event event_from_json(const json& j) {
  if (!j.is_object()) refuse("", std::string("expected a JSON object, got ") + j.type_name());
  // Before anything copies it: data and metadata within kMaxJsonDepth, finite numbers.
  if (auto violation = find_json_violation(j, kMaxJsonDepth + 1)) {
    try {
      violation->raise("the event", kMaxJsonDepth + 1);
    } catch (const error& e) {
      refuse("", e.what());
    }
  }
  event e;
  e.id = string_member(j, "id", "", false);
  e.type = string_member(j, "type", e.id, false);
  const json& stream = member(j, "stream", e.id);
  if (!stream.is_object()) {
    refuse(e.id, std::string("member \"stream\" must be an object, got ") + stream.type_name());
  }
  e.stream.type = string_member(stream, "type", e.id, true);
  e.stream.id = string_member(stream, "id", e.id, true);
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  e.stream_version = integer_member(j, "stream_version", e.id, 0, kMax);
  e.position = integer_member(j, "position", e.id, 0, kMax);
  const std::int64_t timestamp_us = integer_member(
      j, "timestamp_us", e.id, -kMaxTimestampMicroseconds, kMaxTimestampMicroseconds);
  e.timestamp = system_clock::time_point(
      std::chrono::duration_cast<system_clock::duration>(microseconds(timestamp_us)));
  e.data = member(j, "data", e.id);
  e.metadata = member(j, "metadata", e.id);
  if (!e.metadata.is_object() && !e.metadata.is_null()) {
    refuse(e.id, std::string("member \"metadata\" must be an object or null, got ") +
                     e.metadata.type_name());
  }
  return e;
}

std::string serialize_event(const event& e) {
  const json j = event_to_json(e);
  try {
    return j.dump();  // strict: invalid UTF-8 throws rather than being written
  } catch (const json::exception& error) {
    throw serialization_error("eventsourced: cannot write " + about(e.id) + ": " + error.what());
  }
}

event deserialize_event(std::string_view text) {
  json j;
  try {
    // The envelope is one level around data and metadata.
    j = parse_json(text, kMaxJsonDepth + 1, "the event's text");
  } catch (const error& error) {
    throw serialization_error("eventsourced: an event cannot be read (" +
                              std::to_string(text.size()) + " bytes): " + error.what());
  }
  return event_from_json(j);
}

}  // namespace eventsourced
