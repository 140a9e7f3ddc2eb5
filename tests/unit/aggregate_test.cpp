// aggregate_root and aggregate_registry on their own (no engine), and the repository on both
// engines: round trips, paging, and optimistic concurrency between two saves from one version.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <latch>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <eventsourced/eventsourced.hpp>

#include "storage_test_support.hpp"

namespace {

using eventsourced::aggregate_registry;
using eventsourced::aggregate_root;
using eventsourced::conflict_error;
using eventsourced::event;
using eventsourced::invalid_argument_error;
using eventsourced::json;
using eventsourced::repository;
using eventsourced::serialization_error;

struct gold_earned {
  std::int64_t amount = 0;
};
// Only read (payload_as): NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE's to_json would be an unused
// function, which Clang reports.
void from_json(const json& j, gold_earned& value) {
  j.at("amount").get_to(value.amount);
}

struct not_enough_gold : std::runtime_error {
  not_enough_gold() : std::runtime_error("not enough gold") {}
};

class player final : public aggregate_root {
 public:
  explicit player(std::string id) : aggregate_root("player", std::move(id)) {
    on<gold_earned>("GoldEarned", [this](const gold_earned& e) { gold_ += e.amount; });
    on("GoldSpent", [this](const event& e) {
      std::int64_t amount = e.data.at("amount").get<std::int64_t>();
      if (amount > gold_) throw not_enough_gold();
      gold_ -= amount;
    });
    on("Renamed", [this](const event& e) { name_ = e.data.at("name").get<std::string>(); });
  }
  void earn(std::int64_t amount) { raise("GoldEarned", {{"amount", amount}}); }
  void spend(std::int64_t amount) { raise("GoldSpent", {{"amount", amount}}); }
  void raise_raw(std::string type, json data) { raise(std::move(type), std::move(data)); }
  std::int64_t gold() const { return gold_; }
  const std::string& name() const { return name_; }

