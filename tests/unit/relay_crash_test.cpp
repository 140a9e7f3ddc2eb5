// The outbox relay under kill -9. A worker process runs a relay over a SQLite file, publishing to
// a synchronous in-memory bus whose handler appends each delivered event to a delivery file; the
// test kills it with SIGKILL at random moments, commits more events, restarts it, and finally
// lets one run finish. Then, from the delivery file and the log:
//   - every event was delivered at least once;
//   - each run delivered exactly the log's events after the checkpoint it started from, in log
//     order (so per-stream order), up to where it was killed: nothing skipped or reordered;
//   - the checkpoint only moved forward and never past what had been delivered, so duplicates
//     are only events after the last saved checkpoint.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <eventsourced/event/checkpoint.hpp>
#include <eventsourced/eventsourced.hpp>

#include "support/event_workloads.hpp"
#include "support/temporary_directory.hpp"
#include "support/worker_process.hpp"

namespace eventsourced {
namespace {

using testing::append_events;
using testing::head_position;
using testing::spawn_worker;
using testing::temporary_directory;
using testing::wait_for_exit;

struct delivery {
  std::int64_t position = 0;
  std::string stream;
  std::int64_t stream_version = 0;
  std::string id;
};

struct run {
  std::int64_t start_checkpoint = 0;
  std::vector<delivery> deliveries;
};

// Parses the delivery file (format: event_workloads.hpp). A last line without its newline is a
// torn write of a killed process and is ignored.
std::vector<run> read_runs(const std::string& path) {
  std::ifstream in(path);
  std::stringstream all;
  all << in.rdbuf();
  std::string text = all.str();
  if (const auto end = text.rfind('\n'); end != std::string::npos) text.resize(end + 1);
  std::vector<run> runs;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream fields(line);
    std::string kind;
    fields >> kind;
    if (kind == "start") {
      runs.emplace_back();
      fields >> runs.back().start_checkpoint;
    } else {
      EXPECT_EQ(kind, "d") << line;
      EXPECT_FALSE(runs.empty()) << "a delivery before any start line";
      if (runs.empty()) continue;
      delivery d;
      std::string type, id;
      fields >> d.position >> type >> id >> d.stream_version >> d.id;
      d.stream = type + "/" + id;
      runs.back().deliveries.push_back(d);
    }
  }
  return runs;
}

std::uintmax_t file_size(const std::string& path) {
  std::error_code ignored;
  const auto size = std::filesystem::file_size(path, ignored);
  return ignored ? 0 : size;
}

TEST(relay_crash_sqlite, kill_9_mid_stream_loses_nothing_and_duplicates_only_after_the_checkpoint) {
  temporary_directory dir;
  const std::string uri = "sqlite:" + (dir.path() / "relay.db").string();
  const std::string deliveries = (dir.path() / "delivered.txt").string();
  auto db = open_engine(uri);
  append_events(*db, 150, 1);
  std::mt19937 rng(20261122);
  std::uniform_int_distribution<int> delay_ms(0, 40);
  constexpr int kKills = 16;
  int killed = 0;
  for (int round = 0; round < kKills; ++round) {
    const auto size_before = file_size(deliveries);
    const pid_t pid =
        spawn_worker({"relay", uri, "outbox", deliveries, std::to_string(std::int64_t{1} << 60)});
    // Commits go on while the relay runs, so that it is streaming, not idle, when killed.
    std::atomic<bool> writing{true};
    std::thread writer([&, round] {
      for (int i = 0; writing; ++i) {
        append_events(*db, 1, static_cast<std::uint32_t>(round * 100'000 + i),
                      100'000 * (round + 1) + 10 * i);
      }
    });
    // Kill mid-stream: once this run has delivered something, at a random moment after that.
    for (int i = 0; i < 30'000 && file_size(deliveries) <= size_before + 64; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    writing = false;
    writer.join();
    const int exit_code = wait_for_exit(pid);
    EXPECT_EQ(exit_code, -1) << "the worker stopped by itself in round " << round;
    if (exit_code == -1) ++killed;
  }
  const std::int64_t head = head_position(*db);
  const pid_t last = spawn_worker({"relay", uri, "outbox", deliveries, std::to_string(head)});
  ASSERT_EQ(wait_for_exit(last), 0) << "the last run did not finish";
  EXPECT_EQ(killed, kKills);

  const auto log = db->read_all(0, 1'000'000);
  std::map<std::int64_t, const recorded_event*> by_position;
  for (const auto& e : log) by_position[e.position] = &e;
  const auto runs = read_runs(deliveries);
  ASSERT_EQ(runs.size(), static_cast<std::size_t>(kKills + 1));

  std::set<std::string> delivered_ids;
  std::int64_t delivered_up_to = 0;  // highest position delivered by earlier runs
  std::int64_t previous_checkpoint = 0;
  std::size_t duplicates = 0;
  for (std::size_t r = 0; r < runs.size(); ++r) {
    const run& current = runs[r];
    EXPECT_GE(current.start_checkpoint, previous_checkpoint) << "the checkpoint moved back";
    EXPECT_LE(current.start_checkpoint, delivered_up_to)
        << "run " << r << " started after events that were never delivered";
    // Exactly the log after the checkpoint, in order, as far as the run got.
    auto expected = by_position.upper_bound(current.start_checkpoint);
    std::map<std::string, std::int64_t> stream_versions;
    for (const delivery& d : current.deliveries) {
      ASSERT_NE(expected, by_position.end()) << "run " << r << " delivered past the log";
      EXPECT_EQ(d.position, expected->first) << "run " << r << " skipped or reordered";
      EXPECT_EQ(d.id, expected->second->id);
      if (auto it = stream_versions.find(d.stream); it != stream_versions.end()) {
        EXPECT_EQ(d.stream_version, it->second + 1) << "stream order broken in " << d.stream;
      }
      stream_versions[d.stream] = d.stream_version;
      if (!delivered_ids.insert(d.id).second) {
        ++duplicates;
        EXPECT_GT(d.position, current.start_checkpoint);
      }
      delivered_up_to = std::max(delivered_up_to, d.position);
      ++expected;
    }
    previous_checkpoint = current.start_checkpoint;
  }
  EXPECT_EQ(delivered_ids.size(), log.size()) << "an event was never delivered";
  EXPECT_EQ(load_checkpoint(*db, "outbox").position, head);
  // Not an assertion (the kill moments are random), but the figure shows what was exercised.
  ::testing::Test::RecordProperty("duplicates", static_cast<int>(duplicates));
  ::testing::Test::RecordProperty("events", static_cast<int>(log.size()));
  db->close();
}

}  // namespace
}  // namespace eventsourced
