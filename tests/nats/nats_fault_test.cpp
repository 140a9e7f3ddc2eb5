// Server outages: a private nats-server (own ports, own JetStream store) is stopped and started
// again while buses use it. Publishing during the outage throws engine_unavailable_error
// (retryable) within a bounded time instead of hanging; the client reconnects by itself; a
// durable consumer continues, and every event the server acknowledged is delivered.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <eventsourced/error.hpp>
#include <eventsourced/nats/jetstream_bus.hpp>
#include <eventsourced/nats/nats_bus.hpp>

#include "conformance/event_bus_conformance.hpp"
#include "nats_test_support.hpp"

namespace eventsourced {
namespace {

using namespace std::chrono_literals;
using conformance::eventually;
using conformance::make_test_event;
using steady = std::chrono::steady_clock;

// Generous bounds: they only catch a publish that hangs, never measure speed.
constexpr auto kRequestTimeout = 2000ms;
constexpr auto kPublishBound = 10s;

nats_connection_options fast_reconnect(const std::string& url) {
  return {.url = url,
          .connect_timeout = 1000ms,
          .reconnect_wait = 100ms,
          .request_timeout = kRequestTimeout};
}

// Publishes e until the server acknowledges it (bounded: 30 s); each failure must be a
// retryable engine_unavailable_error thrown within kPublishBound.
void publish_until_acknowledged(jetstream_bus& bus, const event& e) {
  const auto deadline = steady::now() + 30s;
  for (;;) {
    const auto start = steady::now();
    try {
      bus.publish(e);
      return;
    } catch (const engine_unavailable_error& error) {
      EXPECT_TRUE(error.retryable());
      EXPECT_LT(steady::now() - start, kPublishBound) << "publish took too long to fail";
    }
    ASSERT_LT(steady::now(), deadline) << "the server did not come back";
    std::this_thread::sleep_for(50ms);
  }
}

TEST(nats_fault, jetstream_survives_a_server_restart_without_losing_acknowledged_events) {
  nats_testing::private_nats_server server;
  const std::string ns = nats_testing::unique_namespace("es_fault");
  jetstream_bus publisher({.connection = fast_reconnect(server.url()), .ns = ns, .ack_wait = 2s});
  jetstream_bus consumer({.connection = fast_reconnect(server.url()), .ns = ns, .ack_wait = 2s});
  std::mutex mutex;
  std::set<std::string> received;
  subscription s = consumer.subscribe(kAllEvents,
                                      [&](const event& e) {
                                        std::lock_guard lock(mutex);
                                        received.insert(e.id);
                                      },
                                      {.durable = "survivor"});
  const auto received_all = [&](const std::set<std::string>& ids) {
    std::lock_guard lock(mutex);
    for (const auto& id : ids) {
      if (received.count(id) == 0) return false;
    }
    return true;
  };

  std::set<std::string> acknowledged;  // events whose publish returned: stored by the server
  for (int i = 0; i < 20; ++i) {
    const event e = make_test_event("Before", "s", i + 1);
    publisher.publish(e);
    acknowledged.insert(e.id);
  }

  server.stop();
  // While the server is down, publishing fails fast with a retryable error (the client may take
  // a moment to notice the loss: attempts before that fail on the missing answer).
  std::vector<event> refused;
  for (int i = 0; i < 5; ++i) {
    const event e = make_test_event("During", "s", i + 1);
    const auto start = steady::now();
    try {
      publisher.publish(e);
      ADD_FAILURE() << "a publish succeeded with the server down";
    } catch (const engine_unavailable_error& error) {
      EXPECT_TRUE(error.retryable());
      refused.push_back(e);
    }
    EXPECT_LT(steady::now() - start, kPublishBound) << "publish took too long to fail";
  }

  // A batch during the outage fails the same way, within a bounded time.
  {
    std::vector<event> batch;
    for (int i = 0; i < 3; ++i) batch.push_back(make_test_event("DuringBatch", "b", i + 1));
    const auto start = steady::now();
    EXPECT_THROW(publisher.publish(std::span<const event>(batch)), engine_unavailable_error);
    EXPECT_LT(steady::now() - start, kPublishBound) << "a batch publish took too long to fail";
    for (const event& e : batch) refused.push_back(e);
  }

  server.start();  // same ports, same store: the stream and the durable are still there
  // The same bus objects, reconnected by the client library: the refused events go through.
  for (const event& e : refused) {
    publish_until_acknowledged(publisher, e);
    acknowledged.insert(e.id);
  }
  std::vector<event> after_batch;
  for (int i = 0; i < 10; ++i) after_batch.push_back(make_test_event("AfterBatch", "b", i + 1));
  publisher.publish(std::span<const event>(after_batch));
  for (const event& e : after_batch) acknowledged.insert(e.id);
  for (int i = 0; i < 20; ++i) {
    const event e = make_test_event("After", "s", i + 1);
    publish_until_acknowledged(publisher, e);
    acknowledged.insert(e.id);
  }
  EXPECT_TRUE(eventually([&] { return received_all(acknowledged); }))
      << "the durable consumer did not get every acknowledged event after the restart";
  EXPECT_TRUE(consumer.wait_idle());
}

TEST(nats_fault, core_nats_publish_fails_fast_while_down_and_delivery_resumes_after) {
  nats_testing::private_nats_server server;
  const std::string ns = nats_testing::unique_namespace("es_fault");
  nats_bus bus({.connection = fast_reconnect(server.url()), .ns = ns});
  conformance::received_events got;
  subscription s = bus.subscribe(kAllEvents, got.recorder());
  bus.publish(make_test_event("A"));
  ASSERT_TRUE(bus.flush());

  server.stop();
  // Once the client has noticed the loss, publish refuses at once (core NATS keeps nothing).
  EXPECT_TRUE(eventually([&] {
    try {
      bus.publish(make_test_event("Lost"));
      return false;
    } catch (const engine_unavailable_error& error) {
      return error.retryable();
    }
  }));

  server.start();
  // The subscription comes back by itself: an event published after the reconnection arrives.
  const event after = make_test_event("After");
  EXPECT_TRUE(eventually([&] {
    try {
      bus.publish(after);
      return bus.flush(1s);
    } catch (const engine_unavailable_error&) {
      return false;
    }
  }));
  EXPECT_TRUE(eventually([&] {
    const auto ids = got.ids();
    return std::find(ids.begin(), ids.end(), after.id) != ids.end();
  }));
}

}  // namespace
}  // namespace eventsourced
