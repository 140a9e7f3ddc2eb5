// Every write through a store with a mapper records its events in the same commit (invariant 2);
// the default mapper's naming rule and payload; custom mappers; metadata.
#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "unit/storage_test_support.hpp"

namespace eventsourced_test {
namespace {

using eventsourced::collection_event_types;
using eventsourced::default_event_mapper;
using eventsourced::document_change;
using eventsourced::event;
using eventsourced::mapped_event;
using eventsourced::stream_ref;

class store_events_test : public storage_test {
 protected:
  std::shared_ptr<eventsourced::store> open_with(
      std::shared_ptr<const eventsourced::event_mapper> mapper) {
    eventsourced::store_options options;
    options.mapper = std::move(mapper);
    return open_store(std::move(options));
  }
  std::shared_ptr<eventsourced::store> open_default() {
    return open_with(std::make_shared<default_event_mapper>());
  }
  static std::vector<event> log_of(eventsourced::store& s) {
    return s.engine().read_all(0, 1'000'000);
  }
  static std::vector<std::string> types_of(const std::vector<event>& events) {
    std::vector<std::string> out;
    for (const auto& e : events) out.push_back(e.type);
    return out;
  }
};
EVENTSOURCED_STORAGE_TEST_ENGINES(store_events_test);

TEST_P(store_events_test, every_write_operation_records_one_default_event_in_its_commit) {
  auto s = open_default();
  auto players = s->collection<Player>("players");
  auto created = players.find_one_and_upsert(Player{"p1", "Ann", 10, 1, 0});
  auto updated = players.find_one_and_update("p1", [](Player p) {
    p.gold += 5;
    return p;
  });
  auto operated = players.update_one("p1", {{"$inc", {{"level", 1}}}});
  auto sectioned = players.update_section("p1", "name", [](json) { return json("Bea"); });
  s->with_transaction([](eventsourced::transaction& tx) {
    tx.find_one_and_update("players", "p1",
                           [](const json& body) -> eventsourced::edit_result<json> {
                             json b = body;
                             b["gold"] = 100;
                             return b;
                           });
  });
  EXPECT_TRUE(players.delete_one("p1"));

  const auto log = log_of(*s);
  EXPECT_EQ(types_of(log),
            (std::vector<std::string>{"players.created", "players.updated", "players.updated",
                                      "players.updated", "players.updated", "players.deleted"}));
  for (std::size_t i = 0; i < log.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(log[i].stream, (stream_ref{"players", "p1"}));
    EXPECT_EQ(log[i].stream_version, static_cast<std::int64_t>(i) + 1);
    EXPECT_EQ(log[i].data["version"], static_cast<std::int64_t>(i) + 1);
    EXPECT_EQ(log[i].metadata["document"],
              (json{{"collection", "players"}, {"id", "p1"}, {"version", i + 1}}));
    EXPECT_FALSE(log[i].id.empty());
  }
  // Each write returns the events it recorded, as recorded.
  ASSERT_EQ(created.events.size(), 1u);
  EXPECT_EQ(created.events[0].position, log[0].position);
  ASSERT_EQ(updated.events.size(), 1u);
  EXPECT_EQ(updated.events[0].id, log[1].id);
  ASSERT_EQ(operated.events.size(), 1u);
  ASSERT_EQ(sectioned.events.size(), 1u);
  EXPECT_EQ(sectioned.events[0].id, log[3].id);
}

TEST_P(store_events_test, default_event_data_carries_patches_that_rebuild_the_document) {
  auto s = open_default();
  auto docs = s->documents("items");
  docs.find_one_and_upsert({{"id", "i1"}, {"count", 1}, {"tags", {"a"}}});
  docs.update_one("i1", {{"$inc", {{"count", 2}}}, {"$push", {{"tags", "b"}}}});
  docs.delete_one("i1");

  json by_json_patch;  // null: the document does not exist yet
  json by_merge_patch;
  for (const event& e : log_of(*s)) {
    by_json_patch = by_json_patch.patch(e.data["json_patch"]);
    by_merge_patch.merge_patch(e.data["merge_patch"]);
    if (e.type == "items.created") {
      EXPECT_EQ(by_json_patch, (json{{"id", "i1"}, {"count", 1}, {"tags", {"a"}}, {"version", 1}}));
    }
    if (e.type == "items.updated") {
      EXPECT_EQ(by_json_patch,
                (json{{"id", "i1"}, {"count", 3}, {"tags", {"a", "b"}}, {"version", 2}}));
      EXPECT_EQ(by_merge_patch, by_json_patch);
    }
  }
  EXPECT_TRUE(by_json_patch.is_null());
  EXPECT_TRUE(by_merge_patch.is_null());
}

TEST_P(store_events_test, registered_collections_use_their_types_and_aggregate_type) {
  auto mapper = std::make_shared<default_event_mapper>();
  mapper->register_collection_event_types("users",
                                          collection_event_types{.created = "UserCreated",
                                                                 .updated = "UserUpdated",
                                                                 .deleted = "UserDeleted",
                                                                 .aggregate_type = "User"});
  auto s = open_with(mapper);
  auto users = s->documents("users");
  users.find_one_and_upsert({{"id", "u1"}, {"email", "a@x"}});
  users.update_one("u1", {{"$set", {{"email", "b@x"}}}});
  users.delete_one("u1");
  s->documents("orders").find_one_and_upsert({{"id", "o1"}});
  const auto log = log_of(*s);
  EXPECT_EQ(types_of(log), (std::vector<std::string>{"UserCreated", "UserUpdated", "UserDeleted",
                                                     "orders.created"}));
  EXPECT_EQ(log[0].stream, (stream_ref{"User", "u1"}));
  EXPECT_EQ(log[3].stream, (stream_ref{"orders", "o1"}));
  EXPECT_EQ(mapper->event_types_for("orders").updated, "orders.updated");
}

TEST_P(store_events_test, registering_an_invalid_name_throws) {
  default_event_mapper mapper;
  EXPECT_THROW(mapper.register_collection_event_types("bad name", {}),
               eventsourced::invalid_argument_error);
  EXPECT_THROW(mapper.register_collection_event_types("users", {.aggregate_type = "no spaces!"}),
               eventsourced::invalid_argument_error);
}

// The seed README's UserEventMapper: the default event, plus UserEmailChanged when the email
// changes.
class user_event_mapper : public default_event_mapper {
 public:
  user_event_mapper() {
    register_collection_event_types("users", {.created = "UserCreated",
                                              .updated = "UserUpdated",
                                              .deleted = "UserDeleted",
                                              .aggregate_type = "User"});
  }
  std::vector<mapped_event> map(const document_change& change) const override {
    std::vector<mapped_event> events = default_event_mapper::map(change);
    if (change.collection != "users") return events;
    const json& patch = change.diff.merge_patch;
    if (patch.is_object() && patch.contains("email") && patch["email"].is_string()) {
      events.push_back(
          {events.front().stream,
           eventsourced::make_event("UserEmailChanged", {{"new_email", patch["email"]}})});
    }
    return events;
  }
};

TEST_P(store_events_test, a_custom_mapper_may_add_events_to_a_change) {
  auto s = open_with(std::make_shared<user_event_mapper>());
  auto users = s->documents("users");
  users.find_one_and_upsert({{"id", "u1"}, {"name", "Ann"}, {"email", "a@x"}});
  users.update_one("u1", {{"$set", {{"name", "Anna"}}}});
  const auto changed = users.update_one("u1", {{"$set", {{"email", "b@x"}}}});
  const auto log = log_of(*s);
  EXPECT_EQ(types_of(log),
            (std::vector<std::string>{"UserCreated", "UserEmailChanged", "UserUpdated",
                                      "UserUpdated", "UserEmailChanged"}));
  EXPECT_EQ(log.back().data, (json{{"new_email", "b@x"}}));
  // Both events of one write share the write's document version and its commit.
  ASSERT_EQ(changed.events.size(), 2u);
  EXPECT_EQ(changed.events[0].metadata["document"]["version"], 3);
  EXPECT_EQ(changed.events[1].metadata["document"]["version"], 3);
  EXPECT_EQ(changed.events[1].stream_version, changed.events[0].stream_version + 1);
}

TEST_P(store_events_test, a_mapper_may_record_no_event_and_use_any_stream) {
  auto mapper = std::make_shared<eventsourced::function_event_mapper>(
      [](const document_change& change) -> std::vector<mapped_event> {
        if (change.collection == "quiet") return {};
        return {{stream_ref{"audit", "all"}, eventsourced::make_event("Touched", nullptr)}};
      });
  auto s = open_with(mapper);
  s->documents("quiet").find_one_and_upsert({{"id", "q"}});
  s->documents("loud").find_one_and_upsert({{"id", "l1"}});
  s->documents("loud").find_one_and_upsert({{"id", "l2"}});
  const auto log = log_of(*s);
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[1].stream, (stream_ref{"audit", "all"}));
  EXPECT_EQ(log[1].stream_version, 2);
  EXPECT_EQ(log[1].metadata["document"]["id"], "l2");
}

TEST_P(store_events_test, a_throwing_mapper_fails_the_write_and_changes_nothing) {
  std::atomic<bool> fail{false};
  auto mapper = std::make_shared<eventsourced::function_event_mapper>(
      [&](const document_change& change) -> std::vector<mapped_event> {
        if (fail) throw std::runtime_error("mapper refused");
        return {{stream_ref{"docs", std::string(change.id)}, eventsourced::make_event("E", 1)}};
      });
  auto s = open_with(mapper);
  auto docs = s->documents("docs");
  docs.find_one_and_upsert({{"id", "d"}, {"n", 1}});
  fail = true;
  EXPECT_THROW(docs.update_one("d", {{"$set", {{"n", 2}}}}), std::runtime_error);
  EXPECT_THROW(docs.delete_one("d"), std::runtime_error);
  EXPECT_EQ((*docs.find_one("d"))["n"], 1);
  EXPECT_EQ(s->engine().get("docs", "d")->version, 1);
  EXPECT_EQ(log_of(*s).size(), 1u);
}

TEST_P(store_events_test, invalid_mapped_events_fail_the_write_and_change_nothing) {
  auto mapper = std::make_shared<eventsourced::function_event_mapper>(
      [](const document_change& change) -> std::vector<mapped_event> {
        if (change.diff.is_new)
          return {{stream_ref{"docs", "x"}, eventsourced::make_event("E", 1)}};
        return {{stream_ref{"docs", "x"}, eventsourced::new_event{"", "", 1, nullptr}}};
      });
  auto s = open_with(mapper);
  auto docs = s->documents("docs");
  docs.find_one_and_upsert({{"id", "d"}, {"n", 1}});
  EXPECT_THROW(docs.update_one("d", {{"$set", {{"n", 2}}}}), eventsourced::invalid_argument_error);
  EXPECT_EQ(s->engine().get("docs", "d")->version, 1);
  EXPECT_EQ(log_of(*s).size(), 1u);
}

TEST_P(store_events_test, event_metadata_of_a_write_reaches_its_events) {
  auto s = open_default();
  auto docs = s->documents("docs");
  eventsourced::write_options options;
  options.event_metadata = {{"correlation_id", "req-7"}, {"causation_id", "cmd-3"}};
  const auto r = docs.find_one_and_upsert({{"id", "d"}}, options);
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(eventsourced::correlation_id(r.events[0]), "req-7");
  EXPECT_EQ(eventsourced::causation_id(r.events[0]), "cmd-3");
  s->with_transaction(
      [](eventsourced::transaction& tx) {
        tx.put("docs", {{"id", "e"}});
      },
      options);
  EXPECT_EQ(log_of(*s).back().metadata["correlation_id"], "req-7");

  eventsourced::write_options bad;
  bad.event_metadata = json::array({1});
  EXPECT_THROW(docs.find_one_and_upsert({{"id", "f"}}, bad), eventsourced::invalid_argument_error);
  EXPECT_FALSE(docs.find_one("f"));
  EXPECT_EQ(log_of(*s).size(), 2u);
}

TEST_P(store_events_test, a_transaction_attempt_may_add_event_metadata_of_its_own) {
  auto s = open_default();
  auto docs = s->documents("docs");
  docs.find_one_and_upsert({{"id", "d"}, {"n", 0}});
  eventsourced::write_options options;
  options.event_metadata = {{"correlation_id", "outer"}, {"causation_id", "cmd-1"}};
  int attempts = 0;
  s->with_transaction(
      [&](eventsourced::transaction& tx) {
        ++attempts;
        EXPECT_TRUE(tx.event_metadata().is_null()) << "each attempt starts without";
        auto d = tx.find_one("docs", "d").value();
        if (attempts == 1) {  // another writer commits meanwhile: a conflict
          docs.find_one_and_update("d", [](const json& current) {
            json next = current;
            next["n"] = 5;
            return next;
          });
        }
        d["n"] = d["n"].get<int>() + 1;
        tx.put("docs", d);
        tx.event_metadata()["correlation_id"] = "attempt-" + std::to_string(attempts);
        tx.event_metadata()["_es_for_the_mapper"] = true;
      },
      options);
  EXPECT_EQ(attempts, 2);
  const auto last = log_of(*s).back();
  EXPECT_EQ(last.metadata["document"]["version"], 3);
  EXPECT_EQ(docs.find_one("d").value()["n"], 6);
  EXPECT_EQ(last.metadata["correlation_id"], "attempt-2") << "the attempt's member wins";
  EXPECT_EQ(last.metadata["causation_id"], "cmd-1");
  EXPECT_FALSE(last.metadata.contains("_es_for_the_mapper")) << "reserved: the mapper's only";

  EXPECT_THROW(s->with_transaction([](eventsourced::transaction& tx) {
    tx.put("docs", {{"id", "x"}});
    tx.event_metadata() = json::array({1});
  }),
               eventsourced::invalid_argument_error);
  EXPECT_FALSE(docs.find_one("x"));
  EXPECT_EQ(log_of(*s).size(), 3u);  // created, the other writer's update, the transaction's
}

TEST_P(store_events_test, a_recreated_document_records_the_version_it_really_gets) {
  auto s = open_default();
  auto docs = s->documents("docs");
  docs.find_one_and_upsert({{"id", "d"}});
  docs.delete_one("d");  // tombstone at version 2
  const auto again = docs.find_one_and_upsert({{"id", "d"}, {"n", 1}});
  EXPECT_EQ(again.document["version"], 3);
  EXPECT_EQ(again.diff.version, 3);
  ASSERT_EQ(again.events.size(), 1u);
  EXPECT_EQ(again.events[0].type, "docs.created");
  EXPECT_EQ(again.events[0].data["version"], 3);
  EXPECT_EQ(again.events[0].metadata["document"]["version"], 3);
  EXPECT_EQ(again.events[0].data["merge_patch"]["version"], 3);
  EXPECT_EQ(again.events[0].stream_version, 3);
}

TEST_P(store_events_test, a_transaction_records_the_events_of_each_changed_document_only) {
  auto s = open_default();
  auto docs = s->documents("docs");
  docs.find_one_and_upsert({{"id", "read"}});
  docs.find_one_and_upsert({{"id", "gone"}});
  const auto before = log_of(*s).size();
  s->with_transaction([](eventsourced::transaction& tx) {
    tx.find_one("docs", "read");  // read only: checked at commit, no event
    tx.put("docs", {{"id", "new"}});
    tx.delete_one("docs", "gone");
  });
  const auto log = log_of(*s);
  ASSERT_EQ(log.size(), before + 2);
  std::set<std::string> types{log[before].type, log[before + 1].type};
  EXPECT_EQ(types, (std::set<std::string>{"docs.created", "docs.deleted"}));
}

TEST_P(store_events_test, a_lost_conflict_records_no_event_and_the_retry_records_one) {
  auto s = open_default();
  auto other = open_default();
  auto docs = s->documents("docs");
  docs.find_one_and_upsert({{"id", "d"}, {"n", 0}});
  int calls = 0;
  docs.find_one_and_update("d", [&](const json& body) -> eventsourced::edit_result<json> {
    if (++calls == 1) other->documents("docs").update_one("d", {{"$inc", {{"n", 10}}}});
    json b = body;
    b["n"] = b["n"].get<int>() + 1;
    return b;
  });
  EXPECT_EQ(calls, 2);
  const auto log = log_of(*s);
  ASSERT_EQ(log.size(), 3u);
  for (std::size_t i = 0; i < log.size(); ++i) EXPECT_EQ(log[i].data["version"], i + 1);
  EXPECT_EQ((*docs.find_one("d"))["n"], 11);
}

TEST_P(store_events_test, a_store_without_a_mapper_records_nothing) {
  auto s = open_store();
  const auto r = s->documents("docs").find_one_and_upsert({{"id", "d"}});
  EXPECT_TRUE(r.events.empty());
  EXPECT_TRUE(log_of(*s).empty());
}

TEST_P(store_events_test, concurrent_writers_leave_each_version_exactly_its_event) {
  auto s = open_default();
  auto docs = s->documents("counters");
  docs.find_one_and_upsert({{"id", "c"}, {"n", 0}});
  constexpr int kThreads = 4;
  constexpr int kIncrements = 50;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kIncrements; ++i) docs.update_one("c", {{"$inc", {{"n", 1}}}}, patient());
    });
  }
  for (auto& t : threads) t.join();
  const auto log = log_of(*s);
  ASSERT_EQ(log.size(), 1u + kThreads * kIncrements);
  for (std::size_t i = 0; i < log.size(); ++i) {
    EXPECT_EQ(log[i].stream_version, static_cast<std::int64_t>(i) + 1);
    EXPECT_EQ(log[i].metadata["document"]["version"], static_cast<std::int64_t>(i) + 1);
    if (i > 0) {
      EXPECT_GT(log[i].position, log[i - 1].position);
    }
  }
  EXPECT_EQ((*docs.find_one("c"))["n"], kThreads * kIncrements);
}

}  // namespace
}  // namespace eventsourced_test
