// outbox_relay: publication after commit from the log, checkpointed, at least once, in order,
// retrying a failing bus without skipping; on the memory engine and on a SQLite file.
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <span>
#include <thread>

#include <eventsourced/event/checkpoint.hpp>
#include <eventsourced/event/memory_bus.hpp>
#include <eventsourced/event/relay.hpp>

#include "support/event_workloads.hpp"
#include "unit/storage_test_support.hpp"

namespace eventsourced_test {
namespace {

using namespace std::chrono_literals;
using eventsourced::event;
using eventsourced::event_log;
using eventsourced::outbox_relay;
using eventsourced::relay_options;
using eventsourced::testing::append_events;

// Keeps what reaches a kAllEvents subscriber of a synchronous in-memory bus.
struct delivered_events {
  std::mutex mutex;
  std::vector<event> events;
  std::vector<event> snapshot() {
    std::lock_guard lock(mutex);
    return events;
  }
};

// A bus whose publish throws for the first `failures` calls, then records every event.
class flaky_bus final : public eventsourced::event_bus {
 public:
  explicit flaky_bus(int failures) : failures_left_(failures) {}
  void publish(const event& e) override { publish(std::span<const event>(&e, 1)); }
  void publish(std::span<const event> events) override {
    std::lock_guard lock(mutex_);
    ++calls_;
    if (failures_left_ > 0) {
      --failures_left_;
      // Half-way: the first event got through before the failure, as with a real broker.
      if (!events.empty()) received_.push_back(events.front());
      throw eventsourced::engine_unavailable_error("broker unreachable");
    }
    received_.insert(received_.end(), events.begin(), events.end());
  }
  eventsourced::subscription subscribe(std::string_view,
                                       std::shared_ptr<eventsourced::event_handler>) override {
    return {};
  }
  void close() noexcept override {}
  std::vector<event> received() {
    std::lock_guard lock(mutex_);
    return received_;
  }
  int calls() {
    std::lock_guard lock(mutex_);
    return calls_;
  }

 private:
  std::mutex mutex_;
  int failures_left_;            // GUARDED_BY(mutex_)
  int calls_ = 0;                // GUARDED_BY(mutex_)
  std::vector<event> received_;  // GUARDED_BY(mutex_)
};

class relay_test : public storage_test {
 protected:
  std::shared_ptr<eventsourced::in_memory_event_bus> recording_bus(delivered_events& into) {
    auto bus = std::make_shared<eventsourced::in_memory_event_bus>();
    subscriptions_.push_back(bus->subscribe(eventsourced::kAllEvents, [&into](const event& e) {
      std::lock_guard lock(into.mutex);
      into.events.push_back(e);
    }));
    return bus;
  }
  static relay_options quick(std::string name = "outbox") {
    return {.name = std::move(name),
            .batch_size = 5,
            .wait_timeout = 20ms,
            .initial_backoff = 1ms,
            .max_backoff = 5ms};
  }

 private:
  std::vector<eventsourced::subscription> subscriptions_;
};
EVENTSOURCED_STORAGE_TEST_ENGINES(relay_test);

TEST_P(relay_test, publishes_every_committed_event_once_in_log_order_and_saves_the_checkpoint) {
  auto store = open_store();
  const auto history = append_events(store->engine(), 20, 1);
  delivered_events delivered;
  outbox_relay relay(event_log(store), recording_bus(delivered), quick());
  relay.start();
  // Live events, committed while the relay runs.
  const auto live = append_events(store->engine(), 20, 2, 1000);
  ASSERT_TRUE(relay.wait_until_published(live.back().position, 60s));
  relay.stop();

  auto expected = history;
  expected.insert(expected.end(), live.begin(), live.end());
  const auto got = delivered.snapshot();
  ASSERT_EQ(got.size(), expected.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].id, expected[i].id);
    EXPECT_EQ(got[i].position, expected[i].position);
  }
  EXPECT_EQ(eventsourced::load_checkpoint(store->engine(), "outbox").position,
            live.back().position);
  EXPECT_EQ(relay.published_position(), live.back().position);
  EXPECT_EQ(relay.failure(), nullptr);
}

