// The event serializer (serializer.hpp): the JSON format is a contract with other processes, so
// the tests pin its member names, round-trip every field, and show that any malformed, truncated
// or wrongly typed input is a serialization_error, never a crash or a half-read event.
#include <eventsourced/event/serializer.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <limits>
#include <string>
#include <vector>

#include <eventsourced/engine/json_limits.hpp>
#include <eventsourced/error.hpp>

namespace eventsourced {
namespace {

event sample_event() {
  event e;
  e.id = "0190a0c2-7b1e-7cc3-9a2b-0123456789ab";
  e.type = "PlayerRenamed";
  e.stream = {"players", "ann"};
  e.stream_version = 3;
  e.position = 42;
  e.timestamp = std::chrono::system_clock::time_point(std::chrono::microseconds(1717000000123456));
  e.data = {
      {"from", "Ann"}, {"to", "Anne \xc3\xa9\xe2\x82\xac"}, {"tags", {1, 2.5, nullptr, true}}};
  e.metadata = {{"correlation_id", "req-1"},
                {"document", {{"collection", "players"}, {"id", "ann"}, {"version", 3}}}};
  return e;
}

void expect_same_event(const event& a, const event& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.type, b.type);
  EXPECT_EQ(a.stream, b.stream);
  EXPECT_EQ(a.stream_version, b.stream_version);
  EXPECT_EQ(a.position, b.position);
  EXPECT_EQ(a.timestamp, b.timestamp);
  EXPECT_EQ(a.data, b.data);
  EXPECT_EQ(a.metadata, b.metadata);
}

// What deserialize_event says about text, or "" when it accepts it.
std::string refusal(std::string_view text) {
  try {
    deserialize_event(text);
    return "";
  } catch (const serialization_error& e) {
    return e.what();
  }
}

json valid_json() {
  return event_to_json(sample_event());
}

TEST(event_serializer, round_trips_every_field) {
  const event e = sample_event();
  expect_same_event(deserialize_event(serialize_event(e)), e);
}

TEST(event_serializer, round_trips_null_metadata_and_scalar_or_null_data) {
  for (const json& data : {json(nullptr), json(7), json("text"), json::array(), json::object()}) {
    event e = sample_event();
    e.data = data;
    e.metadata = nullptr;
    expect_same_event(deserialize_event(serialize_event(e)), e);
  }
}

TEST(event_serializer, keeps_microseconds_and_dates_before_1970) {
  event e = sample_event();
  e.timestamp = std::chrono::system_clock::time_point(std::chrono::microseconds(-86400000001));
  expect_same_event(deserialize_event(serialize_event(e)), e);
}

TEST(event_serializer, writes_the_documented_member_names) {
  const json j = json::parse(serialize_event(sample_event()));
  EXPECT_EQ(j, json::parse(R"({
    "id": "0190a0c2-7b1e-7cc3-9a2b-0123456789ab", "type": "PlayerRenamed",
    "stream": {"type": "players", "id": "ann"},
    "stream_version": 3, "position": 42, "timestamp_us": 1717000000123456,
    "data": {"from": "Ann", "to": "Anne \u00e9\u20ac", "tags": [1, 2.5, null, true]},
    "metadata": {"correlation_id": "req-1",
                 "document": {"collection": "players", "id": "ann", "version": 3}}
  })"));
}

TEST(event_serializer, ignores_unknown_members_and_surrounding_whitespace) {
  json j = valid_json();
  j["added_by_a_newer_writer"] = {1, 2};
  expect_same_event(deserialize_event("  \n" + j.dump() + "\t "), sample_event());
}

TEST(event_serializer, every_prefix_of_a_serialized_event_is_refused) {
  const std::string text = serialize_event(sample_event());
  for (std::size_t n = 0; n < text.size(); ++n) {
    EXPECT_NE(refusal(std::string_view(text).substr(0, n)), "")
        << "accepted prefix of length " << n;
  }
}

TEST(event_serializer, text_that_is_not_one_json_value_is_refused) {
  for (const std::string text :
       {"", "   ", "{", "}", "nul", "{\"id\":}", "{'id': 'x'}", "{\"id\" \"x\"}", "[1,2",
        "\"unterminated", "{} {}", "{\"id\":\"a\"} trailing", "\xff\xfe{}"}) {
    EXPECT_NE(refusal(text), "") << text;
  }
}

TEST(event_serializer, invalid_utf8_inside_a_string_is_refused_when_reading) {
  std::string text = serialize_event(sample_event());
  const auto at = text.find("Ann");
  text[at] = '\xc3';  // a lead byte followed by 'n': not UTF-8
  EXPECT_NE(refusal(text), "");
}

TEST(event_serializer, data_nested_deeper_than_the_engines_keep_is_refused_while_parsing) {
  // The members are written in name order: "data" is followed by "id".
  const auto with_data = [](const std::string& data) {
    std::string text = serialize_event(sample_event());
    const auto at = text.find("\"data\":") + 7;
    const auto end = text.find(",\"id\"", at);
    return text.substr(0, at) + data + text.substr(end);
  };
  const auto arrays = [](std::size_t n) { return std::string(n, '[') + std::string(n, ']'); };
  EXPECT_EQ(refusal(with_data(arrays(kMaxJsonDepth))), "");
  EXPECT_NE(refusal(with_data(arrays(kMaxJsonDepth + 1))).find("nested deeper"), std::string::npos);
  EXPECT_NE(refusal(with_data(arrays(1'000'000))), "");
  json built = valid_json();
  built["data"] = json::parse(arrays(100'000));
  EXPECT_THROW(event_from_json(built), serialization_error);
  built["data"] = {{"x", std::numeric_limits<double>::infinity()}};
  EXPECT_THROW(event_from_json(built), serialization_error);
}

TEST(event_serializer, a_non_object_value_is_refused) {
  for (const std::string text : {"null", "42", "\"event\"", "[]", "true"}) {
    EXPECT_NE(refusal(text).find("expected a JSON object"), std::string::npos) << text;
  }
}

TEST(event_serializer, each_missing_member_is_named) {
  for (const std::string member :
       {"id", "type", "stream", "stream_version", "position", "timestamp_us", "data", "metadata"}) {
    json j = valid_json();
    j.erase(member);
    const std::string why = refusal(j.dump());
    EXPECT_NE(why.find("\"" + member + "\" is missing"), std::string::npos) << why;
  }
  for (const std::string member : {"type", "id"}) {
    json j = valid_json();
    j["stream"].erase(member);
    const std::string why = refusal(j.dump());
    EXPECT_NE(why.find("\"" + member + "\" is missing"), std::string::npos) << why;
  }
}

TEST(event_serializer, wrongly_typed_members_are_refused_and_named) {
  struct wrong {
    json::json_pointer where;
    json value;
  };
  const std::vector<wrong> cases = {
      {json::json_pointer("/id"), 17},
      {json::json_pointer("/id"), nullptr},
      {json::json_pointer("/type"), json::array({"PlayerRenamed"})},
      {json::json_pointer("/stream"), "players/ann"},
      {json::json_pointer("/stream/type"), 1},
      {json::json_pointer("/stream/id"), json::object()},
      {json::json_pointer("/stream_version"), "3"},
      {json::json_pointer("/stream_version"), 3.0},
      {json::json_pointer("/stream_version"), -1},
      {json::json_pointer("/stream_version"), 18446744073709551615ull},
      {json::json_pointer("/position"), true},
      {json::json_pointer("/position"), -5},
      {json::json_pointer("/timestamp_us"), "2024-05-29T00:00:00Z"},
      {json::json_pointer("/timestamp_us"), 9223372036854775807ll},  // beyond system_clock
      {json::json_pointer("/metadata"), "req-1"},
      {json::json_pointer("/metadata"), json::array()},
  };
  for (const auto& c : cases) {
    json j = valid_json();
    j[c.where] = c.value;
    const std::string why = refusal(j.dump());
    EXPECT_NE(why, "") << c.where.to_string() << " = " << c.value.dump() << " was accepted";
    const std::string name = c.where.back();
    EXPECT_NE(why.find("\"" + name + "\""), std::string::npos) << why;
  }
}

TEST(event_serializer, an_empty_type_or_id_is_refused) {
  json j = valid_json();
  j["type"] = "";
  EXPECT_NE(refusal(j.dump()).find("\"type\" must not be empty"), std::string::npos);
  // The message names the event whose type is empty.
  EXPECT_NE(refusal(j.dump()).find(sample_event().id), std::string::npos);
  j = valid_json();
  j["id"] = "";
  EXPECT_NE(refusal(j.dump()).find("\"id\" must not be empty"), std::string::npos);
}

TEST(event_serializer, writing_metadata_that_is_not_an_object_is_refused) {
  event e = sample_event();
  e.metadata = json::array({1});
  EXPECT_THROW(serialize_event(e), serialization_error);
  EXPECT_THROW(event_to_json(e), serialization_error);
}

TEST(event_serializer, writing_a_string_that_is_not_utf8_is_refused) {
  event e = sample_event();
  e.data = {{"name", std::string("\xff\xfe")}};
  EXPECT_THROW(serialize_event(e), serialization_error);
}

TEST(event_serializer, event_from_json_and_to_json_are_inverse) {
  const event e = sample_event();
  expect_same_event(event_from_json(event_to_json(e)), e);
}

}  // namespace
}  // namespace eventsourced
