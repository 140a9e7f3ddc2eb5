// engine/json_limits.hpp: the depth limit and finite numbers, checked while parsing and on built
// values, without recursion deeper than the limit (values here are far deeper than any stack
// could walk recursively).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include <eventsourced/engine/json_limits.hpp>
#include <eventsourced/error.hpp>

namespace eventsourced_test {
namespace {

using eventsourced::find_json_violation;
using eventsourced::invalid_argument_error;
using eventsourced::json;
using eventsourced::json_depth_error;
using eventsourced::json_limit_violation;
using eventsourced::parse_json;
using eventsourced::parse_json_lenient;
using eventsourced::serialization_error;

std::string arrays(std::size_t levels, const std::string& inner = "") {
  return std::string(levels, '[') + inner + std::string(levels, ']');
}

bool mentions(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(json_limits, depth_counts_the_objects_and_arrays_around_the_deepest_value) {
  EXPECT_FALSE(find_json_violation(json(1), 0));  // a scalar has depth 0
  EXPECT_TRUE(find_json_violation(json::object(), 0));
  EXPECT_FALSE(find_json_violation(json::object(), 1));
  EXPECT_FALSE(find_json_violation(json::parse(R"({"a": [1]})"), 2));
  EXPECT_TRUE(find_json_violation(json::parse(R"({"a": [1]})"), 1));
  EXPECT_FALSE(find_json_violation(json::parse(R"({"a": [], "b": {"c": {}}})"), 3));
  EXPECT_TRUE(find_json_violation(json::parse(R"({"a": [], "b": {"c": {}}})"), 2));
}

TEST(json_limits, parsing_accepts_the_limit_and_refuses_one_level_more_naming_where) {
  EXPECT_EQ(parse_json(arrays(128, "1"), 128), json::parse(arrays(128, "1")));
  try {
    parse_json(R"({"a": {"b": )" + arrays(127) + "}}", 128, "the message");
    FAIL() << "parsed";
  } catch (const json_depth_error& e) {
    EXPECT_EQ(e.max_depth(), 128u);
    EXPECT_PRED2(mentions, e.what(), "the message is nested deeper than the limit of 128 levels");
    EXPECT_PRED2(mentions, e.what(), "at /a/b/0/0/");
    EXPECT_FALSE(e.retryable());
  }
}

TEST(json_limits, text_nested_a_million_deep_is_refused_without_building_it) {
  const std::string text = R"({"id": "x", "deep": )" + arrays(1'000'000) + "}";
  EXPECT_THROW(parse_json(text, eventsourced::kMaxJsonDepth), json_depth_error);
  // Over the limit and then malformed: the depth is found first, and the parse stops there.
  EXPECT_THROW(parse_json(std::string(1'000'000, '['), 128), json_depth_error);
}

TEST(json_limits, lenient_parsing_replaces_too_deep_values_by_null_and_keeps_the_rest) {
  const std::string text =
      R"({"request_id": 7, "document": {"a": )" + arrays(100'000, "1") + R"(, "b": 2}, "z": [1]})";
  const auto parsed = parse_json_lenient(text, 4);
  ASSERT_TRUE(parsed.violation.has_value());
  EXPECT_EQ(parsed.violation->problem, json_limit_violation::kind::too_deep);
  EXPECT_EQ(parsed.violation->pointer, "/document/a/0/0");
  EXPECT_EQ(parsed.value["request_id"], 7);
  EXPECT_EQ(parsed.value["document"]["b"], 2);
  EXPECT_EQ(parsed.value["document"]["a"], json::parse("[[null]]"));
  EXPECT_EQ(parsed.value["z"], json::parse("[1]"));
  EXPECT_FALSE(find_json_violation(parsed.value, 4));
  EXPECT_FALSE(parse_json_lenient(R"({"a": [1]})", 4).violation.has_value());
  EXPECT_THROW(parse_json_lenient("{\"a\": ", 4), serialization_error);
}

TEST(json_limits, text_that_is_not_json_is_a_serialization_error) {
  for (const char* text : {"", "{", "{\"a\": }", "[1, 2", "nul", "{\"a\": 1} x", "1e999"}) {
    SCOPED_TRACE(text);
    EXPECT_THROW(parse_json(text, 16), serialization_error);
  }
  // A repeated key keeps the last value, as json::parse does.
  EXPECT_EQ(parse_json(R"({"a": 1, "a": [2]})", 16), json::parse(R"({"a": [2]})"));
}

TEST(json_limits, built_values_with_nan_or_infinity_are_refused_naming_the_place) {
  for (const double bad :
       {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
        -std::numeric_limits<double>::infinity()}) {
    json value = {{"stats", {{"list", {1, 2, bad}}}}};
    const auto violation = find_json_violation(value, 16);
    ASSERT_TRUE(violation.has_value());
    EXPECT_EQ(violation->problem, json_limit_violation::kind::not_finite);
    EXPECT_EQ(violation->pointer, "/stats/list/2");
    try {
      eventsourced::check_json(value, 16, "the body");
      ADD_FAILURE() << "accepted";
    } catch (const json_depth_error&) {
      ADD_FAILURE() << "a depth error for a number";
    } catch (const invalid_argument_error& e) {
      EXPECT_PRED2(mentions, e.what(), "the body: not a finite number at /stats/list/2");
    }
  }
  EXPECT_NO_THROW(eventsourced::check_json(json{{"x", 1e308}, {"y", -0.0}}, 16, "v"));
  EXPECT_THROW(eventsourced::check_json(json(json::value_t::discarded), 16, "v"),
               invalid_argument_error);
}

TEST(json_limits, a_built_value_a_million_deep_is_checked_without_recursing_through_it) {
  const json deep = json::parse(arrays(1'000'000));  // nlohmann's parser is iterative
  const auto violation = find_json_violation(deep, eventsourced::kMaxJsonDepth);
  ASSERT_TRUE(violation.has_value());
  EXPECT_EQ(violation->problem, json_limit_violation::kind::too_deep);
  EXPECT_PRED2(mentions, violation->pointer, "more levels");
}

TEST(json_limits, pointers_escape_keys_and_stay_printable) {
  json value = json::object();
  value["a/b~c"] = json::object();
  value["a/b~c"]["\x01\xc3\xa9"] = {{"x", std::numeric_limits<double>::infinity()}};
  const auto violation = find_json_violation(value, 16);
  ASSERT_TRUE(violation.has_value());
  EXPECT_EQ(violation->pointer, "/a~1b~0c/\\x01\\xc3\\xa9/x");
}

TEST(json_limits, a_depth_setting_outside_one_to_the_maximum_is_refused) {
  EXPECT_THROW(eventsourced::validate_max_json_depth(0, "x"), invalid_argument_error);
  EXPECT_THROW(eventsourced::validate_max_json_depth(eventsourced::kMaxJsonDepthSetting + 1, "x"),
               invalid_argument_error);
  EXPECT_NO_THROW(eventsourced::validate_max_json_depth(1, "x"));
  EXPECT_NO_THROW(eventsourced::validate_max_json_depth(eventsourced::kMaxJsonDepthSetting, "x"));
}

}  // namespace
}  // namespace eventsourced_test
