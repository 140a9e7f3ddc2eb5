// Vector clocks under concurrent writers and acknowledgements: counters only move forward and
// none is lost.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <eventsourced/eventsourced.hpp>

#include "sync_test_support.hpp"

namespace eventsourced_test {
namespace {

using eventsourced::json;
using eventsourced::vector_clock_map;

class sync_concurrency_test : public sync_test {};

// True when every counter of `earlier` is at most the one in `later`.
bool at_most(const vector_clock_map& earlier, const vector_clock_map& later) {
  for (const auto& [client, counter] : earlier) {
    auto it = later.find(client);
    if (it == later.end() || it->second < counter) return false;
  }
  return true;
}

TEST_P(sync_concurrency_test, concurrent_writers_never_lose_or_reverse_a_clock_counter) {
  auto& sync = open_sync({.storage = {.retry = {.max_attempts = 1000}}, .snapshot_interval = 7});
  sync.find_one_and_upsert("games", json{{"id", "g"}, {"n", 0}});
  constexpr int kThreads = 4;
  constexpr int kWrites = 25;
  std::atomic<int> violations{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string me = "client" + std::to_string(t);
      vector_clock_map seen;
      for (int i = 1; i <= kWrites; ++i) {
        sync.find_one_and_update("games", "g",
                                 [](const json& g) {
                                   json next = g;
                                   next["n"] = g["n"].get<int>() + 1;
                                   return next;
                                 },
                                 {.event_metadata = {{"client_id", me}}});
        auto clock = sync.vector_clock("games", "g");
        if (!at_most(seen, clock) || clock[me] < i) violations.fetch_add(1);
        seen = clock;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(violations.load(), 0);

  vector_clock_map expected{{"server", 1}};
  for (int t = 0; t < kThreads; ++t) expected["client" + std::to_string(t)] = kWrites;
  EXPECT_EQ(sync.vector_clock("games", "g"), expected);
  EXPECT_EQ((*sync.find_one("games", "g"))["n"], kThreads * kWrites);

  // Along the stream, each event's clock covers the previous one and its counters add up to
  // its version (each write adds exactly one).
  auto events =
      sync.store()->engine().read_stream(eventsourced::sync_stream("games", "g"), 1, 10'000);
  ASSERT_EQ(events.size(), static_cast<std::size_t>(kThreads * kWrites + 1));
  vector_clock_map previous;
  for (const auto& e : events) {
    vector_clock_map clock;
    for (const auto& [client, counter] : e.data["vector_clock"].items()) {
      clock[client] = counter.get<std::int64_t>();
    }
    std::int64_t sum = 0;
    for (const auto& [client, counter] : clock) sum += counter;
    EXPECT_EQ(sum, e.stream_version);
    EXPECT_TRUE(at_most(previous, clock)) << "at version " << e.stream_version;
    previous = clock;
  }
}

TEST_P(sync_concurrency_test, concurrent_acknowledgements_only_move_forward) {
  auto& sync = open_sync();
  sync.find_one_and_upsert("games", json{{"id", "g"}, {"n", 0}}, as_client("ann"));
  for (int i = 0; i < 9; ++i) {
    sync.find_one_and_update(
        "games", "g",
        [i](const json& g) {
          json next = g;
          next["n"] = i + 1;
          return next;
        },
        as_client(i % 2 ? "ann" : "bob"));
  }
  const vector_clock_map document = sync.vector_clock("games", "g");  // ann 5, bob 5
  constexpr int kThreads = 4;
  constexpr int kAcks = 30;
  std::atomic<int> violations{0};
  std::vector<vector_clock_map> sent(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<std::uint32_t>(t + 1));
      vector_clock_map last;
      for (int i = 0; i < kAcks; ++i) {
        vector_clock_map seen;
        for (const auto& [client, counter] : document) {
          seen[client] = static_cast<std::int64_t>(rng() % static_cast<unsigned>(counter + 1));
          auto& max = sent[t][client];
          max = std::max(max, seen[client]);
        }
        auto merged = sync.update_vector_clock("games", "g", "phone", seen);
        if (!at_most(last, merged) || !at_most(seen, merged)) violations.fetch_add(1);
        last = merged;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(violations.load(), 0);
  vector_clock_map expected;
  for (const auto& m : sent) {
    for (const auto& [client, counter] : m) expected[client] = std::max(expected[client], counter);
  }
  EXPECT_EQ(sync.acknowledged_vector_clock("games", "g", "phone"), expected);
}

EVENTSOURCED_SYNC_TEST_ENGINES(sync_concurrency_test);

}  // namespace
}  // namespace eventsourced_test
