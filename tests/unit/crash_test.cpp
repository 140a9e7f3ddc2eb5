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

}  // namespace
}  // namespace eventsourced
