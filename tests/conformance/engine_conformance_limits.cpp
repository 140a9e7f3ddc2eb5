// Engine conformance: every engine stores JSON nested up to its depth limit and refuses one level
// more, refuses non-finite numbers, and survives values nested far deeper without touching them
// recursively (engine/json_limits.hpp, docs/limits.md).
#include "conformance/engine_conformance.hpp"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace eventsourced::conformance {
namespace {

// Succeeds when the commit is refused with json_depth_error naming the engine's limit, and
// (rejected_as_invalid) nothing of it became visible. The request is copied: only for values
// within a few levels of the limit (copies recurse).
::testing::AssertionResult refused_as_too_deep(engine& db, const commit_request& request,
                                               std::size_t limit) {
  try {
    db.commit(request);
    return ::testing::AssertionFailure() << "commit succeeded";
  } catch (const json_depth_error& e) {
    if (e.max_depth() != limit) {
      return ::testing::AssertionFailure()
             << "max_depth() is " << e.max_depth() << ", not " << limit << ": " << e.what();
    }
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "another error: " << e.what();
  }
  return rejected_as_invalid(db, request);
}

TEST_P(engine_conformance,
       a_body_nested_to_the_depth_limit_round_trips_and_one_level_more_is_refused) {
  const std::size_t limit = GetParam().max_json_depth;
  const json at_limit = body_of_depth("deep", limit);
  ASSERT_FALSE(find_json_violation(at_limit, limit).has_value());
  EXPECT_EQ(commit_write(db(), put_write("docs", "deep", 0, at_limit)), 1);
  commit_write(db(), put_write("docs", "flat", 0, json{{"id", "flat"}}));
  EXPECT_EQ(db().get("docs", "deep")->body, at_limit);
  // Filters read every row, the deep one included (SQLite's JSON functions have a limit too).
  query by_id;
  by_id.where = filter::parse({{"id", "deep"}});
  const auto found = db().find("docs", by_id);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found.front().body, at_limit);
  query flat;
  flat.where = filter::parse({{"id", "flat"}});
  EXPECT_EQ(db().find("docs", flat).size(), 1u);

  EXPECT_TRUE(refused_as_too_deep(
      db(), request_of({put_write("docs", "deeper", 0, body_of_depth("deeper", limit + 1))}),
      limit));
  EXPECT_TRUE(refused_as_too_deep(
      db(), request_of({put_write("docs", "deep", 1, body_of_depth("deep", limit + 1))}), limit));
  EXPECT_EQ(db().get("docs", "deep")->version, 1);
}

TEST_P(engine_conformance, a_commit_can_set_a_lower_depth_limit_for_its_bodies) {
  // What a store does with its max_json_depth: bodies only; events keep the engine's limit.
  constexpr std::size_t kLimit = 4;
  commit_request fits =
      request_of({put_write("docs", "a", 0, body_of_depth("a", kLimit))},
                 {append_to({"deep", "s"}, 0, {make_event("Deep", nested_arrays(kLimit + 2))})});
  fits.max_json_depth = kLimit;
  EXPECT_NO_THROW(db().commit(fits));

  commit_request deeper = request_of({put_write("docs", "b", 0, body_of_depth("b", kLimit + 1))});
  deeper.max_json_depth = kLimit;
  EXPECT_TRUE(refused_as_too_deep(db(), deeper, kLimit));
  EXPECT_FALSE(db().get("docs", "b").has_value());

  // A limit above the engine's own is the engine's own.
  const std::size_t engine_limit = GetParam().max_json_depth;
  commit_request above =
      request_of({put_write("docs", "c", 0, body_of_depth("c", engine_limit + 1))});
  above.max_json_depth = engine_limit + 10;
  EXPECT_TRUE(refused_as_too_deep(db(), above, engine_limit));
}

TEST_P(engine_conformance, event_data_and_metadata_nested_to_the_depth_limit_round_trip) {
  const std::size_t limit = GetParam().max_json_depth;
  const stream_ref stream{"deep", "s1"};
  new_event e =
      make_event("Deep", nested_arrays(limit, "1"), json{{"m", nested_arrays(limit - 1)}});
  const auto recorded = commit_append(db(), append_to(stream, 0, {e}));
  ASSERT_EQ(recorded.size(), 1u);
  const auto read = db().read_stream(stream, 1, 10);
  ASSERT_EQ(read.size(), 1u);
  EXPECT_EQ(read.front().data, e.data);
  EXPECT_EQ(read.front().metadata, e.metadata);
  EXPECT_EQ(read_everything(db()).back().data, e.data);

  EXPECT_TRUE(refused_as_too_deep(
      db(),
      request_of({}, {append_to(stream, 1, {make_event("Deeper", nested_arrays(limit + 1))})}),
      limit));
  EXPECT_TRUE(refused_as_too_deep(
      db(),
      request_of({}, {append_to(stream, 1,
                                {make_event("Deeper", json::object(),
                                            json{{"m", nested_arrays(limit)}})})}),
      limit));
  EXPECT_EQ(db().read_stream(stream, 1, 10).size(), 1u);
}

TEST_P(engine_conformance, values_nested_a_hundred_thousand_deep_are_refused_without_a_crash) {
  // Moved, never copied: a copy of such a value recurses once per level.
  commit_request put;
  json body = json::object();
  body["id"] = "x";
  body["deep"] = nested_arrays(100'000);
  put.writes.push_back(put_write("docs", "x", 0, std::move(body)));
  EXPECT_THROW(db().commit(put), json_depth_error);

  commit_request append;
  stream_append a;
  a.stream = {"deep", "s"};
  a.events.push_back(new_event{next_event_id(), "Deep", nested_arrays(100'000), json()});
  append.appends.push_back(std::move(a));
  EXPECT_THROW(db().commit(append), json_depth_error);

  EXPECT_FALSE(db().get("docs", "x").has_value());
  EXPECT_TRUE(read_everything(db()).empty());
}

TEST_P(engine_conformance, non_finite_numbers_are_refused_in_bodies_event_data_and_metadata) {
  for (const double bad :
       {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
        -std::numeric_limits<double>::infinity()}) {
    SCOPED_TRACE(bad);
    json body = {{"id", "n"}, {"stats", {{"ratio", bad}}}};
    EXPECT_TRUE(rejected_as_invalid(db(), request_of({put_write("docs", "n", 0, body)})));
    EXPECT_TRUE(rejected_as_invalid(
        db(), request_of({}, {append_to({"nums", "s"}, 0, {make_event("N", {{"x", bad}})})})));
    EXPECT_TRUE(rejected_as_invalid(
        db(), request_of({}, {append_to({"nums", "s"}, 0,
                                        {make_event("N", json::object(), {{"x", bad}})})})));
    try {
      db().commit(request_of({put_write("docs", "n", 0, body)}));
      ADD_FAILURE() << "a non-finite number was stored";
    } catch (const invalid_argument_error& e) {
      EXPECT_NE(std::string(e.what()).find("not a finite number at /stats/ratio"),
                std::string::npos)
          << e.what();
    }
  }
  EXPECT_FALSE(db().get("docs", "n").has_value());
  EXPECT_TRUE(db().read_stream({"nums", "s"}, 1, 10).empty());
}

}  // namespace
}  // namespace eventsourced::conformance
