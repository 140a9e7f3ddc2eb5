// Client writes (event_sync_storage::apply_client_write) across processes and under kill -9:
// the mutation id makes a resend change nothing even when the sender died mid-write, and when
// several processes send the same writes at once (DESIGN.md invariants 1 and 2).
//
// Workers (tests/support/test_worker.cpp, "client-writes") append each write's mutation id to the
// array "seen" of one SQLite document with a JSON Patch "add": a write applied twice would show
// twice, a lost one would be missing. Each worker logs what it is about to send (progress) and
// what it got back (outcome), as a real client keeps its unacknowledged writes.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
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

constexpr const char* kClient = "ann";

std::string mutation(std::int64_t n) {
  return "m" + std::to_string(n);
}

// The numbers a worker logged as about to be sent, in order.
std::vector<std::int64_t> read_progress(const std::filesystem::path& file) {
  std::vector<std::int64_t> out;
  std::ifstream in(file);
  std::int64_t n = 0;
  while (in >> n) out.push_back(n);
  return out;
}

struct outcome {
  std::string mutation;
  std::string kind;  // "applied" | "duplicate"
  std::int64_t version = 0;
};

std::vector<outcome> read_outcomes(const std::filesystem::path& file) {
  std::vector<outcome> out;
  std::ifstream in(file);
  outcome o;
  while (in >> o.mutation >> o.kind >> o.version) out.push_back(o);
  return out;
}

sync_options worker_like_options() {
  sync_options options;
  options.snapshot_interval = 5;
  options.compact_events = true;
  options.storage.retry.max_attempts = 1000;
  return options;
}

// Creates "lists/l" with an empty "seen" (version 1, written by the server).
void create_list(const std::string& uri) {
  auto sync = event_sync_storage::open(uri, worker_like_options());
  sync->find_one_and_upsert("lists", {{"id", "l"}, {"seen", json::array()}});
  sync->close();
}

// Checks the document against what its writes recorded; returns how many mutations it holds.
// Every mutation in "seen" has its record (the outcome committed with it) at the version that
// put it there; the document's sync stream ends at the document's version; the client's counter
// in the vector clock counts exactly its writes.
std::size_t check_list(event_sync_storage& sync) {
  const auto doc = sync.find_one("lists", "l");
  EXPECT_TRUE(doc.has_value());
  if (!doc) return 0;
  const json& seen = doc->at("seen");
  const auto version = doc->at("version").get<std::int64_t>();
  EXPECT_EQ(static_cast<std::int64_t>(seen.size()), version - 1)
      << "one write per version after the creation";
  std::set<std::string> distinct;
  auto& engine = sync.store()->engine();
  for (std::size_t i = 0; i < seen.size(); ++i) {
    const std::string m = seen[i].get<std::string>();
    EXPECT_TRUE(distinct.insert(m).second) << m << " was applied twice";
    const auto record = engine.read_stream(sync_mutation_stream(kClient, m), 1, 2);
    EXPECT_EQ(record.size(), 1u) << m << " has no record of its outcome, or several";
    if (!record.empty()) {
      EXPECT_EQ(record.front().data.at("version"), static_cast<std::int64_t>(i) + 2)
          << m << " is recorded at another version than the one that added it";
    }
  }
  const auto head = engine.read_stream(sync_stream("lists", "l"), version, 2);
  EXPECT_EQ(head.size(), 1u) << "the sync stream ends at the document's version";
  const auto clock = sync.vector_clock("lists", "l");
  EXPECT_EQ(clock.count(kClient) ? clock.at(kClient) : 0, static_cast<std::int64_t>(seen.size()));
  return seen.size();
}

