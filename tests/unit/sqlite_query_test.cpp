// The SQLite translation of queries (src/engine/sqlite_query.cpp) against the reference
// semantics: filter::matches() and compare_for_sort() over generated documents, filters and sort
// keys (a differential property test with a fixed seed, so a failure reproduces).
#include <algorithm>
#include <cstdio>
#include <functional>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <eventsourced/engine/sqlite.hpp>
#include <eventsourced/error.hpp>

#include "engine/sqlite_query.hpp"

namespace eventsourced {
namespace {

TEST(sqlite_json_path, quotes_keys_and_indexes_arrays) {
  EXPECT_EQ(sqlite_detail::sqlite_json_path(field_path::parse("a")), "$.\"a\"");
  EXPECT_EQ(sqlite_detail::sqlite_json_path(field_path::parse("stats.level")),
            "$.\"stats\".\"level\"");
  EXPECT_EQ(sqlite_detail::sqlite_json_path(field_path::parse("items.007.name")),
            "$.\"items\"[7].\"name\"");
  EXPECT_EQ(sqlite_detail::sqlite_json_path(field_path::parse("a b.[x]")), "$.\"a b\".\"[x]\"");
}

TEST(sqlite_translate_find, puts_no_value_into_sql_text) {
  const auto sql = sqlite_detail::translate_find(
      "players", {.where = filter::parse({{"name", "Robert'); DROP TABLE documents;--"},
                                          {"stats.level", {{"$gt", 3}}}}),
                  .sort = {{"rank.x_y", sort_order::descending}},
                  .limit = 17,
                  .skip = 23});
  for (const char* value : {"players", "Robert", "stats", "level", "rank", "x_y", "17", "23"}) {
    EXPECT_EQ(sql.text.find(value), std::string::npos) << value << " in " << sql.text;
  }
}

TEST(sqlite_translate_find, rejects_an_invalid_sort_path) {
  EXPECT_THROW(sqlite_detail::translate_find("c", {.sort = {{"a..b"}}}), invalid_argument_error);
  EXPECT_THROW(sqlite_detail::translate_find("c", {.sort = {{"$x"}}}), invalid_argument_error);
}

// Generates values of every JSON kind, including the ones that trip translations: int versus
// real (1 and 1.0), unsigned, empty containers, strings that differ only in case or by a
// multi-byte character, objects with a digit key (not an array index), nested nulls.
class generator {
 public:
  explicit generator(std::uint32_t seed) : random_(seed) {}

  int pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(random_); }
  bool chance(int percent) { return pick(100) < percent; }

  json scalar() {
    switch (pick(8)) {
      case 0:
        return nullptr;
      case 1:
        return pick(2) == 0;
      case 2:
        return pick(7) - 3;  // number_integer
      case 3:
        return static_cast<std::uint64_t>(pick(4));  // number_unsigned
      case 4:
        return std::vector<double>{-1.5, 0.0, 0.5, 1.0, 2.0, 3.25}[pick(6)];
      case 5:
        return pick(2) == 0 ? (std::int64_t{1} << 40) : -(std::int64_t{1} << 40) + 1;
      default:
        return std::vector<std::string>{"", "a", "b", "ab", "B", "\xc3\xa9", "a b", "x'y"}[pick(8)];
    }
  }

  json value(int depth) {
    if (depth <= 0 || chance(60)) return scalar();
    if (pick(2) == 0) {
      json array = json::array();
      for (int i = pick(4); i > 0; --i) array.push_back(value(depth - 1));
      return array;
    }
    json object = json::object();
    for (const char* key : {"x", "y", "0"}) {
      if (chance(50)) object[key] = value(depth - 1);
    }
    return object;
  }

  json document() {
    json doc = json::object();
    for (const char* key : {"a", "b", "c", "n", "arr"}) {
      if (chance(75)) doc[key] = value(2);
    }
    return doc;
  }

  std::string path() {
    static const std::vector<std::string> paths = {"a",   "b",       "c",      "n",     "n.x",
                                                   "n.y", "n.0",     "arr",    "arr.0", "arr.1",
                                                   "a.x", "arr.0.x", "missing"};
    return paths[static_cast<std::size_t>(pick(static_cast<int>(paths.size())))];
  }

  json condition() {
    static const std::vector<std::string> ops = {"$eq",  "$ne", "$gt",  "$gte",   "$lt",
                                                 "$lte", "$in", "$nin", "$exists"};
    const std::string op = ops[static_cast<std::size_t>(pick(static_cast<int>(ops.size())))];
    json operand;
    if (op == "$exists") {
      operand = pick(2) == 0;
    } else if (op == "$in" || op == "$nin") {
      operand = json::array();
      for (int i = pick(4); i > 0; --i) operand.push_back(value(1));
    } else if (op[1] == 'g' || op[1] == 'l') {
      do operand = scalar();
      while (!operand.is_number() && !operand.is_string());
    } else {
      operand = value(2);
    }
    return {{op, operand}};
  }