TEST_P(relay_test, a_restarted_relay_resumes_after_its_checkpoint) {
  auto store = open_store();
  const auto first = append_events(store->engine(), 10, 3);
  {
    delivered_events delivered;
    outbox_relay relay(event_log(store), recording_bus(delivered), quick());
    relay.start();
    ASSERT_TRUE(relay.wait_until_published(first.back().position, 60s));
  }  // destroyed: stopped
  const auto second = append_events(store->engine(), 10, 4);
  delivered_events delivered;
  outbox_relay relay(event_log(open_store()), recording_bus(delivered), quick());
  relay.start();
  ASSERT_TRUE(relay.wait_until_published(second.back().position, 60s));
  const auto got = delivered.snapshot();
  ASSERT_EQ(got.size(), second.size()) << "only what came after the checkpoint";
  EXPECT_EQ(got.front().id, second.front().id);
}

TEST_P(relay_test, a_failing_bus_is_retried_with_backoff_and_no_event_is_skipped) {
  auto store = open_store();
  const auto events = append_events(store->engine(), 15, 5);
  auto bus = std::make_shared<flaky_bus>(4);
  std::atomic<int> reported{0};
  auto options = quick();
  options.on_error = [&](std::exception_ptr) { ++reported; };
  outbox_relay relay(event_log(store), bus, options);
  relay.start();
  ASSERT_TRUE(relay.wait_until_published(events.back().position, 60s));
  relay.stop();
  EXPECT_EQ(reported.load(), 4);
  // Every event arrived, in log order once the duplicates of the failed attempts are dropped.
  std::set<std::string> seen;
  std::vector<std::string> first_arrivals;
  for (const auto& e : bus->received()) {
    if (seen.insert(e.id).second) first_arrivals.push_back(e.id);
  }
  ASSERT_EQ(first_arrivals.size(), events.size());
  for (std::size_t i = 0; i < events.size(); ++i) EXPECT_EQ(first_arrivals[i], events[i].id);
}

TEST_P(relay_test, a_relay_that_runs_out_of_attempts_stops_with_the_error_and_keeps_its_place) {
  auto store = open_store();
  const auto events = append_events(store->engine(), 3, 6);
  auto bus = std::make_shared<flaky_bus>(1000);
  auto options = quick();
  options.max_attempts = 3;
  outbox_relay relay(event_log(store), bus, options);
  relay.start();
  EXPECT_THROW(relay.wait_until_published(events.back().position, 60s),
               eventsourced::engine_unavailable_error);
  EXPECT_NE(relay.failure(), nullptr);
  EXPECT_EQ(bus->calls(), 3);
  EXPECT_EQ(eventsourced::load_checkpoint(store->engine(), "outbox").position, 0)
      << "the checkpoint moved past events that were never published";
}

TEST_P(relay_test, a_second_relay_with_the_same_name_gets_a_conflict_instead_of_overwriting) {
  auto store = open_store();
  append_events(store->engine(), 3, 7);
  auto bus = std::make_shared<flaky_bus>(0);
  // The loser loads the checkpoint, then the winner saves before the loser does.
  auto loser_checkpoint = eventsourced::load_checkpoint(store->engine(), "outbox");
  outbox_relay winner(event_log(store), bus, quick());
  winner.start();
  ASSERT_TRUE(winner.wait_until_published(1, 60s));
  winner.stop();
  loser_checkpoint.position = 1;
  EXPECT_THROW(eventsourced::save_checkpoint(store->engine(), loser_checkpoint),
               eventsourced::conflict_error);

  // Two relays running at once: one of them, at the latest when the log grows, conflicts and
  // stops, and the checkpoint only ever moves forward.
  outbox_relay a(event_log(store), bus, quick());
  outbox_relay b(event_log(open_store()), bus, quick());
  a.start();
  b.start();
  for (int round = 0; round < 200 && !a.failure() && !b.failure(); ++round) {
    append_events(store->engine(), 2, static_cast<std::uint32_t>(100 + round));
    std::this_thread::sleep_for(5ms);
  }
  const auto failed = a.failure() ? a.failure() : b.failure();
  ASSERT_NE(failed, nullptr) << "two relays with one name ran side by side without noticing";
  EXPECT_THROW(std::rethrow_exception(failed), eventsourced::conflict_error);
}

