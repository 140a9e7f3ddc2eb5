// Projection exactly-once under kill -9. A worker process rebuilds a projection over a SQLite file
// and replays the log, in a loop; the test kills it with SIGKILL (half of the time as soon as it
// sees a rebuild under way, otherwise at a random moment), commits more events, restarts it, and
// finally lets a run finish. The read model must then equal a fresh build of the same projection
// into another collection, and match the log: every event applied exactly once, in order.
#include <signal.h>

#include <chrono>
#include <map>
#include <random>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <eventsourced/event/checkpoint.hpp>
#include <eventsourced/event/projection.hpp>
#include <eventsourced/eventsourced.hpp>

#include "support/event_workloads.hpp"
#include "support/temporary_directory.hpp"
#include "support/worker_process.hpp"

namespace eventsourced {
namespace {

using namespace std::chrono_literals;
using testing::append_events;
using testing::counting_projection;
using testing::spawn_worker;
using testing::temporary_directory;
using testing::wait_for_exit;

std::map<std::string, json> contents(engine& db, const std::string& collection) {
  std::map<std::string, json> out;
  for (auto& doc : db.find(collection, {})) {
    doc.body.erase("version");
    out[doc.id] = doc.body;
  }
  return out;
}

TEST(projection_crash_sqlite, kill_9_during_rebuild_and_replay_leaves_a_read_model_equal_to_fresh) {
  temporary_directory dir;
  const std::string uri = "sqlite:" + (dir.path() / "projection.db").string();
  auto store = open(uri);
  auto& db = store->engine();
  append_events(db, 60, 1);
  std::mt19937 rng(20261123);
  std::uniform_int_distribution<int> delay_ms(5, 150);
  constexpr int kKills = 10;
  int killed = 0, killed_mid_rebuild = 0;
  for (int round = 0; round < kKills; ++round) {
    const pid_t pid = spawn_worker({"project", uri, "counts", "counts", "rebuild-forever"});
    if (round % 2 == 0) {
      // Kill as soon as a rebuild is seen under way (it deletes in many small commits).
      for (int i = 0; i < 30'000 && !load_checkpoint(db, "counts").rebuilding; ++i) {
        std::this_thread::sleep_for(1ms);
      }
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));
    }
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    const int exit_code = wait_for_exit(pid);
    EXPECT_EQ(exit_code, -1) << "the worker stopped by itself in round " << round;
    if (exit_code == -1) ++killed;
    if (load_checkpoint(db, "counts").rebuilding) ++killed_mid_rebuild;
    append_events(db, 3, static_cast<std::uint32_t>(round + 2), 10'000 * (round + 1));
  }
  const pid_t last = spawn_worker({"project", uri, "counts", "counts", "catch-up"});
  ASSERT_EQ(wait_for_exit(last), 0) << "the resumed run did not finish";
  EXPECT_EQ(killed, kKills);
  EXPECT_GT(killed_mid_rebuild, 0) << "no kill landed inside a rebuild: the test proved less";
  ::testing::Test::RecordProperty("killed_mid_rebuild", killed_mid_rebuild);

  projection_runner fresh(store, counting_projection("fresh", "fresh_counts"));
  while (fresh.poll(0ms) > 0) {
  }
  const auto resumed = contents(db, "counts");
  ASSERT_FALSE(resumed.empty());
  EXPECT_EQ(resumed, contents(db, "fresh_counts"));

  const auto log = db.read_all(0, 1'000'000);
  std::int64_t sum = 0;
  for (const auto& e : log) sum += e.data.value("n", std::int64_t{0});
  const auto& totals = resumed.at("totals");
  EXPECT_EQ(totals["events"], static_cast<std::int64_t>(log.size()));
  EXPECT_EQ(totals["sum"], sum);
  EXPECT_EQ(totals["errors"], 0);
  EXPECT_EQ(load_checkpoint(db, "counts").position, log.back().position);
  EXPECT_FALSE(load_checkpoint(db, "counts").rebuilding);
  store->close();
}

}  // namespace
}  // namespace eventsourced