  json filter_spec(int depth) {
    const int kind = depth <= 0 ? pick(3) : pick(6);
    switch (kind) {
      case 0: {  // {path: value}, equality (an object value without '$' keys is a value)
        json v = value(2);
        if (v.is_object() && !v.empty() && v.begin().key().starts_with('$')) v = nullptr;
        return {{path(), v}};
      }
      case 1:
      case 2: {  // {path: {$op: operand, ...}}, one or two operators
        json ops = condition();
        if (kind == 2) ops.update(condition());
        return {{path(), ops}};
      }
      case 3:
      case 4: {
        json children = json::array();
        for (int i = 1 + pick(3); i > 0; --i) children.push_back(filter_spec(depth - 1));
        return {{kind == 3 ? "$and" : "$or", children}};
      }
      default: {  // several fields in one object: implicit AND
        json spec = filter_spec(depth - 1);
        spec.update(filter_spec(depth - 1));
        return spec;
      }
    }
  }

 private:
  std::mt19937 random_;
};

class sqlite_query_differential : public ::testing::Test {
 protected:
  void SetUp() override {
    generator g(20240601);
    for (int i = 0; i < 300; ++i) {
      char id[8];
      std::snprintf(id, sizeof id, "d%03d", i);
      docs_.push_back({id, 1, g.document()});
    }
    commit_request request;
    for (const auto& d : docs_)
      request.writes.push_back({"things", d.id, 0, write_op::put, d.body});
    db_->commit(request);
  }

  // What the reference semantics say find() returns.
  std::vector<std::string> expected(const query& q) const {
    std::vector<const stored_document*> hits;
    for (const auto& d : docs_) {
      if (q.where.matches(d.body)) hits.push_back(&d);  // docs_ is in id order
    }
    std::vector<field_path> paths;
    for (const auto& k : q.sort) paths.push_back(field_path::parse(k.path));
    std::stable_sort(hits.begin(), hits.end(), [&](const auto* a, const auto* b) {
      for (std::size_t i = 0; i < paths.size(); ++i) {
        int c = compare_for_sort(paths[i].resolve(a->body), paths[i].resolve(b->body));
        if (q.sort[i].order == sort_order::descending) c = -c;
        if (c != 0) return c < 0;
      }
      return false;
    });
    std::vector<std::string> ids;
    for (std::size_t i = q.skip; i < hits.size() && (!q.limit || ids.size() < *q.limit); ++i) {
      ids.push_back(hits[i]->id);
    }
    return ids;
  }

  std::vector<std::string> actual(const query& q) const {
    std::vector<std::string> ids;
    for (const auto& d : db_->find("things", q)) ids.push_back(d.id);
    return ids;
  }

