// Invariant 2 (DESIGN.md): a write and its events are one commit, even under kill -9 at any
// instant. A worker process commits, in a loop, a version-checked write of one document together
// with one event of its stream at the same version; the test kills it with SIGKILL at random
// moments, restarts it, and checks after every kill that the file holds exactly as many events as
// the document has versions, each event where its write says. Each round's random delay starts
// once the worker reports it is running (a ready file), so a slow start on a loaded machine or in
// a sanitizer build cannot use up the delay.
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <eventsourced/eventsourced.hpp>

#include "support/temporary_directory.hpp"
#include "support/worker_process.hpp"

namespace eventsourced {
namespace {

using testing::spawn_worker;
using testing::temporary_directory;
using testing::wait_for_exit;

// Opens the file the way the worker does and checks the pairing; returns the document's version.
std::int64_t check_writes_and_events_are_paired(const std::string& uri) {
  auto db = open_engine(uri);
  const auto doc = db->get("counters", "c");
  const std::int64_t version = doc ? doc->version : 0;
  if (doc) {
    EXPECT_EQ(doc->body["n"], version) << "the body is the one written at its version";
  }
  const auto events = db->read_stream({"counter", "c"}, 1, 1'000'000);
  EXPECT_EQ(static_cast<std::int64_t>(events.size()), version)
      << "every committed write has its event and no event outlived its write";
  for (std::size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].stream_version, static_cast<std::int64_t>(i) + 1);
    EXPECT_EQ(events[i].data["n"], static_cast<std::int64_t>(i) + 1);
  }
  const auto all = db->read_all(0, 1'000'000);
  EXPECT_EQ(all.size(), events.size());
  for (std::size_t i = 1; i < all.size(); ++i) EXPECT_LT(all[i - 1].position, all[i].position);
  db->close();
  return version;
}

// Waits until the worker has created ready_file (true), or it stopped or 120 s passed (false).
bool wait_until_ready(pid_t pid, const std::filesystem::path& ready_file) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!std::filesystem::exists(ready_file)) {
    if (std::chrono::steady_clock::now() > deadline || ::kill(pid, 0) != 0) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// Starts a worker and kills it with SIGKILL delay after it reported ready; returns its exit code
// (-1: killed by the signal).
int run_and_kill(std::vector<std::string> args, const std::filesystem::path& ready_file,
                 std::chrono::milliseconds delay) {
  std::filesystem::remove(ready_file);
  args.push_back(ready_file.string());
  const pid_t pid = spawn_worker(args);
  EXPECT_TRUE(wait_until_ready(pid, ready_file)) << "the worker did not start";
  std::this_thread::sleep_for(delay);
  EXPECT_EQ(::kill(pid, SIGKILL), 0);
  return wait_for_exit(pid);
}

TEST(crash_sqlite, kill_9_never_separates_a_write_from_its_events) {
  temporary_directory dir;
  const std::string uri = "sqlite:" + (dir.path() / "crash.db").string() + "?synchronous=full";
  std::mt19937 rng(20261121);
  std::uniform_int_distribution<int> delay_ms(20, 150);
  std::int64_t previous = 0;
  int kills_mid_run = 0;
  for (int round = 0; round < 8; ++round) {
    const int exit_code = run_and_kill({"commit-forever", uri, "c"}, dir.path() / "ready",
                                       std::chrono::milliseconds(delay_ms(rng)));
    // -1: killed by the signal, the point of the test; anything else means the worker stopped
    // on its own (an error it printed to stderr) before it could be killed.
    EXPECT_EQ(exit_code, -1) << "the worker exited by itself in round " << round;
    if (exit_code == -1) ++kills_mid_run;
    const std::int64_t version = check_writes_and_events_are_paired(uri);
    EXPECT_GE(version, previous) << "a committed write disappeared";
    previous = version;
  }
  EXPECT_EQ(kills_mid_run, 8);
  EXPECT_GT(previous, 0) << "the worker never committed: the test proved nothing";
}

// The store-level check: for each document the worker writes, the events of its stream are one
// per version, consecutive, each naming its version, and their JSON patches applied in order give
// exactly the stored document (null when deleted). Returns the number of events in the log.
std::size_t check_every_version_has_exactly_its_event(const std::string& uri) {
  auto db = open_engine(uri);
  std::size_t total = 0;
  for (int d = 0; d < 5; ++d) {
    const std::string id = "d" + std::to_string(d);
    SCOPED_TRACE(id);
    const auto doc = db->get("docs", id);
    const auto events = db->read_stream({"docs", id}, 1, 1'000'000);
    total += events.size();
    json rebuilt;  // null: does not exist
    for (std::size_t i = 0; i < events.size(); ++i) {
      const auto version = static_cast<std::int64_t>(i) + 1;
      EXPECT_EQ(events[i].stream_version, version);
      EXPECT_EQ(events[i].data["version"], version) << "a version without its event, or two";
      EXPECT_EQ(events[i].metadata["document"]["version"], version);
      rebuilt = rebuilt.patch(events[i].data["json_patch"]);
    }
    if (doc) {
      EXPECT_EQ(doc->version, static_cast<std::int64_t>(events.size()))
          << "the live document's version has no event, or an event outlived its write";
      EXPECT_EQ(rebuilt, doc->body) << "the events do not describe the stored document";
    } else {
      EXPECT_TRUE(rebuilt.is_null()) << "a deleted document's events do not end in its deletion";
      if (!events.empty()) {
        EXPECT_EQ(events.back().type, "docs.deleted");
      }
    }
  }
  const auto all = db->read_all(0, 1'000'000);
  EXPECT_EQ(all.size(), total) << "events outside the documents' streams";
  for (std::size_t i = 1; i < all.size(); ++i) EXPECT_LT(all[i - 1].position, all[i].position);
  db->close();
  return total;
}

TEST(crash_sqlite, kill_9_never_separates_a_store_write_from_its_mapped_events) {
  temporary_directory dir;
  const std::string uri = "sqlite:" + (dir.path() / "store.db").string() + "?synchronous=full";
  std::mt19937 rng(20261122);
  std::uniform_int_distribution<int> delay_ms(10, 80);
  constexpr int kRounds = 50;
  std::size_t previous = 0;
  int kills_mid_run = 0;
  for (int round = 0; round < kRounds; ++round) {
    const int exit_code =
        run_and_kill({"store-write-forever", uri, std::to_string(round)}, dir.path() / "ready",
                     std::chrono::milliseconds(delay_ms(rng)));
    EXPECT_EQ(exit_code, -1) << "the worker exited by itself in round " << round;
    if (exit_code == -1) ++kills_mid_run;
    const std::size_t events = check_every_version_has_exactly_its_event(uri);
    EXPECT_GE(events, previous) << "a committed event disappeared";
    previous = events;
    if (::testing::Test::HasFailure()) break;
  }
  EXPECT_EQ(kills_mid_run, kRounds);
  EXPECT_GT(previous, static_cast<std::size_t>(kRounds))
      << "the worker barely committed: the test proved little";
}

}  // namespace
}  // namespace eventsourced
