// Invariant 1, no lost update (DESIGN.md): a write commits only if the stored version is the one
// the edit was based on; otherwise the edit is re-run on fresh state, or the call fails with a
// conflict_error carrying expected and actual versions. N writers × M increments = exactly N·M.
#include <atomic>
#include <barrier>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "support/worker_process.hpp"
#include "unit/storage_test_support.hpp"

namespace eventsourced_test {
namespace {

using eventsourced::conflict_error;
using eventsourced::conflict_target;

json increment(json doc) {
  doc["count"] = doc.value("count", 0) + 1;
  return doc;
}

// Runs body(i) on `threads` threads and collects what any of them threw.
template <typename F>
std::vector<std::string> run_threads(int threads, F body) {
  std::mutex mutex;
  std::vector<std::string> failures;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      try {
        body(t);
      } catch (const std::exception& e) {
        std::lock_guard lock(mutex);
        failures.push_back(e.what());
      }
    });
  }
  for (auto& th : pool) th.join();
  return failures;
}

class concurrency : public storage_test {
 protected:
  void SetUp() override {
    storage_test::SetUp();
    store_ = open_store();
    counters().find_one_and_upsert({{"id", "c"}, {"count", 0}});
  }
  eventsourced::document_collection counters() { return store_->documents("counters"); }

  std::shared_ptr<eventsourced::store> store_;
};
EVENTSOURCED_STORAGE_TEST_ENGINES(concurrency);

TEST_P(concurrency, eight_threads_of_2000_find_one_and_update_increments_lose_nothing) {
  constexpr int kThreads = 8;
  constexpr int kIncrements = 2000;
  const auto failures = run_threads(kThreads, [&](int) {
    auto handle = counters();  // a handle per thread, as an application would hold
    for (int i = 0; i < kIncrements; ++i) handle.find_one_and_update("c", increment, patient());
  });
  EXPECT_EQ(failures, std::vector<std::string>{});
  const json stored = *counters().find_one("c");
  EXPECT_EQ(stored["count"], kThreads * kIncrements);
  EXPECT_EQ(stored["version"], kThreads * kIncrements + 1);
}

TEST_P(concurrency, update_one_increments_from_many_threads_lose_nothing) {
  constexpr int kThreads = 4;
  constexpr int kIncrements = 500;
  const auto failures = run_threads(kThreads, [&](int) {
    for (int i = 0; i < kIncrements; ++i) {
      counters().update_one("c", {{"$inc", {{"count", 1}}}}, patient());
    }
  });
  EXPECT_EQ(failures, std::vector<std::string>{});
  const json stored = *counters().find_one("c");
  EXPECT_EQ(stored["count"], kThreads * kIncrements);
  EXPECT_EQ(stored["version"], kThreads * kIncrements + 1);
}

TEST_P(concurrency, racing_upserts_of_one_id_create_it_exactly_once) {
  constexpr int kThreads = 8;
  constexpr int kRounds = 50;  // one fresh id per round, all threads released together
  std::vector<std::atomic<int>> created(kRounds);
  std::barrier start(kThreads);
  std::mutex mutex;
  std::vector<std::string> failures;
  const auto escaped = run_threads(kThreads, [&](int t) {
    for (int round = 0; round < kRounds; ++round) {
      start.arrive_and_wait();  // every thread takes part in every round, whatever happens
      try {
        auto r = counters().find_one_and_upsert({{"id", "r" + std::to_string(round)}, {"by", t}});
        if (r.diff.is_new) ++created[static_cast<std::size_t>(round)];
        if (r.document["version"] != 1) {
          throw std::runtime_error("upsert returned " + r.document.dump());
        }
      } catch (const std::exception& e) {
        std::lock_guard lock(mutex);
        failures.push_back(e.what());
      }
    }
  });
  EXPECT_EQ(escaped, std::vector<std::string>{});
  EXPECT_EQ(failures, std::vector<std::string>{});
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    EXPECT_EQ(created[static_cast<std::size_t>(round)].load(), 1);
    EXPECT_EQ(counters().find_one("r" + std::to_string(round))->at("version"), 1);
  }
}

TEST_P(concurrency, a_conflict_surfaces_with_both_versions_when_retries_are_off) {
  auto other = open_store()->documents("counters");  // another writer, as another process
  int runs = 0;
  try {
    counters().find_one_and_update(
        "c",
        [&](json doc) {
          if (++runs == 1) {
            other.find_one_and_update("c", [](json d) {
              d["count"] = 100;
              return d;
            });
          }
          return increment(doc);
        },
        no_retries());
    FAIL() << "expected conflict_error";
  } catch (const conflict_error& e) {
    EXPECT_EQ(e.target(), conflict_target::document);
    EXPECT_EQ(e.collection(), "counters");
    EXPECT_EQ(e.id(), "c");
    EXPECT_EQ(e.expected_version(), 1);
    EXPECT_EQ(e.actual_version(), 2);
    EXPECT_TRUE(e.retryable());
  }
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(counters().find_one("c"), (json{{"id", "c"}, {"count", 100}, {"version", 2}}));
}

