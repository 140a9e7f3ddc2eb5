// catch_up_subscription: history then live, exactly once per run and in position order under
// concurrent writers, checkpoint resume, handler failures, stop and destruction during dispatch;
// on the memory engine and on a SQLite file.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include <eventsourced/event/checkpoint.hpp>
#include <eventsourced/event/subscription.hpp>

#include "support/event_workloads.hpp"
#include "unit/storage_test_support.hpp"

namespace eventsourced_test {
namespace {

using namespace std::chrono_literals;
using eventsourced::catch_up_subscription;
using eventsourced::event;
using eventsourced::event_log;
using eventsourced::subscription_options;
using eventsourced::testing::append_events;

class subscription_test : public storage_test {
 protected:
  static subscription_options quick(std::string checkpoint = "") {
    return {.checkpoint_name = std::move(checkpoint),
            .batch_size = 16,
            .wait_timeout = 20ms,
            .initial_backoff = 1ms,
            .max_backoff = 5ms};
  }
};
EVENTSOURCED_STORAGE_TEST_ENGINES(subscription_test);

TEST_P(subscription_test,
       four_writers_and_a_catch_up_reader_every_event_once_positions_increasing) {
  auto store = open_store();
  append_events(store->engine(), 30, 1);  // some history to catch up on first
  std::mutex mutex;
  std::vector<event> seen;
  catch_up_subscription reader(
      event_log(open_store()),  // on SQLite another engine object: it sees commits by polling
      [&](const event& e) {
        std::lock_guard lock(mutex);
        seen.push_back(e);
      },
      quick("reader"));
  reader.start();
  std::vector<std::vector<eventsourced::recorded_event>> written(4);
  std::vector<std::shared_ptr<eventsourced::store>>
      writer_stores;  // open_store() is not thread-safe
  for (int w = 0; w < 4; ++w) writer_stores.push_back(open_store());
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      auto& writer_store = writer_stores[static_cast<std::size_t>(w)];
      for (int c = 0; c < 60; ++c) {
        eventsourced::commit_request request;
        eventsourced::stream_append append{{"writer", "w" + std::to_string(w)}};
        for (int i = 0; i < 1 + c % 3; ++i) {
          append.events.push_back(eventsourced::make_event("Wrote", {{"n", c}}));
        }
        request.appends.push_back(std::move(append));
        auto result = writer_store->engine().commit(request);
        written[static_cast<std::size_t>(w)].insert(written[static_cast<std::size_t>(w)].end(),
                                                    result.events.begin(), result.events.end());
      }
    });
  }
  for (auto& t : writers) t.join();
  const auto head = eventsourced::testing::head_position(store->engine());
  ASSERT_TRUE(reader.wait_until_handled(head, 120s));
  reader.stop();

  std::lock_guard lock(mutex);
  const auto log = store->engine().read_all(0, 1'000'000);
  ASSERT_EQ(seen.size(), log.size()) << "every event exactly once";
  std::set<std::string> ids;
  for (std::size_t i = 0; i < seen.size(); ++i) {
    EXPECT_TRUE(ids.insert(seen[i].id).second) << "seen twice: " << seen[i].id;
    EXPECT_EQ(seen[i].id, log[i].id);
    if (i > 0) {
      EXPECT_GT(seen[i].position, seen[i - 1].position);
    }
  }
  for (const auto& mine : written) {
    for (const auto& e : mine) EXPECT_TRUE(ids.contains(e.id)) << "missed " << e.id;
  }
  EXPECT_EQ(eventsourced::load_checkpoint(store->engine(), "reader").position, head);
}

