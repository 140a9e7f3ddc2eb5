// Commands through aggregate handlers on both engines: idempotency by command id (sequential and
// racing duplicates, several store objects on one database), two commands on one aggregate at
// once (one conflict, or retries when asked; never a lost or doubled event), and bad input
// (unknown command type, a payload that does not convert, a throwing handler, an aggregate type
// nobody registered, an invalid command id) changing nothing.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <latch>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <eventsourced/eventsourced.hpp>

#include "cqrs_test_support.hpp"
#include "storage_test_support.hpp"

namespace {

using eventsourced::aggregate_handler;
using eventsourced::aggregate_handler_options;
using eventsourced::command;
using eventsourced::command_result;
using eventsourced::conflict_error;
using eventsourced::dispatcher;
using eventsourced::invalid_argument_error;
using eventsourced::json;
using eventsourced::kCommandsCollection;
using eventsourced::make_command;
using eventsourced::repository;
using eventsourced::retry_options;
using eventsourced_test::hero;

class command_idempotency_test : public eventsourced_test::storage_test {
 protected:
  std::vector<eventsourced::recorded_event> all_events(eventsourced::store& s) {
    return s.engine().read_all(0, 100000);
  }
};

std::vector<std::string> ids_of(const std::vector<eventsourced::recorded_event>& events) {
  std::vector<std::string> ids;
  for (const auto& e : events) ids.push_back(e.id);
  return ids;
}

TEST_P(command_idempotency_test, the_same_command_id_twice_executes_once) {
  auto s = open_store();
  repository repo(*s);
  dispatcher d;
  std::atomic<int> runs{0};
  d.register_handler("GainExperience",
                     aggregate_handler<hero>(repo, [&](hero& h, const command& c) {
                       ++runs;
                       h.gain(c.payload.at("amount").get<std::int64_t>());
                     }));
  const command c = make_command("GainExperience", "h1", {{"amount", 250}});
  command_result first = d.dispatch(c);
  EXPECT_FALSE(first.duplicate);
  EXPECT_EQ(first.command_id, c.id);
  EXPECT_EQ(first.aggregate, (eventsourced::stream_ref{"hero", "h1"}));
  ASSERT_EQ(first.events.size(), 3u);  // experience, level 2, level 3
  EXPECT_EQ(first.version, 3);
  EXPECT_EQ(eventsourced::causation_id(first.events[0]), c.id);

  command_result second = d.dispatch(c);
  EXPECT_TRUE(second.duplicate);
  EXPECT_EQ(runs.load(), 1) << "a recorded command is not executed again";
  EXPECT_EQ(second.version, 3);
  EXPECT_EQ(ids_of(second.events), ids_of(first.events)) << "the earlier outcome, read back";
  EXPECT_EQ(all_events(*s).size(), 3u);
  EXPECT_EQ(repo.load<hero>("h1")->level(), 3);

  // A different command id is a new command.
  command again = c;
  again.id = eventsourced::make_event_id();
  EXPECT_FALSE(d.dispatch(again).duplicate);
  EXPECT_EQ(all_events(*s).size(), 7u);  // 500 experience: one event and levels 4, 5 and 6
}

TEST_P(command_idempotency_test, a_command_that_raises_nothing_is_recorded_too) {
  auto s = open_store();
  repository repo(*s);
  auto h = repo.load<hero>("h1");
  const command c = make_command("Inspect", "h1");
  command_result r = repo.save(*h, c);  // nothing uncommitted
  EXPECT_FALSE(r.duplicate);
  EXPECT_TRUE(r.events.empty());
  EXPECT_TRUE(s->engine().get(kCommandsCollection, c.id).has_value());
  command_result dup = repo.save(*h, c);
  EXPECT_TRUE(dup.duplicate);
  EXPECT_TRUE(dup.events.empty());
  EXPECT_EQ(dup.version, 0);
  ASSERT_TRUE(repo.find_command(c.id));
  EXPECT_FALSE(repo.find_command("never-seen"));
}

TEST_P(command_idempotency_test, a_duplicate_save_writes_nothing_even_from_a_stale_aggregate) {
  auto s = open_store();
  repository repo(*s);
  const command c = make_command("EarnGold", "h1", {{"amount", 5}});
  auto a = repo.load<hero>("h1");
  auto b = repo.load<hero>("h1");
  a->earn(5);
  b->earn(5);
  EXPECT_FALSE(repo.save(*a, c).duplicate);
  command_result dup = repo.save(*b, c);  // the stream moved AND the command is recorded
  EXPECT_TRUE(dup.duplicate);
  EXPECT_EQ(all_events(*s).size(), 1u);
  EXPECT_EQ(b->uncommitted().size(), 1u) << "the duplicate's aggregate is left as it was";
  // A stale save of a different command is a plain conflict.
  EXPECT_THROW(repo.save(*b, make_command("EarnGold", "h1", {{"amount", 5}})), conflict_error);
  EXPECT_EQ(all_events(*s).size(), 1u);
}

TEST_P(command_idempotency_test, racing_duplicates_of_one_command_execute_once) {
  constexpr int kThreads = 4;
  constexpr int kRounds = 25;
  std::vector<std::shared_ptr<eventsourced::store>> stores;
  std::vector<std::unique_ptr<repository>> repos;
  std::vector<std::unique_ptr<dispatcher>> dispatchers;
  for (int t = 0; t < kThreads; ++t) {
    stores.push_back(open_store());
    repos.push_back(std::make_unique<repository>(*stores.back()));
    dispatchers.push_back(std::make_unique<dispatcher>());
    eventsourced_test::register_hero_commands(
        *dispatchers.back(), *repos.back(),
        aggregate_handler_options{.retry = retry_options{.max_attempts = 1000}});
  }
  for (int round = 0; round < kRounds; ++round) {
    const command c = make_command("EarnGold", "h" + std::to_string(round % 3), {{"amount", 1}});
    std::vector<command_result> results(kThreads);
    std::latch start(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        start.arrive_and_wait();
        results[static_cast<std::size_t>(t)] =
            dispatchers[static_cast<std::size_t>(t)]->dispatch(c);
      });
    }
    for (auto& t : threads) t.join();
    int executed = 0;
    for (const auto& r : results) {
      if (!r.duplicate) ++executed;
      ASSERT_EQ(r.events.size(), 1u);
      EXPECT_EQ(r.events[0].id, results[0].events[0].id) << "every caller sees the same outcome";
    }
    EXPECT_EQ(executed, 1) << "round " << round;
  }
  auto events = all_events(*stores[0]);
  EXPECT_EQ(events.size(), static_cast<std::size_t>(kRounds));
  std::int64_t gold = 0;
  for (int h = 0; h < 3; ++h) gold += repos[0]->load<hero>("h" + std::to_string(h))->gold();
  EXPECT_EQ(gold, kRounds);
}