// Waits until ready_file exists (true), or the worker stopped or 120 s passed (false).
bool wait_until_ready(pid_t pid, const std::filesystem::path& ready_file) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!std::filesystem::exists(ready_file)) {
    if (std::chrono::steady_clock::now() > deadline || ::kill(pid, 0) != 0) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// A client killed at random moments restarts by resending its last writes (the one it was
// sending may or may not have committed): each is applied exactly once, in order, and a write
// never appears without its outcome record or the other way round.
TEST(client_writes_processes, kill_9_then_resend_applies_each_write_exactly_once) {
  temporary_directory dir;
  const std::string uri = "sqlite:" + (dir.path() / "sync.db").string() + "?synchronous=full";
  create_list(uri);
  const auto progress = dir.path() / "progress";
  const auto outcomes = dir.path() / "outcomes";
  const auto ready = dir.path() / "ready";
  std::mt19937 rng(20261204);
  std::uniform_int_distribution<int> delay_ms(10, 80);
  constexpr int kRounds = 30;
  int kills_mid_run = 0;
  std::size_t previous = 0;
  for (int round = 0; round < kRounds; ++round) {
    const auto sent = read_progress(progress);
    // Resend the last three (the one in flight at the kill, and two that surely committed).
    const std::int64_t first =
        sent.empty() ? 1
                     : std::max<std::int64_t>(1, *std::max_element(sent.begin(), sent.end()) - 2);
    std::filesystem::remove(ready);
    const pid_t pid = spawn_worker({"client-writes", uri, kClient, std::to_string(first), "-1",
                                    progress.string(), outcomes.string(), ready.string()});
    ASSERT_TRUE(wait_until_ready(pid, ready)) << "the worker did not start";
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));
    EXPECT_EQ(::kill(pid, SIGKILL), 0);
    const int exit_code = wait_for_exit(pid);
    EXPECT_EQ(exit_code, -1) << "the worker exited by itself in round " << round;
    if (exit_code == -1) ++kills_mid_run;

    auto sync = event_sync_storage::open(uri, worker_like_options());
    const std::size_t held = check_list(*sync);
    const auto now_sent = read_progress(progress);
    ASSERT_FALSE(now_sent.empty());
    // Everything before the write in flight committed; that one may have. (A round starts by
    // resending lower numbers: the highest ever sent is the one that may be in flight.)
    const auto last = static_cast<std::size_t>(*std::max_element(now_sent.begin(), now_sent.end()));
    EXPECT_TRUE(held == last || held == last - 1) << "held " << held << ", last sent " << last;
    EXPECT_GE(held, previous) << "a committed write disappeared";
    const json seen = sync->find_one("lists", "l")->at("seen");
    for (std::size_t i = 0; i < seen.size(); ++i) {
      EXPECT_EQ(seen[i], mutation(static_cast<std::int64_t>(i) + 1)) << "writes out of order";
    }
    previous = held;
    sync->close();
    if (::testing::Test::HasFailure()) break;
  }
  EXPECT_EQ(kills_mid_run, kRounds);
  EXPECT_GT(previous, static_cast<std::size_t>(kRounds))
      << "the worker barely wrote: the test proved little";

  // Each mutation was reported applied at most once over all rounds (a resend that applied again
  // would say "applied" a second time).
  std::map<std::string, int> applied;
  for (const auto& o : read_outcomes(outcomes)) {
    if (o.kind == "applied") ++applied[o.mutation];
  }
  for (const auto& [m, count] : applied) EXPECT_EQ(count, 1) << m;

  // Finally every write is resent once more: all duplicates, nothing changes.
  auto sync = event_sync_storage::open(uri, worker_like_options());
  const auto before = sync->find_one("lists", "l");
  for (std::size_t n = 1; n <= previous; ++n) {
    client_write w;
    w.client_id = kClient;
    w.mutation_id = mutation(static_cast<std::int64_t>(n));
    w.op = client_write::kind::patch;
    w.patch = json::array({{{"op", "add"}, {"path", "/seen/-"}, {"value", w.mutation_id}}});
    const auto result = sync->apply_client_write("lists", "l", w);
    EXPECT_TRUE(result.duplicate) << w.mutation_id;
    EXPECT_EQ(result.version, static_cast<std::int64_t>(n) + 1) << w.mutation_id;
  }
  EXPECT_EQ(sync->find_one("lists", "l"), before);
}

