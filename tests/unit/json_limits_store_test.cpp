// Hostile JSON given to a store (engine/json_limits.hpp, docs/limits.md): a value nested deeper
// than store_options::max_json_depth, or holding NaN or an infinity, is refused at every door with
// the same error, on every engine, and nothing is written. Values far deeper than any stack could
// walk are refused without a crash. Every test reads the store back to prove nothing changed.
#include <cmath>
#include <limits>
#include <string>

#include "unit/storage_test_support.hpp"

namespace eventsourced_test {
namespace {

using eventsourced::invalid_argument_error;
using eventsourced::json_depth_error;
using eventsourced::transaction;
using eventsourced::write_options;

// `levels` arrays nested in each other (depth `levels`), built by the iterative parser.
json arrays(std::size_t levels) {
  return json::parse(std::string(levels, '[') + std::string(levels, ']'));
}

// A player document nested exactly `depth` levels deep.
json player_of_depth(const std::string& id, std::size_t depth) {
  json body = {{"id", id}, {"name", id}, {"gold", 0}, {"level", 1}};
  body["deep"] = arrays(depth - 1);
  return body;
}

bool mentions(const std::string& message, const std::string& part) {
  return message.find(part) != std::string::npos;
}

class json_limits_store : public storage_test {
 protected:
  void SetUp() override {
    storage_test::SetUp();
    store_ = open_store();
    docs().find_one_and_upsert(json(kAnn));
  }

  eventsourced::document_collection docs() { return store_->documents("players"); }

  // Ann is exactly as she was, and nobody else was written.
  void expect_untouched() {
    EXPECT_EQ(store_->collection<Player>("players").find_one("ann"), kAnn);
    EXPECT_EQ(docs().find_many().size(), 1u);
  }

