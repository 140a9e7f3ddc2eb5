// redis_pubsub_bus: the bus conformance suite, then channels, retries and flush.
#include <eventsourced/redis/redis_pubsub_bus.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include <eventsourced/error.hpp>

#include "conformance/event_bus_conformance.hpp"
#include "redis_test_support.hpp"

namespace eventsourced::conformance {
namespace {

using namespace std::chrono_literals;
using redis_testing::kRedisUri;

std::unique_ptr<event_bus> make_pubsub_bus() {
  return std::make_unique<redis_pubsub_bus>(redis_pubsub_bus_options{
      .connection = {.uri = *eventsourced::testing::server_address(kRedisUri)},
      .ns = redis_testing::unique_namespace()});
}

void flush(event_bus& bus) {
  if (!dynamic_cast<redis_pubsub_bus&>(bus).flush()) ADD_FAILURE() << "flush timed out";
}

INSTANTIATE_TEST_SUITE_P(redis_pubsub, event_bus_conformance,
                         ::testing::Values(bus_under_test{"redis_pubsub", make_pubsub_bus, flush,
                                                          true, kRedisUri}),
                         bus_under_test_name);

class redis_pubsub_bus_test : public ::testing::Test {
 protected:
  void SetUp() override { EVENTSOURCED_REQUIRE_SERVER(kRedisUri, uri_); }
  redis_pubsub_bus_options options() const { return {.connection = {.uri = uri_}, .ns = ns_}; }
  std::string uri_;
  std::string ns_ = redis_testing::unique_namespace();
};

TEST_F(redis_pubsub_bus_test, types_map_to_channels_that_cannot_collide_or_glob) {
  redis_pubsub_bus bus(options());
  EXPECT_EQ(bus.channel_of("PlayerCreated"), ns_ + ":e:PlayerCreated");
  EXPECT_EQ(bus.channel_of("a:b*c"), ns_ + ":e:a%3Ab%2Ac");
  EXPECT_NE(bus.channel_of("a:b"), bus.channel_of("a%3Ab"));
}

TEST_F(redis_pubsub_bus_test, another_bus_on_the_namespace_receives_and_odd_types_survive) {
  redis_pubsub_bus publisher(options());
  redis_pubsub_bus subscriber(options());
  received_events got, star;
  subscription a = subscriber.subscribe("odd:type*[x]", got.recorder());
  subscription b = subscriber.subscribe("Other", star.recorder());
  const event e = make_test_event("odd:type*[x]");
  publisher.publish(e);
  publisher.publish(make_test_event("odd:typeZ[x]"));
  EXPECT_TRUE(eventually([&] { return got.size() == 1; }));
  ASSERT_TRUE(subscriber.flush());
  EXPECT_EQ(got.ids(), std::vector<std::string>{e.id});
  EXPECT_EQ(star.size(), 0u);
}

TEST_F(redis_pubsub_bus_test, a_failing_handler_is_retried_then_reported) {
  std::mutex mutex;
  std::vector<handler_failure> failures;
  auto o = options();
  o.max_attempts = 3;
  o.on_handler_failure = [&](const handler_failure& f) {
    std::lock_guard lock(mutex);
    failures.push_back(f);
  };
  redis_pubsub_bus bus(o);
  std::atomic<int> calls{0};
  subscription s = bus.subscribe("A", [&](const event&) {
    ++calls;
    throw std::runtime_error("no");
  });
  const event e = make_test_event("A");
  bus.publish(e);
  ASSERT_TRUE(bus.flush());
  EXPECT_EQ(calls.load(), 3);
  std::lock_guard lock(mutex);
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_EQ(failures[0].failed_event.id, e.id);
  EXPECT_EQ(failures[0].attempts, 3);
}

TEST_F(redis_pubsub_bus_test, messages_that_are_not_events_are_counted_and_dropped) {
  redis_pubsub_bus bus(options());
  received_events got;
  subscription s = bus.subscribe(kAllEvents, got.recorder());
  redis_testing::raw_client raw(uri_);
  raw.run({"PUBLISH", ns_ + ":e:A", "{not json"});
  const event e = make_test_event("A");
  bus.publish(e);
  ASSERT_TRUE(bus.flush());
  EXPECT_EQ(got.ids(), std::vector<std::string>{e.id});
  EXPECT_EQ(bus.malformed_messages(), 1u);
}

TEST_F(redis_pubsub_bus_test, a_subscriber_that_was_not_there_misses_the_event) {
  redis_pubsub_bus publisher(options());
  const event missed = make_test_event("A");
  publisher.publish(missed);
  redis_pubsub_bus late(options());
  received_events got;
  subscription s = late.subscribe(kAllEvents, got.recorder());
  const event seen = make_test_event("A");
  publisher.publish(seen);
  EXPECT_TRUE(eventually([&] { return got.size() == 1; }));
  ASSERT_TRUE(late.flush());
  EXPECT_EQ(got.ids(), std::vector<std::string>{seen.id});
}

TEST_F(redis_pubsub_bus_test, flush_from_a_handler_and_use_after_close_are_refused) {
  redis_pubsub_bus bus(options());
  std::atomic<bool> refused{false};
  subscription s = bus.subscribe("A", [&](const event&) {
    try {
      bus.flush();
    } catch (const invalid_argument_error&) {
      refused = true;
    }
  });
  bus.publish(make_test_event("A"));
  ASSERT_TRUE(bus.flush());
  EXPECT_TRUE(refused.load());
  bus.close();
  EXPECT_THROW(bus.publish(make_test_event("A")), store_closed_error);
  EXPECT_THROW(bus.flush(), store_closed_error);
  EXPECT_THROW(redis_pubsub_bus({.connection = {.uri = uri_}, .ns = "bad ns"}),
               invalid_argument_error);
}

}  // namespace
}  // namespace eventsourced::conformance
