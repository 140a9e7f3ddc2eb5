// Commands under kill -9: a worker process dispatches the commands "cmd-0", "cmd-1", ... through
// idempotent aggregate handlers on a SQLite file and is killed at random moments while it records
// new ones. Every restart dispatches again from cmd-0, so each earlier command must come back as a
// duplicate. The command record and the events it caused share one commit, so afterwards: every
// recorded command has exactly its events (caused by it, as many as its record says), every event
// belongs to a recorded command, and the heroes' gold equals the number of gold commands — a
// command executed twice, or recorded without its events, breaks one of these.
#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <cstdint>
#include <iostream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <eventsourced/eventsourced.hpp>

#include "support/temporary_directory.hpp"
#include "support/worker_process.hpp"
#include "unit/cqrs_test_support.hpp"

namespace {

using eventsourced::kCommandsCollection;
using eventsourced::testing::spawn_worker;
using eventsourced::testing::wait_for_exit;

std::int64_t head_position(eventsourced::engine& db) {
  std::int64_t head = 0;
  for (auto page = db.read_all(0, 4096); !page.empty(); page = db.read_all(head, 4096)) {
    head = page.back().position;
  }
  return head;
}

TEST(command_crash_sqlite,
     kill_9_never_executes_a_command_twice_or_records_one_without_its_events) {
  eventsourced::testing::temporary_directory dir;
  const std::string uri = "sqlite:" + (dir.path() / "commands.db").string();
  auto db = eventsourced::open_engine(uri);
  std::mt19937 rng(20261122);
  std::uniform_int_distribution<int> delay_ms(0, 30);
  constexpr int kKills = 10;
  int killed = 0;
  for (int round = 0; round < kKills; ++round) {
    const std::int64_t head_before = head_position(*db);
    const pid_t pid = spawn_worker({"commands", uri, "0", std::to_string(std::int64_t{1} << 40)});
    // Kill while new commands are being recorded: once the log has grown, at a random moment.
    for (int i = 0; i < 30'000 && head_position(*db) <= head_before + 5; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    const int exit_code = wait_for_exit(pid);
    EXPECT_EQ(exit_code, -1) << "the worker stopped by itself in round " << round;
    if (exit_code == -1) ++killed;
  }
  EXPECT_EQ(killed, kKills);
  // A last run past what was recorded, to completion.
  const std::size_t recorded_before = db->find(kCommandsCollection, {}).size();
  const std::int64_t total = static_cast<std::int64_t>(recorded_before) + 30;
  // Not an assertion (the kill moments are random), but the figure shows what was exercised.
  std::cout << "commands recorded across " << kKills << " killed runs: " << recorded_before << "\n";
  ASSERT_EQ(wait_for_exit(spawn_worker({"commands", uri, "0", std::to_string(total)})), 0);

  const auto records = db->find(kCommandsCollection, {});
  ASSERT_EQ(records.size(), static_cast<std::size_t>(total)) << "every command recorded once";
  std::map<std::string, std::int64_t> expected_events;  // command id -> events its record names
  std::int64_t expected_gold = 0;
  for (std::int64_t n = 0; n < total; ++n) {
    const std::string id = "cmd-" + std::to_string(n);
    auto record = db->get(kCommandsCollection, id);
    ASSERT_TRUE(record) << id;
    expected_events[id] = record->body.at("version").get<std::int64_t>() -
                          record->body.at("from_version").get<std::int64_t>() + 1;
    if (n % 3 != 0) {
      ASSERT_EQ(expected_events[id], 1) << id;
      ++expected_gold;
    } else {
      ASSERT_GE(expected_events[id], 1) << id;
    }
  }
  std::map<std::string, std::int64_t> seen;
  for (const auto& e : db->read_all(0, 10'000'000)) {
    const auto cause = eventsourced::causation_id(e);
    ASSERT_TRUE(cause.has_value()) << "event " << e.id << " has no causing command";
    ASSERT_TRUE(expected_events.count(*cause)) << "event of an unrecorded command " << *cause;
    ++seen[*cause];
  }
  EXPECT_EQ(seen, expected_events) << "each command's events exactly once";
  eventsourced::repository repo(*db);
  std::int64_t gold = 0;
  for (int h = 0; h < 5; ++h) {
    auto hero = repo.load<eventsourced_test::hero>("h" + std::to_string(h));
    gold += hero->gold();
    // The snapshot the worker took agrees with a full replay.
    eventsourced::repository snapshotting(*db,
                                          eventsourced::repository_options{.snapshot_every = 10});
    EXPECT_EQ(snapshotting.load<eventsourced_test::hero>(hero->id())->state(), hero->state());
  }
  EXPECT_EQ(gold, expected_gold);
}

// Several processes at once on one SQLite file: three with distinct command ranges on the same
// five heroes (conflicts, retried), and for each range a second process sending the very same
// commands at the same time (racing duplicates across processes). Every command executes once.
TEST(command_processes_sqlite, concurrent_processes_execute_every_command_exactly_once) {
  eventsourced::testing::temporary_directory dir;
  const std::string uri = "sqlite:" + (dir.path() / "commands.db").string();
  auto db = eventsourced::open_engine(uri);
  constexpr std::int64_t kPerRange = 150;
  std::vector<pid_t> workers;
  for (int copy = 0; copy < 2; ++copy) {
    for (std::int64_t range = 0; range < 3; ++range) {
      workers.push_back(spawn_worker(
          {"commands", uri, std::to_string(range * 10'000), std::to_string(kPerRange)}));
    }
  }
  for (pid_t pid : workers) EXPECT_EQ(wait_for_exit(pid), 0);
  const auto records = db->find(kCommandsCollection, {});
  ASSERT_EQ(records.size(), static_cast<std::size_t>(3 * kPerRange));
  std::map<std::string, std::int64_t> expected_events;
  std::int64_t expected_gold = 0;
  for (const auto& record : records) {
    expected_events[record.id] = record.body.at("version").get<std::int64_t>() -
                                 record.body.at("from_version").get<std::int64_t>() + 1;
    const std::int64_t n = std::stoll(record.id.substr(4));
    if (n % 3 != 0) ++expected_gold;
  }
  std::map<std::string, std::int64_t> seen;
  for (const auto& e : db->read_all(0, 10'000'000)) {
    ++seen[eventsourced::causation_id(e).value_or("(none)")];
  }
  EXPECT_EQ(seen, expected_events) << "each command's events exactly once";
  eventsourced::repository repo(*db, eventsourced::repository_options{.cache_capacity = 0});
  std::int64_t gold = 0;
  for (int h = 0; h < 5; ++h)
    gold += repo.load<eventsourced_test::hero>("h" + std::to_string(h))->gold();
  EXPECT_EQ(gold, expected_gold);
}

}  // namespace