TEST_P(subscription_test, a_named_subscription_resumes_after_its_checkpoint) {
  auto store = open_store();
  const auto first = append_events(store->engine(), 10, 2);
  std::vector<std::string> seen;
  {
    catch_up_subscription s(
        event_log(store), [&](const event& e) { seen.push_back(e.id); }, quick("resumer"));
    while (s.poll(0ms) > 0) {
    }
  }
  ASSERT_EQ(seen.size(), first.size());
  const auto second = append_events(store->engine(), 5, 3);
  seen.clear();
  catch_up_subscription s(
      event_log(open_store()), [&](const event& e) { seen.push_back(e.id); }, quick("resumer"));
  while (s.poll(0ms) > 0) {
  }
  ASSERT_EQ(seen.size(), second.size());
  EXPECT_EQ(seen.front(), second.front().id);
}

TEST_P(subscription_test, an_unnamed_subscription_starts_after_from_position) {
  auto store = open_store();
  const auto events = append_events(store->engine(), 10, 4);
  std::vector<std::string> seen;
  auto options = quick();
  options.from_position = events[4].position;
  catch_up_subscription s(
      event_log(store), [&](const event& e) { seen.push_back(e.id); }, options);
  while (s.poll(0ms) > 0) {
  }
  ASSERT_EQ(seen.size(), events.size() - 5);
  EXPECT_EQ(seen.front(), events[5].id);
  EXPECT_EQ(s.position(), events.back().position);
}

TEST_P(subscription_test, poll_rethrows_a_handler_failure_and_retries_that_event_next_time) {
  auto store = open_store();
  const auto events = append_events(store->engine(), 6, 5);
  std::vector<std::string> seen;
  int failures_left = 1;
  const std::string poison = events[3].id;
  catch_up_subscription s(
      event_log(store),
      [&](const event& e) {
        if (e.id == poison && failures_left-- > 0) throw std::runtime_error("handler failed");
        seen.push_back(e.id);
      },
      quick("poison"));
  EXPECT_THROW(s.poll(0ms), std::runtime_error);
  EXPECT_EQ(seen.size(), 3u);
  EXPECT_EQ(eventsourced::load_checkpoint(store->engine(), "poison").position, events[2].position)
      << "the events handled before the failure are checkpointed";
  while (s.poll(0ms) > 0) {
  }
  ASSERT_EQ(seen.size(), events.size()) << "the failed event was retried, nothing skipped";
  for (std::size_t i = 0; i < events.size(); ++i) EXPECT_EQ(seen[i], events[i].id);
}

TEST_P(subscription_test, a_failing_handler_is_retried_on_the_thread_until_it_succeeds) {
  auto store = open_store();
  const auto events = append_events(store->engine(), 4, 6);
  std::atomic<int> failures_left{3};
  std::atomic<int> errors{0};
  std::mutex mutex;
  std::vector<std::string> seen;
  auto options = quick();
  options.on_error = [&](std::exception_ptr) { ++errors; };
  catch_up_subscription s(
      event_log(store),
      [&](const event& e) {
        if (e.id == events[1].id && failures_left.fetch_sub(1) > 0) throw std::runtime_error("x");
        std::lock_guard lock(mutex);
        seen.push_back(e.id);
      },
      options);
  s.start();
  ASSERT_TRUE(s.wait_until_handled(events.back().position, 60s));
  s.stop();
  EXPECT_EQ(errors.load(), 3);
  std::lock_guard lock(mutex);
  ASSERT_EQ(seen.size(), events.size());
}

