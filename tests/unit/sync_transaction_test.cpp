// event_sync_storage transactions and typed collections: every document a transaction changes
// records its sync event in the transaction's one commit (DESIGN.md invariant 2), transactions stay
// serializable under concurrent threads (invariant 1), and bad input changes nothing (invariant 4).
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <eventsourced/eventsourced.hpp>

#include "sync_test_support.hpp"

namespace eventsourced_test {
namespace {

using eventsourced::json;
using eventsourced::vector_clock_map;

class sync_transaction_test : public sync_test {
 protected:
  std::vector<eventsourced::event> sync_events(const std::string& collection,
                                               const std::string& id) {
    return sync_->store()->engine().read_stream(eventsourced::sync_stream(collection, id), 1,
                                                100'000);
  }

  // A client that catches up from nothing ends with the stored document at its version.
  void expect_client_reproduces(const std::string& collection, const std::string& id) {
    simulated_client client;
    client.apply(sync_->get_missing_events(collection, id, {.version = 0}));
    auto stored = sync_->store()->engine().get(collection, id);
    ASSERT_TRUE(stored.has_value()) << collection << "/" << id;
    EXPECT_EQ(client.version, stored->version) << collection << "/" << id;
    EXPECT_EQ(client.document, *sync_->find_one(collection, id)) << collection << "/" << id;
  }
};

Player account(std::string id, std::int64_t gold) {
  Player p;
  p.id = std::move(id);
  p.gold = gold;
  return p;
}

// Moves `amount` gold from one account to another in one sync transaction.
void transfer(eventsourced::sync_transaction& tx, const std::string& from, const std::string& to,
              std::int64_t amount) {
  auto accounts = tx.collection<Player>("accounts");
  auto a = accounts.find_one(from).value();
  auto b = accounts.find_one(to).value();
  a.gold -= amount;
  b.gold += amount;
  accounts.put(a);
  accounts.put(b);
}

TEST_P(sync_transaction_test, a_transfer_records_both_sync_events_in_one_commit) {
  auto& sync = open_sync();
  sync.find_one_and_upsert("accounts", Player{.id = "ann", .name = "Ann", .gold = 100});
  sync.find_one_and_upsert("accounts", Player{.id = "bob", .name = "Bob", .gold = 0});

  sync.with_transaction([](eventsourced::sync_transaction& tx) { transfer(tx, "ann", "bob", 10); },
                        as_client("bank"));

  for (const auto& [id, gold] : std::map<std::string, int>{{"ann", 90}, {"bob", 10}}) {
    auto doc = sync.find_one("accounts", id).value();
    EXPECT_EQ(doc["gold"], gold);
    EXPECT_EQ(doc["version"], 2);
    auto events = sync_events("accounts", id);
    ASSERT_EQ(events.size(), 2u) << id;
    const auto& e = events.back();
    EXPECT_EQ(e.stream_version, 2);
    EXPECT_EQ(e.type, "sync.updated");
    EXPECT_EQ(e.data["client_id"], "bank");
    EXPECT_EQ(e.data["vector_clock"], (json{{"server", 1}, {"bank", 1}}));
    EXPECT_EQ(sync.vector_clock("accounts", id), (vector_clock_map{{"server", 1}, {"bank", 1}}));
    expect_client_reproduces("accounts", id);
  }
  // One commit: the two events are neighbours in the global log.
  auto ann = sync_events("accounts", "ann").back();
  auto bob = sync_events("accounts", "bob").back();
  EXPECT_EQ(std::max(ann.position, bob.position) - std::min(ann.position, bob.position), 1);
}

TEST_P(sync_transaction_test, creates_and_deletes_in_a_transaction_catch_up_like_single_writes) {
  auto& sync = open_sync();
  sync.find_one_and_upsert("items", json{{"id", "sword"}, {"owner", "ann"}});
  const int returned = sync.with_transaction([](eventsourced::sync_transaction& tx) {
    EXPECT_TRUE(tx.delete_one("items", "sword"));
    EXPECT_FALSE(tx.delete_one("items", "never"));
    tx.put("items", json{{"id", "shield"}, {"owner", "bob"}});
    // The transaction sees its own writes.
    EXPECT_FALSE(tx.find_one("items", "sword").has_value());
    EXPECT_EQ(tx.find_one("items", "shield").value()["owner"], "bob");
    return 7;
  });
  EXPECT_EQ(returned, 7);
  EXPECT_FALSE(sync.find_one("items", "sword").has_value());
  auto sword = sync_events("items", "sword");
  ASSERT_EQ(sword.size(), 2u);
  EXPECT_EQ(sword.back().data["op"], "delete");
  auto shield = sync_events("items", "shield");
  ASSERT_EQ(shield.size(), 1u);
  EXPECT_EQ(shield.back().data["op"], "create");
  EXPECT_TRUE(sync_events("items", "never").empty()) << "an id only read records nothing";
  expect_client_reproduces("items", "shield");

  // A client that had the sword at version 1 learns it was deleted; re-creating it in another
  // transaction continues its stream.
  simulated_client client;
  client.apply(sync.get_missing_events("items", "sword", {.version = 0}));
  EXPECT_TRUE(client.document.is_null());
  sync.with_transaction([](eventsourced::sync_transaction& tx) {
    tx.put("items", json{{"id", "sword"}, {"owner", "cy"}});
  });
  client.apply(sync.get_missing_events("items", "sword", {.version = client.version}));
  EXPECT_EQ(client.version, 3);
  EXPECT_EQ(client.document, *sync.find_one("items", "sword"));
}

TEST_P(sync_transaction_test, concurrent_transfers_conserve_gold_and_keep_every_stream_whole) {
  auto& sync = open_sync({.storage = {.retry = {.max_attempts = 10'000}}, .snapshot_interval = 4});
  constexpr int kAccounts = 4;
  constexpr int kThreads = 4;
  constexpr int kTransfers = 25;
  for (int i = 0; i < kAccounts; ++i) {
    sync.find_one_and_upsert("accounts", account("a" + std::to_string(i), 1000));
  }
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 random(static_cast<unsigned>(t) * 7919u + 1u);
      const std::string me = "teller" + std::to_string(t);
      for (int n = 0; n < kTransfers; ++n) {
        const int from = static_cast<int>(random() % kAccounts);
        const int to = (from + 1 + static_cast<int>(random() % (kAccounts - 1))) % kAccounts;
        try {
          sync.with_transaction(
              [&](eventsourced::sync_transaction& tx) {
                transfer(tx, "a" + std::to_string(from), "a" + std::to_string(to), 1 + n % 5);
              },
              as_client(me));
        } catch (const std::exception&) {
          failures.fetch_add(1);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(failures.load(), 0);

  std::int64_t total = 0;
  std::int64_t versions = 0;
  for (int i = 0; i < kAccounts; ++i) {
    const std::string id = "a" + std::to_string(i);
    auto stored = sync.store()->engine().get("accounts", id).value();
    total += stored.body["gold"].get<std::int64_t>();
    versions += stored.version - 1;
    auto events = sync_events("accounts", id);
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(events.back().stream_version, stored.version) << id;
    // Each write adds one to one counter: the clock's counters add up to the version.
    std::int64_t counters = 0;
    for (const auto& [client, counter] : sync.vector_clock("accounts", id)) counters += counter;
    EXPECT_EQ(counters, stored.version) << id;
    expect_client_reproduces("accounts", id);
    // A client that starts from the latest snapshot agrees too.
    if (auto snapshot = sync.latest_snapshot("accounts", id)) {
      simulated_client late;
      late.document = snapshot->document;
      late.version = snapshot->version;
      late.apply(sync.get_missing_events("accounts", id, {.version = snapshot->version}));
      EXPECT_EQ(late.document, *sync.find_one("accounts", id)) << id;
    }
  }
  EXPECT_EQ(total, kAccounts * 1000);
  EXPECT_EQ(versions, 2 * kThreads * kTransfers) << "every transfer wrote two documents once";
}

// Runs `between` once, right after the next read of accounts/ann once armed: a writer that commits
// between a transaction's reads of the document.
class interleaving_engine : public shared_engine {
 public:
  using shared_engine::shared_engine;
  std::function<void()> between;
  std::optional<eventsourced::stored_document> get(std::string_view collection,
                                                   std::string_view id) override {
    auto doc = shared_engine::get(collection, id);
    if (between && collection == "accounts" && id == "ann") std::exchange(between, nullptr)();
    return doc;
  }
};

TEST_P(sync_transaction_test, a_write_between_the_reads_of_an_attempt_is_retried_on_fresh_state) {
  interleaving_engine* faults = nullptr;
  auto& sync = open_sync_wrapped([&](std::shared_ptr<eventsourced::engine> e) {
    auto engine = std::make_unique<interleaving_engine>(std::move(e));
    faults = engine.get();
    return engine;
  });
  sync.find_one_and_upsert("accounts", account("ann", 100));
  sync.find_one_and_upsert("accounts", account("bob", 0));
  int attempts = 0;
  faults->between = [&] {
    sync.find_one_and_update(
        "accounts", "ann",
        [](const json& a) {
          json next = a;
          next["gold"] = a["gold"].get<int>() + 1000;
          return next;
        },
        as_client("intruder"));
  };
  sync.with_transaction(
      [&](eventsourced::sync_transaction& tx) {
        ++attempts;
        transfer(tx, "ann", "bob", 10);
      },
      as_client("bank"));
  EXPECT_EQ(attempts, 2) << "the first attempt read a version the intruder replaced";
  EXPECT_EQ(sync.find_one("accounts", "ann").value()["gold"], 1090) << "no lost update";
  EXPECT_EQ(sync.vector_clock("accounts", "ann"),
            (vector_clock_map{{"server", 1}, {"intruder", 1}, {"bank", 1}}));
  EXPECT_EQ(sync_events("accounts", "ann").size(), 3u);
  expect_client_reproduces("accounts", "ann");
  expect_client_reproduces("accounts", "bob");
}

TEST_P(sync_transaction_test, a_function_that_throws_writes_nothing) {
  auto& sync = open_sync();
  sync.find_one_and_upsert("accounts", account("ann", 100));
  EXPECT_THROW(sync.with_transaction([](eventsourced::sync_transaction& tx) {
    tx.put("accounts", json{{"id", "ann"}, {"gold", 0}});
    tx.put("accounts", json{{"id", "new"}, {"gold", 5}});
    throw std::runtime_error("changed my mind");
  }),
               std::runtime_error);
  EXPECT_EQ(sync.find_one("accounts", "ann").value()["gold"], 100);
  EXPECT_FALSE(sync.find_one("accounts", "new").has_value());
  EXPECT_EQ(sync_events("accounts", "ann").size(), 1u);
  EXPECT_TRUE(sync_events("accounts", "new").empty());
}

TEST_P(sync_transaction_test, a_snapshot_follows_the_commit_that_reaches_the_interval) {
  auto& sync = open_sync({.snapshot_interval = 2});
  sync.find_one_and_upsert("accounts", account("ann", 100));
  sync.find_one_and_upsert("accounts", account("bob", 0));
  sync.with_transaction([](eventsourced::sync_transaction& tx) { transfer(tx, "ann", "bob", 30); },
                        as_client("bank"));
  for (const std::string id : {"ann", "bob"}) {
    auto snapshot = sync.latest_snapshot("accounts", id);
    ASSERT_TRUE(snapshot.has_value()) << id;
    EXPECT_EQ(snapshot->version, 2);
    EXPECT_EQ(snapshot->document, *sync.find_one("accounts", id)) << id;
    EXPECT_EQ(snapshot->vector_clock, (vector_clock_map{{"server", 1}, {"bank", 1}}));
  }
  // A deletion at the interval snapshots "deleted".
  sync.find_one_and_upsert("accounts", account("cy", 1));
  sync.with_transaction(
      [](eventsourced::sync_transaction& tx) { EXPECT_TRUE(tx.delete_one("accounts", "cy")); });
  auto snapshot = sync.latest_snapshot("accounts", "cy");
  ASSERT_TRUE(snapshot.has_value());
  EXPECT_EQ(snapshot->version, 2);
  EXPECT_TRUE(snapshot->document.is_null());
}

TEST_P(sync_transaction_test, reserved_or_invalid_names_and_direct_store_transactions_are_refused) {
  auto& sync = open_sync();
  sync.find_one_and_upsert("accounts", account("ann", 100));
  auto attempt = [&](auto&& body) {
    EXPECT_THROW(sync.with_transaction([&](eventsourced::sync_transaction& tx) {
      tx.put("accounts", json{{"id", "ann"}, {"gold", 1}});  // must not land either
      body(tx);
    }),
                 eventsourced::invalid_argument_error);
  };
  attempt([](auto& tx) { tx.find_one(eventsourced::kSyncSnapshotCollection, "x"); });
  attempt([](auto& tx) { tx.put("_es_mine", json{{"id", "x"}}); });
  attempt([](auto& tx) { tx.delete_one("bad/name", "x"); });
  attempt([](auto& tx) { tx.find_one("accounts", ""); });
  attempt([](auto& tx) { tx.put("accounts", json{{"gold", 1}}); });  // no id
  EXPECT_THROW(sync.with_transaction([](auto&) {}, {.event_metadata = {{"client_id", 5}}}),
               eventsourced::invalid_argument_error);
  EXPECT_THROW(sync.collection<Player>("_es_sync_states"), eventsourced::invalid_argument_error);
  EXPECT_THROW(sync.find_many("bad name"), eventsourced::invalid_argument_error);
  // Around event_sync_storage: the mapper refuses a change without sync information.
  EXPECT_THROW(sync.store()->with_transaction([](eventsourced::transaction& tx) {
    tx.put("accounts", json{{"id", "ann"}, {"gold", 2}});
  }),
               eventsourced::invalid_argument_error);

  EXPECT_EQ(sync.find_one("accounts", "ann").value()["gold"], 100);
  EXPECT_EQ(sync_events("accounts", "ann").size(), 1u);
}

TEST_P(sync_transaction_test, typed_collections_round_trip_and_record_sync_events) {
  auto& sync = open_sync();
  auto players = sync.collection<Player>("players");
  auto created = players.find_one_and_upsert(Player{.id = "p1", .name = "Ann", .gold = 5});
  EXPECT_EQ(created.document.version, 1);
  EXPECT_EQ(created.document.name, "Ann");
  players.find_one_and_upsert(Player{.id = "p2", .name = "Bob", .gold = 50});
  auto updated = players.find_one_and_update(
      "p1",
      [](Player p) {
        p.gold += 20;
        p.level = 2;
        return p;
      },
      as_client("ann"));
  EXPECT_EQ(updated.document.gold, 25);
  EXPECT_EQ(updated.document.version, 2);
  EXPECT_EQ(players.find_one("p1").value(), updated.document);
  EXPECT_EQ(sync.vector_clock("players", "p1"), (vector_clock_map{{"server", 1}, {"ann", 1}}));
  auto rich = players.find_many(
      json{{"gold", {{"$gt", 10}}}},
      {.sort = {{.path = "gold", .order = eventsourced::sort_order::descending}}});
  ASSERT_EQ(rich.size(), 2u);
  EXPECT_EQ(rich[0].id, "p2");
  EXPECT_EQ(rich[1].id, "p1");
  // No change: no sync event.
  players.find_one_and_update("p2", [](Player) { return eventsourced::no_change; });
  EXPECT_EQ(sync_events("players", "p2").size(), 1u);
  EXPECT_TRUE(players.delete_one("p2"));
  EXPECT_EQ(sync_events("players", "p2").back().data["op"], "delete");
  expect_client_reproduces("players", "p1");

  // The same type inside a transaction.
  sync.with_transaction([](eventsourced::sync_transaction& tx) {
    auto p = tx.collection<Player>("players").find_one_and_update("p1", [](Player q) {
      q.gold = 0;
      return q;
    });
    EXPECT_EQ(p.value().gold, 0);
  });
  EXPECT_EQ(players.find_one("p1").value().gold, 0);
  expect_client_reproduces("players", "p1");
}

TEST_P(sync_transaction_test, a_body_that_does_not_convert_throws_serialization_error) {
  auto& sync = open_sync();
  sync.find_one_and_upsert("players", json{{"id", "odd"}, {"gold", "lots"}});
  auto players = sync.collection<Player>("players");
  EXPECT_THROW(players.find_one("odd"), eventsourced::serialization_error);
  EXPECT_THROW(players.find_one_and_update("odd", [](Player p) { return p; }),
               eventsourced::serialization_error);
  EXPECT_THROW(sync.with_transaction([](eventsourced::sync_transaction& tx) {
    tx.collection<Player>("players").find_one("odd");
  }),
               eventsourced::serialization_error);
  EXPECT_EQ(sync.find_one("players", "odd").value()["gold"], "lots");
  EXPECT_EQ(sync_events("players", "odd").size(), 1u);
}

EVENTSOURCED_SYNC_TEST_ENGINES(sync_transaction_test);

}  // namespace
}  // namespace eventsourced_test
