// Event schema evolution: the upcaster chain on its own, and applied on every read path —
// aggregates loaded by the repository, catch-up subscriptions, projections, the store's own log —
// while new events are stamped with the current schema version and never upcast again.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <eventsourced/eventsourced.hpp>

#include "storage_test_support.hpp"

namespace {

using eventsourced::event;
using eventsourced::invalid_argument_error;
using eventsourced::json;
using eventsourced::upcaster_chain;

// PlayerJoined through three schemas:
//   v1 {"name": "ann smith"}
//   v2 {"first": "ann", "last": "smith"}                    (split the name)
//   v3 {"first": "ann", "last": "smith", "gold": 100}       (starting gold made explicit)
std::shared_ptr<upcaster_chain> player_joined_chain() {
  auto chain = std::make_shared<upcaster_chain>();
  chain->add("PlayerJoined", 1, [](const event& e) {
    const std::string name = e.data.at("name").get<std::string>();
    const auto space = name.find(' ');
    return json{{"first", name.substr(0, space)},
                {"last", space == std::string::npos ? "" : name.substr(space + 1)}};
  });
  chain->add("PlayerJoined", 2, [](const event& e) {
    json data = e.data;
    data["gold"] = 100;
    return data;
  });
  return chain;
}

const json kV3 = {{"first", "ann"}, {"last", "smith"}, {"gold", 100}};

event stored(std::string type, json data, json metadata = nullptr) {
  event e;
  e.id = eventsourced::make_event_id();
  e.type = std::move(type);
  e.data = std::move(data);
  e.metadata = std::move(metadata);
  return e;
}

TEST(upcaster_chain_test, upcasts_every_older_version_to_the_newest) {
  auto chain = player_joined_chain();
  EXPECT_EQ(chain->current_version("PlayerJoined"), 3);
  EXPECT_EQ(chain->current_version("GoldEarned"), 1);

  event v1 = stored("PlayerJoined", {{"name", "ann smith"}});
  chain->upcast(v1);
  EXPECT_EQ(v1.data, kV3);
  EXPECT_EQ(v1.metadata.at("schema_version"), 3);

  event v2 = stored("PlayerJoined", {{"first", "ann"}, {"last", "smith"}},
                    {{"schema_version", 2}, {"correlation_id", "c1"}});
  chain->upcast(v2);
  EXPECT_EQ(v2.data, kV3);
  EXPECT_EQ(v2.metadata.at("correlation_id"), "c1") << "other metadata is kept";

  event v3 = stored("PlayerJoined", kV3, {{"schema_version", 3}});
  chain->upcast(v3);
  EXPECT_EQ(v3.data, kV3);

  event other = stored("GoldEarned", {{"amount", 1}});
  chain->upcast(other);
  EXPECT_EQ(other.data, json({{"amount", 1}}));
  EXPECT_TRUE(other.metadata.is_null()) << "an event without upcasters is left as it is";
}

TEST(upcaster_chain_test, stamps_new_events_with_the_current_version) {
  auto chain = player_joined_chain();
  eventsourced::new_event joined{.id = "e1", .type = "PlayerJoined", .data = kV3};
  chain->stamp(joined);
  EXPECT_EQ(joined.metadata, json({{"schema_version", 3}}));
  eventsourced::new_event explicit_version{.id = "e2",
                                           .type = "PlayerJoined",
                                           .data = {{"name", "x"}},
                                           .metadata = {{"schema_version", 1}}};
  chain->stamp(explicit_version);
  EXPECT_EQ(explicit_version.metadata.at("schema_version"), 1) << "an explicit version stays";
  eventsourced::new_event plain{.id = "e3", .type = "GoldEarned", .data = {{"amount", 1}}};
  chain->stamp(plain);
  EXPECT_TRUE(plain.metadata.is_null());
}

TEST(upcaster_chain_test, bad_registrations_and_bad_events_are_clear_errors) {
  upcaster_chain chain;
  auto identity = [](const event& e) { return e.data; };
  EXPECT_THROW(chain.add("", 1, identity), invalid_argument_error);
  EXPECT_THROW(chain.add("A", 0, identity), invalid_argument_error);
  EXPECT_THROW(chain.add("A", 1, nullptr), invalid_argument_error);
  chain.add("A", 1, identity);
  EXPECT_THROW(chain.add("A", 1, identity), invalid_argument_error);
  EXPECT_FALSE(chain.empty());

  auto players = player_joined_chain();
  event missing_member = stored("PlayerJoined", {{"nickname", "x"}});
  EXPECT_THROW(players->upcast(missing_member), eventsourced::serialization_error);
  event bad_version = stored("PlayerJoined", {{"name", "x"}}, {{"schema_version", "two"}});
  EXPECT_THROW(players->upcast(bad_version), eventsourced::serialization_error);
  event zero_version = stored("PlayerJoined", {{"name", "x"}}, {{"schema_version", 0}});
  EXPECT_THROW(players->upcast(zero_version), eventsourced::serialization_error);
}

// An aggregate written against schema v3 only.
class player final : public eventsourced::aggregate_root {
 public:
  explicit player(std::string id) : aggregate_root("player", std::move(id)) {
    on("PlayerJoined", [this](const event& e) {
      name_ = e.data.at("first").get<std::string>() + "/" + e.data.at("last").get<std::string>();
      gold_ = e.data.at("gold").get<std::int64_t>();
    });
  }
  void join(std::string first, std::string last) {
    raise("PlayerJoined", {{"first", std::move(first)}, {"last", std::move(last)}, {"gold", 100}});
  }
  const std::string& name() const { return name_; }
  std::int64_t gold() const { return gold_; }