 private:
  std::int64_t gold_ = 0;
  std::string name_;
};

class twice_registered final : public aggregate_root {
 public:
  twice_registered() : aggregate_root("twice", "x") {
    on("A", [](const event&) {});
    on("A", [](const event&) {});
  }
};

event recorded(const std::string& id, std::int64_t version, std::string type, json data) {
  event e;
  e.id = eventsourced::make_event_id();
  e.type = std::move(type);
  e.stream = {"player", id};
  e.stream_version = version;
  e.position = version;
  e.data = std::move(data);
  return e;
}

TEST(aggregate_test, raise_applies_and_records_uncommitted_events) {
  player p("p1");
  EXPECT_EQ(p.type(), "player");
  EXPECT_EQ(p.id(), "p1");
  EXPECT_EQ(p.version(), 0);
  p.earn(10);
  p.spend(3);
  EXPECT_EQ(p.gold(), 7);
  EXPECT_EQ(p.version(), 2);
  EXPECT_EQ(p.committed_version(), 0);
  ASSERT_EQ(p.uncommitted().size(), 2u);
  EXPECT_EQ(p.uncommitted()[0].type, "GoldEarned");
  EXPECT_EQ(p.uncommitted()[0].data, json({{"amount", 10}}));
  EXPECT_FALSE(p.uncommitted()[0].id.empty());
  EXPECT_NE(p.uncommitted()[0].id, p.uncommitted()[1].id);
  p.mark_committed();
  EXPECT_TRUE(p.uncommitted().empty());
  EXPECT_EQ(p.committed_version(), 2);
}

TEST(aggregate_test, a_throwing_handler_records_nothing) {
  player p("p1");
  p.earn(5);
  EXPECT_THROW(p.spend(6), not_enough_gold);
  EXPECT_EQ(p.gold(), 5);
  EXPECT_EQ(p.version(), 1);
  EXPECT_EQ(p.uncommitted().size(), 1u);
}

TEST(aggregate_test, raising_an_unhandled_type_is_an_error) {
  player p("p1");
  EXPECT_THROW(p.raise_raw("Unknown", json::object()), invalid_argument_error);
  EXPECT_EQ(p.version(), 0);
  EXPECT_TRUE(p.uncommitted().empty());
}

TEST(aggregate_test, typed_handler_with_data_that_does_not_convert_throws_serialization_error) {
  player p("p1");
  EXPECT_THROW(p.raise_raw("GoldEarned", {{"amount", "lots"}}), serialization_error);
  EXPECT_EQ(p.version(), 0);
  EXPECT_TRUE(p.uncommitted().empty());
}

TEST(aggregate_test, a_second_handler_for_one_event_type_is_an_error) {
  EXPECT_THROW(twice_registered{}, invalid_argument_error);
}

TEST(aggregate_test, invalid_ids_are_rejected) {
  EXPECT_THROW(player(""), invalid_argument_error);
}

TEST(aggregate_test, apply_replays_in_order_and_checks_stream_and_version) {
  player p("p1");
  p.apply(recorded("p1", 1, "GoldEarned", {{"amount", 4}}));
  p.apply(recorded("p1", 2, "SomethingOld", json::object()));  // no handler: version advances
  EXPECT_EQ(p.version(), 2);
  EXPECT_EQ(p.committed_version(), 2);
  EXPECT_EQ(p.gold(), 4);
  EXPECT_THROW(p.apply(recorded("p1", 4, "GoldEarned", {{"amount", 1}})), invalid_argument_error);
  EXPECT_THROW(p.apply(recorded("p2", 3, "GoldEarned", {{"amount", 1}})), invalid_argument_error);
  p.earn(1);
  EXPECT_THROW(p.apply(recorded("p1", 3, "GoldEarned", {{"amount", 1}})), invalid_argument_error);
  EXPECT_EQ(p.gold(), 5);
}

TEST(aggregate_registry_test, creates_registered_types_and_rejects_unknown_ones) {
  aggregate_registry registry;
  registry.add<player>("player");
  EXPECT_TRUE(registry.contains("player"));
  EXPECT_FALSE(registry.contains("guild"));
  auto made = registry.create("player", "p9");
  ASSERT_NE(made, nullptr);
  EXPECT_EQ(made->id(), "p9");
  EXPECT_NE(dynamic_cast<player*>(made.get()), nullptr);
  EXPECT_THROW(registry.create("guild", "g1"), invalid_argument_error);
  EXPECT_THROW(registry.add<player>("player"), invalid_argument_error);
  EXPECT_THROW(registry.add("bad name!",
                            [](std::string id) {
                              return std::unique_ptr<aggregate_root>(new player(std::move(id)));
                            }),
               invalid_argument_error);
  registry.add("wrong", [](std::string id) {
    return std::unique_ptr<aggregate_root>(new player(std::move(id)));
  });
  EXPECT_THROW(registry.create("wrong", "w1"), invalid_argument_error);  // made a "player"
}

class repository_test : public eventsourced_test::storage_test {};

TEST_P(repository_test, round_trip_replays_the_saved_events) {
  auto s = open_store();
  repository repo(*s);
  auto p = repo.load<player>("p1");
  EXPECT_EQ(p->version(), 0);
  p->earn(10);
  p->earn(5);
  p->spend(7);
  auto result = repo.save(*p);
  ASSERT_EQ(result.events.size(), 3u);
  EXPECT_EQ(result.events[0].stream, (eventsourced::stream_ref{"player", "p1"}));
  EXPECT_EQ(result.events[0].stream_version, 1);
  EXPECT_EQ(result.events[2].stream_version, 3);
  EXPECT_TRUE(p->uncommitted().empty());
  EXPECT_EQ(p->committed_version(), 3);

  auto again = repo.load<player>("p1");
  EXPECT_EQ(again->gold(), 8);
  EXPECT_EQ(again->version(), 3);

  p->earn(2);  // a second save from the same object continues the stream
  repo.save(*p);
  auto third = open_store();  // another process
  auto reloaded = repository(*third).load<player>("p1");
  EXPECT_EQ(reloaded->gold(), 10);
  EXPECT_EQ(reloaded->version(), 4);
}

TEST_P(repository_test, saving_nothing_commits_nothing) {
  auto s = open_store();
  repository repo(*s);
  auto p = repo.load<player>("p1");
  EXPECT_TRUE(repo.save(*p).events.empty());
  EXPECT_TRUE(s->engine().read_all(0, 10).empty());
}

TEST_P(repository_test, loads_in_pages) {
  auto s = open_store();
  repository repo(*s, {.page_size = 2});
  auto p = repo.load<player>("p1");
  for (int i = 1; i <= 5; ++i) p->earn(i);
  repo.save(*p);
  auto again = repo.load<player>("p1");
  EXPECT_EQ(again->gold(), 15);
  EXPECT_EQ(again->version(), 5);
  EXPECT_THROW(repository(*s, {.page_size = 0}), invalid_argument_error);
}

TEST_P(repository_test, loads_through_the_registry) {
  auto s = open_store();
  repository repo(*s);
  auto p = repo.load<player>("p1");
  p->earn(3);
  repo.save(*p);
  aggregate_registry registry;
  registry.add<player>("player");
  auto loaded = repo.load(registry, "player", "p1");
  EXPECT_EQ(loaded->version(), 1);
  EXPECT_EQ(dynamic_cast<player&>(*loaded).gold(), 3);
  EXPECT_THROW(repo.load(registry, "guild", "g1"), invalid_argument_error);
}

TEST_P(repository_test, save_adds_metadata_members_the_events_do_not_set) {
  auto s = open_store();
  repository repo(*s);
  auto p = repo.load<player>("p1");
  p->earn(1);
  auto c = eventsourced::make_command("Earn", "p1", json::object());
  auto result = repo.save(*p, eventsourced::causation_metadata(c));
  ASSERT_EQ(result.events.size(), 1u);
  EXPECT_EQ(eventsourced::causation_id(result.events[0]), c.id);
  EXPECT_EQ(eventsourced::correlation_id(result.events[0]), c.id);
  p->earn(1);
  EXPECT_THROW(repo.save(*p, json::array()), invalid_argument_error);
  EXPECT_EQ(p->uncommitted().size(), 1u);
}

TEST_P(repository_test, two_saves_from_one_loaded_version_give_one_conflict) {
  auto s = open_store();
  repository repo(*s);
  auto seed = repo.load<player>("p1");
  seed->earn(100);
  repo.save(*seed);

  auto a = repo.load<player>("p1");
  auto b = repository(*open_store()).load<player>("p1");
  a->spend(60);
  b->spend(70);  // both valid on their own, not together
  repo.save(*a);
  try {
    repo.save(*b);
    FAIL() << "expected conflict_error";
  } catch (const conflict_error& e) {
    EXPECT_EQ(e.target(), eventsourced::conflict_target::stream);
    EXPECT_EQ(e.collection(), "player");
    EXPECT_EQ(e.id(), "p1");
    EXPECT_EQ(e.expected_version(), 1);
    EXPECT_EQ(e.actual_version(), 2);
  }
  EXPECT_EQ(b->uncommitted().size(), 1u);  // unchanged: the caller reloads and retries
  EXPECT_EQ(b->committed_version(), 1);
  auto events = s->engine().read_stream({"player", "p1"}, 1, 100);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].type, "GoldSpent");
  EXPECT_EQ(events[1].data, json({{"amount", 60}}));  // a's event, not b's
  EXPECT_EQ(repo.load<player>("p1")->gold(), 40);
}

