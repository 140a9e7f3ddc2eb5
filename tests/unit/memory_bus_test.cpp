// in_memory_event_bus: the bus conformance suite in synchronous and asynchronous modes, then what
// memory_bus.hpp promises beyond it: delivery order, the failure policy (retries, dead letters,
// the failure callback), back-pressure, flush, close, options.
#include <eventsourced/event/memory_bus.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <eventsourced/error.hpp>

#include "conformance/event_bus_conformance.hpp"

namespace eventsourced::conformance {
namespace {

void flush_memory_bus(event_bus& bus) {
  dynamic_cast<in_memory_event_bus&>(bus).flush();
}

bus_under_test memory_bus(std::string name, in_memory_bus_options options) {
  return {std::move(name), [options] { return std::make_unique<in_memory_event_bus>(options); },
          flush_memory_bus};
}

INSTANTIATE_TEST_SUITE_P(
    memory, event_bus_conformance,
    ::testing::Values(
        memory_bus("synchronous", {.dispatch = bus_dispatch::synchronous}),
        memory_bus("asynchronous_1_worker", {.dispatch = bus_dispatch::asynchronous, .workers = 1}),
        // A tiny queue makes publishers block often: back-pressure under every test.
        memory_bus("asynchronous_4_workers_queue_4",
                   {.dispatch = bus_dispatch::asynchronous, .workers = 4, .queue_capacity = 4})),
    bus_under_test_name);

}  // namespace
}  // namespace eventsourced::conformance

namespace eventsourced {

void PrintTo(bus_dispatch mode, std::ostream* os) {
  *os << (mode == bus_dispatch::synchronous ? "synchronous" : "asynchronous");
}

namespace {

using namespace std::chrono_literals;
using conformance::eventually;
using conformance::make_test_event;
using conformance::received_events;

// The tests below run in both modes where the promise is the same.
class memory_bus_modes : public ::testing::TestWithParam<bus_dispatch> {
 protected:
  in_memory_bus_options options(in_memory_bus_options o = {}) const {
    o.dispatch = GetParam();
    if (o.dispatch == bus_dispatch::asynchronous) o.workers = 2;
    return o;
  }
};

INSTANTIATE_TEST_SUITE_P(memory_bus, memory_bus_modes,
                         ::testing::Values(bus_dispatch::synchronous, bus_dispatch::asynchronous),
                         [](const ::testing::TestParamInfo<bus_dispatch>& mode) {
                           return mode.param == bus_dispatch::synchronous ? "synchronous"
                                                                          : "asynchronous";
                         });

std::string message_of(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "(not a std::exception)";
  }
}

TEST_P(memory_bus_modes, subscribers_get_an_event_in_subscription_order_type_and_all_merged) {
  in_memory_event_bus bus(options());
  std::mutex mutex;
  std::vector<std::string> calls;
  auto record = [&](std::string who) {
    return [&, who](const event&) {
      std::lock_guard lock(mutex);
      calls.push_back(who);
    };
  };
  subscription a = bus.subscribe(kAllEvents, record("all-1"));
  subscription b = bus.subscribe("A", record("A-1"));
  subscription c = bus.subscribe(kAllEvents, record("all-2"));
  subscription d = bus.subscribe("A", record("A-2"));
  subscription e = bus.subscribe("B", record("B-1"));
  bus.publish(make_test_event("A"));
  bus.flush();
  std::lock_guard lock(mutex);
  EXPECT_EQ(calls, (std::vector<std::string>{"all-1", "A-1", "all-2", "A-2"}));
}

TEST_P(memory_bus_modes, a_failing_handler_is_retried_up_to_max_attempts_then_reported_once) {
  std::vector<handler_failure> reported;
  std::mutex mutex;
  in_memory_event_bus bus(
      options({.max_attempts = 3, .on_handler_failure = [&](const handler_failure& f) {
                 std::lock_guard lock(mutex);
                 reported.push_back(f);
               }}));
  std::atomic<int> calls{0};
  subscription s = bus.subscribe("A", [&](const event&) {
    ++calls;
    throw std::runtime_error("database down");
  });
  const event e = make_test_event("A");
  EXPECT_NO_THROW(bus.publish(e));
  bus.flush();
  EXPECT_EQ(calls.load(), 3);
  EXPECT_EQ(bus.failures_reported(), 1u);
  std::lock_guard lock(mutex);
  ASSERT_EQ(reported.size(), 1u);
  EXPECT_EQ(reported[0].failed_event.id, e.id);
  EXPECT_EQ(reported[0].subscribed_type, "A");
  EXPECT_EQ(reported[0].attempts, 3);
  EXPECT_EQ(message_of(reported[0].error), "database down");
  const auto dead = bus.dead_letters();
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].failed_event.id, e.id);
  EXPECT_EQ(dead[0].attempts, 3);
}

