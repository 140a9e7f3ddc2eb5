// Engine conformance: find() — every filter operator, sort order across kinds, limit and skip.
// The expected ids are worked out by hand from the semantics documented in query.hpp.
#include "conformance/engine_conformance.hpp"

#include <optional>
#include <string>
#include <vector>

#include <eventsourced/engine/query.hpp>

namespace eventsourced::conformance {
namespace {

using ids = std::vector<std::string>;

sort_key asc(std::string path) {
  return sort_key{std::move(path), sort_order::ascending};
}
sort_key desc(std::string path) {
  return sort_key{std::move(path), sort_order::descending};
}

query make_query(const json& spec, std::vector<sort_key> sort = {},
                 std::optional<std::size_t> limit = std::nullopt, std::size_t skip = 0) {
  query q;
  q.where = filter::parse(spec);
  q.sort = std::move(sort);
  q.limit = limit;
  q.skip = skip;
  return q;
}

ids find_ids(engine& db, std::string_view collection, const query& q) {
  ids out;
  for (const auto& doc : db.find(collection, q)) out.push_back(doc.id);
  return out;
}

// One document per interesting shape; inserted out of id order on purpose.
void insert_items(engine& db) {
  const std::vector<std::pair<std::string, json>> items = {
      {"d07", json::object()},
      {"d03", {{"n", 2}, {"s", "cherry"}, {"tags", "a"}, {"o", {{"y", 1}, {"x", 1}}}}},
      {"d01",
       {{"n", 1},
        {"s", "apple"},
        {"b", true},
        {"tags", {"a", "b"}},
        {"o", {{"x", 1}, {"y", {{"z", "deep"}}}}},
        {"arr", {{{"name", "first"}}, {{"name", "second"}}}}}},
      {"d10", {{"n", {1}}, {"tags", {"b", "a"}}}},
      {"d05", {{"n", 1.0}, {"s", ""}, {"arr", {{{"name", "second"}}}}}},
      {"d02", {{"n", 2.5}, {"s", "banana"}, {"b", false}, {"tags", {"a"}}, {"o", {{"x", 2}}}}},
      {"d09", {{"n", 1000}, {"s", "zeta"}, {"b", "true"}}},
      {"d04", {{"n", "2"}, {"s", "Apple"}, {"nul", nullptr}}},
      {"d08", {{"n", nullptr}, {"s", 5}}},
      {"d06", {{"n", -7}, {"s", "date"}, {"nul", 0}}},
  };
  for (const auto& [id, body] : items) {
    ASSERT_EQ(commit_write(db, put_write("items", id, 0, body)), 1) << id;
  }
}

struct filter_case {
  json spec;
  ids expected;
};

void expect_filters(engine& db, const std::vector<filter_case>& cases) {
  for (const auto& c : cases) {
    EXPECT_EQ(find_ids(db, "items", make_query(c.spec)), c.expected) << "filter " << c.spec.dump();
  }
}

const ids kAll = {"d01", "d02", "d03", "d04", "d05", "d06", "d07", "d08", "d09", "d10"};

TEST_P(engine_conformance, find_without_filter_returns_every_live_document_by_id) {
  insert_items(db());
  EXPECT_EQ(find_ids(db(), "items", query{}), kAll);
  const auto docs = db().find("items", query{});
  ASSERT_EQ(docs.size(), kAll.size());
  EXPECT_EQ(docs[0].version, 1);
  EXPECT_EQ(docs[0].body["s"], "apple");
}

TEST_P(engine_conformance, find_equality_compares_numbers_numerically_and_kinds_strictly) {
  insert_items(db());
  expect_filters(db(), {
                           {{{"n", 1}}, {"d01", "d05"}},
                           {{{"n", 1.0}}, {"d01", "d05"}},
                           {{{"n", {{"$eq", 2}}}}, {"d03"}},
                           {{{"n", {{"$eq", "2"}}}}, {"d04"}},
                           {{{"s", ""}}, {"d05"}},
                           {{{"s", "apple"}}, {"d01"}},
                           {{{"b", true}}, {"d01"}},
                           {{{"b", false}}, {"d02"}},
                           {{{"b", "true"}}, {"d09"}},
                           {{{"b", 1}}, {}},
                           {{{"nul", false}}, {}},
                           {{{"nul", 0}}, {"d06"}},
                           {json::object(), kAll},
                       });
}

TEST_P(engine_conformance, find_ne_is_the_negation_of_eq_and_matches_missing_fields) {
  insert_items(db());
  expect_filters(
      db(), {
                {{{"n", {{"$ne", 1}}}}, {"d02", "d03", "d04", "d06", "d07", "d08", "d09", "d10"}},
                {{{"tags", {{"$ne", "a"}}}},
                 {"d01", "d02", "d04", "d05", "d06", "d07", "d08", "d09", "d10"}},
                {{{"b", {{"$ne", true}}}},
                 {"d02", "d03", "d04", "d05", "d06", "d07", "d08", "d09", "d10"}},
            });
}

TEST_P(engine_conformance, find_range_operators_on_numbers_match_only_numbers) {
  insert_items(db());
  expect_filters(db(), {
                           {{{"n", {{"$gt", 1}}}}, {"d02", "d03", "d09"}},
                           {{{"n", {{"$gte", 1}}}}, {"d01", "d02", "d03", "d05", "d09"}},
                           {{{"n", {{"$lt", 2}}}}, {"d01", "d05", "d06"}},
                           {{{"n", {{"$lte", 2}}}}, {"d01", "d03", "d05", "d06"}},
                           {{{"n", {{"$gt", 2.4}, {"$lt", 2.6}}}}, {"d02"}},
                           {{{"n", {{"$gte", 1.0}, {"$lte", 1}}}}, {"d01", "d05"}},
                           {{{"n", {{"$gt", 999.5}}}}, {"d09"}},
                           {{{"n", {{"$lt", -7}}}}, {}},
                           {{{"s", {{"$lt", 10}}}}, {"d08"}},
                           // Booleans are not numbers, null is not zero.
                           {{{"b", {{"$gte", 0}}}}, {}},
                           {{{"b", {{"$lt", 2}}}}, {}},
                           {{{"nul", {{"$lte", 0}}}}, {"d06"}},
                       });
}

TEST_P(engine_conformance, find_range_operators_on_strings_match_only_strings_bytewise) {
  insert_items(db());
  expect_filters(db(),
                 {
                     {{{"s", {{"$gt", "banana"}}}}, {"d03", "d06", "d09"}},
                     {{{"s", {{"$lt", "apple"}}}}, {"d04", "d05"}},
                     {{{"s", {{"$gte", "apple"}, {"$lte", "cherry"}}}}, {"d01", "d02", "d03"}},
                     {{{"s", {{"$gte", ""}}}}, {"d01", "d02", "d03", "d04", "d05", "d06", "d09"}},
                     {{{"n", {{"$gt", "1"}}}}, {"d04"}},
                     {{{"b", {{"$gt", "a"}}}}, {"d09"}},
                 });
}

TEST_P(engine_conformance, find_in_and_nin_follow_eq) {
  insert_items(db());
  expect_filters(db(),
                 {
                     {{{"n", {{"$in", {1, "2", nullptr}}}}}, {"d01", "d04", "d05", "d07", "d08"}},
                     {{{"n", {{"$nin", {1, "2", nullptr}}}}}, {"d02", "d03", "d06", "d09", "d10"}},
                     {{{"s", {{"$in", {"date", "zeta", "nope"}}}}}, {"d06", "d09"}},
                     {{{"s", {{"$in", json::array()}}}}, {}},
                     {{{"s", {{"$nin", json::array()}}}}, kAll},
                     {{{"tags", {{"$in", {json::array({"a"}), "a"}}}}}, {"d02", "d03"}},
                     {{{"b", {{"$in", {1, 0}}}}}, {}},
                 });
}

TEST_P(engine_conformance, find_exists_counts_explicit_null_as_present) {
  insert_items(db());
  expect_filters(db(), {
                           {{{"nul", {{"$exists", true}}}}, {"d04", "d06"}},
                           {{{"nul", {{"$exists", false}}}},
                            {"d01", "d02", "d03", "d05", "d07", "d08", "d09", "d10"}},
                           {{{"n", {{"$exists", true}}}},
                            {"d01", "d02", "d03", "d04", "d05", "d06", "d08", "d09", "d10"}},
                           {{{"n", {{"$exists", false}}}}, {"d07"}},
                       });
}

TEST_P(engine_conformance, find_null_equality_matches_missing_and_explicit_null) {
  insert_items(db());
  expect_filters(
      db(),
      {
          {{{"nul", nullptr}}, {"d01", "d02", "d03", "d04", "d05", "d07", "d08", "d09", "d10"}},
          {{{"n", nullptr}}, {"d07", "d08"}},
          {{{"n", {{"$eq", nullptr}}}}, {"d07", "d08"}},
          {{{"n", {{"$ne", nullptr}}}}, {"d01", "d02", "d03", "d04", "d05", "d06", "d09", "d10"}},
          {{{"o.y.z", nullptr}}, {"d02", "d03", "d04", "d05", "d06", "d07", "d08", "d09", "d10"}},
      });
}

TEST_P(engine_conformance, find_compares_objects_and_arrays_as_whole_values) {
  insert_items(db());
  expect_filters(db(), {
                           {{{"o", {{"x", 1}, {"y", 1}}}}, {"d03"}},
                           {{{"o", {{"y", 1}, {"x", 1}}}}, {"d03"}},
                           {{{"o", {{"x", 2}}}}, {"d02"}},
                           {{{"o", {{"$eq", {{"x", 2}}}}}}, {"d02"}},
                           {{{"o", {{"x", 1}}}}, {}},
                           {{{"tags", {"a", "b"}}}, {"d01"}},
                           {{{"tags", {"b", "a"}}}, {"d10"}},
                           {{{"tags", json::array({"a"})}}, {"d02"}},
                           {{{"n", json::array({1})}}, {"d10"}},
                       });
}

TEST_P(engine_conformance, find_does_not_traverse_arrays_implicitly) {
  insert_items(db());
  expect_filters(db(), {
                           {{{"tags", "a"}}, {"d03"}},
                           {{{"tags", "b"}}, {}},
                           {{{"arr.name", "first"}}, {}},
                           {{{"n", {{"$in", {1}}}}}, {"d01", "d05"}},
                       });
}

TEST_P(engine_conformance, find_follows_dotted_paths_and_array_indexes) {
  insert_items(db());
  expect_filters(db(), {
                           {{{"o.x", 1}}, {"d01", "d03"}},
                           {{{"o.y.z", "deep"}}, {"d01"}},
                           {{{"o.y", 1}}, {"d03"}},
                           {{{"o.y", {{"z", "deep"}}}}, {"d01"}},
                           {{{"o.x", {{"$gte", 2}}}}, {"d02"}},
                           {{{"o.x", {{"$exists", false}}}},
                            {"d04", "d05", "d06", "d07", "d08", "d09", "d10"}},
                           {{{"arr.0.name", "first"}}, {"d01"}},
                           {{{"arr.0.name", "second"}}, {"d05"}},
                           {{{"arr.1.name", "second"}}, {"d01"}},
                           {{{"tags.0", "a"}}, {"d01", "d02"}},
                           {{{"tags.1", {{"$exists", true}}}}, {"d01", "d10"}},
                           {{{"tags.5", {{"$exists", true}}}}, {}},
                           {{{"n.0", 1}}, {"d10"}},
                           {{{"s.0", {{"$exists", true}}}}, {}},
                       });
}

TEST_P(engine_conformance, find_combines_conditions_with_and_or_and_implicit_and) {
  insert_items(db());
  expect_filters(
      db(),
      {
          {{{"$and", {{{"n", {{"$gte", 1}}}}, {{"s", {{"$lt", "c"}}}}}}}, {"d01", "d02", "d05"}},
          {{{"$or", {{{"n", -7}}, {{"b", true}}}}}, {"d01", "d06"}},
          {{{"$or",
             {{{"$and", {{{"n", {{"$gt", 0}}}}, {{"n", {{"$lt", 2}}}}}}},
              {{"s", {{"$in", {"zeta", "date"}}}}}}}},
           {"d01", "d05", "d06", "d09"}},
          {{{"$and", {{{"$or", {{{"b", true}}, {{"b", false}}}}}, {{"tags.0", "a"}}}}},
           {"d01", "d02"}},
          {{{"n", {{"$gte", 1}}}, {"b", {{"$exists", true}}}}, {"d01", "d02", "d09"}},
          {{{"n", {{"$gt", 0}, {"$ne", 1}}}}, {"d02", "d03", "d09"}},
          {{{"$or", {{{"s", {{"$exists", false}}}}, {{"nul", 0}}}}}, {"d06", "d07", "d10"}},
          {{{"$or", {{{"n", 1}}}}, {"s", "apple"}}, {"d01"}},
      });
}

TEST_P(engine_conformance, unknown_operators_and_malformed_filters_fail_at_parse) {
  for (const json& spec : {
           json{{"n", {{"$regex", "x"}}}},
           json{{"n", {{"$foo", 1}}}},
           json{{"$where", "1 == 1"}},
           json{{"$nor", json::array({json{{"a", 1}}})}},
           json{{"n", {{"$in", 5}}}},
           json{{"n", {{"$nin", "abc"}}}},
           json{{"$and", json::object()}},
           json{{"$or", 1}},
           json{{"a..b", 1}},
           json::array({1}),
           json("n"),
       }) {
    SCOPED_TRACE(spec.dump());
    EXPECT_THROW(filter::parse(spec), invalid_argument_error);
  }
}

TEST_P(engine_conformance, invalid_sort_path_is_refused) {
  insert_items(db());
  for (const std::string path : {"", "a..b", "$x", ".a"}) {
    SCOPED_TRACE(path);
    EXPECT_THROW(db().find("items", make_query(json::object(), {asc(path)})),
                 invalid_argument_error);
  }
}

TEST_P(engine_conformance, find_sorts_across_kinds_in_the_documented_order) {
  // Ids chosen so the order is the same whether a missing field sorts before null or ties with it.
  const std::vector<std::pair<std::string, json>> kinds = {
      {"k1", {{"v", true}}},       {"k2", {{"v", false}}},   {"k3", {{"v", {1}}}},
      {"k4", {{"v", {{"a", 1}}}}}, {"k5", {{"v", "text"}}},  {"k6", {{"v", 3.5}}},
      {"k7", {{"v", -2}}},         {"k8", {{"v", nullptr}}}, {"k0", json::object()},
  };
  for (const auto& [id, body] : kinds)
    ASSERT_EQ(commit_write(db(), put_write("kinds", id, 0, body)), 1);

  EXPECT_EQ(find_ids(db(), "kinds", make_query(json::object(), {asc("v")})),
            (ids{"k0", "k8", "k7", "k6", "k5", "k4", "k3", "k2", "k1"}));
  EXPECT_EQ(find_ids(db(), "kinds", make_query({{"v", {{"$ne", nullptr}}}}, {desc("v")})),
            (ids{"k1", "k2", "k3", "k4", "k5", "k6", "k7"}));
}

TEST_P(engine_conformance, find_sorts_ascending_and_descending_with_mixed_kinds) {
  insert_items(db());
  EXPECT_EQ(find_ids(db(), "items", make_query(json::object(), {asc("s")})),
            (ids{"d07", "d10", "d08", "d05", "d04", "d01", "d02", "d03", "d06", "d09"}));
  EXPECT_EQ(find_ids(db(), "items", make_query(json::object(), {desc("s")})),
            (ids{"d09", "d06", "d03", "d02", "d01", "d04", "d05", "d08", "d07", "d10"}));
  EXPECT_EQ(find_ids(db(), "items", make_query(json::object(), {asc("n")})),
            (ids{"d07", "d08", "d06", "d01", "d05", "d03", "d02", "d09", "d04", "d10"}));
  EXPECT_EQ(find_ids(db(), "items", make_query(json::object(), {asc("b")})),
            (ids{"d03", "d04", "d05", "d06", "d07", "d08", "d10", "d09", "d02", "d01"}));
  EXPECT_EQ(find_ids(db(), "items", make_query(json::object(), {desc("b")})),
            (ids{"d01", "d02", "d09", "d03", "d04", "d05", "d06", "d07", "d08", "d10"}));
  EXPECT_EQ(find_ids(db(), "items", make_query({{"n", {{"$gte", 1}}}}, {desc("n")})),
            (ids{"d09", "d02", "d03", "d01", "d05"}));
  EXPECT_EQ(find_ids(db(), "items", make_query(json::object(), {asc("o.x")}, 4)),
            (ids{"d04", "d05", "d06", "d07"}));
}

void insert_players(engine& db) {
  const std::vector<std::pair<std::string, json>> players = {
      {"p5", {{"team", "red"}, {"score", 10}}},
      {"p1", {{"team", "red"}, {"score", 10}}},
      {"p2", {{"team", "blue"}, {"score", 30}}},
      {"p3", {{"team", "red"}, {"score", 30.0}}},
      {"p4", {{"team", "blue"}, {"score", 10}}},
      {"p6", {{"team", "blue"}}},
      {"p7", {{"score", 20}}},
  };
  for (const auto& [id, body] : players) {
    ASSERT_EQ(commit_write(db, put_write("players", id, 0, body)), 1);
  }
}

TEST_P(engine_conformance, find_sorts_on_two_keys_then_by_id) {
  insert_players(db());
  EXPECT_EQ(find_ids(db(), "players", make_query(json::object(), {asc("team"), desc("score")})),
            (ids{"p7", "p2", "p4", "p6", "p3", "p1", "p5"}));
  EXPECT_EQ(find_ids(db(), "players", make_query(json::object(), {asc("score"), desc("team")})),
            (ids{"p6", "p1", "p5", "p4", "p7", "p3", "p2"}));
  EXPECT_EQ(find_ids(db(), "players", make_query({{"team", "red"}}, {asc("score")})),
            (ids{"p1", "p5", "p3"}));
}

TEST_P(engine_conformance, find_breaks_ties_by_id_ascending_in_both_directions) {
  for (const std::string id : {"t3", "t1", "t0", "t2"}) {
    ASSERT_EQ(commit_write(db(), put_write("ties", id, 0, {{"g", id == "t0" ? 0 : 1}})), 1);
  }
  EXPECT_EQ(find_ids(db(), "ties", make_query(json::object(), {asc("g")})),
            (ids{"t0", "t1", "t2", "t3"}));
  EXPECT_EQ(find_ids(db(), "ties", make_query(json::object(), {desc("g")})),
            (ids{"t1", "t2", "t3", "t0"}));
  EXPECT_EQ(find_ids(db(), "ties", make_query(json::object(), {asc("missing")})),
            (ids{"t0", "t1", "t2", "t3"}));
}

TEST_P(engine_conformance, find_applies_skip_then_limit_after_sorting) {
  insert_items(db());
  const std::vector<sort_key> by_s = {asc("s")};
  const ids sorted = {"d07", "d10", "d08", "d05", "d04", "d01", "d02", "d03", "d06", "d09"};
  EXPECT_EQ(find_ids(db(), "items", make_query(json::object(), by_s, 3)),
            (ids{"d07", "d10", "d08"}));
  EXPECT_EQ(find_ids(db(), "items", make_query(json::object(), by_s, std::nullopt, 8)),
            (ids{"d06", "d09"}));
  EXPECT_EQ(find_ids(db(), "items", make_query(json::object(), by_s, 4, 3)),
            (ids{"d05", "d04", "d01", "d02"}));
  EXPECT_EQ(find_ids(db(), "items", make_query(json::object(), by_s, 100, 7)),
            (ids{"d03", "d06", "d09"}));
  EXPECT_TRUE(find_ids(db(), "items", make_query(json::object(), by_s, std::nullopt, 10)).empty());
  EXPECT_TRUE(find_ids(db(), "items", make_query(json::object(), by_s, 5, 50)).empty());
  EXPECT_TRUE(find_ids(db(), "items", make_query(json::object(), by_s, 0)).empty());
  EXPECT_EQ(find_ids(db(), "items", make_query(json::object(), {}, 2, 1)), (ids{"d02", "d03"}));
  EXPECT_EQ(find_ids(db(), "items", make_query({{"n", {{"$gte", 1}}}}, {desc("n")}, 2, 1)),
            (ids{"d02", "d03"}));

  // Paging with skip/limit visits every document once, in the full query's order.
  ids paged;
  for (std::size_t skip = 0; skip < 20; skip += 3) {
    for (auto& id : find_ids(db(), "items", make_query(json::object(), by_s, 3, skip))) {
      paged.push_back(std::move(id));
    }
  }
  EXPECT_EQ(paged, sorted);
}

TEST_P(engine_conformance, find_skips_tombstones_and_sees_recreated_documents) {
  insert_items(db());
  ASSERT_EQ(commit_write(db(), erase_write("items", "d05", 1)), 2);
  ASSERT_EQ(commit_write(db(), erase_write("items", "d07", 1)), 2);
  ASSERT_EQ(commit_write(db(), put_write("items", "d02", 1, {{"n", 1}, {"s", "banana2"}})), 2);

  EXPECT_EQ(find_ids(db(), "items", make_query({{"n", 1}})), (ids{"d01", "d02"}));
  EXPECT_EQ(find_ids(db(), "items", make_query({{"nul", {{"$exists", false}}}})),
            (ids{"d01", "d02", "d03", "d08", "d09", "d10"}));
  EXPECT_EQ(find_ids(db(), "items", make_query({{"n", nullptr}})), (ids{"d08"}));
  EXPECT_EQ(find_ids(db(), "items", query{}).size(), 8u);
  EXPECT_EQ(find_ids(db(), "items", make_query(json::object(), {asc("s")}, 2)),
            (ids{"d10", "d08"}));

  const auto changed = db().find("items", make_query({{"s", "banana2"}}));
  ASSERT_EQ(changed.size(), 1u);
  EXPECT_EQ(changed[0].version, 2);
  EXPECT_EQ(changed[0].body, (json{{"n", 1}, {"s", "banana2"}}));

  ASSERT_EQ(commit_write(db(), put_write("items", "d05", 0, {{"n", 1}, {"s", "back"}})), 3);
  const auto recreated = db().find("items", make_query({{"s", "back"}}));
  ASSERT_EQ(recreated.size(), 1u);
  EXPECT_EQ(recreated[0].id, "d05");
  EXPECT_EQ(recreated[0].version, 3);
}

}  // namespace
}  // namespace eventsourced::conformance
