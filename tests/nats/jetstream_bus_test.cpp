// jetstream_bus: the bus conformance suite, then what jetstream_bus.hpp promises beyond it:
// durable consumers (delivery to a subscriber that was down, one copy per durable, competing
// subscribers), deduplication by event id, acknowledgement after the handler, redelivery and
// max-deliver.
#include <eventsourced/nats/jetstream_bus.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <eventsourced/error.hpp>

#include "conformance/event_bus_conformance.hpp"
#include "nats_test_support.hpp"

namespace eventsourced::conformance {
namespace {

constexpr const char* kNatsUrl = "EVENTSOURCED_TEST_NATS_URL";

// A jetstream_bus on a stream of its own, deleted when the bus is destroyed.
class bus_with_own_stream final : public event_bus {
 public:
  explicit bus_with_own_stream(const std::string& url)
      : cleanup_(url, ns_), bus_(jetstream_bus_options{.connection = {.url = url}, .ns = ns_}) {}
  void publish(const event& e) override { bus_.publish(e); }
  subscription subscribe(std::string_view type, std::shared_ptr<event_handler> h) override {
    return bus_.subscribe(type, std::move(h));
  }
  using event_bus::subscribe;
  void close() noexcept override { bus_.close(); }
  jetstream_bus& inner() { return bus_; }

 private:
  std::string ns_ = nats_testing::unique_namespace();
  nats_testing::stream_cleanup cleanup_;  // declared before bus_: runs after the bus closed
  jetstream_bus bus_;
};

void wait_idle(event_bus& bus) {
  if (!dynamic_cast<bus_with_own_stream&>(bus).inner().wait_idle()) {
    ADD_FAILURE() << "jetstream_bus::wait_idle timed out";
  }
}

INSTANTIATE_TEST_SUITE_P(nats, event_bus_conformance,
                         ::testing::Values(bus_under_test{
                             "jetstream",
                             [] {
                               return std::make_unique<bus_with_own_stream>(
                                   *eventsourced::testing::server_address(kNatsUrl));
                             },
                             wait_idle, true, kNatsUrl}),
                         bus_under_test_name);

}  // namespace
}  // namespace eventsourced::conformance

