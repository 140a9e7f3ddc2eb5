// Engine conformance: many threads on one engine — no lost update (invariant 1), gapless stream
// versions, and one ordered log for catch-up readers (invariant 3).
#include "conformance/engine_conformance.hpp"

#include <atomic>
#include <chrono>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace eventsourced::conformance {
namespace {

using namespace std::chrono_literals;

// Runs body(0..threads-1) on that many threads and waits for all; an exception fails the test.
void run_threads(int threads, const std::function<void(int)>& body) {
  std::vector<std::jthread> running;
  for (int t = 0; t < threads; ++t) {
    running.emplace_back([&body, t] {
      try {
        body(t);
      } catch (const std::exception& e) {
        ADD_FAILURE() << "thread " << t << ": " << e.what();
      }
    });
  }
}

TEST_P(engine_conformance, concurrent_increments_with_retry_lose_no_update) {
  constexpr int kThreads = 8;
  constexpr int kIncrements = 200;
  ASSERT_EQ(commit_write(db(), put_write("counters", "c", 0, {{"count", 0}})), 1);

  std::atomic<int> conflicts{0};
  run_threads(kThreads, [&](int) {
    for (int i = 0; i < kIncrements; ++i) {
      for (;;) {
        const auto doc = db().get("counters", "c");
        if (!doc) throw std::runtime_error("counter vanished");
        json body = doc->body;
        body["count"] = body["count"].get<std::int64_t>() + 1;
        try {
          const std::int64_t written =
              commit_write(db(), put_write("counters", "c", doc->version, body));
          if (written != doc->version + 1) throw std::runtime_error("version did not grow by one");
          break;
        } catch (const conflict_error& e) {
          if (e.actual_version() <= doc->version)
            throw std::runtime_error("conflict went backwards");
          ++conflicts;
        }
      }
    }
  });

  const auto doc = db().get("counters", "c");
  ASSERT_TRUE(doc.has_value());
  EXPECT_EQ(doc->body["count"], kThreads * kIncrements);
  EXPECT_EQ(doc->version, kThreads * kIncrements + 1);
  RecordProperty("conflicts", conflicts.load());
}

TEST_P(engine_conformance, concurrent_appenders_with_expected_versions_leave_no_gaps) {
  constexpr int kThreads = 4;
  constexpr int kAppends = 50;
  const stream_ref stream{"ledger", "shared"};

  std::mutex mutex;
  std::set<std::string> appended;  // GUARDED_BY(mutex)
  run_threads(kThreads, [&](int t) {
    std::int64_t expected = 0;
    for (int i = 0; i < kAppends; ++i) {
      const new_event event = make_event("Entry", {{"thread", t}, {"i", i}});
      for (;;) {
        try {
          const auto recorded = commit_append(db(), append_to(stream, expected, {event}));
          if (recorded.size() != 1 || recorded[0].stream_version != expected + 1) {
            throw std::runtime_error("append did not get the next stream version");
          }
          expected = recorded[0].stream_version;
          const std::lock_guard lock(mutex);
          appended.insert(event.id);
          break;
        } catch (const conflict_error& e) {
          if (e.target() != conflict_target::stream) throw;
          if (e.actual_version() <= expected) throw std::runtime_error("conflict went backwards");
          expected = e.actual_version();
        }
      }
    }
  });

  const auto events = db().read_stream(stream, 1, 10'000);
  ASSERT_EQ(events.size(), static_cast<std::size_t>(kThreads * kAppends));
  std::set<std::string> read;
  for (std::size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].stream_version, static_cast<std::int64_t>(i + 1));
    if (i > 0) {
      EXPECT_GT(events[i].position, events[i - 1].position);
    }
    read.insert(events[i].id);
  }
  EXPECT_EQ(read, appended);
}

TEST_P(engine_conformance, catch_up_reader_sees_every_event_once_in_position_order) {
  constexpr int kWriters = 4;
  constexpr int kCommits = 100;

  std::mutex mutex;
  std::map<std::string, std::int64_t> committed;  // event id -> position; GUARDED_BY(mutex)
  std::atomic<bool> writers_done{false};
  std::map<std::string, int> seen;  // event id -> times seen (reader thread only)
  std::int64_t checkpoint = 0;
  int regressions = 0;

  std::jthread reader([&] {
    try {
      for (;;) {
        const bool finished = writers_done.load();
        const auto batch = db().read_all(checkpoint, 37);
        for (const auto& e : batch) {
          if (e.position <= checkpoint) ++regressions;
          checkpoint = e.position;
          ++seen[e.id];
        }
        if (batch.empty()) {
          if (finished) break;
          db().wait_for(checkpoint, 10ms);
        }
      }
    } catch (const std::exception& e) {
      ADD_FAILURE() << "reader: " << e.what();
    }
  });

  run_threads(kWriters, [&](int t) {
    const stream_ref own{"writer", "w" + std::to_string(t)};
    for (int i = 0; i < kCommits; ++i) {
      std::vector<new_event> events;
      for (int k = 0; k <= i % 3; ++k) events.push_back(make_event("Wrote", {{"i", i}, {"k", k}}));
      std::vector<document_write> writes;
      if (i % 5 == 0)
        writes.push_back(put_write("writers", own.id + "-" + std::to_string(i), 0, {{"i", i}}));
      const commit_result result = db().commit(
          request_of(std::move(writes), {append_to(own, std::nullopt, std::move(events))}));
      const std::lock_guard lock(mutex);
      for (const auto& e : result.events) committed[e.id] = e.position;
    }
  });
  writers_done = true;
  reader.join();

  EXPECT_EQ(regressions, 0) << "the reader saw a position at or below one it had already seen";
  std::size_t duplicates = 0;
  for (const auto& [id, times] : seen) {
    if (times != 1) ++duplicates;
  }
  EXPECT_EQ(duplicates, 0u);
  EXPECT_EQ(seen.size(), committed.size());
  std::size_t missing = 0;
  for (const auto& [id, position] : committed) {
    if (!seen.contains(id)) ++missing;
  }
  EXPECT_EQ(missing, 0u) << "committed events the reader never saw";
  // 4 writers x (34*1 + 33*2 + 33*3 events).
  EXPECT_EQ(committed.size(), static_cast<std::size_t>(kWriters * (34 + 66 + 99)));
}

TEST_P(engine_conformance, concurrent_creates_of_one_document_let_exactly_one_win) {
  constexpr int kThreads = 8;
  std::atomic<int> wins{0};
  std::atomic<int> conflicts{0};
  run_threads(kThreads, [&](int t) {
    try {
      commit_write(db(), put_write("races", "only", 0, {{"winner", t}}));
      ++wins;
    } catch (const conflict_error& e) {
      if (e.actual_version() != 1) throw;
      ++conflicts;
    }
  });
  EXPECT_EQ(wins.load(), 1);
  EXPECT_EQ(conflicts.load(), kThreads - 1);
  EXPECT_EQ(db().get("races", "only")->version, 1);
}

}  // namespace
}  // namespace eventsourced::conformance
