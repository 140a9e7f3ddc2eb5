// The storage operations of collection<T> / document_collection (document_collection.hpp,
// collection.hpp, edit.hpp), on every engine: what each returns, and what it leaves stored.
#include <string>
#include <vector>

#include "unit/storage_test_support.hpp"

namespace eventsourced_test {
namespace {

using eventsourced::conflict_error;
using eventsourced::edit_result;
using eventsourced::invalid_argument_error;
using eventsourced::not_found_error;

class storage_operations : public storage_test {
 protected:
  void SetUp() override {
    storage_test::SetUp();
    store_ = open_store();
  }

  eventsourced::collection<Player> players() { return store_->collection<Player>("players"); }

  Player create(std::string id, std::string name, std::int64_t gold, int level = 1) {
    return players()
        .find_one_and_upsert(
            Player{.id = std::move(id), .name = std::move(name), .gold = gold, .level = level})
        .document;
  }

  std::shared_ptr<eventsourced::store> store_;
};
EVENTSOURCED_STORAGE_TEST_ENGINES(storage_operations);

TEST_P(storage_operations, find_one_of_a_missing_document_is_nullopt) {
  EXPECT_EQ(players().find_one("nobody"), std::nullopt);
}

TEST_P(storage_operations, find_one_and_upsert_creates_a_missing_document_at_version_1) {
  const auto r = players().find_one_and_upsert(Player{.id = "p1", .name = "Ann", .gold = 10});
  EXPECT_TRUE(r.diff.is_new);
  EXPECT_TRUE(r.diff.has_changes);
  EXPECT_FALSE(r.diff.is_deleted);
  EXPECT_EQ(r.diff.version, 1);
  const Player expected{.id = "p1", .name = "Ann", .gold = 10, .level = 1, .version = 1};
  EXPECT_EQ(r.document, expected);
  EXPECT_EQ(players().find_one("p1"), expected);
}

TEST_P(storage_operations, find_one_and_upsert_returns_an_existing_document_unchanged) {
  create("p1", "Ann", 10);
  const auto r = players().find_one_and_upsert(Player{.id = "p1", .name = "Impostor", .gold = 999});
  EXPECT_FALSE(r.diff.is_new);
  EXPECT_FALSE(r.diff.has_changes);
  EXPECT_EQ(r.diff.version, 1);
  EXPECT_EQ(r.diff.json_patch, json::array());
  const Player stored{.id = "p1", .name = "Ann", .gold = 10, .level = 1, .version = 1};
  EXPECT_EQ(r.document, stored);
  EXPECT_EQ(players().find_one("p1"), stored);
}

TEST_P(storage_operations, find_one_and_update_writes_the_edit_bumps_the_version_and_reports_it) {
  create("p1", "Ann", 10);
  const auto r = players().find_one_and_update("p1", [](Player p) {
    p.gold += 50;
    return p;
  });
  const Player expected{.id = "p1", .name = "Ann", .gold = 60, .level = 1, .version = 2};
  EXPECT_EQ(r.document, expected);
  EXPECT_EQ(players().find_one("p1"), expected);
  EXPECT_FALSE(r.diff.is_new);
  EXPECT_TRUE(r.diff.has_changes);
  EXPECT_EQ(r.diff.version, 2);
  EXPECT_EQ(r.diff.json_patch, json::parse(R"([
    {"op": "replace", "path": "/gold", "value": 60},
    {"op": "replace", "path": "/version", "value": 2}])"));
  EXPECT_EQ(r.diff.merge_patch, json::parse(R"({"gold": 60, "version": 2})"));
}

TEST_P(storage_operations, find_one_and_update_returning_no_change_writes_nothing) {
  create("p1", "Ann", 10);
  int runs = 0;
  const auto r = players().find_one_and_update("p1", [&](Player) -> edit_result<Player> {
    ++runs;
    return eventsourced::no_change;
  });
  EXPECT_EQ(runs, 1);
  EXPECT_FALSE(r.diff.has_changes);
  EXPECT_EQ(r.diff.version, 1);
  EXPECT_EQ(r.document.version, 1);
  EXPECT_EQ(players().find_one("p1")->version, 1);
}

TEST_P(storage_operations, find_one_and_update_returning_an_equal_document_writes_nothing) {
  create("p1", "Ann", 10);
  const auto r = players().find_one_and_update("p1", [](Player p) { return p; });
  EXPECT_FALSE(r.diff.has_changes);
  EXPECT_EQ(r.diff.json_patch, json::array());
  EXPECT_EQ(r.document.version, 1);
  EXPECT_EQ(players().find_one("p1")->version, 1);
}

TEST_P(storage_operations, find_one_and_update_returning_delete_document_deletes_it) {
  create("p1", "Ann", 10);
  const auto r = players().find_one_and_update(
      "p1", [](Player) -> edit_result<Player> { return eventsourced::delete_document; });
  EXPECT_TRUE(r.diff.is_deleted);
  EXPECT_TRUE(r.diff.has_changes);
  EXPECT_EQ(r.diff.version, 2);       // the tombstone's
  EXPECT_EQ(r.document.name, "Ann");  // a delete reports the document as it was
  EXPECT_EQ(players().find_one("p1"), std::nullopt);
  EXPECT_EQ(players().find_many().size(), 0u);
}

TEST_P(storage_operations, find_one_and_update_of_a_missing_document_throws_not_found) {
  int runs = 0;
  try {
    players().find_one_and_update("ghost", [&](Player p) {
      ++runs;
      return p;
    });
    FAIL() << "expected not_found_error";
  } catch (const not_found_error& e) {
    EXPECT_EQ(e.collection(), "players");
    EXPECT_EQ(e.id(), "ghost");
    EXPECT_FALSE(e.retryable());
  }
  EXPECT_EQ(runs, 0);
  EXPECT_EQ(players().find_one("ghost"), std::nullopt);
}

TEST_P(storage_operations, find_one_and_update_that_changes_the_id_is_refused_and_writes_nothing) {
  create("p1", "Ann", 10);
  EXPECT_THROW(players().find_one_and_update("p1",
                                             [](Player p) {
                                               p.id = "p2";
                                               p.gold = 0;
                                               return p;
                                             }),
               invalid_argument_error);
  const Player stored{.id = "p1", .name = "Ann", .gold = 10, .level = 1, .version = 1};
  EXPECT_EQ(players().find_one("p1"), stored);
  EXPECT_EQ(players().find_one("p2"), std::nullopt);
}

TEST_P(storage_operations, find_many_filters_sorts_skips_and_limits_typed_documents) {
  create("a", "Ann", 50, 3);
  create("b", "Bob", 70, 1);
  create("c", "Cid", 90, 2);
  create("d", "Dee", 10, 5);
  create("e", "Eve", 70, 4);
  create("f", "Fay", 30, 2);
  auto ids = [](const std::vector<Player>& found) {
    std::vector<std::string> out;
    for (const Player& p : found) out.push_back(p.id);
    return out;
  };
  const json at_least_level_2 = {{"level", {{"$gte", 2}}}};
  // Levels >= 2: a(50) c(90) d(10) e(70) f(30); by gold descending: c e a f d.
  EXPECT_EQ(ids(players().find_many(at_least_level_2,
                                    {.sort = {{"gold", eventsourced::sort_order::descending}}})),
            (std::vector<std::string>{"c", "e", "a", "f", "d"}));
  EXPECT_EQ(ids(players().find_many(
                at_least_level_2,
                {.sort = {{"gold", eventsourced::sort_order::descending}}, .limit = 2, .skip = 1})),
            (std::vector<std::string>{"e", "a"}));
  // Ties on gold (b and e, 70) fall back to id ascending.
  EXPECT_EQ(ids(players().find_many({{"gold", 70}})), (std::vector<std::string>{"b", "e"}));
  const auto all = players().find_many();
  ASSERT_EQ(all.size(), 6u);
  EXPECT_EQ(all[2], (Player{.id = "c", .name = "Cid", .gold = 90, .level = 2, .version = 1}));
}

TEST_P(storage_operations, update_one_applies_operators_under_a_version_bump) {
  auto docs = store_->documents("players");
  docs.find_one_and_upsert({{"id", "p1"}, {"name", "Ann"}, {"gold", 10}, {"items", {"shield"}}});
  const auto r = docs.update_one("p1", {{"$set", {{"name", "Anna"}, {"stats.wins", 1}}},
                                        {"$inc", {{"gold", 5}}},
                                        {"$push", {{"items", "sword"}}}});
  const json expected = {{"id", "p1"},
                         {"name", "Anna"},
                         {"gold", 15},
                         {"items", {"shield", "sword"}},
                         {"stats", {{"wins", 1}}},
                         {"version", 2}};
  EXPECT_EQ(r.document, expected);
  EXPECT_EQ(r.diff.version, 2);
  EXPECT_EQ(docs.find_one("p1"), expected);
  // The typed face runs the same operators.
  const auto typed = players().update_one("p1", {{"$inc", {{"gold", -20}, {"level", 2}}}});
  EXPECT_EQ(typed.document.gold, -5);
  EXPECT_EQ(typed.document.level, 2);  // level was missing: $inc creates it
  EXPECT_EQ(typed.document.version, 3);
  EXPECT_EQ(docs.find_one("p1")->at("gold"), -5);
}

TEST_P(storage_operations, update_one_may_not_change_the_id_or_the_version) {
  create("p1", "Ann", 10);
  EXPECT_THROW(players().update_one("p1", {{"$set", {{"id", "p2"}}}}), invalid_argument_error);
  EXPECT_THROW(players().update_one("p1", {{"$inc", {{"version", 5}}}}), invalid_argument_error);
  EXPECT_THROW(players().update_one("p1", {{"$set", {{"version", 7}}}}), invalid_argument_error);
  EXPECT_THROW(players().update_one("p1", {{"$unset", {{"id", ""}}}}), invalid_argument_error);
  EXPECT_THROW(players().update_one("p1", {{"$rename", {{"version", "v"}}}}),
               invalid_argument_error);
  const Player stored{.id = "p1", .name = "Ann", .gold = 10, .level = 1, .version = 1};
  EXPECT_EQ(players().find_one("p1"), stored);
  EXPECT_EQ(players().find_one("p2"), std::nullopt);
}

TEST_P(storage_operations, update_of_a_missing_document_throws_not_found_for_every_update_kind) {
  EXPECT_THROW(players().update_one("ghost", {{"$inc", {{"gold", 1}}}}), not_found_error);
  EXPECT_THROW(players().update_section("ghost", "stats", [](json s) { return s; }),
               not_found_error);
  EXPECT_EQ(players().find_one("ghost"), std::nullopt);
}

TEST_P(storage_operations, delete_one_reports_whether_the_document_existed) {
  create("p1", "Ann", 10);
  create("p2", "Bob", 20);
  EXPECT_TRUE(players().delete_one("p1"));
  EXPECT_EQ(players().find_one("p1"), std::nullopt);
  EXPECT_FALSE(players().delete_one("p1"));
  EXPECT_FALSE(players().delete_one("never"));
  EXPECT_EQ(players().find_one("p2")->gold, 20);
}

TEST_P(storage_operations, a_recreated_document_continues_after_its_tombstone_version) {
  create("p1", "Ann", 10);
  ASSERT_TRUE(players().delete_one("p1"));  // tombstone at version 2
  const auto r = players().find_one_and_upsert(Player{.id = "p1", .name = "Ann II", .gold = 1});
  EXPECT_TRUE(r.diff.is_new);
  EXPECT_EQ(r.diff.version, 3);
  EXPECT_EQ(r.document.version, 3);
  EXPECT_EQ(players().find_one("p1")->version, 3);
  EXPECT_EQ(store_->documents("players").find_one("p1")->at("version"), 3);
}

TEST_P(storage_operations, the_version_a_document_carries_is_the_stored_version_after_every_write) {
  auto docs = store_->documents("players");
  auto check = [&](const Player& returned, std::int64_t diff_version, std::int64_t expected) {
    EXPECT_EQ(returned.version, expected);
    EXPECT_EQ(diff_version, expected);
    EXPECT_EQ(players().find_one("p1")->version, expected);
    EXPECT_EQ(docs.find_one("p1")->at("version"), expected);
    EXPECT_EQ(docs.find_many({{"version", expected}}).size(), 1u);
  };
  // A version the caller puts in the body is ignored: the store's is the truth.
  auto r = players().find_one_and_upsert(Player{.id = "p1", .name = "Ann", .version = 42});
  check(r.document, r.diff.version, 1);
  r = players().find_one_and_update("p1", [](Player p) {
    p.gold = 5;
    p.version = 100;
    return p;
  });
  check(r.document, r.diff.version, 2);
  r = players().update_one("p1", {{"$inc", {{"gold", 1}}}});
  check(r.document, r.diff.version, 3);
  r = players().update_section("p1", "name", [](json) { return json("Anna"); });
  check(r.document, r.diff.version, 4);
  EXPECT_EQ(players().find_one("p1")->gold, 6);
  EXPECT_EQ(players().find_one("p1")->name, "Anna");
}

// --- Configurable id and version fields -------------------------------------------------------

struct Item {
  std::string key;
  std::string name;
  std::int64_t rev = 0;
  friend bool operator==(const Item&, const Item&) = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Item, key, name, rev)

TEST_P(storage_operations, configured_id_and_version_fields_are_used_and_reflected_into_T) {
  auto s = open_store({.id_field = "key", .version_field = "rev"});
  auto items = s->collection<Item>("items");
  auto r = items.find_one_and_upsert(Item{.key = "sword", .name = "Sword"});
  EXPECT_EQ(r.document, (Item{.key = "sword", .name = "Sword", .rev = 1}));
  r = items.find_one_and_update("sword", [](Item i) {
    i.name = "Sharp sword";
    return i;
  });
  EXPECT_EQ(r.document, (Item{.key = "sword", .name = "Sharp sword", .rev = 2}));
  EXPECT_EQ(r.diff.json_patch, json::parse(R"([
    {"op": "replace", "path": "/name", "value": "Sharp sword"},
    {"op": "replace", "path": "/rev", "value": 2}])"));
  EXPECT_EQ(items.find_one("sword"), (Item{.key = "sword", .name = "Sharp sword", .rev = 2}));
  // The body holds exactly the configured fields, not the default "id" / "version".
  EXPECT_EQ(s->documents("items").find_one("sword"),
            (json{{"key", "sword"}, {"name", "Sharp sword"}, {"rev", 2}}));
  EXPECT_THROW(items.update_one("sword", {{"$set", {{"key", "axe"}}}}), invalid_argument_error);
  EXPECT_THROW(items.update_one("sword", {{"$inc", {{"rev", 1}}}}), invalid_argument_error);
  EXPECT_EQ(items.find_one("sword")->rev, 2);
}

}  // namespace
}  // namespace eventsourced_test