 private:
  std::string name_;
  std::int64_t gold_ = 0;
};

class upcaster_read_paths_test : public eventsourced_test::storage_test {
 protected:
  // Events as an older version of the application wrote them: p1 at v1, p2 at v2.
  void write_old_events(eventsourced::engine& engine) {
    eventsourced::commit_request request;
    request.appends.push_back(
        {{"player", "p1"}, 0, {{"old-1", "PlayerJoined", {{"name", "ann smith"}}, nullptr}}});
    request.appends.push_back(
        {{"player", "p2"},
         0,
         {{"old-2", "PlayerJoined", {{"first", "bo"}, {"last", "lee"}}, {{"schema_version", 2}}}}});
    engine.commit(request);
  }
};

TEST_P(upcaster_read_paths_test, the_repository_upcasts_on_load_and_stamps_on_save) {
  auto chain = player_joined_chain();
  auto s = open_store(eventsourced::store_options{.upcasters = chain});
  write_old_events(s->engine());
  eventsourced::repository repo(*s);  // takes the store's chain
  EXPECT_EQ(repo.load<player>("p1")->name(), "ann/smith");
  EXPECT_EQ(repo.load<player>("p1")->gold(), 100);
  EXPECT_EQ(repo.load<player>("p2")->name(), "bo/lee");
  auto fresh = repo.load<player>("p3");
  fresh->join("cy", "ng");
  repo.save(*fresh);
  auto written = s->engine().read_stream({"player", "p3"}, 1, 10);
  ASSERT_EQ(written.size(), 1u);
  EXPECT_EQ(written[0].metadata.at("schema_version"), 3) << "stamped, so never upcast again";
  EXPECT_EQ(repo.load<player>("p3")->name(), "cy/ng");
  // Without the chain the old events do not fit the v3 handler.
  eventsourced::repository raw(s->engine());
  EXPECT_THROW(raw.load<player>("p1"), std::exception);
}

TEST_P(upcaster_read_paths_test, subscriptions_and_the_log_see_the_newest_shape) {
  auto chain = player_joined_chain();
  auto s = open_store(eventsourced::store_options{.upcasters = chain});
  write_old_events(s->engine());
  std::vector<json> seen;
  eventsourced::catch_up_subscription sub(eventsourced::event_log(s),
                                          [&](const event& e) { seen.push_back(e.data); });
  sub.poll(std::chrono::milliseconds(0));
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], kV3);
  EXPECT_EQ(seen[1], json({{"first", "bo"}, {"last", "lee"}, {"gold", 100}}));
  // An engine-made log with an explicit chain, and one without.
  eventsourced::event_log with(std::shared_ptr<eventsourced::engine>(s, &s->engine()), chain);
  EXPECT_EQ(with.read_stream({"player", "p1"}).at(0).data, kV3);
  eventsourced::event_log without(std::shared_ptr<eventsourced::engine>(s, &s->engine()));
  EXPECT_EQ(without.read_stream({"player", "p1"}).at(0).data, json({{"name", "ann smith"}}));
}

TEST_P(upcaster_read_paths_test, projections_see_the_newest_shape) {
  auto chain = player_joined_chain();
  auto s = open_store(eventsourced::store_options{.upcasters = chain});
  write_old_events(s->engine());
  eventsourced::projection_runner runner(
      s, eventsourced::projection{.name = "names",
                                  .collections = {"names"},
                                  .handle = [](const event& e, eventsourced::read_model& model) {
                                    model.put("names", e.stream.id,
                                              {{"first", e.data.at("first")},
                                               {"gold", e.data.at("gold")}});
                                  }});
  EXPECT_EQ(runner.poll(std::chrono::milliseconds(0)), 2u);
  auto p1 = s->documents("names").find_one("p1");
  ASSERT_TRUE(p1);
  EXPECT_EQ(p1->at("first"), "ann");
  EXPECT_EQ(p1->at("gold"), 100);
}

TEST_P(upcaster_read_paths_test, the_store_stamps_the_events_its_mapper_makes) {
  auto chain = std::make_shared<upcaster_chain>();
  chain->add("players.created", 1, [](const event& e) {
    json data = e.data;
    data["upcast"] = true;
    return data;
  });
  auto s = open_store(eventsourced::store_options{
      .mapper = std::make_shared<eventsourced::default_event_mapper>(), .upcasters = chain});
  auto [doc, diff, events] = s->documents("players").find_one_and_upsert({{"id", "p1"}});
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].metadata.at("schema_version"), 2);
  auto read = eventsourced::event_log(s).read_all(0);
  ASSERT_EQ(read.events.size(), 1u);
  EXPECT_FALSE(read.events[0].data.contains("upcast")) << "a current event is not upcast";
}

EVENTSOURCED_STORAGE_TEST_ENGINES(upcaster_read_paths_test);

}  // namespace