TEST_P(relay_test, stop_from_a_handler_on_the_relay_thread_ends_the_relay) {
  auto store = open_store();
  append_events(store->engine(), 10, 8);
  auto bus = std::make_shared<eventsourced::in_memory_event_bus>();
  std::atomic<outbox_relay*> relay_ptr{nullptr};
  std::atomic<int> calls{0};
  auto sub = bus->subscribe(eventsourced::kAllEvents, [&](const event&) {
    ++calls;
    if (auto* r = relay_ptr.load()) r->stop();  // returns at once: we are on the relay thread
  });
  outbox_relay relay(event_log(store), bus, quick());
  relay_ptr = &relay;
  relay.start();
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (relay.running() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_FALSE(relay.running()) << "stop() from the relay's own thread did not end the relay";
  EXPECT_GE(calls.load(), 1);
  EXPECT_LE(calls.load(), 5) << "the relay went on after the batch in which it was stopped";
  EXPECT_EQ(relay.failure(), nullptr);
}

TEST_P(relay_test, a_closed_bus_stops_the_relay_with_store_closed) {
  auto store = open_store();
  const auto events = append_events(store->engine(), 2, 9);
  auto bus = std::make_shared<eventsourced::in_memory_event_bus>();
  bus->close();
  outbox_relay relay(event_log(store), bus, quick());
  relay.start();
  EXPECT_THROW(relay.wait_until_published(events.back().position, 60s),
               eventsourced::store_closed_error);
}

TEST_P(relay_test, publishes_the_events_of_store_writes_made_through_a_collection) {
  eventsourced::store_options options;
  options.mapper = std::make_shared<eventsourced::default_event_mapper>();
  auto store = open_store(options);
  delivered_events delivered;
  outbox_relay relay(event_log(store), recording_bus(delivered), quick());
  relay.start();
  auto players = store->documents("players");
  players.find_one_and_upsert({{"id", "p1"}, {"gold", 1}});
  const auto result = players.update_one("p1", {{"$inc", {{"gold", 2}}}});
  ASSERT_FALSE(result.events.empty());
  ASSERT_TRUE(relay.wait_until_published(result.events.back().position, 60s));
  const auto got = delivered.snapshot();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].type, "players.created");
  EXPECT_EQ(got[1].type, "players.updated");
  EXPECT_EQ(got[1].id, result.events.back().id);
  const auto doc = eventsourced::document_of(got[1]);
  ASSERT_TRUE(doc);
  EXPECT_EQ(*doc, (eventsourced::document_ref{"players", "p1", 2}));
}

TEST_P(relay_test, bad_options_are_refused) {
  auto store = open_store();
  auto bus = std::make_shared<flaky_bus>(0);
  using eventsourced::invalid_argument_error;
  EXPECT_THROW(outbox_relay(event_log(store), nullptr, quick()), invalid_argument_error);
  EXPECT_THROW(outbox_relay(event_log(store), bus, {.name = ""}), invalid_argument_error);
  EXPECT_THROW(outbox_relay(event_log(store), bus, {.batch_size = 0}), invalid_argument_error);
  EXPECT_THROW(outbox_relay(event_log(store), bus, {.wait_timeout = 0ms}), invalid_argument_error);
  EXPECT_THROW(outbox_relay(event_log(store), bus, {.initial_backoff = 10ms, .max_backoff = 1ms}),
               invalid_argument_error);
  outbox_relay relay(event_log(store), bus, quick());
  EXPECT_THROW(relay.wait_until_published(-1, 1ms), invalid_argument_error);
  EXPECT_THROW(relay.wait_until_published(0, -1ms), invalid_argument_error);
  EXPECT_FALSE(relay.wait_until_published(1, 1ms)) << "not started: nothing published";
}

}  // namespace
}  // namespace eventsourced_test