// A subscriber of the sync service in this process, keeping a copy of "lists/l".
class list_subscriber {
 public:
  void on_message(const std::string& text) {
    const json m = json::parse(text);
    std::lock_guard lock(mu_);
    const std::string type = m.at("type");
    if (type == "snapshot") {
      if (m.at("version").get<std::int64_t>() <= version_) ++violations_;
      document_ = m.at("document");
      version_ = m.at("version");
    } else if (type == "event") {
      if (m.at("version").get<std::int64_t>() != version_ + 1) {
        ++violations_;
        return;
      }
      document_ = document_.patch(m.at("json_patch"));
      version_ = m.at("version");
      if (m.contains("mutation_id")) ++mutations_[m.at("mutation_id").get<std::string>()];
    } else if (type == "resync_needed" || type == "error") {
      ++violations_;
    }
  }
  std::int64_t version() const {
    std::lock_guard lock(mu_);
    return version_;
  }
  json document() const {
    std::lock_guard lock(mu_);
    return document_;
  }
  int violations() const {
    std::lock_guard lock(mu_);
    return violations_;
  }
  std::map<std::string, int> mutations() const {
    std::lock_guard lock(mu_);
    return mutations_;
  }

 private:
  mutable std::mutex mu_;
  std::int64_t version_ = 0;
  json document_ = nullptr;
  int violations_ = 0;
  std::map<std::string, int> mutations_;
};

// Three processes send the same 150 writes of one client at once (a client that resent through
// three servers): each write is applied by exactly one of them, the others get "duplicate"; a
// sync_service subscriber in this process applies what it receives strictly in version order
// (events, or a snapshot where the workers' compaction removed them) and ends with the document
// as stored.
TEST(client_writes_processes, the_same_writes_from_three_processes_apply_once_each) {
  temporary_directory dir;
  const std::string uri = "sqlite:" + (dir.path() / "sync.db").string();
  create_list(uri);
  std::shared_ptr<event_sync_storage> storage =
      event_sync_storage::open(uri, worker_like_options());
  sync_service_options service_options;
  service_options.poll_interval = std::chrono::milliseconds(20);
  auto service = sync_service::start(storage, service_options);
  list_subscriber subscriber;
  const auto connection =
      service->connect("watcher", [&](const std::string& text) { subscriber.on_message(text); });
  service->receive(connection, R"({"type": "subscribe", "request_id": 1,
                                   "documents": [{"collection": "lists", "id": "l"}]})");

  constexpr int kProcesses = 3;
  constexpr std::int64_t kWrites = 150;
  std::vector<pid_t> workers;
  for (int p = 0; p < kProcesses; ++p) {
    const std::string suffix = std::to_string(p);
    workers.push_back(spawn_worker({"client-writes", uri, kClient, "1", std::to_string(kWrites),
                                    (dir.path() / ("progress" + suffix)).string(),
                                    (dir.path() / ("outcomes" + suffix)).string(),
                                    (dir.path() / ("ready" + suffix)).string()}));
  }
  for (pid_t w : workers) EXPECT_EQ(wait_for_exit(w), 0);

  EXPECT_EQ(check_list(*storage), static_cast<std::size_t>(kWrites));
  std::map<std::string, int> applied, duplicates;
  for (int p = 0; p < kProcesses; ++p) {
    const auto got = read_outcomes(dir.path() / ("outcomes" + std::to_string(p)));
    EXPECT_EQ(got.size(), static_cast<std::size_t>(kWrites)) << "worker " << p;
    for (const auto& o : got) ++(o.kind == "applied" ? applied : duplicates)[o.mutation];
  }
  for (std::int64_t n = 1; n <= kWrites; ++n) {
    EXPECT_EQ(applied[mutation(n)], 1) << mutation(n);
    EXPECT_EQ(duplicates[mutation(n)], kProcesses - 1) << mutation(n);
  }

  // The subscriber catches up with the writes of the other processes.
  const json stored = *storage->find_one("lists", "l");
  const auto stored_version = stored.at("version").get<std::int64_t>();
  ASSERT_TRUE(service->wait_until_caught_up(std::chrono::seconds(60)));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (subscriber.version() < stored_version && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  service->disconnect(connection);
  EXPECT_EQ(subscriber.violations(), 0);
  EXPECT_EQ(subscriber.version(), stored_version);
  EXPECT_EQ(subscriber.document(), stored);
  // The workers compact their events: a subscriber behind the compaction is served a snapshot
  // instead of the events it covers, so not every write reaches it as an event — but none twice.
  const auto delivered = subscriber.mutations();
  EXPECT_FALSE(delivered.empty());
  for (const auto& [m, count] : delivered) EXPECT_EQ(count, 1) << m;
  service->stop();
}

}  // namespace
}  // namespace eventsourced
