// redis_streams_bus: the bus conformance suite (plain subscriptions, and durable ones), then what
// redis_streams_bus.hpp promises beyond it: durable groups that outlive the bus, competing
// consumers, acknowledgement only after the handler, retries, dead letters, reclaiming entries
// of a dead consumer, batches.
#include <eventsourced/redis/redis_streams_bus.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <eventsourced/error.hpp>
#include <eventsourced/event/serializer.hpp>

#include "conformance/event_bus_conformance.hpp"
#include "redis_test_support.hpp"

namespace eventsourced::conformance {
namespace {

using namespace std::chrono_literals;
using redis_testing::kRedisUri;

std::string server_uri() {
  return *eventsourced::testing::server_address(kRedisUri);
}

// A redis_streams_bus on a namespace of its own, whose keys are deleted with the bus. With
// durable_groups, every subscribe() makes a durable subscription on a fresh group.
class bus_with_own_namespace final : public event_bus {
 public:
  explicit bus_with_own_namespace(bool durable_groups, redis_streams_bus_options o = {})
      : durable_groups_(durable_groups),
        cleanup_(server_uri(), ns_),
        bus_(with_defaults(std::move(o), ns_)) {}
  void publish(const event& e) override { bus_.publish(e); }
  void publish(std::span<const event> events) override { bus_.publish(events); }
  subscription subscribe(std::string_view type, std::shared_ptr<event_handler> h) override {
    if (!durable_groups_) return bus_.subscribe(type, std::move(h));
    return bus_.subscribe(type, std::move(h),
                          durable_subscription{.group = "g" + std::to_string(++groups_)});
  }
  using event_bus::subscribe;
  void close() noexcept override { bus_.close(); }
  redis_streams_bus& inner() { return bus_; }

 private:
  static redis_streams_bus_options with_defaults(redis_streams_bus_options o,
                                                 const std::string& ns) {
    o.connection.uri = server_uri();
    o.ns = ns;
    return o;
  }
  const bool durable_groups_;
  std::atomic<int> groups_{0};
  std::string ns_ = redis_testing::unique_namespace();
  redis_testing::namespace_cleanup cleanup_;  // declared before bus_: runs after the bus closed
  redis_streams_bus bus_;
};

void wait_idle(event_bus& bus) {
  if (!dynamic_cast<bus_with_own_namespace&>(bus).inner().wait_idle()) {
    ADD_FAILURE() << "redis_streams_bus::wait_idle timed out";
  }
}

INSTANTIATE_TEST_SUITE_P(
    redis_streams, event_bus_conformance,
    ::testing::Values(bus_under_test{"redis_streams",
                                     [] { return std::make_unique<bus_with_own_namespace>(false); },
                                     wait_idle, true, kRedisUri},
                      bus_under_test{"redis_streams_durable",
                                     [] {
                                       return std::make_unique<bus_with_own_namespace>(
                                           true, redis_streams_bus_options{.max_deliver = 3,
                                                                           .retry_delay = 10ms});
                                     },
                                     wait_idle, true, kRedisUri}),
    bus_under_test_name);

class redis_streams_bus_test : public ::testing::Test {
 protected:
  void SetUp() override {
    EVENTSOURCED_REQUIRE_SERVER(kRedisUri, uri_);
    cleanup_ = std::make_unique<redis_testing::namespace_cleanup>(uri_, ns_);
    raw_ = std::make_unique<redis_testing::raw_client>(uri_);
  }

  redis_streams_bus_options options() const { return {.connection = {.uri = uri_}, .ns = ns_}; }
  std::string stream() const { return ns_ + ":events"; }
  // Entries pending in the group (read, not acknowledged).
  long long pending(const std::string& group) {
    const auto r = raw_->run({"XPENDING", stream(), group});
    return r->type == REDIS_REPLY_ARRAY ? r->element[0]->integer : -1;
  }