TEST_P(concurrency, a_conflict_re_runs_the_edit_on_fresh_state_when_retries_are_on) {
  auto other = open_store()->documents("counters");
  std::vector<json> seen;
  const auto r = counters().find_one_and_update("c", [&](json doc) {
    seen.push_back(doc);
    if (seen.size() == 1) {
      other.find_one_and_update("c", [](json d) {
        d["count"] = 100;
        return d;
      });
    }
    return increment(doc);
  });
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0]["count"], 0);
  EXPECT_EQ(seen[1]["count"], 100);
  const json expected = {{"id", "c"}, {"count", 101}, {"version", 3}};
  EXPECT_EQ(r.document, expected);
  EXPECT_EQ(r.diff.version, 3);
  EXPECT_EQ(counters().find_one("c"), expected);
}

TEST_P(concurrency, retries_that_run_out_surface_the_last_conflict) {
  auto other = open_store()->documents("counters");
  int runs = 0;
  eventsourced::write_options three;
  three.retry = eventsourced::retry_options{.max_attempts = 3};
  try {
    counters().find_one_and_update(
        "c",
        [&](json doc) {
          ++runs;  // every run loses the race
          other.update_one("c", {{"$inc", {{"count", 100}}}});
          return increment(doc);
        },
        three);
    FAIL() << "expected conflict_error";
  } catch (const conflict_error& e) {
    EXPECT_EQ(e.expected_version(), 3);
    EXPECT_EQ(e.actual_version(), 4);
  }
  EXPECT_EQ(runs, 3);
  EXPECT_EQ(counters().find_one("c"), (json{{"id", "c"}, {"count", 300}, {"version", 4}}));
}

TEST_P(concurrency, a_delete_meanwhile_is_not_undone_by_a_retried_update) {
  auto other = open_store()->documents("counters");
  int runs = 0;
  EXPECT_THROW(counters().find_one_and_update("c",
                                              [&](json doc) {
                                                if (++runs == 1) other.delete_one("c");
                                                return increment(doc);
                                              }),
               eventsourced::not_found_error);
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(counters().find_one("c"), std::nullopt);
}

TEST_P(concurrency, closing_the_store_under_running_writers_commits_exactly_what_was_reported) {
  // store.hpp: close() may be called while other threads use the store; their later calls throw
  // store_closed_error. Every increment either returned (and is stored) or threw that error.
  constexpr int kThreads = 4;
  auto s = open_store();
  std::atomic<int> succeeded{0};
  std::atomic<int> started{0};
  const auto failures = run_threads(kThreads + 1, [&](int t) {
    if (t == kThreads) {  // the closer: waits until the writers are well under way
      while (succeeded.load() < 200) std::this_thread::yield();
      s->close();
      return;
    }
    auto docs = s->documents("counters");
    ++started;
    for (;;) {
      try {
        docs.find_one_and_update("c", increment, patient());
        ++succeeded;
      } catch (const eventsourced::store_closed_error&) {
        return;
      }
    }
  });
  EXPECT_EQ(failures, std::vector<std::string>{});  // nothing but store_closed_error escaped
  EXPECT_EQ(started.load(), kThreads);
  EXPECT_GE(succeeded.load(), 200);
  if (on_sqlite()) {
    const json stored = *open_store()->documents("counters").find_one("c");
    EXPECT_EQ(stored["count"], succeeded.load());
    EXPECT_EQ(stored["version"], succeeded.load() + 1);
  }
}

// --- Two processes on one SQLite file ----------------------------------------------------------

using eventsourced::testing::spawn_worker;
using eventsourced::testing::wait_for_exit;

TEST(concurrency_processes, two_processes_of_2000_increments_on_one_sqlite_file_lose_nothing) {
  constexpr int kIncrements = 2000;
  scratch_directory dir;
  const std::string uri = "sqlite:" + (dir.path() / "shared.db").string();
  {
    auto s = eventsourced::open(uri);
    s->documents("counters").find_one_and_upsert({{"id", "c"}, {"count", 0}});
  }
  const std::vector<std::string> args = {"increment", uri, "counters", "c",
                                         std::to_string(kIncrements)};
  const pid_t first = spawn_worker(args);
  const pid_t second = spawn_worker(args);
  EXPECT_EQ(wait_for_exit(first), 0);
  EXPECT_EQ(wait_for_exit(second), 0);
  auto s = eventsourced::open(uri);
  const json stored = *s->documents("counters").find_one("c");
  EXPECT_EQ(stored["count"], 2 * kIncrements);
  EXPECT_EQ(stored["version"], 2 * kIncrements + 1);
}

}  // namespace
}  // namespace eventsourced_test
