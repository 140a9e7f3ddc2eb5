// Outages: a private redis-server is killed mid-run and started again on the same port (empty:
// no persistence). During the outage every call fails fast with engine_unavailable_error
// (retryable), the cache misses instead of failing; afterwards the clients reconnect by
// themselves and publishing and consuming work again. Nothing waits unboundedly.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <set>
#include <string>

#include <eventsourced/error.hpp>
#include <eventsourced/redis/redis_cache.hpp>
#include <eventsourced/redis/redis_pubsub_bus.hpp>
#include <eventsourced/redis/redis_streams_bus.hpp>

#include "conformance/event_bus_conformance.hpp"
#include "redis_test_support.hpp"

namespace eventsourced::conformance {
namespace {

using namespace std::chrono_literals;

redis_connection_options fast(const std::string& uri) {
  return {.uri = uri, .connect_timeout = 500ms, .command_timeout = 1000ms};
}

// Calls f until it succeeds (true) or 30 s passed (false); every failure must be retryable
// engine_unavailable_error.
bool retry_until_ok(const std::function<void()>& f, int& unavailable, int& other) {
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < deadline) {
    try {
      f();
      return true;
    } catch (const engine_unavailable_error& e) {
      EXPECT_TRUE(e.retryable());
      ++unavailable;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "not engine_unavailable_error: " << e.what();
      ++other;
    }
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

bool contains(const received_events& got, const std::string& id) {
  const auto ids = got.ids();
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

TEST(redis_fault, buses_and_cache_survive_a_killed_and_restarted_server) {
  redis_testing::private_redis_server server;
  const std::string ns = redis_testing::unique_namespace();
  redis_streams_bus streams({.connection = fast(server.uri()),
                             .ns = ns,
                             .retry_delay = 50ms,
                             .reclaim_min_idle = 500ms,
                             .poll_interval = 50ms});
  redis_pubsub_bus pubsub({.connection = fast(server.uri()), .ns = ns, .poll_interval = 50ms});
  redis_cache cache({.connection = fast(server.uri()), .prefix = ns});

  received_events durable_got, plain_got, pubsub_got;
  subscription d = streams.subscribe(kAllEvents, durable_got.recorder(),
                                     {.group = "g", .consumer = "c1", .from_beginning = true});
  subscription p = streams.subscribe(kAllEvents, plain_got.recorder());
  subscription q = pubsub.subscribe(kAllEvents, pubsub_got.recorder());

  for (int i = 0; i < 10; ++i) streams.publish(make_test_event("A", "s", i + 1));
  const event before = make_test_event("P");
  pubsub.publish(before);
  cache.put("c", "1", {.version = 1, .body = json{{"a", 1}}});
  ASSERT_TRUE(streams.wait_idle());
  ASSERT_TRUE(pubsub.flush());
  EXPECT_EQ(durable_got.size(), 10u);
  EXPECT_EQ(plain_got.size(), 10u);
  EXPECT_EQ(pubsub_got.ids(), std::vector<std::string>{before.id});
  ASSERT_TRUE(cache.get("c", "1").has_value());

  server.stop();  // SIGKILL: connections drop, nothing is saved

  // The outage: fast, retryable failures; the cache misses and counts.
  for (int i = 0; i < 3; ++i) {
    EXPECT_THROW(streams.publish(make_test_event("A")), engine_unavailable_error);
    EXPECT_THROW(pubsub.publish(make_test_event("P")), engine_unavailable_error);
  }
  EXPECT_THROW(streams.wait_idle(1s), engine_unavailable_error);
  EXPECT_FALSE(cache.get("c", "1").has_value());
  EXPECT_GT(cache.failures(), 0u);

  server.start();  // same port, empty

  int unavailable = 0, other = 0;
  const event after = make_test_event("A");
  ASSERT_TRUE(retry_until_ok([&] { streams.publish(after); }, unavailable, other));
  // The durable group is created again (from the beginning of the new, empty stream) by its
  // subscription thread, which reconnected by itself.
  EXPECT_TRUE(eventually([&] { return contains(durable_got, after.id); }));
  // The plain subscriptions' group is created again at the end of the stream: events published
  // once it exists arrive.
  EXPECT_TRUE(eventually([&] {
    const event probe = make_test_event("A");
    try {
      streams.publish(probe);
    } catch (const engine_unavailable_error&) {
      return false;
    }
    std::this_thread::sleep_for(50ms);
    return contains(plain_got, probe.id) || plain_got.size() > 10;
  }));
  ASSERT_TRUE(streams.wait_idle());

  // Pub/Sub: the subscriber reconnected and subscribed again; events published from then on
  // arrive (those published before its resubscription are lost, as documented).
  EXPECT_TRUE(eventually([&] {
    const event probe = make_test_event("P");
    try {
      pubsub.publish(probe);
    } catch (const engine_unavailable_error&) {
      return false;
    }
    std::this_thread::sleep_for(50ms);
    return contains(pubsub_got, probe.id);
  }));
  ASSERT_TRUE(pubsub.flush());

  // The cache works again (empty after the restart).
  EXPECT_FALSE(cache.get("c", "1").has_value());
  const auto failures = cache.failures();
  cache.put("c", "1", {.version = 2, .body = json{{"a", 2}}});
  ASSERT_TRUE(cache.get("c", "1").has_value());
  EXPECT_EQ(cache.get("c", "1").value().version, 2);
  EXPECT_EQ(cache.failures(), failures);
  EXPECT_EQ(other, 0);

  streams.close();
  pubsub.close();
}

TEST(redis_fault, an_event_whose_acknowledgement_was_lost_is_delivered_again) {
  // The plain subscriptions' reader loses its connection while a handler runs: the entry stays
  // pending in the ephemeral group, and the reader delivers it again after reconnecting.
  redis_testing::private_redis_server server;
  redis_streams_bus streams(
      {.connection = fast(server.uri()), .ns = "es_fault", .poll_interval = 50ms});
  std::atomic<int> calls{0};
  std::atomic<bool> release{false};
  received_events got;
  subscription s = streams.subscribe(kAllEvents, [&](const event& e) {
    if (++calls == 1) {
      while (!release) std::this_thread::sleep_for(1ms);
    }
    got.add(e);
  });
  const event e = make_test_event("A");
  streams.publish(e);
  ASSERT_TRUE(eventually([&] { return calls.load() == 1; }));
  redis_testing::raw_client raw(server.uri());
  raw.run({"CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"});  // the reader's connection too
  release = true;
  ASSERT_TRUE(streams.wait_idle());
  EXPECT_EQ(got.ids(), (std::vector<std::string>{e.id, e.id}));
}

TEST(redis_fault, subscribing_without_a_server_throws_and_close_does_not_hang) {
  redis_testing::private_redis_server server;
  const std::string uri = server.uri();
  server.stop();
  redis_streams_bus streams({.connection = fast(uri), .ns = "es_fault"});
  redis_pubsub_bus pubsub({.connection = fast(uri), .ns = "es_fault"});
  EXPECT_THROW(streams.subscribe("A", [](const event&) {}), engine_unavailable_error);
  EXPECT_THROW(streams.subscribe("A", [](const event&) {}, {.group = "g"}),
               engine_unavailable_error);
  EXPECT_THROW(pubsub.subscribe("A", [](const event&) {}), engine_unavailable_error);
  EXPECT_TRUE(pubsub.flush()) << "without subscriptions there is nothing to wait for";
  streams.close();
  pubsub.close();
}

TEST(redis_fault, a_subscription_whose_server_vanished_ends_promptly) {
  redis_testing::private_redis_server server;
  redis_streams_bus streams(
      {.connection = fast(server.uri()), .ns = "es_fault", .poll_interval = 50ms});
  received_events got;
  subscription s = streams.subscribe(kAllEvents, got.recorder(), {.group = "g"});
  subscription t = streams.subscribe(kAllEvents, got.recorder());
  server.stop();
  std::this_thread::sleep_for(200ms);  // the threads are now in their reconnect loops
  s.unsubscribe();
  t.unsubscribe();
  streams.close();
  SUCCEED();
}

}  // namespace
}  // namespace eventsourced::conformance
