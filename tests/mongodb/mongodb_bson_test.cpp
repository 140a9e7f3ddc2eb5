// JSON <-> BSON conversion of the MongoDB engine (src/mongodb/bson_json.hpp): every JSON value
// survives the round trip exactly, and what MongoDB cannot hold is refused before anything is
// sent.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>

#include <eventsourced/error.hpp>

#include "mongodb/bson_json.hpp"

namespace {

using eventsourced::invalid_argument_error;
using eventsourced::mongodb_detail::bson_ptr;
using eventsourced::mongodb_detail::kMaxDocumentBytes;
using eventsourced::mongodb_detail::kMaxNestingDepth;
using eventsourced::mongodb_detail::to_bson;
using eventsourced::mongodb_detail::to_json;
using json = nlohmann::json;

json round_trip(const json& object) {
  bson_ptr b = to_bson(object);
  return to_json(*b);
}

// The BSON type of top-level member `key`.
bson_type_t type_of(const bson_t& b, const char* key) {
  bson_iter_t it;
  EXPECT_TRUE(bson_iter_init_find(&it, &b, key)) << key;
  return bson_iter_type(&it);
}

TEST(mongodb_bson, every_json_type_round_trips_exactly) {
  const json doc = {
      {"null", nullptr},
      {"true", true},
      {"false", false},
      {"zero", 0},
      {"negative", -42},
      {"int64_max", std::numeric_limits<std::int64_t>::max()},
      {"int64_min", std::numeric_limits<std::int64_t>::min()},
      {"beyond_2_53", std::int64_t{9007199254740993}},
      {"double", 0.1},
      {"big_double", 1.7976931348623157e308},
      {"tiny_double", 4.9e-324},
      {"negative_zero", -0.0},
      {"string", "gold"},
      {"empty_string", ""},
      {"unicode", "h\u00e9ros \u2603 \U0001F3AE \u4e2d\u6587"},
      {"nul_inside", std::string("a\0b", 3)},
      {"empty_object", json::object()},
      {"empty_array", json::array()},
      {"nested", {{"a", {{"b", {{"c", json::array({1, json::array({2, json::array({3})})})}}}}}}},
      {"array_of_objects", json::array({{{"x", 1}}, {{"y", json::array()}}, nullptr, "s"})},
      {"\u00e9t\u00e9", "unicode key"},
      {"dotted.key", 1},
      {"$dollar", 2}};
  const json back = round_trip(doc);
  EXPECT_EQ(back, doc);
  // Types, not just values: an integer stays an integer, a double a double.
  EXPECT_TRUE(back["zero"].is_number_integer());
  EXPECT_TRUE(back["double"].is_number_float());
  EXPECT_EQ(back["int64_max"].get<std::int64_t>(), std::numeric_limits<std::int64_t>::max());
  EXPECT_EQ(back["beyond_2_53"].get<std::int64_t>(), 9007199254740993);
  EXPECT_TRUE(std::signbit(back["negative_zero"].get<double>()));
  EXPECT_EQ(back["nul_inside"].get<std::string>().size(), 3u);
  EXPECT_EQ(back.dump(), doc.dump());
}

TEST(mongodb_bson, integers_are_int64_and_large_unsigned_ones_decimal128) {
  const json doc = {{"small", 1},
                    {"unsigned_small", std::uint64_t{7}},
                    {"uint64_max", std::numeric_limits<std::uint64_t>::max()}};
  bson_ptr b = to_bson(doc);
  EXPECT_EQ(type_of(*b, "small"), BSON_TYPE_INT64);
  EXPECT_EQ(type_of(*b, "unsigned_small"), BSON_TYPE_INT64);
  EXPECT_EQ(type_of(*b, "uint64_max"), BSON_TYPE_DECIMAL128);
  const json back = to_json(*b);
  EXPECT_EQ(back["uint64_max"].get<std::uint64_t>(), std::numeric_limits<std::uint64_t>::max());
  EXPECT_EQ(back["unsigned_small"], 7);
}

TEST(mongodb_bson, arrays_are_bson_arrays_with_index_keys_and_order_is_kept) {
  bson_ptr b = to_bson({{"a", json::array({"x", "y", "z"})}});
  EXPECT_EQ(type_of(*b, "a"), BSON_TYPE_ARRAY);
  bson_iter_t it, child;
  ASSERT_TRUE(bson_iter_init_find(&it, b.get(), "a"));
  ASSERT_TRUE(bson_iter_recurse(&it, &child));
  std::string keys;
  while (bson_iter_next(&child)) keys += bson_iter_key(&child);
  EXPECT_EQ(keys, "012");
}

TEST(mongodb_bson, equal_json_objects_give_identical_bson) {
  // MongoDB compares embedded documents field by field in order: equal objects must be encoded in
  // the same order however they were built.
  json one = json::object();
  one["b"] = 1;
  one["a"] = {{"y", 2}, {"x", 3}};
  const json two = json::parse(R"({"a": {"x": 3, "y": 2}, "b": 1})");
  bson_ptr b1 = to_bson(one);
  bson_ptr b2 = to_bson(two);
  ASSERT_EQ(b1->len, b2->len);
  EXPECT_TRUE(bson_equal(b1.get(), b2.get()));
}

TEST(mongodb_bson, non_finite_doubles_become_null_as_in_json_text) {
  const json back = round_trip({{"nan", std::nan("")},
                                {"inf", std::numeric_limits<double>::infinity()},
                                {"ninf", -std::numeric_limits<double>::infinity()}});
  EXPECT_EQ(back, (json{{"nan", nullptr}, {"inf", nullptr}, {"ninf", nullptr}}));
}

TEST(mongodb_bson, what_bson_cannot_hold_is_refused) {
  EXPECT_THROW(to_bson(json::array({1})), invalid_argument_error);
  EXPECT_THROW(to_bson(json("text")), invalid_argument_error);
  EXPECT_THROW(to_bson({{std::string("a\0b", 3), 1}}), invalid_argument_error);
  EXPECT_THROW(to_bson({{"bad", std::string("\xff\xfe")}}), invalid_argument_error);
  EXPECT_THROW(to_bson({{std::string("\xc3("), 1}}), invalid_argument_error);
  EXPECT_THROW(to_bson({{"deep", {{"bin", json::binary({1, 2, 3})}}}}), invalid_argument_error);
  try {
    to_bson({{"deep", {{"x", json::array({std::string("\xff")})}}}});
    FAIL() << "invalid UTF-8 deep inside was accepted";
  } catch (const invalid_argument_error& e) {
    EXPECT_NE(std::string(e.what()).find("UTF-8"), std::string::npos) << e.what();
  }
}

TEST(mongodb_bson, nesting_beyond_mongodbs_limit_is_refused) {
  auto nested = [](int levels) {
    json doc = 1;
    for (int i = 0; i < levels; ++i) doc = json{{"n", doc}};
    return doc;
  };
  // The top-level document is level 1: kMaxNestingDepth - 1 nested objects fit.
  EXPECT_NO_THROW(to_bson(nested(kMaxNestingDepth)));
  EXPECT_THROW(to_bson(nested(kMaxNestingDepth + 1)), invalid_argument_error);
  EXPECT_EQ(round_trip(nested(kMaxNestingDepth)), nested(kMaxNestingDepth));
}

TEST(mongodb_bson, documents_over_16_mb_are_refused_before_sending) {
  const std::string mb(1024 * 1024, 'x');
  json doc = json::object();
  for (int i = 0; i < 15; ++i) doc["s" + std::to_string(i)] = mb;
  EXPECT_NO_THROW(to_bson(doc));
  doc["s15"] = mb;  // 16 MB of strings plus the keys and headers
  try {
    to_bson(doc);
    FAIL() << "a document over 16 MB was accepted";
  } catch (const invalid_argument_error& e) {
    EXPECT_NE(std::string(e.what()).find(std::to_string(kMaxDocumentBytes)), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(to_bson({{"a", "0123456789"}}, 16), invalid_argument_error) << "caller's limit";
}

TEST(mongodb_bson, bson_types_json_lacks_read_as_extended_json) {
  bson_t b;
  bson_init(&b);
  bson_oid_t oid;
  bson_oid_init_from_string(&oid, "5f1e2d3c4b5a697887766554");
  bson_append_oid(&b, "oid", -1, &oid);
  bson_append_date_time(&b, "date", -1, 1'600'000'000'000);
  bson_append_int32(&b, "int32", -1, -7);
  bson_append_undefined(&b, "undefined", -1);
  bson_decimal128_t dec;
  bson_decimal128_from_string("1.5", &dec);
  bson_append_decimal128(&b, "decimal", -1, &dec);
  const json j = to_json(b);
  bson_destroy(&b);
  EXPECT_EQ(j["oid"], (json{{"$oid", "5f1e2d3c4b5a697887766554"}}));
  ASSERT_TRUE(j["date"].is_object());
  EXPECT_TRUE(j["date"].contains("$date"));
  EXPECT_EQ(j["int32"], -7);
  EXPECT_TRUE(j["int32"].is_number_integer());
  EXPECT_TRUE(j["undefined"].is_null());
  EXPECT_EQ(j["decimal"], 1.5);
}

// Random JSON documents (all kinds, nested) survive the round trip.
json random_value(std::mt19937_64& rng, int depth) {
  const int kind = static_cast<int>(rng() % (depth > 4 ? 6 : 8));
  switch (kind) {
    case 0:
      return nullptr;
    case 1:
      return rng() % 2 == 0;
    case 2:
      return static_cast<std::int64_t>(rng());
    case 3:
      return std::ldexp(static_cast<double>(rng() % 1'000'000) - 500'000.0,
                        static_cast<int>(rng() % 200) - 100);
    case 4: {
      static const char* pieces[] = {"a", "\u00e9", "\u2603", "\U0001F3AE", " ", "\"", "\\", "\n"};
      std::string s;
      for (std::size_t n = rng() % 6; n > 0; --n) s += pieces[rng() % 8];
      return s;
    }
    case 5:
      return static_cast<std::uint64_t>(rng() % 1000);
    case 6: {
      json a = json::array();
      for (std::size_t n = rng() % 4; n > 0; --n) a.push_back(random_value(rng, depth + 1));
      return a;
    }
    default: {
      json o = json::object();
      for (std::size_t n = rng() % 4; n > 0; --n) {
        o["k" + std::to_string(rng() % 10)] = random_value(rng, depth + 1);
      }
      return o;
    }
  }
}

TEST(mongodb_bson, random_documents_round_trip) {
  std::mt19937_64 rng(20261205);
  for (int i = 0; i < 2000; ++i) {
    json doc = json::object();
    for (std::size_t n = rng() % 6; n > 0; --n) doc["f" + std::to_string(n)] = random_value(rng, 1);
    const json back = round_trip(doc);
    ASSERT_EQ(back, doc) << doc.dump();
    ASSERT_EQ(back.dump(), doc.dump()) << "types changed: " << doc.dump();
  }
}

}  // namespace