TEST_P(command_idempotency_test, two_commands_on_one_aggregate_at_once_give_one_conflict) {
  auto store_a = open_store();
  auto store_b = open_store();
  repository repo_a(*store_a);
  repository repo_b(*store_b);
  // Handlers that wait for each other after loading, so both load the same version.
  constexpr int kRounds = 10;
  for (int round = 0; round < kRounds; ++round) {
    std::latch loaded(2);
    auto handler = [&](hero& h, const command& c) {
      loaded.arrive_and_wait();
      h.earn(c.payload.at("amount").get<std::int64_t>());
    };
    dispatcher da;
    dispatcher db;
    da.register_handler("EarnGold", aggregate_handler<hero>(repo_a, handler));
    db.register_handler("EarnGold", aggregate_handler<hero>(repo_b, handler));
    std::atomic<int> conflicts{0};
    auto run = [&](dispatcher& d, std::int64_t amount) {
      try {
        d.dispatch(make_command("EarnGold", "h1", {{"amount", amount}}));
      } catch (const conflict_error& e) {
        EXPECT_EQ(e.target(), eventsourced::conflict_target::stream);
        ++conflicts;
      }
    };
    std::thread ta([&] { run(da, 1); });
    std::thread tb([&] { run(db, 100); });
    ta.join();
    tb.join();
    EXPECT_EQ(conflicts.load(), 1) << "round " << round;
  }
  auto events = all_events(*store_a);
  ASSERT_EQ(events.size(), static_cast<std::size_t>(kRounds));
  std::set<std::string> causes;
  for (const auto& e : events) causes.insert(eventsourced::causation_id(e).value_or(""));
  EXPECT_EQ(causes.size(), events.size()) << "one event per successful command";
  EXPECT_EQ(static_cast<std::int64_t>(events.size()), repo_a.load<hero>("h1")->version());
}