TEST_P(memory_bus_modes, a_handler_that_succeeds_on_a_retry_is_not_reported) {
  in_memory_event_bus bus(options({.max_attempts = 3}));
  std::atomic<int> calls{0};
  subscription s = bus.subscribe("A", [&](const event&) {
    if (++calls < 2) throw std::runtime_error("transient");
  });
  bus.publish(make_test_event("A"));
  bus.flush();
  EXPECT_EQ(calls.load(), 2);
  EXPECT_EQ(bus.failures_reported(), 0u);
  EXPECT_TRUE(bus.dead_letters().empty());
}

TEST_P(memory_bus_modes, without_retries_a_failure_is_reported_after_one_call) {
  in_memory_event_bus bus(options());
  std::atomic<int> calls{0};
  subscription s = bus.subscribe(kAllEvents, [&](const event&) {
    ++calls;
    throw 42;  // not even a std::exception: still caught and reported
  });
  bus.publish(make_test_event("A"));
  bus.flush();
  EXPECT_EQ(calls.load(), 1);
  const auto dead = bus.dead_letters();
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].subscribed_type, kAllEvents);
  EXPECT_EQ(dead[0].attempts, 1);
  EXPECT_EQ(message_of(dead[0].error), "(not a std::exception)");
}

TEST_P(memory_bus_modes, dead_letters_keep_the_latest_failures_and_count_those_dropped) {
  in_memory_event_bus bus(options({.dead_letter_capacity = 2}));
  subscription s = bus.subscribe("A", [](const event&) { throw std::runtime_error("no"); });
  std::vector<std::string> ids;
  for (int i = 1; i <= 5; ++i) {
    const event e = make_test_event("A", "s1", i);
    ids.push_back(e.id);
    bus.publish(e);
  }
  bus.flush();
  EXPECT_EQ(bus.failures_reported(), 5u);
  EXPECT_EQ(bus.dead_letters_dropped(), 3u);
  const auto dead = bus.dead_letters();
  ASSERT_EQ(dead.size(), 2u);
  EXPECT_EQ(dead[0].failed_event.id, ids[3]);
  EXPECT_EQ(dead[1].failed_event.id, ids[4]);
}

TEST_P(memory_bus_modes, a_throwing_failure_callback_changes_nothing) {
  std::atomic<int> callback_calls{0};
  in_memory_event_bus bus(options({.on_handler_failure = [&](const handler_failure&) {
    ++callback_calls;
    throw std::runtime_error("observer failed too");
  }}));
  received_events others;
  subscription a = bus.subscribe("A", [](const event&) { throw std::runtime_error("no"); });
  subscription b = bus.subscribe("A", others.recorder());
  EXPECT_NO_THROW(bus.publish(make_test_event("A", "s1", 1)));
  EXPECT_NO_THROW(bus.publish(make_test_event("A", "s1", 2)));
  bus.flush();
  EXPECT_EQ(callback_calls.load(), 2);
  EXPECT_EQ(bus.dead_letters().size(), 2u);
  EXPECT_EQ(others.size(), 2u);
}