  std::string uri_;
  std::string ns_ = redis_testing::unique_namespace();
  std::unique_ptr<redis_testing::namespace_cleanup> cleanup_;
  std::unique_ptr<redis_testing::raw_client> raw_;
};

TEST_F(redis_streams_bus_test, events_go_to_one_stream_with_type_id_and_json_fields) {
  redis_streams_bus bus(options());
  const event e = make_test_event("PlayerCreated", "ann", 1, {{"name", "Ann"}});
  bus.publish(e);
  EXPECT_EQ(bus.stream_key(), stream());
  const auto r = raw_->run({"XRANGE", stream(), "-", "+"});
  ASSERT_EQ(r->elements, 1u);
  std::map<std::string, std::string> fields;
  const redisReply* f = r->element[0]->element[1];
  for (std::size_t i = 0; i + 1 < f->elements; i += 2) {
    fields[std::string(f->element[i]->str, f->element[i]->len)] =
        std::string(f->element[i + 1]->str, f->element[i + 1]->len);
  }
  EXPECT_EQ(fields["type"], "PlayerCreated");
  EXPECT_EQ(fields["id"], e.id);
  EXPECT_EQ(deserialize_event(fields["event"]).id, e.id);
}

TEST_F(redis_streams_bus_test, a_durable_group_gets_what_was_published_while_it_was_down) {
  received_events got;
  {
    redis_streams_bus bus(options());
    subscription s =
        bus.subscribe(kAllEvents, got.recorder(), {.group = "billing", .consumer = "b1"});
  }
  redis_streams_bus publisher(options());
  std::vector<std::string> ids;
  for (int i = 1; i <= 3; ++i) {
    const event e = make_test_event("A", "s", i);
    ids.push_back(e.id);
    publisher.publish(e);
  }
  EXPECT_EQ(got.size(), 0u);
  redis_streams_bus restarted(options());
  subscription s =
      restarted.subscribe(kAllEvents, got.recorder(), {.group = "billing", .consumer = "b1"});
  ASSERT_TRUE(restarted.wait_idle());
  EXPECT_EQ(got.ids(), ids);
  EXPECT_EQ(pending("billing"), 0);
}

TEST_F(redis_streams_bus_test, from_beginning_starts_a_new_group_at_the_first_entry) {
  redis_streams_bus bus(options());
  const event before = make_test_event("A");
  bus.publish(before);
  received_events from_start, from_now;
  subscription a =
      bus.subscribe(kAllEvents, from_start.recorder(), {.group = "all", .from_beginning = true});
  subscription b = bus.subscribe(kAllEvents, from_now.recorder(), {.group = "new"});
  const event after = make_test_event("A");
  bus.publish(after);
  ASSERT_TRUE(bus.wait_idle());
  EXPECT_EQ(from_start.ids(), (std::vector<std::string>{before.id, after.id}));
  EXPECT_EQ(from_now.ids(), std::vector<std::string>{after.id});
}

TEST_F(redis_streams_bus_test, competing_subscriptions_of_one_group_handle_each_event_once) {
  redis_streams_bus first(options());
  redis_streams_bus second(options());  // another "process"
  std::mutex mutex;
  std::map<std::string, int> handled;  // event id -> calls across the group
  const auto record = [&](const event& e) {
    std::lock_guard lock(mutex);
    ++handled[e.id];
  };
  subscription a = first.subscribe("Job", record, {.group = "workers", .consumer = "w1"});
  subscription b = second.subscribe("Job", record, {.group = "workers", .consumer = "w2"});
  subscription c = second.subscribe("Job", record, {.group = "workers", .consumer = "w3"});
  std::vector<event> jobs;
  for (int i = 0; i < 300; ++i) jobs.push_back(make_test_event("Job", "j" + std::to_string(i)));
  first.publish(jobs);
  ASSERT_TRUE(first.wait_idle());
  std::lock_guard lock(mutex);
  EXPECT_EQ(handled.size(), jobs.size());
  for (const event& j : jobs) EXPECT_EQ(handled[j.id], 1) << j.id;
  EXPECT_EQ(pending("workers"), 0);
}

TEST_F(redis_streams_bus_test, distinct_groups_each_get_every_event) {
  redis_streams_bus bus(options());
  received_events billing, audit;
  subscription a = bus.subscribe(kAllEvents, billing.recorder(), {.group = "billing"});
  subscription b = bus.subscribe(kAllEvents, audit.recorder(), {.group = "audit"});
  std::vector<std::string> ids;
  for (int i = 1; i <= 20; ++i) {
    const event e = make_test_event("A", "s", i);
    ids.push_back(e.id);
    bus.publish(e);
  }
  ASSERT_TRUE(bus.wait_idle());
  EXPECT_EQ(billing.ids(), ids);
  EXPECT_EQ(audit.ids(), ids);
}

TEST_F(redis_streams_bus_test, an_entry_is_acknowledged_only_after_its_handler_returned) {
  auto o = options();
  o.retry_delay = 20ms;
  redis_streams_bus bus(o);
  std::atomic<bool> release{false};
  std::atomic<int> calls{0};
  std::atomic<long long> pending_while_running{-1};
  subscription s = bus.subscribe("A",
                                 [&](const event&) {
                                   if (++calls == 1) {
                                     while (!release) std::this_thread::sleep_for(1ms);
                                     throw std::runtime_error("first delivery fails");
                                   }
                                 },
                                 {.group = "g", .consumer = "c"});
  bus.publish(make_test_event("A"));
  ASSERT_TRUE(eventually([&] { return calls.load() == 1; }));
  pending_while_running = pending("g");
  release = true;
  ASSERT_TRUE(bus.wait_idle());
  EXPECT_EQ(pending_while_running.load(), 1) << "acknowledged before the handler returned";
  EXPECT_EQ(calls.load(), 2) << "a throwing handler gets the entry again";
  EXPECT_EQ(pending("g"), 0);
  EXPECT_EQ(raw_->integer({"XLEN", ns_ + ":dead-letters"}), 0);
}

TEST_F(redis_streams_bus_test, after_max_deliver_the_event_goes_to_the_dead_letters) {
  std::mutex mutex;
  std::vector<handler_failure> failures;
  auto o = options();
  o.max_deliver = 3;
  o.retry_delay = 10ms;
  o.on_handler_failure = [&](const handler_failure& f) {
    std::lock_guard lock(mutex);
    failures.push_back(f);
  };
  redis_streams_bus bus(o);
  std::atomic<int> calls{0};
  received_events fine;
  subscription s = bus.subscribe(kAllEvents,
                                 [&](const event& e) {
                                   if (e.type == "Poison") {
                                     ++calls;
                                     throw std::runtime_error("cannot handle this");
                                   }
                                   fine.add(e);
                                 },
                                 {.group = "g", .consumer = "c"});
  const event poison = make_test_event("Poison");
  const event ok = make_test_event("Fine");
  bus.publish(poison);
  bus.publish(ok);
  ASSERT_TRUE(bus.wait_idle());
  EXPECT_EQ(calls.load(), 3);
  EXPECT_EQ(fine.ids(), std::vector<std::string>{ok.id});
  {
    std::lock_guard lock(mutex);
    ASSERT_EQ(failures.size(), 1u);
    EXPECT_EQ(failures[0].failed_event.id, poison.id);
    EXPECT_EQ(failures[0].attempts, 3);
    EXPECT_THROW(std::rethrow_exception(failures[0].error), std::runtime_error);
  }
  const auto dead = raw_->run({"XRANGE", bus.dead_letter_key(), "-", "+"});
  ASSERT_EQ(dead->elements, 1u);
  std::map<std::string, std::string> fields;
  const redisReply* f = dead->element[0]->element[1];
  for (std::size_t i = 0; i + 1 < f->elements; i += 2) {
    fields[std::string(f->element[i]->str, f->element[i]->len)] =
        std::string(f->element[i + 1]->str, f->element[i + 1]->len);
  }
  EXPECT_EQ(fields["id"], poison.id);
  EXPECT_EQ(fields["group"], "g");
  EXPECT_EQ(fields["deliveries"], "3");
  EXPECT_EQ(fields["error"], "cannot handle this");
  EXPECT_EQ(deserialize_event(fields["event"]).id, poison.id);
  EXPECT_EQ(pending("g"), 0);
}

TEST_F(redis_streams_bus_test, entries_of_a_dead_consumer_are_reclaimed_by_another) {
  redis_streams_bus publisher(options());
  std::vector<std::string> ids;
  // The group exists (through a subscription that ends at once), then a consumer reads five
  // entries and dies without acknowledging them.
  {
    subscription s = publisher.subscribe("Job", [](const event&) {}, {.group = "workers"});
  }
  for (int i = 0; i < 5; ++i) {
    const event e = make_test_event("Job", "j" + std::to_string(i));
    ids.push_back(e.id);
    publisher.publish(e);
  }
  const auto read =
      raw_->run({"XREADGROUP", "GROUP", "workers", "dead", "COUNT", "5", "STREAMS", stream(), ">"});
  ASSERT_EQ(read->type, REDIS_REPLY_ARRAY);
  ASSERT_EQ(read->element[0]->element[1]->elements, 5u);
  ASSERT_EQ(pending("workers"), 5);

  auto o = options();
  o.reclaim_min_idle = 200ms;
  redis_streams_bus survivor(o);
  received_events got;
  subscription s =
      survivor.subscribe("Job", got.recorder(), {.group = "workers", .consumer = "alive"});
  ASSERT_TRUE(survivor.wait_idle());
  std::vector<std::string> got_ids = got.ids();
  std::sort(got_ids.begin(), got_ids.end());
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(got_ids, ids);
  EXPECT_EQ(pending("workers"), 0);
}

TEST_F(redis_streams_bus_test, a_restarted_consumer_takes_back_its_own_pending_entries_first) {
  redis_streams_bus publisher(options());
  {
    subscription s = publisher.subscribe("Job", [](const event&) {}, {.group = "workers"});
  }
  const event e = make_test_event("Job");
  publisher.publish(e);
  raw_->run({"XREADGROUP", "GROUP", "workers", "w1", "COUNT", "5", "STREAMS", stream(), ">"});
  ASSERT_EQ(pending("workers"), 1);
  // Same consumer name, reclaim far away: only "own pending first" can deliver it.
  auto o = options();
  o.retry_delay = 0ms;
  o.reclaim_min_idle = std::chrono::hours(1);
  redis_streams_bus restarted(o);
  received_events got;
  subscription s =
      restarted.subscribe("Job", got.recorder(), {.group = "workers", .consumer = "w1"});
  ASSERT_TRUE(restarted.wait_idle());
  EXPECT_EQ(got.ids(), std::vector<std::string>{e.id});
}

TEST_F(redis_streams_bus_test, a_batch_is_published_in_order_in_one_call) {
  redis_streams_bus bus(options());
  std::vector<event> batch;
  for (int i = 1; i <= 2500; ++i) batch.push_back(make_test_event("A", "s", i));
  bus.publish(batch);
  EXPECT_EQ(raw_->integer({"XLEN", stream()}), 2500);
  received_events got;
  subscription s =
      bus.subscribe(kAllEvents, got.recorder(), {.group = "g", .from_beginning = true});
  ASSERT_TRUE(bus.wait_idle());
  ASSERT_EQ(got.size(), batch.size());
  const auto events = got.events();
  for (std::size_t i = 0; i < batch.size(); ++i) EXPECT_EQ(events[i].id, batch[i].id);
}

TEST_F(redis_streams_bus_test, a_group_serves_one_type) {
  redis_streams_bus bus(options());
  subscription a = bus.subscribe("A", [](const event&) {}, {.group = "g"});
  EXPECT_THROW(bus.subscribe("B", [](const event&) {}, {.group = "g"}), invalid_argument_error);
  EXPECT_NO_THROW(subscription b = bus.subscribe("A", [](const event&) {}, {.group = "g"}));
}

TEST_F(redis_streams_bus_test, bad_names_and_options_are_refused) {
  EXPECT_THROW(redis_streams_bus({.connection = {.uri = uri_}, .ns = "a:b"}),
               invalid_argument_error);
  EXPECT_THROW(redis_streams_bus({.connection = {.uri = uri_}, .ns = ""}), invalid_argument_error);
  EXPECT_THROW(redis_streams_bus({.connection = {.uri = uri_}, .max_deliver = 0}),
               invalid_argument_error);
  redis_streams_bus bus(options());
  EXPECT_THROW(bus.subscribe("A", [](const event&) {}, {.group = "has space"}),
               invalid_argument_error);
  EXPECT_THROW(bus.subscribe("A", [](const event&) {}, {.group = "g", .consumer = "a*"}),
               invalid_argument_error);
}

TEST_F(redis_streams_bus_test, entries_that_are_not_events_are_counted_and_acknowledged) {
  redis_streams_bus bus(options());
  received_events got;
  subscription s = bus.subscribe(kAllEvents, got.recorder(), {.group = "g"});
  raw_->run({"XADD", stream(), "*", "type", "A", "event", "{not json"});
  raw_->run({"XADD", stream(), "*", "something", "else"});
  const event e = make_test_event("A");
  bus.publish(e);
  ASSERT_TRUE(bus.wait_idle());
  EXPECT_EQ(got.ids(), std::vector<std::string>{e.id});
  EXPECT_EQ(bus.malformed_messages(), 2u);
  EXPECT_EQ(pending("g"), 0);
}

TEST_F(redis_streams_bus_test, close_destroys_the_ephemeral_group_and_keeps_durable_ones) {
  redis_streams_bus bus(options());
  subscription plain = bus.subscribe(kAllEvents, [](const event&) {});
  subscription durable = bus.subscribe(kAllEvents, [](const event&) {}, {.group = "kept"});
  EXPECT_EQ(raw_->run({"XINFO", "GROUPS", stream()})->elements, 2u);
  bus.close();
  const auto groups = raw_->run({"XINFO", "GROUPS", stream()});
  ASSERT_EQ(groups->elements, 1u);
  EXPECT_THROW(bus.publish(make_test_event("A")), store_closed_error);
  EXPECT_THROW(bus.subscribe("A", [](const event&) {}, {.group = "g"}), store_closed_error);
}

TEST_F(redis_streams_bus_test, a_made_up_consumer_leaves_the_group_with_its_subscription) {
  redis_streams_bus bus(options());
  received_events got;
  const auto consumers = [&] { return raw_->run({"XINFO", "CONSUMERS", stream(), "g"})->elements; };
  {
    subscription anonymous = bus.subscribe(kAllEvents, got.recorder(), {.group = "g"});
    for (int i = 0; i < 5; ++i) bus.publish(make_test_event("A"));
    ASSERT_TRUE(bus.wait_idle());
    EXPECT_EQ(consumers(), 1u);  // it read, so it joined the group
  }
  EXPECT_EQ(consumers(), 0u);
  {
    subscription named = bus.subscribe(kAllEvents, got.recorder(), {.group = "g", .consumer = "n"});
    for (int i = 0; i < 5; ++i) bus.publish(make_test_event("A"));
    ASSERT_TRUE(bus.wait_idle());
  }
  EXPECT_EQ(consumers(), 1u);  // a named consumer may come back: kept
  EXPECT_EQ(got.size(), 10u);
}

TEST_F(redis_streams_bus_test, a_durable_handler_may_end_its_own_subscription) {
  redis_streams_bus bus(options());
  std::atomic<int> calls{0};
  subscription s;
  s = bus.subscribe(kAllEvents,
                    [&](const event&) {
                      ++calls;
                      s.unsubscribe();
                    },
                    {.group = "g"});
  for (int i = 0; i < 3; ++i) bus.publish(make_test_event("A"));
  EXPECT_TRUE(eventually([&] { return calls.load() == 1; }));
  bus.close();  // joins the subscription's thread: its writes to s are visible from here on
  EXPECT_FALSE(s.active());
  EXPECT_EQ(calls.load(), 1);
}

}  // namespace
}  // namespace eventsourced::conformance
