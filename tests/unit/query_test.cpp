// The reference filter semantics (filter::matches) and the shared sort order.
#include <eventsourced/engine/query.hpp>
#include <eventsourced/error.hpp>

#include <gtest/gtest.h>

namespace eventsourced {
namespace {

bool match(const json& filter_spec, const json& doc) {
  return filter::parse(filter_spec).matches(doc);
}

TEST(field_path, splits_dotted_paths_and_marks_array_indexes) {
  const auto p = field_path::parse("items.0.name");
  ASSERT_EQ(p.segments().size(), 3u);
  EXPECT_FALSE(p.is_index(0));
  EXPECT_TRUE(p.is_index(1));
  EXPECT_EQ(*p.resolve(json{{"items", {{{"name", "sword"}}}}}), "sword");
  EXPECT_EQ(p.resolve(json{{"items", json::array()}}), nullptr);
  EXPECT_EQ(p.resolve(json{{"items", {{"0", {{"name", "x"}}}}}}), nullptr);  // index needs an array
}

TEST(field_path, rejects_empty_segments_quotes_and_dollar_prefixes) {
  for (const char* bad : {"", "a..b", ".a", "a.", "a\"b", "$where", "a.$b", "a\\b"}) {
    EXPECT_THROW(field_path::parse(bad), invalid_argument_error) << bad;
  }
}

TEST(filter, equality_is_whole_value_and_numeric_across_int_and_double) {
  EXPECT_TRUE(match({{"gold", 1}}, {{"gold", 1.0}}));
  EXPECT_FALSE(match({{"gold", 1}}, {{"gold", "1"}}));
  EXPECT_FALSE(match({{"tags", "a"}}, {{"tags", {"a"}}}));  // no implicit array traversal
  EXPECT_TRUE(match({{"tags", {"a", "b"}}}, {{"tags", {"a", "b"}}}));
  EXPECT_TRUE(match({{"flag", true}}, {{"flag", true}}));
  EXPECT_FALSE(match({{"flag", true}}, {{"flag", 1}}));
}

TEST(filter, null_equality_matches_missing_and_null_while_exists_tells_them_apart) {
  EXPECT_TRUE(match({{"x", nullptr}}, json::object()));
  EXPECT_TRUE(match({{"x", nullptr}}, {{"x", nullptr}}));
  EXPECT_TRUE(match({{"x", {{"$exists", true}}}}, {{"x", nullptr}}));
  EXPECT_FALSE(match({{"x", {{"$exists", true}}}}, json::object()));
}

TEST(filter, ranges_only_match_the_same_kind) {
  EXPECT_TRUE(match({{"n", {{"$gt", 5}}}}, {{"n", 6.5}}));
  EXPECT_FALSE(match({{"n", {{"$gt", 5}}}}, {{"n", "9"}}));
  EXPECT_TRUE(match({{"s", {{"$lt", "b"}}}}, {{"s", "abc"}}));
  EXPECT_TRUE(match({{"n", {{"$gte", 1}, {"$lte", 3}}}}, {{"n", 3}}));
  EXPECT_FALSE(match({{"n", {{"$gte", 1}, {"$lte", 3}}}}, {{"n", 4}}));
}

TEST(filter, negations_match_missing_fields) {
  EXPECT_TRUE(match({{"n", {{"$ne", 1}}}}, json::object()));
  EXPECT_TRUE(match({{"n", {{"$nin", {1, 2}}}}}, json::object()));
  EXPECT_FALSE(match({{"n", {{"$in", {1, 2}}}}}, json::object()));
}

TEST(filter, and_or_nest) {
  const json f = {{"$or", {{{"a", 1}}, {{"$and", {{{"b", 2}}, {{"c", {{"$exists", false}}}}}}}}}};
  EXPECT_TRUE(match(f, {{"a", 1}}));
  EXPECT_TRUE(match(f, {{"b", 2}}));
  EXPECT_FALSE(match(f, {{"b", 2}, {"c", 0}}));
}

TEST(filter, rejects_what_it_does_not_support) {
  for (const json& bad :
       {json{{"name", {{"$regex", "^a"}}}}, json{{"$where", "1"}}, json{{"n", {{"$gt", true}}}},
        json{{"n", {{"$in", 1}}}}, json{{"n", {{"$exists", 1}}}}, json{{"$or", json::array()}},
        json{{"n", {{"$gt", 1}, {"plain", 2}}}}, json::array(), json("x")}) {
    EXPECT_THROW(filter::parse(bad), invalid_argument_error) << bad.dump();
  }
}

TEST(compare_for_sort, orders_kinds_as_documented) {
  const json values[] = {nullptr, -1, 2.5, "a", "b", json::object(), json::array(), false, true};
  for (std::size_t i = 0; i + 1 < std::size(values); ++i) {
    EXPECT_LT(compare_for_sort(&values[i], &values[i + 1]), 0)
        << values[i] << " vs " << values[i + 1];
  }
  EXPECT_EQ(compare_for_sort(nullptr, &values[0]), 0);  // missing sorts with null
}

}  // namespace
}  // namespace eventsourced
