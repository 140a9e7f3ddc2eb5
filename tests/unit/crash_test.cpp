// Invariant 2 (DESIGN.md): a write and its events are one commit, even under kill -9 at any
// instant. A worker process commits, in a loop, a version-checked write of one document together
// with one event of its stream at the same version; the test kills it with SIGKILL at random
// moments, restarts it, and checks after every kill that the file holds exactly as many events as
// the document has versions, each event where its write says.
#include <signal.h>

#include <chrono>
#include <random>
#include <string>
#include <thread>

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

TEST(crash_sqlite, kill_9_never_separates_a_write_from_its_events) {
  temporary_directory dir;
  const std::string uri = "sqlite:" + (dir.path() / "crash.db").string() + "?synchronous=full";
  std::mt19937 rng(20261121);
  std::uniform_int_distribution<int> delay_ms(20, 150);
  std::int64_t previous = 0;
  int kills_mid_run = 0;
  for (int round = 0; round < 8; ++round) {
    const pid_t pid = spawn_worker({"commit-forever", uri, "c"});
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    const int exit_code = wait_for_exit(pid);
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
    const pid_t pid = spawn_worker({"store-write-forever", uri, std::to_string(round)});
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    const int exit_code = wait_for_exit(pid);
    EXPECT_EQ(exit_code, -1) << "the worker exited by itself in round " << round;
    if (exit_code == -1) ++kills_mid_run;
    const std::size_t events = check_every_version_has_exactly_its_event(uri);
    EXPECT_GE(events, previous) << "a committed event disappeared";
    previous = events;
    if (::testing::Test::HasFailure()) break;
  }
  EXPECT_EQ(kills_mid_run, kRounds);
  EXPECT_GT(previous, 100u) << "the worker barely committed: the test proved little";
}

}  // namespace
}  // namespace eventsourced