TEST_P(repository_test, concurrent_saves_from_one_version_one_wins_nothing_lost_or_doubled) {
  auto seed_store = open_store();
  auto store_a = open_store();
  auto store_b = open_store();
  repository repo_a(*store_a);
  repository repo_b(*store_b);
  constexpr int kRounds = 20;
  int conflicts = 0;
  std::set<std::string> saved_ids;
  for (int round = 0; round < kRounds; ++round) {
    auto a = repo_a.load<player>("p1");
    auto b = repo_b.load<player>("p1");
    ASSERT_EQ(a->version(), round);
    a->earn(1);
    b->earn(1);
    std::atomic<int> round_conflicts{0};
    std::latch start(2);
    auto run = [&](repository& repo, player& p) {
      start.arrive_and_wait();
      try {
        repo.save(p);
      } catch (const conflict_error&) {
        ++round_conflicts;
      }
    };
    std::thread ta([&] { run(repo_a, *a); });
    std::thread tb([&] { run(repo_b, *b); });
    ta.join();
    tb.join();
    EXPECT_EQ(round_conflicts.load(), 1) << "round " << round;
    conflicts += round_conflicts.load();
  }
  EXPECT_EQ(conflicts, kRounds);
  auto events = seed_store->engine().read_stream({"player", "p1"}, 1, 1000);
  ASSERT_EQ(events.size(), static_cast<std::size_t>(kRounds));
  for (std::size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].stream_version, static_cast<std::int64_t>(i + 1));
    EXPECT_TRUE(saved_ids.insert(events[i].id).second);
  }
  EXPECT_EQ(repository(*seed_store).load<player>("p1")->gold(), kRounds);
}

EVENTSOURCED_STORAGE_TEST_ENGINES(repository_test);

}  // namespace