TEST_P(command_idempotency_test, concurrent_commands_with_retries_lose_and_double_nothing) {
  constexpr int kThreads = 4;
  const int per_thread = on_sqlite() ? 40 : 150;
  std::vector<std::shared_ptr<eventsourced::store>> stores;
  std::vector<std::unique_ptr<repository>> repos;
  std::vector<std::unique_ptr<dispatcher>> dispatchers;
  for (int t = 0; t < kThreads; ++t) {
    stores.push_back(open_store());
    repos.push_back(std::make_unique<repository>(
        *stores.back(), eventsourced::repository_options{.snapshot_every = 7}));
    dispatchers.push_back(std::make_unique<dispatcher>());
    eventsourced_test::register_hero_commands(
        *dispatchers.back(), *repos.back(),
        aggregate_handler_options{.retry = retry_options{.max_attempts = 100000}});
  }
  std::vector<std::thread> threads;
  std::latch start(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int i = 0; i < per_thread; ++i) {
        dispatchers[static_cast<std::size_t>(t)]->dispatch(
            make_command("EarnGold", "h" + std::to_string(i % 2), {{"amount", t + 1}}));
      }
    });
  }
  for (auto& t : threads) t.join();
  const std::int64_t expected_gold = per_thread * (1 + 2 + 3 + 4);
  auto h0 = repos[0]->load<hero>("h0");
  auto h1 = repos[0]->load<hero>("h1");
  EXPECT_EQ(h0->gold() + h1->gold(), expected_gold);
  EXPECT_EQ(h0->version() + h1->version(), kThreads * per_thread);
  EXPECT_EQ(all_events(*stores[0]).size(), static_cast<std::size_t>(kThreads * per_thread));
  // The snapshot-based load agrees with a plain replay.
  EXPECT_EQ(repository(*stores[0]).load<hero>("h0")->state(), h0->state());
}

TEST_P(command_idempotency_test, bad_commands_change_nothing) {
  auto s = open_store();
  repository repo(*s);
  dispatcher d;
  eventsourced_test::register_hero_commands(d, repo);
  d.register_handler("Explode", aggregate_handler<hero>(repo, [](hero& h, const command&) {
                       h.earn(1);
                       throw std::runtime_error("handler failed after raising");
                     }));
  // Unknown command type.
  EXPECT_THROW(d.dispatch(make_command("Teleport", "h1")), invalid_argument_error);
  // A payload that does not convert.
  EXPECT_THROW(d.dispatch(make_command("EarnGold", "h1", {{"amount", "lots"}})),
               eventsourced::serialization_error);
  EXPECT_THROW(d.dispatch(make_command("EarnGold", "h1")), eventsourced::serialization_error);
  // A domain error and a handler that throws after raising.
  EXPECT_THROW(d.dispatch(make_command("SpendGold", "h1", {{"amount", 5}})),
               eventsourced_test::not_enough_gold);
  const command exploding = make_command("Explode", "h1");
  EXPECT_THROW(d.dispatch(exploding), std::runtime_error);
  // An invalid aggregate id and an invalid command id.
  EXPECT_THROW(d.dispatch(make_command("EarnGold", "", {{"amount", 1}})), invalid_argument_error);
  command no_id = make_command("EarnGold", "h1", {{"amount", 1}});
  no_id.id.clear();
  EXPECT_THROW(d.dispatch(no_id), invalid_argument_error);
  // An aggregate type nobody registered.
  eventsourced::aggregate_registry registry;
  EXPECT_THROW(repo.load(registry, "dragon", "d1"), invalid_argument_error);

  EXPECT_TRUE(all_events(*s).empty());
  EXPECT_TRUE(s->engine().find(kCommandsCollection, {}).empty())
      << "failed commands are not recorded";
  // A command that failed may be dispatched again with the same id (it was not recorded).
  EXPECT_THROW(d.dispatch(exploding), std::runtime_error);
}

TEST_P(command_idempotency_test, a_handler_that_is_not_idempotent_records_nothing_and_reruns) {
  auto s = open_store();
  repository repo(*s);
  dispatcher d;
  d.register_handler("EarnGold", aggregate_handler<hero>(
                                     repo,
                                     [](hero& h, const command& c) {
                                       h.earn(c.payload.at("amount").get<std::int64_t>());
                                     },
                                     aggregate_handler_options{.idempotent = false}));
  const command c = make_command("EarnGold", "h1", {{"amount", 5}}, {{"client_id", "c1"}});
  command_result first = d.dispatch(c);
  EXPECT_FALSE(first.duplicate);
  ASSERT_EQ(first.events.size(), 1u);
  EXPECT_EQ(first.version, 1);
  EXPECT_EQ(eventsourced::causation_id(first.events[0]), c.id);
  EXPECT_EQ(first.events[0].metadata.at("client_id"), "c1");
  EXPECT_FALSE(d.dispatch(c).duplicate) << "not recorded: a resend executes again";
  EXPECT_EQ(repo.load<hero>("h1")->gold(), 10);
  EXPECT_TRUE(s->engine().find(kCommandsCollection, {}).empty());
}

EVENTSOURCED_STORAGE_TEST_ENGINES(command_idempotency_test);

}  // namespace