  const Player kAnn{.id = "ann", .name = "Ann", .gold = 10, .level = 1, .version = 1};
  std::shared_ptr<eventsourced::store> store_;
};
EVENTSOURCED_STORAGE_TEST_ENGINES(json_limits_store);

TEST_P(json_limits_store, a_document_at_the_depth_limit_is_stored_and_one_level_more_is_refused) {
  const auto limit = eventsourced::kDefaultMaxJsonDepth;
  EXPECT_EQ(docs().find_one_and_upsert(player_of_depth("deep", limit)).document["deep"],
            arrays(limit - 1));
  try {
    docs().find_one_and_upsert(player_of_depth("deeper", limit + 1));
    FAIL() << "stored";
  } catch (const json_depth_error& e) {
    EXPECT_EQ(e.max_depth(), limit);
    EXPECT_PRED2(mentions, e.what(), "players");
    EXPECT_PRED2(mentions, e.what(), "deeper than the limit of 128 levels");
  }
  EXPECT_EQ(docs().find_one("deeper"), std::nullopt);
  EXPECT_TRUE(docs().delete_one("deep"));
  expect_untouched();
}

TEST_P(json_limits_store, a_document_nested_a_hundred_thousand_deep_is_refused_without_a_crash) {
  json body = {{"id", "x"}};
  body["deep"] = arrays(100'000);  // moved in below: a copy would recurse once per level
  EXPECT_THROW(docs().find_one_and_upsert(std::move(body)), json_depth_error);
  EXPECT_THROW(docs().find_one_and_update("ann",
                                          [](const json& current) {
                                            json edited = current;
                                            edited["deep"] = arrays(100'000);
                                            return edited;
                                          }),
               json_depth_error);
  EXPECT_THROW(docs().update_section("ann", "stats", [](json) { return arrays(100'000); }),
               json_depth_error);
  expect_untouched();
}

TEST_P(json_limits_store, update_operators_may_not_nest_a_document_too_deep) {
  const auto limit = eventsourced::kDefaultMaxJsonDepth;
  // The operand itself: {"$set": {"x": V}} is two levels around V.
  EXPECT_THROW(docs().update_one("ann", {{"$set", {{"x", arrays(limit - 1)}}}}), json_depth_error);
  EXPECT_THROW(docs().update_one("ann", {{"$push", {{"log", arrays(limit)}}}}), json_depth_error);
  // An operand within the limit that a dotted path puts deeper.
  EXPECT_THROW(docs().update_one("ann", {{"$set", {{"a.b.c", arrays(limit - 2)}}}}),
               json_depth_error);
  std::string long_path = "a";
  for (int i = 0; i < 900; ++i) long_path += ".a";
  EXPECT_THROW(docs().update_one("ann", {{"$set", {{long_path, 1}}}}), json_depth_error);
  EXPECT_THROW(docs().update_section("ann", long_path, [](json) { return json(1); }),
               json_depth_error);
  // Within the limit it works.
  EXPECT_EQ(docs().update_one("ann", {{"$set", {{"a.b", arrays(limit - 3)}}}}).document["a"]["b"],
            arrays(limit - 3));
  docs().update_one("ann", {{"$unset", {{"a", ""}}}});
  EXPECT_EQ(docs().find_one("ann")->value("gold", 0), 10);
}

TEST_P(json_limits_store, filters_and_event_metadata_nested_too_deep_are_refused) {
  EXPECT_THROW(docs().find_many({{"$or", json::array({{{"x", arrays(200)}}})}}), json_depth_error);
  json far_too_deep = json::object();
  far_too_deep["x"]["$in"] = arrays(100'000);  // moved, never copied (copies recurse)
  EXPECT_THROW(docs().find_many(far_too_deep), json_depth_error);
  write_options deep_metadata;
  deep_metadata.event_metadata = {{"trace", arrays(200)}};
  EXPECT_THROW(docs().update_one("ann", {{"$inc", {{"gold", 1}}}}, deep_metadata),
               json_depth_error);
  EXPECT_THROW(store_->with_transaction(
                   [](transaction& tx) { tx.put("players", player_of_depth("t", 200)); }),
               json_depth_error);
  EXPECT_THROW(store_->with_transaction([](transaction& tx) {
    tx.put("players", json{{"id", "t"}});
    tx.event_metadata() = {{"trace", arrays(200)}};
  }),
               json_depth_error);
  expect_untouched();
}

TEST_P(json_limits_store, the_depth_limit_is_a_store_option_within_bounds) {
  auto shallow = open_store({.max_json_depth = 3});
  auto players = shallow->documents("players");
  EXPECT_NO_THROW(players.find_one_and_upsert({{"id", "ok"}, {"a", {{"b", {1}}}}}));
  EXPECT_THROW(players.find_one_and_upsert({{"id", "no"}, {"a", {{"b", {{{"c", 1}}}}}}}),
               json_depth_error);
  EXPECT_THROW(open_store({.max_json_depth = 0}), invalid_argument_error);
  EXPECT_THROW(open_store({.max_json_depth = eventsourced::kMaxJsonDepthSetting + 1}),
               invalid_argument_error);
  auto deep = open_store({.max_json_depth = eventsourced::kMaxJsonDepthSetting});
  EXPECT_NO_THROW(deep->documents("players").find_one_and_upsert(
      player_of_depth("deep", eventsourced::kMaxJsonDepthSetting)));
  EXPECT_THROW(deep->documents("players").find_one_and_upsert(
                   player_of_depth("x", eventsourced::kMaxJsonDepthSetting + 1)),
               json_depth_error);
}

TEST_P(json_limits_store, nan_and_infinities_are_refused_on_every_write_path) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  const auto refused = [](const auto& write) {
    try {
      write();
      return ::testing::AssertionFailure() << "written";
    } catch (const invalid_argument_error& e) {
      if (!mentions(e.what(), "not a finite number")) {
        return ::testing::AssertionFailure() << e.what();
      }
      return ::testing::AssertionSuccess();
    }
  };
  EXPECT_TRUE(refused([&] { docs().find_one_and_upsert({{"id", "n"}, {"gold", nan}}); }));
  EXPECT_TRUE(refused([&] { docs().update_one("ann", {{"$set", {{"gold", inf}}}}); }));
  EXPECT_TRUE(refused([&] { docs().update_one("ann", {{"$set", {{"stats.hp", -inf}}}}); }));
  EXPECT_TRUE(refused([&] {
    docs().find_one_and_update("ann", [&](json d) {
      d["ratio"] = nan;
      return d;
    });
  }));
  EXPECT_TRUE(refused([&] {
    docs().update_section("ann", "stats", [&](json) { return json{{"hp", inf}}; });
  }));
  docs().update_one("ann", {{"$set", {{"big", 1e308}}}});
  // Arithmetic that overflows: the same error.
  EXPECT_TRUE(refused([&] { docs().update_one("ann", {{"$inc", {{"big", 1e308}}}}); }));
  EXPECT_TRUE(refused([&] { docs().update_one("ann", {{"$mul", {{"big", 10}}}}); }));
  EXPECT_TRUE(refused([&] {
    store_->with_transaction([&](transaction& tx) {
      tx.put("players", json{{"id", "t"}, {"x", nan}});
    });
  }));
  EXPECT_TRUE(refused([&] { docs().find_many({{"gold", {{"$lt", inf}}}}); }));
  docs().update_one("ann", {{"$unset", {{"big", ""}}}});
  EXPECT_EQ(docs().find_many().size(), 1u);
  EXPECT_EQ(docs().find_one("ann")->value("gold", 0), 10);
}

}  // namespace
}  // namespace eventsourced_test