TEST_P(memory_bus_modes, a_handler_unsubscribed_between_attempts_is_not_retried) {
  in_memory_event_bus bus(options({.max_attempts = 5}));
  std::atomic<int> calls{0};
  subscription s;
  s = bus.subscribe("A", [&](const event&) {
    ++calls;
    s.unsubscribe();
    throw std::runtime_error("and gone");
  });
  bus.publish(make_test_event("A"));
  bus.flush();
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(bus.failures_reported(), 1u);  // the failure itself still counts
}

TEST_P(memory_bus_modes, unsubscribe_releases_the_handler) {
  in_memory_event_bus bus(options());
  auto handler = std::make_shared<received_events>();
  std::weak_ptr<received_events> watch = handler;
  subscription s = bus.subscribe("A", [handler](const event& e) { handler->add(e); });
  handler.reset();
  bus.publish(make_test_event("A"));
  bus.flush();
  EXPECT_FALSE(watch.expired());
  s.unsubscribe();
  EXPECT_TRUE(watch.expired()) << "the bus still holds the handler after unsubscribe()";
}

TEST_P(memory_bus_modes, a_subscription_may_outlive_the_bus) {
  std::optional<in_memory_event_bus> bus(std::in_place, options());
  std::atomic<int> calls{0};
  subscription s = bus->subscribe("A", [&](const event&) { ++calls; });
  bus->publish(make_test_event("A"));
  bus.reset();
  EXPECT_EQ(calls.load(), 1);  // destruction drained the queue
  EXPECT_NO_THROW(s.unsubscribe());
}

TEST_P(memory_bus_modes, subscribe_after_close_throws_store_closed_error) {
  in_memory_event_bus bus(options());
  bus.close();
  EXPECT_THROW(bus.subscribe("A", [](const event&) {}), store_closed_error);
}

TEST_P(memory_bus_modes, close_from_inside_a_handler_returns_and_later_publishes_throw) {
  in_memory_event_bus bus(options());
  std::atomic<bool> closed_inside{false};
  subscription s = bus.subscribe("A", [&](const event&) {
    bus.close();
    closed_inside = true;
  });
  bus.publish(make_test_event("A"));
  ASSERT_TRUE(eventually([&] { return closed_inside.load(); }));
  EXPECT_THROW(bus.publish(make_test_event("A")), store_closed_error);
  bus.close();  // from outside: joins what the handler's close() left running
}

TEST(memory_bus, synchronous_handlers_have_run_when_publish_returns) {
  in_memory_event_bus bus;  // synchronous is the default
  received_events got;
  subscription s = bus.subscribe("A", got.recorder());
  bus.publish(make_test_event("A"));
  EXPECT_EQ(got.size(), 1u);
  EXPECT_EQ(bus.pending(), 0u);
}

TEST(memory_bus, synchronous_close_waits_for_publishes_running_on_other_threads) {
  in_memory_event_bus bus;
  std::atomic<bool> inside{false}, release{false}, finished{false};
  subscription s = bus.subscribe("A", [&](const event&) {
    inside = true;
    while (!release) std::this_thread::yield();
    std::this_thread::sleep_for(20ms);  // a broken close() would return meanwhile
    finished = true;
  });
  std::thread publisher([&] { bus.publish(make_test_event("A")); });
  EXPECT_TRUE(eventually([&] { return inside.load(); }));
  release = true;
  bus.close();
  EXPECT_TRUE(finished.load()) << "close() returned while a handler was running";
  publisher.join();
}

TEST(memory_bus, options_out_of_range_are_refused) {
  EXPECT_THROW(in_memory_event_bus({.max_attempts = 0}), invalid_argument_error);
  EXPECT_THROW(in_memory_event_bus({.dispatch = bus_dispatch::asynchronous, .workers = 0}),
               invalid_argument_error);
  EXPECT_THROW(in_memory_event_bus({.dispatch = bus_dispatch::asynchronous, .queue_capacity = 0}),
               invalid_argument_error);
}

