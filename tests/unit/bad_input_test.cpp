// Invariant 4 (DESIGN.md): bad input gets a clear error and changes nothing. Every test reads the
// store back afterwards to prove that nothing changed.
#include <stdexcept>
#include <string>
#include <vector>

#include "unit/storage_test_support.hpp"

namespace eventsourced_test {
namespace {

using eventsourced::invalid_argument_error;
using eventsourced::serialization_error;
using eventsourced::store_closed_error;
using eventsourced::transaction;

bool mentions(const std::string& message, const std::string& part) {
  return message.find(part) != std::string::npos;
}

class bad_input : public storage_test {
 protected:
  void SetUp() override {
    storage_test::SetUp();
    store_ = open_store();
    players().find_one_and_upsert(kAnn);
    players().find_one_and_upsert(kBob);
  }

  eventsourced::collection<Player> players() { return store_->collection<Player>("players"); }

  // The two documents every test starts with are still there, exactly.
  void expect_players_untouched() {
    EXPECT_EQ(players().find_one("ann"), kAnn);
    EXPECT_EQ(players().find_one("bob"), kBob);
    EXPECT_EQ(players().find_many().size(), 2u);
  }

  const Player kAnn{.id = "ann", .name = "Ann", .gold = 10, .level = 1, .version = 1};
  const Player kBob{.id = "bob", .name = "Bob", .gold = 20, .level = 2, .version = 1};
  std::shared_ptr<eventsourced::store> store_;
};
EVENTSOURCED_STORAGE_TEST_ENGINES(bad_input);

TEST_P(bad_input, a_filter_with_an_unknown_operator_is_an_invalid_argument) {
  EXPECT_THROW(players().find_many({{"gold", {{"$where", "1 == 1"}}}}), invalid_argument_error);
  EXPECT_THROW(players().find_many({{"$nor", json::array({{{"gold", 1}}})}}),
               invalid_argument_error);
  EXPECT_THROW(players().find_many({{"gold", {{"$in", 5}}}}), invalid_argument_error);
  expect_players_untouched();
}

TEST_P(bad_input, hostile_or_reserved_collection_names_are_refused_and_harm_nothing) {
  const std::vector<std::string> names = {"a'b",
                                          "a\"b",
                                          "a;b",
                                          std::string("ab\0cd", 5),
                                          "x; DROP TABLE documents; --",
                                          "players' OR '1'='1",
                                          "_es_checkpoints",
                                          "_es_",
                                          "",
                                          "1players",
                                          std::string(129, 'a')};
  for (const std::string& name : names) {
    SCOPED_TRACE(::testing::PrintToString(name));
    EXPECT_THROW(store_->collection<Player>(name), invalid_argument_error);
    EXPECT_THROW(store_->documents(name), invalid_argument_error);
    EXPECT_THROW(store_->with_transaction([&](transaction& tx) { tx.find_one(name, "ann"); }),
                 invalid_argument_error);
    EXPECT_THROW(store_->with_transaction([&](transaction& tx) {
      tx.put(name, {{"id", "x"}});
    }),
                 invalid_argument_error);
  }
  // A name that is an SQL keyword is just a name.
  auto select = store_->collection<Player>("select");
  select.find_one_and_upsert(Player{.id = "s1", .name = "Sel", .gold = 3});
  select.find_one_and_update("s1", [](Player p) {
    p.gold += 1;
    return p;
  });
  EXPECT_EQ(select.find_one("s1"),
            (Player{.id = "s1", .name = "Sel", .gold = 4, .level = 1, .version = 2}));
  EXPECT_EQ(select.find_many({{"gold", {{"$gt", 3}}}}).size(), 1u);
  expect_players_untouched();
}

TEST_P(bad_input, an_id_of_one_megabyte_is_an_invalid_argument) {
  const std::string huge(1024 * 1024, 'x');
  EXPECT_THROW(players().find_one(huge), invalid_argument_error);
  EXPECT_THROW(players().find_one_and_upsert(Player{.id = huge, .name = "Huge"}),
               invalid_argument_error);
  EXPECT_THROW(players().find_one_and_update(huge, [](Player p) { return p; }),
               invalid_argument_error);
  EXPECT_THROW(players().update_one(huge, {{"$inc", {{"gold", 1}}}}), invalid_argument_error);
  EXPECT_THROW(players().delete_one(huge), invalid_argument_error);
  EXPECT_THROW(store_->with_transaction([&](transaction& tx) {
    tx.put("players", {{"id", huge}});
  }),
               invalid_argument_error);
  expect_players_untouched();
}

TEST_P(bad_input, ids_that_are_empty_not_strings_or_not_utf8_are_invalid_arguments) {
  auto docs = store_->documents("players");
  EXPECT_THROW(docs.find_one_and_upsert({{"id", ""}}), invalid_argument_error);
  EXPECT_THROW(docs.find_one_and_upsert({{"id", 7}}), invalid_argument_error);
  EXPECT_THROW(docs.find_one_and_upsert({{"name", "no id"}}), invalid_argument_error);
  EXPECT_THROW(docs.find_one(std::string("a\0b", 3)), invalid_argument_error);
  EXPECT_THROW(docs.find_one("\xff\xfe"), invalid_argument_error);
  expect_players_untouched();
}

TEST_P(bad_input, a_document_over_max_document_bytes_is_refused_and_nothing_is_written) {
  auto small = open_store({.max_document_bytes = 1024});
  auto limited = small->collection<Player>("players");
  const std::string long_name(2000, 'n');
  try {
    limited.find_one_and_upsert(Player{.id = "big", .name = long_name});
    FAIL() << "expected invalid_argument_error";
  } catch (const invalid_argument_error& e) {
    EXPECT_PRED2(mentions, e.what(), "players/big");
    EXPECT_PRED2(mentions, e.what(), "1024");
  }
  EXPECT_EQ(limited.find_one("big"), std::nullopt);
  EXPECT_THROW(limited.find_one_and_update("ann",
                                           [&](Player p) {
                                             p.name = long_name;
                                             return p;
                                           }),
               invalid_argument_error);
  EXPECT_THROW(limited.update_one("ann", {{"$set", {{"name", long_name}}}}),
               invalid_argument_error);
  // In a transaction, one oversized document fails the whole commit.
  EXPECT_THROW(small->with_transaction([&](transaction& tx) {
    auto p = tx.collection<Player>("players");
    Player bob = p.find_one("bob").value();
    bob.gold = 0;
    p.put(bob);
    p.put(Player{.id = "big", .name = long_name});
  }),
               invalid_argument_error);
  EXPECT_EQ(limited.find_one("big"), std::nullopt);
  expect_players_untouched();
}

TEST_P(bad_input, a_document_that_does_not_convert_to_T_is_a_serialization_error) {
  store_->documents("players").find_one_and_upsert(
      {{"id", "odd"}, {"name", "Odd"}, {"gold", "lots"}, {"level", 1}});
  try {
    players().find_one("odd");
    FAIL() << "expected serialization_error";
  } catch (const serialization_error& e) {
    EXPECT_PRED2(mentions, e.what(), "players/odd");
    EXPECT_FALSE(e.retryable());
  }
  EXPECT_THROW(players().find_many(), serialization_error);
  EXPECT_THROW(players().find_one_and_update("odd",
                                             [](Player p) {
                                               p.gold = 1;
                                               return p;
                                             }),
               serialization_error);
  const json stored = store_->documents("players").find_one("odd").value();
  EXPECT_EQ(stored["gold"], "lots");
  EXPECT_EQ(stored["version"], 1);
  EXPECT_EQ(players().find_many({{"id", {{"$ne", "odd"}}}}), (std::vector<Player>{kAnn, kBob}));
}

TEST_P(bad_input, an_update_operator_on_a_field_of_the_wrong_type_changes_nothing) {
  auto docs = store_->documents("players");
  EXPECT_THROW(docs.update_one("ann", {{"$inc", {{"name", 1}}}}), invalid_argument_error);
  EXPECT_THROW(docs.update_one("ann", {{"$push", {{"gold", 1}}}}), invalid_argument_error);
  EXPECT_THROW(docs.update_one("ann", {{"$inc", {{"gold", "1"}}}}), invalid_argument_error);
  EXPECT_THROW(docs.update_one("ann", {{"$frobnicate", {{"gold", 1}}}}), invalid_argument_error);
  EXPECT_THROW(docs.update_one("ann", {{"$set", {{"gold", 1}}}, {"name", "mixed"}}),
               invalid_argument_error);
  EXPECT_THROW(docs.update_one("ann", json::object()), invalid_argument_error);
  expect_players_untouched();
}

TEST_P(bad_input, an_edit_returning_something_other_than_an_object_changes_nothing) {
  auto docs = store_->documents("players");
  EXPECT_THROW(docs.find_one_and_update("ann",
                                        [](json) {
                                          return json::array({1, 2});
                                        }),
               invalid_argument_error);
  EXPECT_THROW(docs.find_one_and_update("ann", [](json) { return json("text"); }),
               invalid_argument_error);
  expect_players_untouched();
}

TEST_P(bad_input, malformed_queries_and_section_paths_are_invalid_arguments) {
  EXPECT_THROW(players().find_many(json::array({1, 2})), invalid_argument_error);
  EXPECT_THROW(players().find_many({}, {.sort = {{"$gold", eventsourced::sort_order::ascending}}}),
               invalid_argument_error);
  EXPECT_THROW(players().find_many({}, {.sort = {{"a..b", eventsourced::sort_order::ascending}}}),
               invalid_argument_error);
  for (const char* path : {"", "a..b", "$set", "stats.$x", "a\"b"}) {
    SCOPED_TRACE(path);
    EXPECT_THROW(players().update_section("ann", path, [](json) { return json(1); }),
                 invalid_argument_error);
  }
  // A section path through a non-object cannot be written.
  EXPECT_THROW(players().update_section("ann", "name.first", [](json) { return json("A"); }),
               invalid_argument_error);
  expect_players_untouched();
}

TEST_P(bad_input, a_type_whose_json_form_is_not_an_object_is_a_serialization_error) {
  auto lists = store_->collection<std::vector<int>>("lists");
  EXPECT_THROW(lists.find_one_and_upsert({1, 2, 3}), serialization_error);
  EXPECT_EQ(store_->documents("lists").find_many().size(), 0u);
  // Reading a document as a type it cannot be is the same error.
  EXPECT_THROW(store_->collection<std::vector<int>>("players").find_one("ann"),
               serialization_error);
  expect_players_untouched();
}

TEST_P(bad_input, an_edit_that_throws_writes_nothing_and_its_exception_propagates) {
  int runs = 0;
  EXPECT_THROW(players().find_one_and_update("ann",
                                             [&](Player p) -> Player {
                                               ++runs;
                                               p.gold = 0;
                                               throw std::out_of_range("not enough gold");
                                             }),
               std::out_of_range);
  EXPECT_EQ(runs, 1);
  EXPECT_THROW(
      players().update_section("ann", "gold", [](json) -> json { throw std::out_of_range("no"); }),
      std::out_of_range);
  expect_players_untouched();
}

TEST_P(bad_input, store_options_that_cannot_work_are_refused_when_the_store_opens) {
  EXPECT_THROW(open_store({.id_field = ""}), invalid_argument_error);
  EXPECT_THROW(open_store({.id_field = "k", .version_field = "k"}), invalid_argument_error);
  EXPECT_THROW(open_store({.retry = {.max_attempts = 0}}), invalid_argument_error);
  // The engines keep the version in a top-level member: a dotted or '$' name can never be
  // written, so a store opened with one would fail every write. store.hpp: open() "Throws
  // invalid_argument_error for a bad URI or options".
  for (const char* field : {"meta.version", "$v"}) {
    SCOPED_TRACE(field);
    std::shared_ptr<eventsourced::store> s;
    try {
      s = open_store({.version_field = field});
    } catch (const invalid_argument_error&) {
      continue;  // refused up front: fine
    }
    // Accepted: then it must work.
    auto p = s->collection<Player>("players");
    EXPECT_NO_THROW(p.find_one_and_update("ann", [](Player x) {
      x.gold += 1;
      return x;
    }));
  }
}

TEST_P(bad_input, every_operation_after_close_throws_store_closed) {
  for (const bool cached : {false, true}) {
    SCOPED_TRACE(cached ? "with a memory_cache" : "without a cache");
    eventsourced::store_options options;
    if (cached) options.cache = std::make_shared<eventsourced::memory_cache>();
    // On memory, a store of its own: closing it ends its engine, and the loop needs two.
    auto s = on_sqlite() ? open_store(options) : eventsourced::open("memory:", options);
    auto p = s->collection<Player>("players");
    p.find_one_and_upsert(kAnn);  // on SQLite: already there, returned unchanged
    auto docs = s->documents("players");
    ASSERT_EQ(p.find_one("ann"), kAnn);  // now cached, when there is a cache
    s->close();
    EXPECT_TRUE(s->closed());
    EXPECT_THROW(p.find_one("ann"), store_closed_error);
    EXPECT_THROW(docs.find_one("ann"), store_closed_error);
    EXPECT_THROW(p.find_many(), store_closed_error);
    EXPECT_THROW(p.find_one_and_upsert(Player{.id = "new", .name = "New"}), store_closed_error);
    EXPECT_THROW(p.find_one_and_upsert(kAnn), store_closed_error);
    EXPECT_THROW(p.find_one_and_update("ann", [](Player x) { return x; }), store_closed_error);
    EXPECT_THROW(p.update_one("ann", {{"$inc", {{"gold", 1}}}}), store_closed_error);
    EXPECT_THROW(p.update_section("ann", "name", [](json) { return json("X"); }),
                 store_closed_error);
    EXPECT_THROW(p.delete_one("ann"), store_closed_error);
    EXPECT_THROW(s->with_transaction([](transaction&) {}), store_closed_error);
    EXPECT_THROW(s->engine(), store_closed_error);
    s->close();  // idempotent
  }
  if (on_sqlite()) {
    // Nothing attempted after close reached the file.
    store_->close();
    store_ = open_store();
    expect_players_untouched();
    EXPECT_EQ(players().find_one("new"), std::nullopt);
  }
}

TEST(bad_store_uri, an_unknown_scheme_or_no_scheme_is_an_invalid_argument) {
  try {
    eventsourced::open("nosuchdb://somewhere");
    FAIL() << "expected invalid_argument_error";
  } catch (const invalid_argument_error& e) {
    EXPECT_PRED2(mentions, e.what(), "nosuchdb");
  }
  EXPECT_THROW(eventsourced::open("players.db"), invalid_argument_error);
  EXPECT_THROW(eventsourced::open(""), invalid_argument_error);
  EXPECT_THROW(eventsourced::open("memory:extra"), invalid_argument_error);
}

}  // namespace
}  // namespace eventsourced_test
