// The event bus conformance suite (see event_bus_conformance.hpp): subscribing by type and to
// every event, handler objects and functions, RAII unsubscribe and its guarantees, handlers that
// subscribe, unsubscribe or throw, per-stream order under concurrent publishers, close.
#include "conformance/event_bus_conformance.hpp"

#include <algorithm>
#include <atomic>
#include <map>
#include <optional>
#include <stdexcept>
#include <thread>

#include <eventsourced/error.hpp>

namespace eventsourced::conformance {
namespace {

using namespace std::chrono_literals;

class counting_handler final : public event_handler {
 public:
  void handle_event(const event& e) override { received.add(e); }
  received_events received;
};

TEST_P(event_bus_conformance, a_type_subscriber_gets_the_events_of_its_type_only) {
  received_events created;
  subscription s = bus().subscribe("PlayerCreated", created.recorder());
  const event a = make_test_event("PlayerCreated");
  const event b = make_test_event("PlayerRenamed");
  const event c = make_test_event("PlayerCreated");
  bus().publish(a);
  bus().publish(b);
  bus().publish(c);
  settle();
  EXPECT_EQ(created.ids(), (std::vector<std::string>{a.id, c.id}));
}

TEST_P(event_bus_conformance, an_all_events_subscriber_gets_every_event) {
  received_events all;
  subscription s = bus().subscribe(kAllEvents, all.recorder());
  const event a = make_test_event("PlayerCreated");
  const event b = make_test_event("PlayerRenamed");
  bus().publish(a);
  bus().publish(b);
  settle();
  EXPECT_EQ(all.ids(), (std::vector<std::string>{a.id, b.id}));
}

TEST_P(event_bus_conformance, the_delivered_event_equals_the_published_one) {
  received_events all;
  subscription s = bus().subscribe(kAllEvents, all.recorder());
  event e =
      make_test_event("PlayerCreated", "ann", 7, {{"name", "Ann"}, {"tags", {1, "x", nullptr}}});
  e.metadata = {{"correlation_id", "c-1"}, {"client", {{"id", 3}}}};
  bus().publish(e);
  settle();
  const auto got = all.events();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, e.id);
  EXPECT_EQ(got[0].type, e.type);
  EXPECT_EQ(got[0].stream, e.stream);
  EXPECT_EQ(got[0].stream_version, e.stream_version);
  EXPECT_EQ(got[0].position, e.position);
  EXPECT_EQ(
      std::chrono::duration_cast<std::chrono::microseconds>(got[0].timestamp.time_since_epoch()),
      std::chrono::duration_cast<std::chrono::microseconds>(e.timestamp.time_since_epoch()));
  EXPECT_EQ(got[0].data, e.data);
  EXPECT_EQ(got[0].metadata, e.metadata);
}

TEST_P(event_bus_conformance, handler_objects_and_functions_both_receive_each_event_once) {
  auto object = std::make_shared<counting_handler>();
  received_events function;
  subscription a = bus().subscribe("PlayerCreated", object);
  subscription b = bus().subscribe("PlayerCreated", function.recorder());
  subscription c = bus().subscribe(kAllEvents, function.recorder());
  const event e = make_test_event("PlayerCreated");
  bus().publish(e);
  settle();
  EXPECT_EQ(object->received.ids(), std::vector<std::string>{e.id});
  EXPECT_EQ(function.ids(), (std::vector<std::string>{e.id, e.id}));  // two subscriptions
}

TEST_P(event_bus_conformance, publishing_a_batch_delivers_its_events_in_order) {
  received_events all;
  subscription s = bus().subscribe(kAllEvents, all.recorder());
  std::vector<event> batch;
  for (int i = 1; i <= 5; ++i) batch.push_back(make_test_event("Scored", "ann", i));
  bus().publish(std::span<const event>(batch));
  settle();
  std::vector<std::string> expected;
  for (const auto& e : batch) expected.push_back(e.id);
  EXPECT_EQ(all.ids(), expected);
}

TEST_P(event_bus_conformance, destroying_the_subscription_stops_delivery) {
  received_events got;
  std::optional<subscription> s = bus().subscribe(kAllEvents, got.recorder());
  const event before = make_test_event("A");
  bus().publish(before);
  settle();
  s.reset();
  bus().publish(make_test_event("A"));
  settle();
  EXPECT_EQ(got.ids(), std::vector<std::string>{before.id});
}

TEST_P(event_bus_conformance, unsubscribe_is_idempotent_and_a_moved_from_handle_is_inactive) {
  received_events got;
  subscription s = bus().subscribe(kAllEvents, got.recorder());
  EXPECT_TRUE(s.active());
  subscription moved = std::move(s);
  EXPECT_FALSE(s.active());  // NOLINT(bugprone-use-after-move): the promise under test
  EXPECT_TRUE(moved.active());
  s.unsubscribe();  // an empty handle: nothing to do
  moved.unsubscribe();
  moved.unsubscribe();
  EXPECT_FALSE(moved.active());
  bus().publish(make_test_event("A"));
  settle();
  EXPECT_EQ(got.size(), 0u);
}

TEST_P(event_bus_conformance, move_assigning_a_subscription_ends_the_one_it_replaces) {
  received_events first, second;
  subscription s = bus().subscribe(kAllEvents, first.recorder());
  s = bus().subscribe(kAllEvents, second.recorder());
  bus().publish(make_test_event("A"));
  settle();
  EXPECT_EQ(first.size(), 0u);
  EXPECT_EQ(second.size(), 1u);
}

TEST_P(event_bus_conformance, after_unsubscribe_returns_the_handler_is_not_running) {
  std::atomic<bool> running{false};
  std::atomic<bool> unsubscribing{false};
  std::atomic<int> calls{0};
  subscription s = bus().subscribe(kAllEvents, [&](const event&) {
    running = true;
    ++calls;
    while (!unsubscribing) std::this_thread::yield();
    // Gives a broken unsubscribe time to return while this call is still running.
    std::this_thread::sleep_for(20ms);
    running = false;
  });
  // Published from another thread: a synchronous bus runs the handler there.
  std::thread publisher([&] { bus().publish(make_test_event("A")); });
  EXPECT_TRUE(eventually([&] { return running.load(); }));
  unsubscribing = true;
  s.unsubscribe();
  EXPECT_FALSE(running.load()) << "unsubscribe() returned while the handler was running";
  publisher.join();
  bus().publish(make_test_event("A"));
  settle();
  EXPECT_EQ(calls.load(), 1);
}

TEST_P(event_bus_conformance, a_handler_that_unsubscribes_itself_returns_and_gets_nothing_more) {
  std::atomic<int> calls{0};
  subscription s;
  s = bus().subscribe(kAllEvents, [&](const event&) {
    ++calls;
    s.unsubscribe();  // from inside: must not wait for this very call
  });
  for (int i = 1; i <= 3; ++i) bus().publish(make_test_event("A", "s1", i));
  settle();
  EXPECT_EQ(calls.load(), 1);
  EXPECT_FALSE(s.active());
}

TEST_P(event_bus_conformance, a_handler_that_destroys_its_own_subscription_is_safe) {
  std::atomic<int> calls{0};
  auto s = std::make_unique<subscription>();
  *s = bus().subscribe(kAllEvents, [&](const event&) {
    ++calls;
    s.reset();  // the handle, and the bus's cancel function in it, go away mid-call
  });
  for (int i = 1; i <= 3; ++i) bus().publish(make_test_event("A", "s1", i));
  settle();
  EXPECT_EQ(calls.load(), 1);
}

TEST_P(event_bus_conformance, a_handler_may_unsubscribe_another_handler) {
  received_events victim_got;
  std::optional<subscription> victim;
  std::atomic<int> killer_calls{0};
  std::atomic<std::size_t> victim_count_at_unsubscribe{0};
  subscription killer = bus().subscribe(kAllEvents, [&](const event&) {
    if (++killer_calls == 1) {
      victim.reset();
      // unsubscribe() has returned: the victim is not running and is never called again
      // (bus.hpp). What it got before depends on the bus's threads.
      victim_count_at_unsubscribe = victim_got.size();
    }
  });
  victim = bus().subscribe(kAllEvents, victim_got.recorder());
  for (int i = 1; i <= 3; ++i) bus().publish(make_test_event("A", "s1", i));
  settle();
  EXPECT_EQ(killer_calls.load(), 3);
  EXPECT_EQ(victim_got.size(), victim_count_at_unsubscribe.load());
}

TEST_P(event_bus_conformance, a_handler_may_subscribe_and_the_new_subscriber_gets_later_events) {
  received_events late;
  std::optional<subscription> late_subscription;
  std::atomic<bool> subscribed{false};
  subscription s = bus().subscribe("First", [&](const event&) {
    late_subscription = bus().subscribe("Second", late.recorder());
    subscribed = true;
  });
  bus().publish(make_test_event("First"));
  settle();
  ASSERT_TRUE(subscribed.load());
  const event second = make_test_event("Second");
  bus().publish(second);
  settle();
  EXPECT_EQ(late.ids(), std::vector<std::string>{second.id});
}

TEST_P(event_bus_conformance, a_throwing_handler_stops_neither_other_handlers_nor_later_events) {
  std::atomic<int> thrower_calls{0};
  received_events before, after;
  subscription a = bus().subscribe(kAllEvents, before.recorder());
  subscription b = bus().subscribe(kAllEvents, [&](const event&) {
    ++thrower_calls;
    throw std::runtime_error("handler failed");
  });
  subscription c = bus().subscribe(kAllEvents, after.recorder());
  EXPECT_NO_THROW(bus().publish(make_test_event("A", "s1", 1)));
  EXPECT_NO_THROW(bus().publish(make_test_event("A", "s1", 2)));
  settle();
  EXPECT_EQ(before.size(), 2u);
  EXPECT_EQ(after.size(), 2u);
  EXPECT_GE(thrower_calls.load(), 2);
}

TEST_P(event_bus_conformance, subscribe_refuses_an_empty_type_and_a_null_handler) {
  EXPECT_THROW(bus().subscribe("", [](const event&) {}), invalid_argument_error);
  EXPECT_THROW(bus().subscribe("A", event_handler_function{}), invalid_argument_error);
  EXPECT_THROW(bus().subscribe("A", std::shared_ptr<event_handler>{}), invalid_argument_error);
}

TEST_P(event_bus_conformance, publish_after_close_throws_store_closed_error) {
  received_events got;
  subscription s = bus().subscribe(kAllEvents, got.recorder());
  bus().close();
  bus().close();  // idempotent
  EXPECT_THROW(bus().publish(make_test_event("A")), store_closed_error);
  EXPECT_EQ(got.size(), 0u);
}

TEST_P(event_bus_conformance, events_of_one_stream_arrive_in_publish_order_from_several_threads) {
  if (!GetParam().ordered_per_stream) GTEST_SKIP() << "this bus does not order streams";
  constexpr int kThreads = 4;
  constexpr int kStreamsPerThread = 8;
  constexpr int kEventsPerStream = 200;
  std::mutex mutex;
  std::map<std::string, std::vector<std::int64_t>> seen;  // stream id -> versions in arrival order
  subscription s = bus().subscribe(kAllEvents, [&](const event& e) {
    std::lock_guard lock(mutex);
    seen[e.stream.id].push_back(e.stream_version);
  });
  std::vector<std::thread> publishers;
  for (int t = 0; t < kThreads; ++t) {
    publishers.emplace_back([&, t] {
      // Each thread owns its streams and interleaves them, so the queues mix many streams.
      for (int v = 1; v <= kEventsPerStream; ++v) {
        for (int k = 0; k < kStreamsPerThread; ++k) {
          bus().publish(
              make_test_event("Scored", "t" + std::to_string(t) + "s" + std::to_string(k), v));
        }
      }
    });
  }
  for (auto& p : publishers) p.join();
  settle();
  std::lock_guard lock(mutex);
  ASSERT_EQ(seen.size(), static_cast<std::size_t>(kThreads * kStreamsPerThread));
  std::vector<std::int64_t> expected(kEventsPerStream);
  for (int v = 0; v < kEventsPerStream; ++v) expected[static_cast<std::size_t>(v)] = v + 1;
  for (const auto& [stream, versions] : seen) EXPECT_EQ(versions, expected) << "stream " << stream;
}

TEST_P(event_bus_conformance, subscribing_and_unsubscribing_while_others_publish_is_safe) {
  std::atomic<bool> stop{false};
  std::atomic<std::int64_t> delivered{0};
  subscription steady = bus().subscribe(kAllEvents, [&](const event&) { ++delivered; });
  std::vector<std::thread> publishers;
  std::atomic<int> published{0};
  for (int t = 0; t < 2; ++t) {
    publishers.emplace_back([&, t] {
      for (int v = 1; !stop; ++v) {
        bus().publish(make_test_event(v % 2 ? "A" : "B", "p" + std::to_string(t), v));
        ++published;
      }
    });
  }
  std::vector<std::thread> churners;
  for (int t = 0; t < 2; ++t) {
    churners.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        std::atomic<int> calls{0};
        subscription s = bus().subscribe(t == 0 ? "A" : std::string(kAllEvents),
                                         [&calls](const event&) { ++calls; });
        std::this_thread::yield();
        s.unsubscribe();
        const int after = calls.load();
        // unsubscribe() returned: not one more call (and calls stays alive until then).
        std::this_thread::yield();
        EXPECT_EQ(calls.load(), after);
      }
    });
  }
  for (auto& c : churners) c.join();
  stop = true;
  for (auto& p : publishers) p.join();
  settle();
  EXPECT_EQ(delivered.load(), published.load());
}

}  // namespace
}  // namespace eventsourced::conformance