// A handler that waits until the test opens the gate, recording what it saw.
struct gated_handler {
  std::atomic<bool> open{false};
  std::atomic<int> entered{0};
  received_events got;
  event_handler_function function() {
    return [this](const event& e) {
      ++entered;
      while (!open) std::this_thread::sleep_for(1ms);
      got.add(e);
    };
  }
};

TEST(memory_bus, asynchronous_publish_blocks_while_the_queue_is_full) {
  constexpr std::size_t kCapacity = 3;
  in_memory_event_bus bus(
      {.dispatch = bus_dispatch::asynchronous, .workers = 1, .queue_capacity = kCapacity});
  gated_handler gate;
  subscription s = bus.subscribe(kAllEvents, gate.function());
  std::atomic<int> published{0};
  std::thread publisher([&] {
    for (int i = 1; i <= 10; ++i) {
      bus.publish(make_test_event("A", "s1", i));
      ++published;
    }
  });
  // The handler holds the first event, the queue the next ones: kCapacity in all, the one being
  // handled included.
  EXPECT_TRUE(eventually([&] { return published.load() >= static_cast<int>(kCapacity); }));
  std::this_thread::sleep_for(50ms);  // a publish that should block gets time to slip through
  EXPECT_EQ(published.load(), static_cast<int>(kCapacity));
  EXPECT_EQ(bus.pending(), kCapacity);
  gate.open = true;  // also when a check above failed: the threads must end
  publisher.join();
  bus.flush();
  EXPECT_EQ(gate.got.size(), 10u);
  EXPECT_EQ(bus.pending(), 0u);
}

TEST(memory_bus, a_slow_handler_never_lets_the_queues_grow_beyond_their_capacity) {
  constexpr std::size_t kCapacity = 2;
  constexpr std::size_t kWorkers = 2;
  in_memory_event_bus bus(
      {.dispatch = bus_dispatch::asynchronous, .workers = kWorkers, .queue_capacity = kCapacity});
  std::atomic<std::size_t> most_pending{0};
  std::atomic<int> handled{0};
  subscription s = bus.subscribe(kAllEvents, [&](const event&) {
    std::this_thread::sleep_for(100us);
    const std::size_t now = bus.pending();
    std::size_t seen = most_pending.load();
    while (now > seen && !most_pending.compare_exchange_weak(seen, now)) {
    }
    ++handled;
  });
  std::vector<std::thread> publishers;
  for (int t = 0; t < 3; ++t) {
    publishers.emplace_back([&, t] {
      for (int i = 1; i <= 100; ++i) {
        bus.publish(make_test_event("A", "p" + std::to_string(t) + "-" + std::to_string(i % 5), i));
        const std::size_t now = bus.pending();
        std::size_t seen = most_pending.load();
        while (now > seen && !most_pending.compare_exchange_weak(seen, now)) {
        }
      }
    });
  }
  for (auto& p : publishers) p.join();
  bus.flush();
  EXPECT_EQ(handled.load(), 300);
  EXPECT_LE(most_pending.load(), kCapacity * kWorkers);
  EXPECT_GE(most_pending.load(), 1u);
}

TEST(memory_bus, close_unblocks_a_publisher_waiting_for_room_with_store_closed_error) {
  in_memory_event_bus bus({.dispatch = bus_dispatch::asynchronous, .queue_capacity = 1});
  gated_handler gate;
  subscription s = bus.subscribe(kAllEvents, gate.function());
  bus.publish(make_test_event("A", "s1", 1));  // taken by the handler, which waits at the gate
  if (!eventually([&] { return gate.entered.load() == 1; })) {
    gate.open = true;
    FAIL() << "the handler never started: nothing below could be tested";
  }
  std::atomic<bool> refused{false};
  std::thread publisher([&] {
    try {
      bus.publish(make_test_event("A", "s1", 2));  // no room: blocks
    } catch (const store_closed_error&) {
      refused = true;
    }
  });
  std::this_thread::sleep_for(20ms);  // most likely blocked by now (refused either way)
  std::thread closer([&] { bus.close(); });
  EXPECT_TRUE(eventually([&] { return refused.load(); }));
  gate.open = true;
  closer.join();
  publisher.join();
  EXPECT_EQ(gate.got.size(), 1u);  // the accepted event was still handled
}