TEST_P(subscription_test, destroying_it_while_a_handler_runs_waits_for_that_call_then_no_more) {
  auto store = open_store();
  append_events(store->engine(), 20, 7);
  std::mutex mutex;
  std::condition_variable cv;
  bool in_handler = false, release = false;
  std::atomic<int> calls{0};
  auto s = std::make_unique<catch_up_subscription>(
      event_log(store),
      [&](const event&) {
        const int n = ++calls;
        if (n != 1) return;
        std::unique_lock lock(mutex);
        in_handler = true;
        cv.notify_all();
        cv.wait(lock, [&] { return release; });
      },
      quick());
  s->start();
  {
    std::unique_lock lock(mutex);
    cv.wait(lock, [&] { return in_handler; });
  }
  std::atomic<bool> destructor_returned{false};
  std::thread destroyer([&] {
    s.reset();
    destructor_returned = true;
  });
  std::this_thread::sleep_for(20ms);  // the destructor is now waiting for the handler call
  EXPECT_FALSE(destructor_returned) << "the destructor returned while a handler call was running";
  {
    std::lock_guard lock(mutex);
    release = true;
  }
  cv.notify_all();
  destroyer.join();
  const int after_destruction = calls.load();
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(calls.load(), after_destruction) << "the handler ran after the destructor returned";
}

TEST_P(subscription_test, a_handler_may_destroy_its_own_subscription) {
  auto store = open_store();
  append_events(store->engine(), 20, 8);
  std::atomic<int> calls{0};
  std::mutex mutex;
  std::unique_ptr<catch_up_subscription> s;
  std::atomic<bool> destroyed{false};
  s = std::make_unique<catch_up_subscription>(
      event_log(store),
      [&](const event&) {
        ++calls;
        std::lock_guard lock(mutex);
        if (s) {
          s.reset();  // on the subscription's own thread
          destroyed = true;
        }
      },
      quick());
  {
    std::lock_guard lock(mutex);
    s->start();
  }
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (!destroyed && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_TRUE(destroyed) << "the handler never destroyed its subscription";
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(calls.load(), 1) << "the call that destroyed the subscription was not the last";
}

TEST_P(subscription_test, a_second_subscriber_with_the_same_checkpoint_conflicts) {
  auto store = open_store();
  append_events(store->engine(), 10, 9);
  catch_up_subscription a(
      event_log(store), [](const event&) {}, quick("shared"));
  catch_up_subscription b(
      event_log(store), [](const event&) {}, quick("shared"));
  EXPECT_GT(a.poll(0ms), 0u);  // loads the checkpoint (never saved) and saves it
  while (a.poll(0ms) > 0) {
  }
  EXPECT_EQ(b.poll(0ms), 0u);  // loads a's checkpoint: nothing new
  append_events(store->engine(), 2, 10);
  EXPECT_GT(a.poll(0ms), 0u);  // saves again
  EXPECT_THROW(b.poll(0ms), eventsourced::conflict_error)
      << "b saved over a's progress instead of noticing it";
}

TEST_P(subscription_test, bad_arguments_are_refused) {
  auto store = open_store();
  using eventsourced::invalid_argument_error;
  auto noop = [](const event&) {};
  EXPECT_THROW(catch_up_subscription(event_log(store), eventsourced::event_handler_function{}),
               invalid_argument_error);
  EXPECT_THROW(
      catch_up_subscription(event_log(store), std::shared_ptr<eventsourced::event_handler>{}),
      invalid_argument_error);
  EXPECT_THROW(catch_up_subscription(event_log(store), noop, {.from_position = -1}),
               invalid_argument_error);
  EXPECT_THROW(catch_up_subscription(event_log(store), noop, {.batch_size = 0}),
               invalid_argument_error);
  EXPECT_THROW(catch_up_subscription(event_log(store), noop, {.checkpoint_name = "bad\xff"}),
               invalid_argument_error);
  EXPECT_THROW(catch_up_subscription(event_log(store), noop, {.wait_timeout = -1ms}),
               invalid_argument_error);
  catch_up_subscription s(event_log(store), noop, quick());
  EXPECT_THROW(s.poll(-1ms), invalid_argument_error);
  EXPECT_THROW(s.wait_until_handled(-1, 1ms), invalid_argument_error);
  s.start();
  EXPECT_THROW(s.poll(0ms), invalid_argument_error) << "poll while the thread runs";
  s.stop();
  EXPECT_NO_THROW(s.poll(0ms));
}

}  // namespace
}  // namespace eventsourced_test