namespace eventsourced {
namespace {

using namespace std::chrono_literals;
using conformance::eventually;
using conformance::make_test_event;
using conformance::received_events;

class jetstream_bus_test : public ::testing::Test {
 protected:
  void SetUp() override {
    EVENTSOURCED_REQUIRE_SERVER("EVENTSOURCED_TEST_NATS_URL", url_);
    cleanup_ = std::make_unique<nats_testing::stream_cleanup>(url_, ns_);
  }
  jetstream_bus_options options(jetstream_bus_options o = {}) {
    o.connection.url = url_;
    o.ns = ns_;
    return o;
  }
  std::string url_;
  std::string ns_ = nats_testing::unique_namespace();
  std::unique_ptr<nats_testing::stream_cleanup> cleanup_;
};

TEST_F(jetstream_bus_test, opening_creates_the_stream_and_publish_stores_each_event) {
  jetstream_bus bus(options());
  nats_testing::raw_connection raw(url_);
  EXPECT_EQ(raw.stream_messages(ns_), 0);
  EXPECT_EQ(bus.stream_name(), ns_);
  bus.publish(make_test_event("A"));
  bus.publish(make_test_event("B.c d"));
  EXPECT_EQ(raw.stream_messages(ns_), 2);
}

TEST_F(jetstream_bus_test, a_batch_is_stored_in_order_and_republishing_it_stores_nothing_new) {
  jetstream_bus bus(options());
  received_events got;
  subscription s = bus.subscribe(kAllEvents, got.recorder(), {.durable = "reader"});
  std::vector<event> batch;
  std::vector<std::string> ids;
  for (int i = 1; i <= 1500; ++i) {  // more than one chunk of asynchronous publishes
    batch.push_back(make_test_event(i % 2 ? "A" : "b.c", "s" + std::to_string(i % 7), i));
    ids.push_back(batch.back().id);
  }
  bus.publish(std::span<const event>(batch));
  nats_testing::raw_connection raw(url_);
  EXPECT_EQ(raw.stream_messages(ns_), 1500);
  bus.publish(std::span<const event>(batch));  // a relay publishing the batch again
  EXPECT_EQ(raw.stream_messages(ns_), 1500);
  ASSERT_TRUE(bus.wait_idle());
  EXPECT_EQ(got.ids(), ids);
}

TEST_F(jetstream_bus_test, the_same_event_published_twice_is_stored_once) {
  jetstream_bus bus(options());
  const event e = make_test_event("A");
  bus.publish(e);
  bus.publish(e);                   // a relay publishing again after a crash, or a retried publish
  jetstream_bus second(options());  // another process doing the same
  second.publish(e);
  nats_testing::raw_connection raw(url_);
  EXPECT_EQ(raw.stream_messages(ns_), 1);
  received_events got;
  subscription s = bus.subscribe(kAllEvents, got.recorder(), {.durable = "reader"});
  ASSERT_TRUE(bus.wait_idle());
  EXPECT_EQ(got.ids(), std::vector<std::string>{e.id});
}

TEST_F(jetstream_bus_test, a_durable_gets_what_was_published_while_its_subscriber_was_down) {
  std::vector<std::string> published;
  received_events got;
  {
    jetstream_bus bus(options());
    subscription s = bus.subscribe("A", got.recorder(), {.durable = "billing"});
    const event first = make_test_event("A");
    bus.publish(first);
    published.push_back(first.id);
    ASSERT_TRUE(bus.wait_idle());
  }  // the subscriber's process goes away
  {
    jetstream_bus publisher(options());
    for (int i = 0; i < 5; ++i) {
      const event e = make_test_event(i % 2 ? "A" : "Other");
      publisher.publish(e);
      if (e.type == "A") published.push_back(e.id);
    }
  }
  nats_testing::raw_connection raw(url_);
  EXPECT_TRUE(raw.consumer_exists(ns_, "billing"));
  jetstream_bus restarted(options());
  subscription s = restarted.subscribe("A", got.recorder(), {.durable = "billing"});
  ASSERT_TRUE(eventually([&] { return got.size() >= published.size(); }));
  ASSERT_TRUE(restarted.wait_idle());
  EXPECT_EQ(got.ids(), published);  // in order, each once
}

TEST_F(jetstream_bus_test, a_new_durable_starts_with_the_stored_events_unless_told_otherwise) {
  jetstream_bus bus(options());
  const event old_event = make_test_event("A");
  bus.publish(old_event);
  received_events from_start, from_now;
  subscription a = bus.subscribe("A", from_start.recorder(), {.durable = "history"});
  subscription b =
      bus.subscribe("A", from_now.recorder(), {.durable = "live", .start_at_new = true});
  const event new_event = make_test_event("A");
  bus.publish(new_event);
  ASSERT_TRUE(bus.wait_idle());
  EXPECT_EQ(from_start.ids(), (std::vector<std::string>{old_event.id, new_event.id}));
  EXPECT_EQ(from_now.ids(), std::vector<std::string>{new_event.id});
}

TEST_F(jetstream_bus_test, each_distinct_durable_gets_every_event) {
  jetstream_bus bus(options());
  received_events billing, audit, live;
  subscription a = bus.subscribe(kAllEvents, billing.recorder(), {.durable = "billing"});
  subscription b = bus.subscribe(kAllEvents, audit.recorder(), {.durable = "audit"});
  subscription c = bus.subscribe(kAllEvents, live.recorder());  // ephemeral
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) {
    const event e = make_test_event(i % 3 ? "A" : "B", "s", i + 1);
    bus.publish(e);
    ids.push_back(e.id);
  }
  ASSERT_TRUE(bus.wait_idle());
  EXPECT_EQ(billing.ids(), ids);
  EXPECT_EQ(audit.ids(), ids);
  EXPECT_EQ(live.ids(), ids);
}

TEST_F(jetstream_bus_test, subscribers_of_one_durable_compete_and_each_event_is_handled_once) {
  jetstream_bus one(options());
  jetstream_bus other(options());  // another process of the same service
  std::mutex mutex;
  std::map<std::string, int> handled;  // event id -> times handled
  std::atomic<int> by_first{0}, by_second{0}, by_third{0};
  const auto worker = [&](std::atomic<int>& mine) {
    return [&](const event& e) {
      std::this_thread::sleep_for(1ms);  // long enough for the others to get work too
      std::lock_guard lock(mutex);
      ++handled[e.id];
      ++mine;
    };
  };
  subscription a = one.subscribe(kAllEvents, worker(by_first), {.durable = "workers"});
  subscription b = one.subscribe(kAllEvents, worker(by_second), {.durable = "workers"});
  subscription c = other.subscribe(kAllEvents, worker(by_third), {.durable = "workers"});
  std::set<std::string> ids;
  for (int i = 0; i < 60; ++i) {
    const event e = make_test_event("Job", "j" + std::to_string(i));
    one.publish(e);
    ids.insert(e.id);
  }
  ASSERT_TRUE(one.wait_idle());
  ASSERT_TRUE(other.wait_idle());
  std::lock_guard lock(mutex);
  EXPECT_EQ(handled.size(), ids.size());
  for (const auto& [id, times] : handled) {
    EXPECT_EQ(times, 1) << id;
    EXPECT_EQ(ids.count(id), 1u);
  }
  EXPECT_EQ(by_first + by_second + by_third, 60);
  // Shared, not all taken by one (each has 1/3 of the work in expectation; all 60 to one
  // subscriber has probability 3 * 3^-60).
  EXPECT_LT(std::max({by_first.load(), by_second.load(), by_third.load()}), 60);
}

TEST_F(jetstream_bus_test, a_throwing_handler_gets_the_event_again_and_it_is_acked_once_handled) {
  std::vector<handler_failure> failures;
  jetstream_bus bus(options({.max_deliver = 5, .on_handler_failure = [&](const handler_failure& f) {
                               failures.push_back(f);
                             }}));
  std::atomic<int> calls{0};
  received_events handled;
  subscription s = bus.subscribe("A",
                                 [&](const event& e) {
                                   if (++calls < 3) throw std::runtime_error("transient");
                                   handled.add(e);
                                 },
                                 {.durable = "flaky"});
  const event e = make_test_event("A");
  bus.publish(e);
  ASSERT_TRUE(bus.wait_idle());  // nothing pending, nothing unacknowledged
  EXPECT_EQ(calls.load(), 3);
  EXPECT_EQ(handled.ids(), std::vector<std::string>{e.id});
  EXPECT_TRUE(failures.empty());
  // Acknowledged: a new subscriber of the durable gets nothing more.
  s.unsubscribe();
  received_events later;
  subscription again = bus.subscribe("A", later.recorder(), {.durable = "flaky"});
  ASSERT_TRUE(bus.wait_idle());
  EXPECT_EQ(later.size(), 0u);
}

TEST_F(jetstream_bus_test, after_max_deliver_attempts_the_failure_is_reported_and_the_event_ends) {
  std::mutex mutex;
  std::vector<handler_failure> failures;
  jetstream_bus bus(options({.max_deliver = 3,
                             .redelivery_delay = 10ms,
                             .on_handler_failure = [&](const handler_failure& f) {
                               std::lock_guard lock(mutex);
                               failures.push_back(f);
                             }}));
  std::atomic<int> poison_calls{0};
  received_events good;
  subscription s = bus.subscribe(kAllEvents,
                                 [&](const event& e) {
                                   if (e.type == "Poison") {
                                     ++poison_calls;
                                     throw std::runtime_error("cannot handle");
                                   }
                                   good.add(e);
                                 },
                                 {.durable = "strict"});
  const event poison = make_test_event("Poison");
  const event fine = make_test_event("Fine");
  bus.publish(poison);
  bus.publish(fine);
  ASSERT_TRUE(bus.wait_idle());
  EXPECT_EQ(poison_calls.load(), 3);
  EXPECT_EQ(good.ids(), std::vector<std::string>{fine.id});  // later events keep flowing
  {
    std::lock_guard lock(mutex);
    ASSERT_EQ(failures.size(), 1u);
    EXPECT_EQ(failures[0].failed_event.id, poison.id);
    EXPECT_EQ(failures[0].attempts, 3);
    EXPECT_EQ(failures[0].subscribed_type, std::string(kAllEvents));
    ASSERT_TRUE(failures[0].error);
  }
  // Terminated: not delivered again, even to a new subscriber of the durable.
  s.unsubscribe();
  received_events later;
  subscription again = bus.subscribe(kAllEvents, later.recorder(), {.durable = "strict"});
  ASSERT_TRUE(bus.wait_idle());
  EXPECT_EQ(later.size(), 0u);
  EXPECT_EQ(poison_calls.load(), 3);
}

TEST_F(jetstream_bus_test,
       an_ephemeral_subscription_gets_only_later_events_and_a_closed_bus_leaves_no_consumer) {
  jetstream_bus bus(options());
  bus.publish(make_test_event("A"));
  received_events got;
  std::optional<subscription> s = bus.subscribe("A", got.recorder());
  const event e = make_test_event("A");
  bus.publish(e);
  ASSERT_TRUE(bus.wait_idle());
  EXPECT_EQ(got.ids(), std::vector<std::string>{e.id});
  s.reset();
  bus.close();  // the bus's one ephemeral consumer is deleted with it
  nats_testing::raw_connection raw(url_);
  jsConsumerNamesList* names = nullptr;
  const natsStatus st = js_ConsumerNames(&names, raw.js(), ns_.c_str(), nullptr, nullptr);
  ASSERT_TRUE(st == NATS_OK || st == NATS_NOT_FOUND) << natsStatus_GetText(st);  // none: not found
  if (st == NATS_OK) {
    EXPECT_EQ(names->Count, 0);
  }
  jsConsumerNamesList_Destroy(names);
}

TEST_F(jetstream_bus_test, durable_names_and_types_are_checked) {
  jetstream_bus bus(options());
  const auto noop = [](const event&) {};
  EXPECT_THROW(bus.subscribe("A", noop, {.durable = "a.b"}), invalid_argument_error);
  EXPECT_THROW(bus.subscribe("A", noop, {.durable = "a*"}), invalid_argument_error);
  subscription s = bus.subscribe("A", noop, {.durable = "typed"});
  EXPECT_THROW(bus.subscribe("B", noop, {.durable = "typed"}), invalid_argument_error);  // "A"
}

TEST_F(jetstream_bus_test, messages_that_are_not_events_are_counted_and_terminated) {
  jetstream_bus bus(options());
  received_events got;
  subscription s = bus.subscribe(kAllEvents, got.recorder(), {.durable = "reader"});
  nats_testing::raw_connection raw(url_);
  const std::string subject = ns_ + ".A";
  ASSERT_EQ(js_Publish(nullptr, raw.js(), subject.c_str(), "junk", 4, nullptr, nullptr), NATS_OK);
  const event e = make_test_event("A");
  bus.publish(e);
  ASSERT_TRUE(bus.wait_idle());
  EXPECT_EQ(got.ids(), std::vector<std::string>{e.id});
  EXPECT_EQ(bus.malformed_messages(), 1u);
}

TEST_F(jetstream_bus_test, publish_and_subscribe_after_close_throw_store_closed_error) {
  jetstream_bus bus(options());
  bus.close();
  EXPECT_THROW(bus.publish(make_test_event("A")), store_closed_error);
  EXPECT_THROW(bus.subscribe("A", [](const event&) {}, {.durable = "x"}), store_closed_error);
  EXPECT_THROW(bus.wait_idle(), store_closed_error);
}

}  // namespace
}  // namespace eventsourced