TEST(memory_bus, close_handles_every_accepted_event_before_returning) {
  in_memory_event_bus bus({.dispatch = bus_dispatch::asynchronous, .workers = 3});
  std::atomic<int> handled{0};
  subscription s = bus.subscribe(kAllEvents, [&](const event&) {
    std::this_thread::sleep_for(50us);
    ++handled;
  });
  for (int i = 1; i <= 300; ++i) bus.publish(make_test_event("A", "s" + std::to_string(i % 7), i));
  bus.close();
  EXPECT_EQ(handled.load(), 300);
  EXPECT_EQ(bus.pending(), 0u);
}

TEST(memory_bus, flush_waits_for_everything_published_before_it) {
  in_memory_event_bus bus({.dispatch = bus_dispatch::asynchronous, .workers = 2});
  std::atomic<int> handled{0};
  subscription s = bus.subscribe(kAllEvents, [&](const event&) {
    std::this_thread::sleep_for(100us);
    ++handled;
  });
  for (int i = 1; i <= 200; ++i) bus.publish(make_test_event("A", "s" + std::to_string(i % 5), i));
  bus.flush();
  EXPECT_EQ(handled.load(), 200);
}

TEST(memory_bus, flush_from_a_worker_handler_throws_instead_of_waiting_for_itself) {
  in_memory_event_bus bus({.dispatch = bus_dispatch::asynchronous});
  subscription s = bus.subscribe("A", [&](const event&) { bus.flush(); });
  bus.publish(make_test_event("A"));
  bus.flush();
  const auto dead = bus.dead_letters();
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_THROW(std::rethrow_exception(dead[0].error), invalid_argument_error);
}

TEST(memory_bus, a_handler_publishing_follow_up_events_into_its_full_queue_does_not_deadlock) {
  in_memory_event_bus bus({.dispatch = bus_dispatch::asynchronous, .queue_capacity = 1});
  std::atomic<int> follow_ups{0};
  subscription s = bus.subscribe("Start", [&](const event& e) {
    for (int i = 1; i <= 5; ++i) bus.publish(make_test_event("FollowUp", e.stream.id, i + 1));
  });
  subscription f = bus.subscribe("FollowUp", [&](const event&) { ++follow_ups; });
  bus.publish(make_test_event("Start"));
  bus.flush();  // Start handled: its follow-ups were published (past the capacity of 1)
  bus.flush();  // and now handled too
  EXPECT_EQ(follow_ups.load(), 5);
}

TEST(memory_bus, events_of_one_stream_are_never_handled_concurrently_with_several_workers) {
  in_memory_event_bus bus({.dispatch = bus_dispatch::asynchronous, .workers = 4});
  constexpr int kStreams = 6;
  std::vector<std::atomic<int>> running(kStreams);
  std::atomic<int> overlaps{0}, handled{0};
  subscription s = bus.subscribe(kAllEvents, [&](const event& e) {
    auto& r = running[static_cast<std::size_t>(std::stoi(e.stream.id))];
    if (++r != 1) ++overlaps;
    std::this_thread::yield();
    --r;
    ++handled;
  });
  std::vector<std::thread> publishers;
  for (int t = 0; t < 3; ++t) {
    publishers.emplace_back([&] {
      for (int i = 0; i < 300; ++i) bus.publish(make_test_event("A", std::to_string(i % kStreams)));
    });
  }
  for (auto& p : publishers) p.join();
  bus.flush();
  EXPECT_EQ(handled.load(), 900);
  EXPECT_EQ(overlaps.load(), 0);
}

}  // namespace
}  // namespace eventsourced