  std::vector<stored_document> docs_;
  std::unique_ptr<engine> db_ = make_sqlite_engine({.path = ":memory:"});
};

TEST_F(sqlite_query_differential, filters_select_exactly_what_filter_matches_selects) {
  generator g(7);
  int nonempty = 0, partial = 0;
  for (int i = 0; i < 1500; ++i) {
    const json spec = g.filter_spec(2);
    const query q{.where = filter::parse(spec)};
    const auto want = expected(q);
    ASSERT_EQ(actual(q), want) << "filter " << spec.dump();
    nonempty += !want.empty();
    partial += !want.empty() && want.size() < docs_.size();
  }
  // The generator must produce discriminating filters, or the comparison proves little.
  EXPECT_GT(partial, 500);
  EXPECT_GT(nonempty, 600);
}

TEST_F(sqlite_query_differential, hand_picked_edge_cases_agree) {
  const json specs[] = {
      {{"a", 1}},
      {{"a", 1.0}},
      {{"a", {{"$in", {1, "a", nullptr}}}}},
      {{"a", {{"$nin", json::array()}}}},
      {{"a", {{"$in", json::array()}}}},
      {{"a", nullptr}},
      {{"a", {{"$ne", nullptr}}}},
      {{"a", {{"$exists", true}}}},
      {{"n.0", {{"$exists", true}}}},
      {{"arr.0", {{"$exists", true}}}},
      {{"a", {{"$gte", ""}}}},
      {{"a", {{"$lt", 0.5}}}},
      {{"a", {{"$gt", -(std::int64_t{1} << 40)}}}},
      {{"arr", json::array()}},
      {{"n", json::object()}},
      {{"$or", {{{"a", true}}, {{"b", false}}}}},
      {{"a", "\xc3\xa9"}},
  };
  for (const json& spec : specs) {
    const query q{.where = filter::parse(spec)};
    EXPECT_EQ(actual(q), expected(q)) << "filter " << spec.dump();
  }
}

TEST(sqlite_query_numbers, integers_beyond_double_precision_compare_with_reals_as_doubles) {
  // filter::matches() follows nlohmann::json: an integer meets a real as a double, so 2^53 + 1
  // equals 2^53 as a real; two integers compare exactly. SQLite alone would compare exactly.
  // An operand above INT64_MAX is above every integer field: as a double it rounds to 2^63, as
  // INT64_MAX does (the SQL once compared them equal: found by tests/fuzz).
  constexpr std::int64_t kTwo53 = std::int64_t{1} << 53;
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  constexpr auto kTwo63 = static_cast<std::uint64_t>(kMax) + 1;
  const std::vector<json> bodies = {{{"v", kTwo53 + 1}},
                                    {{"v", static_cast<double>(kTwo53)}},
                                    {{"v", kTwo53}},
                                    {{"v", -kTwo53 - 1}},
                                    {{"v", kMax}}};
  auto db = make_sqlite_engine({.path = ":memory:"});
  commit_request request;
  for (std::size_t i = 0; i < bodies.size(); ++i) {
    request.writes.push_back({"n", "d" + std::to_string(i), 0, write_op::put, bodies[i]});
  }
  db->commit(request);
  const json specs[] = {
      {{"v", static_cast<double>(kTwo53)}},
      {{"v", kTwo53 + 1}},
      {{"v", {{"$in", {static_cast<double>(kTwo53), 1.5}}}}},
      {{"v", {{"$nin", {kTwo53 + 1}}}}},
      {{"v", {{"$gt", static_cast<double>(kTwo53)}}}},
      {{"v", {{"$gte", kTwo53 + 1}}}},
      {{"v", {{"$lt", kTwo53 + 1}}}},
      {{"v", {{"$lte", static_cast<double>(-kTwo53)}}}},
      {{"v", static_cast<std::uint64_t>(kTwo53 + 1)}},
      {{"v", std::numeric_limits<std::uint64_t>::max()}},
      {{"v", kTwo63}},
      {{"v", {{"$in", {kTwo63, 1}}}}},
      {{"v", {{"$nin", {kTwo63}}}}},
      {{"v", {{"$gt", kTwo63}}}},
      {{"v", {{"$gte", kTwo63}}}},
      {{"v", {{"$lt", kTwo63}}}},
      {{"v", {{"$lte", kTwo63}}}},
  };
  for (const json& spec : specs) {
    const filter f = filter::parse(spec);
    std::vector<std::string> want;
    for (std::size_t i = 0; i < bodies.size(); ++i) {
      if (f.matches(bodies[i])) want.push_back("d" + std::to_string(i));
    }
    std::vector<std::string> got;
    for (const auto& d : db->find("n", {.where = f})) got.push_back(d.id);
    EXPECT_EQ(got, want) << "filter " << spec.dump();
  }
}

TEST_F(sqlite_query_differential, sort_skip_and_limit_order_exactly_like_compare_for_sort) {
  generator g(11);
  for (int i = 0; i < 300; ++i) {
    query q;
    if (g.chance(50)) q.where = filter::parse(g.filter_spec(1));
    for (int k = 1 + g.pick(2); k > 0; --k) {
      q.sort.push_back({g.path(), g.pick(2) == 0 ? sort_order::ascending : sort_order::descending});
    }
    if (g.chance(50)) q.limit = static_cast<std::size_t>(g.pick(40));
    if (g.chance(50)) q.skip = static_cast<std::size_t>(g.pick(100));
    std::string keys;
    for (const auto& k : q.sort) {
      keys += k.path + (k.order == sort_order::descending ? " desc " : " asc ");
    }
    ASSERT_EQ(actual(q), expected(q)) << "sort " << keys << " skip " << q.skip << " limit "
                                      << (q.limit ? std::to_string(*q.limit) : "none");
  }
}

TEST_F(sqlite_query_differential, many_filter_shapes_outgrow_the_statement_cache_safely) {
  // Each distinct $in length is a distinct SQL text: more shapes than the cache keeps.
  for (int n = 0; n < 300; ++n) {
    json values = json::array();
    for (int i = 0; i < n; ++i) values.push_back(i % 7 - 3);
    const query q{.where = filter::parse({{"a", {{"$in", values}}}})};
    ASSERT_EQ(actual(q), expected(q)) << n;
  }
}

}  // namespace
}  // namespace eventsourced
