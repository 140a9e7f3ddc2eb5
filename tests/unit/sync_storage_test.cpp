// event_sync_storage: what each write records (sync event, vector clock, snapshot), catching up
// with get_missing_events, and bad input.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <set>
#include <stdexcept>
#include <string>

#include <eventsourced/eventsourced.hpp>

#include "sync_test_support.hpp"

namespace eventsourced_test {
namespace {

using eventsourced::json;
using eventsourced::vector_clock_map;

class sync_storage_test : public sync_test {};

json game(const std::string& id, int gold) {
  return {{"id", id}, {"gold", gold}};
}

std::vector<eventsourced::event> sync_events(eventsourced::event_sync_storage& sync,
                                             const std::string& collection, const std::string& id) {
  return sync.store()->engine().read_stream(eventsourced::sync_stream(collection, id), 1, 1000);
}

TEST_P(sync_storage_test, every_write_records_its_sync_event_in_the_same_commit) {
  auto& sync = open_sync({.client_id = "server"});
  auto created = sync.find_one_and_upsert("games", game("g1", 0));
  ASSERT_EQ(created.events.size(), 1u);  // returned by the write's own commit
  auto updated = sync.find_one_and_update(
      "games", "g1",
      [](const json& g) {
        json next = g;
        next["gold"] = 50;
        return next;
      },
      as_client("ann"));
  ASSERT_EQ(updated.events.size(), 1u);
  ASSERT_TRUE(sync.delete_one("games", "g1", as_client("bob")));

  auto events = sync_events(sync, "games", "g1");
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].id, created.events[0].id);
  EXPECT_EQ(events[1].id, updated.events[0].id);
  EXPECT_EQ(events[0].type, "sync.created");
  EXPECT_EQ(events[1].type, "sync.updated");
  EXPECT_EQ(events[2].type, "sync.deleted");
  EXPECT_EQ(events[0].data["op"], "create");
  EXPECT_EQ(events[1].data["op"], "update");
  EXPECT_EQ(events[2].data["op"], "delete");
  for (std::size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].stream_version, static_cast<std::int64_t>(i + 1));
    EXPECT_EQ(events[i].data["version"], static_cast<std::int64_t>(i + 1));
  }
  EXPECT_EQ(events[0].data["client_id"], "server");
  EXPECT_EQ(events[1].data["client_id"], "ann");
  EXPECT_EQ(events[2].data["client_id"], "bob");
  EXPECT_EQ(events[1].metadata["client_id"], "ann");
  EXPECT_EQ(events[0].data["vector_clock"], (json{{"server", 1}}));
  EXPECT_EQ(events[1].data["vector_clock"], (json{{"server", 1}, {"ann", 1}}));
  EXPECT_EQ(events[2].data["vector_clock"], (json{{"server", 1}, {"ann", 1}, {"bob", 1}}));
  EXPECT_EQ(events[1].metadata["vector_clock"], events[1].data["vector_clock"]);
  // The internal member that carries the base clock to the mapper never reaches an event.
  for (const auto& e : events) EXPECT_FALSE(e.metadata.contains("_es_sync")) << e.metadata;
  // The patch of the update turns the created document into the updated one.
  EXPECT_EQ(created.document.patch(events[1].data["json_patch"]), updated.document);
}

TEST_P(sync_storage_test, a_write_that_changes_nothing_records_nothing) {
  auto& sync = open_sync();
  sync.find_one_and_upsert("games", game("g1", 0));
  auto again = sync.find_one_and_upsert("games", game("g1", 99));
  EXPECT_FALSE(again.diff.has_changes);
  EXPECT_FALSE(sync.delete_one("games", "nobody"));
  EXPECT_EQ(sync_events(sync, "games", "g1").size(), 1u);
  EXPECT_EQ(sync.vector_clock("games", "g1"), (vector_clock_map{{"server", 1}}));
}

TEST_P(sync_storage_test, vector_clock_counts_the_writes_of_each_client_and_survives_delete) {
  auto& sync = open_sync();
  sync.find_one_and_upsert("games", game("g1", 0), as_client("ann"));
  for (int i = 1; i <= 3; ++i) {
    sync.find_one_and_update(
        "games", "g1",
        [i](const json& g) {
          json next = g;
          next["gold"] = i;
          return next;
        },
        as_client(i == 2 ? "bob" : "ann"));
  }
  EXPECT_EQ(sync.vector_clock("games", "g1"), (vector_clock_map{{"ann", 3}, {"bob", 1}}));
  sync.delete_one("games", "g1", as_client("cat"));
  EXPECT_EQ(sync.vector_clock("games", "g1"),
            (vector_clock_map{{"ann", 3}, {"bob", 1}, {"cat", 1}}));
  // Re-created after its tombstone: the clock and the stream go on.
  auto again = sync.find_one_and_upsert("games", game("g1", 7));
  EXPECT_EQ(again.document["version"], 6);
  EXPECT_EQ(sync.vector_clock("games", "g1"),
            (vector_clock_map{{"ann", 3}, {"bob", 1}, {"cat", 1}, {"server", 1}}));
  EXPECT_EQ(sync_events(sync, "games", "g1").back().type, "sync.created");
}

TEST_P(sync_storage_test, update_vector_clock_takes_the_element_wise_max_and_never_goes_back) {
  auto& sync = open_sync();
  sync.find_one_and_upsert("games", game("g1", 0), as_client("ann"));
  for (int i = 0; i < 3; ++i) {
    sync.find_one_and_update(
        "games", "g1",
        [i](const json& g) {
          json next = g;
          next["gold"] = i + 1;
          return next;
        },
        as_client(i == 0 ? "bob" : "ann"));
  }
  EXPECT_EQ(sync.acknowledged_vector_clock("games", "g1", "phone"), std::nullopt);
  EXPECT_EQ(sync.update_vector_clock("games", "g1", "phone", {{"ann", 2}}),
            (vector_clock_map{{"ann", 2}}));
  // Lower or equal values change nothing; a new member is merged in.
  EXPECT_EQ(sync.update_vector_clock("games", "g1", "phone", {{"ann", 1}, {"bob", 1}}),
            (vector_clock_map{{"ann", 2}, {"bob", 1}}));
  EXPECT_EQ(sync.update_vector_clock("games", "g1", "phone", {{"ann", 0}}),
            (vector_clock_map{{"ann", 2}, {"bob", 1}}));
  EXPECT_EQ(sync.update_vector_clock("games", "g1", "phone", {{"ann", 3}}),
            (vector_clock_map{{"ann", 3}, {"bob", 1}}));
  EXPECT_EQ(sync.acknowledged_vector_clock("games", "g1", "phone"),
            (vector_clock_map{{"ann", 3}, {"bob", 1}}));
  // Acknowledgements are per client.
  EXPECT_EQ(sync.acknowledged_vector_clock("games", "g1", "tablet"), std::nullopt);
}

TEST_P(sync_storage_test, snapshots_every_interval_keeping_the_latest_ones) {
  auto& sync = open_sync({.snapshot_interval = 3, .snapshots_kept = 2});
  sync.find_one_and_upsert("games", game("g1", 0));
  EXPECT_EQ(sync.latest_snapshot("games", "g1"), std::nullopt);
  std::map<std::int64_t, json> by_version;
  for (int i = 1; i < 10; ++i) {
    auto r = sync.find_one_and_update(
        "games", "g1",
        [i](const json& g) {
          json next = g;
          next["gold"] = i * 10;
          return next;
        },
        as_client(i % 2 ? "ann" : "bob"));
    by_version[r.diff.version] = r.document;
  }
  auto latest = sync.latest_snapshot("games", "g1");
  ASSERT_TRUE(latest);
  EXPECT_EQ(latest->version, 9);
  EXPECT_EQ(latest->document, by_version[9]);
  // Version 9 is the 8th update (i = 8): ann wrote i = 1, 3, 5, 7 and bob i = 2, 4, 6, 8.
  EXPECT_EQ(latest->vector_clock, (vector_clock_map{{"server", 1}, {"ann", 4}, {"bob", 4}}));
  EXPECT_EQ(sync_events(sync, "games", "g1")[8].data["vector_clock"],
            (json{{"server", 1}, {"ann", 4}, {"bob", 4}}));
  // Snapshots at 3, 6 and 9 were written; two slots keep 6 and 9.
  auto slots = sync.store()->engine().find(eventsourced::kSyncSnapshotCollection, {});
  ASSERT_EQ(slots.size(), 2u);
  std::set<std::int64_t> versions;
  for (const auto& s : slots) versions.insert(s.body["stream_version"].get<std::int64_t>());
  EXPECT_EQ(versions, (std::set<std::int64_t>{6, 9}));
  EXPECT_EQ(sync.snapshot_failures(), 0);
}

TEST_P(sync_storage_test, a_deletion_at_an_interval_snapshots_a_null_document) {
  auto& sync = open_sync({.snapshot_interval = 2});
  sync.find_one_and_upsert("games", game("g1", 0));
  sync.delete_one("games", "g1");
  auto latest = sync.latest_snapshot("games", "g1");
  ASSERT_TRUE(latest);
  EXPECT_EQ(latest->version, 2);
  EXPECT_TRUE(latest->document.is_null());
}

TEST_P(sync_storage_test, get_missing_events_returns_only_what_the_client_lacks) {
  auto& sync = open_sync({.snapshot_interval = 5, .max_missing_events = 3});
  sync.find_one_and_upsert("games", game("g1", 0));
  for (int i = 1; i < 12; ++i) {
    sync.find_one_and_update("games", "g1", [i](const json& g) {
      json next = g;
      next["gold"] = i;
      return next;
    });
  }
  const json server = *sync.find_one("games", "g1");

  // Up to date: nothing.
  auto none = sync.get_missing_events("games", "g1", {.version = 12});
  EXPECT_FALSE(none.snapshot);
  EXPECT_TRUE(none.events.empty());
  EXPECT_EQ(none.version, 12);

  // A little behind: events only.
  auto few = sync.get_missing_events("games", "g1", {.version = 9});
  EXPECT_FALSE(few.snapshot);
  ASSERT_EQ(few.events.size(), 3u);
  EXPECT_EQ(few.events.front().stream_version, 10);

  // Far behind: the latest snapshot (10), then 11 and 12.
  auto far = sync.get_missing_events("games", "g1", {.version = 2});
  ASSERT_TRUE(far.snapshot);
  EXPECT_EQ(far.snapshot->version, 10);
  ASSERT_EQ(far.events.size(), 2u);
  EXPECT_EQ(far.events.front().stream_version, 11);

  // A new client (version 0) too.
  simulated_client fresh;
  fresh.apply(sync.get_missing_events("games", "g1", {}));
  EXPECT_EQ(fresh.document, server);
  EXPECT_EQ(fresh.version, 12);
}

TEST_P(sync_storage_test, several_clients_at_different_positions_all_catch_up) {
  auto& sync = open_sync({.snapshot_interval = 4, .snapshots_kept = 2, .max_missing_events = 5});
  std::vector<simulated_client> clients(6);
  sync.find_one_and_upsert("games", game("g1", 0));
  for (int i = 1; i <= 30; ++i) {
    sync.find_one_and_update("games", "g1", [i](const json& g) {
      json next = g;
      next["gold"] = i;
      next["log"].push_back(i);
      return next;
    });
    // Client k catches up after every (k+1)-th write only.
    for (std::size_t k = 0; k < clients.size(); ++k) {
      if (i % static_cast<int>(k + 1) == 0) {
        clients[k].apply(sync.get_missing_events("games", "g1", {.version = clients[k].version}));
      }
    }
  }
  const json server = *sync.find_one("games", "g1");
  for (auto& c : clients) {
    c.apply(sync.get_missing_events("games", "g1", {.version = c.version}));
    EXPECT_EQ(c.version, 31);
    EXPECT_EQ(c.document, server);
  }
}

TEST_P(sync_storage_test, bad_input_gets_a_clear_error_and_changes_nothing) {
  auto& sync = open_sync();
  sync.find_one_and_upsert("games", game("g1", 0), as_client("ann"));
  const auto events_before = sync_events(sync, "games", "g1");

  EXPECT_THROW(sync.get_missing_events("games", "nobody", {}), eventsourced::not_found_error);
  EXPECT_THROW(sync.get_missing_events("games", "nobody", {.version = 3}),
               eventsourced::not_found_error);
  EXPECT_THROW(sync.get_missing_events("games", "g1", {.version = 2}),
               eventsourced::invalid_argument_error);
  EXPECT_THROW(sync.get_missing_events("games", "g1", {.version = -1}),
               eventsourced::invalid_argument_error);
  EXPECT_THROW(sync.get_missing_events("_es_sync_states", "g1", {}),
               eventsourced::invalid_argument_error);
  EXPECT_THROW(sync.get_missing_events("bad/name", "g1", {}), eventsourced::invalid_argument_error);
  EXPECT_THROW(sync.vector_clock("games", "nobody"), eventsourced::not_found_error);

  // Writes with an empty or non-string client id.
  auto bump = [](const json& g) {
    json next = g;
    next["gold"] = 1;
    return next;
  };
  EXPECT_THROW(sync.find_one_and_update("games", "g1", bump, as_client("")),
               eventsourced::invalid_argument_error);
  EXPECT_THROW(
      sync.find_one_and_update("games", "g1", bump, {.event_metadata = {{"client_id", 7}}}),
      eventsourced::invalid_argument_error);
  EXPECT_THROW(sync.find_one_and_upsert("games", game("g2", 0), as_client("")),
               eventsourced::invalid_argument_error);

  // Acknowledgements: unknown document, empty client, negative or future counters.
  EXPECT_THROW(sync.update_vector_clock("games", "nobody", "phone", {{"ann", 1}}),
               eventsourced::not_found_error);
  EXPECT_THROW(sync.update_vector_clock("games", "g1", "", {{"ann", 1}}),
               eventsourced::invalid_argument_error);
  EXPECT_THROW(sync.update_vector_clock("games", "g1", "phone", {{"ann", -1}}),
               eventsourced::invalid_argument_error);
  EXPECT_THROW(sync.update_vector_clock("games", "g1", "phone", {{"ann", 2}}),
               eventsourced::invalid_argument_error);
  EXPECT_THROW(sync.update_vector_clock("games", "g1", "phone", {{"zed", 1}}),
               eventsourced::invalid_argument_error);
  EXPECT_THROW(sync.update_vector_clock("games", "g1", "phone", {{"", 0}}),
               eventsourced::invalid_argument_error);

  EXPECT_EQ(sync.acknowledged_vector_clock("games", "g1", "phone"), std::nullopt);
  EXPECT_EQ(sync.find_one("games", "g2"), std::nullopt);
  EXPECT_EQ(*sync.find_one("games", "g1"), (json{{"id", "g1"}, {"gold", 0}, {"version", 1}}));
  EXPECT_EQ(sync_events(sync, "games", "g1").size(), events_before.size());
  EXPECT_EQ(sync.vector_clock("games", "g1"), (vector_clock_map{{"ann", 1}}));
}

TEST_P(sync_storage_test, collection_name_and_id_may_take_kMaxSyncDocumentKeyBytes_together) {
  auto& sync = open_sync();
  const std::string longest(eventsourced::kMaxSyncDocumentKeyBytes - std::string("games").size(),
                            'i');
  sync.find_one_and_upsert("games", game(longest, 1), as_client("ann"));
  EXPECT_EQ(sync.get_missing_events("games", longest, {}).version, 1);
  try {
    sync.find_one_and_upsert("games", game(longest + "i", 1), as_client("ann"));
    FAIL() << "written";
  } catch (const eventsourced::invalid_argument_error& e) {
    EXPECT_NE(std::string(e.what()).find(std::to_string(eventsourced::kMaxSyncDocumentKeyBytes)),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(sync.find_one("games", longest)->value("gold", 0), 1);
}

TEST_P(sync_storage_test, a_client_put_creates_or_replaces_the_whole_body) {
  auto& sync = open_sync();
  eventsourced::client_write w;
  w.client_id = "ann";
  w.mutation_id = "m1";
  w.document = game("g1", 3);
  EXPECT_EQ(sync.apply_client_write("games", "g1", w).version, 1);
  w.mutation_id = "m2";
  w.document = {{"id", "g1"}, {"level", 2}};
  const auto replaced = sync.apply_client_write("games", "g1", w);
  EXPECT_TRUE(replaced.changed);
  EXPECT_EQ(replaced.version, 2);
  EXPECT_EQ(*sync.find_one("games", "g1"), (json{{"id", "g1"}, {"level", 2}, {"version", 2}}));
  EXPECT_EQ(sync.vector_clock("games", "g1"), (vector_clock_map{{"ann", 2}}));
}

TEST_P(sync_storage_test, bad_options_are_refused) {
  EXPECT_THROW(open_sync({.client_id = ""}), eventsourced::invalid_argument_error);
  EXPECT_THROW(open_sync({.snapshot_interval = 0}), eventsourced::invalid_argument_error);
  EXPECT_THROW(open_sync({.snapshots_kept = 0}), eventsourced::invalid_argument_error);
  EXPECT_THROW(open_sync({.max_missing_events = 0}), eventsourced::invalid_argument_error);
}

// Invariant 2: a write whose sync event cannot be recorded writes nothing.
TEST_P(sync_storage_test, a_write_around_the_sync_storage_is_refused_and_writes_nothing) {
  auto& sync = open_sync();
  sync.find_one_and_upsert("games", game("g1", 0));
  auto games = sync.store()->documents("games");
  EXPECT_THROW(games.find_one_and_upsert(game("g2", 0)), eventsourced::invalid_argument_error);
  EXPECT_THROW(games.update_one("g1", {{"$set", {{"gold", 5}}}}),
               eventsourced::invalid_argument_error);
  EXPECT_THROW(games.delete_one("g1"), eventsourced::invalid_argument_error);
  EXPECT_EQ(games.find_one("g2"), std::nullopt);
  EXPECT_EQ((*games.find_one("g1"))["gold"], 0);
  EXPECT_EQ(sync_events(sync, "games", "g1").size(), 1u);
  EXPECT_TRUE(sync.store()->engine().read_all(0, 100).size() == 1u);
}

TEST_P(sync_storage_test, a_failing_mapper_fails_the_write_and_records_nothing) {
  auto failing = std::make_shared<eventsourced::function_event_mapper>(
      [](const eventsourced::document_change& change) -> std::vector<eventsourced::mapped_event> {
        if (change.after.is_object() && change.after.value("gold", 0) == 13) {
          throw std::runtime_error("unlucky");
        }
        return {};
      });
  auto& sync = open_sync({.storage = {.mapper = failing}, .snapshot_interval = 2});
  sync.find_one_and_upsert("games", game("g1", 0));
  EXPECT_THROW(sync.find_one_and_update("games", "g1",
                                        [](const json& g) {
                                          json next = g;
                                          next["gold"] = 13;
                                          return next;
                                        }),
               std::runtime_error);
  EXPECT_EQ((*sync.find_one("games", "g1"))["gold"], 0);
  EXPECT_EQ(sync_events(sync, "games", "g1").size(), 1u);
  EXPECT_EQ(sync.vector_clock("games", "g1"), (vector_clock_map{{"server", 1}}));
  EXPECT_EQ(sync.latest_snapshot("games", "g1"), std::nullopt);  // version 2 never happened
}

// Fails every commit that writes a snapshot; everything else goes through.
class snapshot_failing_engine : public shared_engine {
 public:
  using shared_engine::shared_engine;
  eventsourced::commit_result commit(const eventsourced::commit_request& request) override {
    for (const auto& w : request.writes) {
      if (w.collection == eventsourced::kSyncSnapshotCollection) {
        throw eventsourced::engine_error("injected: disk full");
      }
    }
    return shared_engine::commit(request);
  }
};

TEST_P(sync_storage_test,
       a_snapshot_that_cannot_be_written_fails_no_write_and_clients_still_catch_up) {
  std::vector<std::string> reported;
  auto& sync = open_sync_wrapped(
      [](std::shared_ptr<eventsourced::engine> e) {
        return std::make_unique<snapshot_failing_engine>(std::move(e));
      },
      {.snapshot_interval = 2,
       .max_missing_events = 1,
       .on_snapshot_error = [&](const eventsourced::stream_ref& doc, std::exception_ptr) {
         reported.push_back(doc.id);
       }});
  sync.find_one_and_upsert("games", game("g1", 0));
  for (int i = 1; i <= 4; ++i) {
    sync.find_one_and_update("games", "g1", [i](const json& g) {
      json next = g;
      next["gold"] = i;
      return next;
    });
  }
  EXPECT_EQ((*sync.find_one("games", "g1"))["gold"], 4);
  EXPECT_EQ(sync.snapshot_failures(), 2);  // versions 2 and 4
  EXPECT_EQ(reported, (std::vector<std::string>{"games/g1", "games/g1"}));
  EXPECT_EQ(sync.latest_snapshot("games", "g1"), std::nullopt);
  simulated_client client;
  auto batch = sync.get_missing_events("games", "g1", {});
  EXPECT_FALSE(batch.snapshot);  // none to give: every event instead
  client.apply(batch);
  EXPECT_EQ(client.document, *sync.find_one("games", "g1"));
}

// Counts what the storage reads through the engine: events returned by read_stream and
// documents looked up by get.
class read_counting_engine final : public shared_engine {
 public:
  using shared_engine::shared_engine;
  std::vector<eventsourced::recorded_event> read_stream(const eventsourced::stream_ref& stream,
                                                        std::int64_t from_version,
                                                        std::size_t max) override {
    auto out = shared_engine::read_stream(stream, from_version, max);
    events_read += static_cast<std::int64_t>(out.size());
    return out;
  }
  std::optional<eventsourced::stored_document> get(std::string_view collection,
                                                   std::string_view id) override {
    ++gets;
    return shared_engine::get(collection, id);
  }
  std::atomic<std::int64_t> events_read{0};
  std::atomic<std::int64_t> gets{0};
};

// DESIGN.md: the cost of catching up grows with what is missing, not with the history. Counted
// rather than timed (bench/sync_bench.cpp times it with 1,000,000 events of history).
TEST_P(sync_storage_test, get_missing_events_reads_what_is_missing_not_the_history) {
  read_counting_engine* counter = nullptr;
  auto& sync = open_sync_wrapped(
      [&](std::shared_ptr<eventsourced::engine> e) {
        auto wrapped = std::make_unique<read_counting_engine>(std::move(e));
        counter = wrapped.get();
        return wrapped;
      },
      {.snapshot_interval = 100, .max_missing_events = 50});
  const int long_history = engine() == engine_kind::memory ? 3000 : 600;
  for (const auto& [id, versions] : {std::pair{"long", long_history}, std::pair{"short", 20}}) {
    sync.find_one_and_upsert("games", game(id, 0));
    for (int v = 2; v <= versions; ++v) {
      sync.find_one_and_update("games", id, [v](const json& g) {
        json next = g;
        next["gold"] = v;
        return next;
      });
    }
  }
  struct cost {
    std::int64_t events = 0, gets = 0;
  };
  auto catch_up_cost = [&](const std::string& id, std::int64_t head) {
    counter->events_read = 0;
    counter->gets = 0;
    auto batch = sync.get_missing_events("games", id, {.version = head - 10});
    EXPECT_FALSE(batch.snapshot);
    EXPECT_EQ(batch.events.size(), 10u);
    EXPECT_EQ(batch.version, head);
    return cost{counter->events_read.load(), counter->gets.load()};
  };
  const cost long_cost = catch_up_cost("long", long_history);
  const cost short_cost = catch_up_cost("short", 20);
  EXPECT_EQ(long_cost.events, short_cost.events);
  EXPECT_EQ(long_cost.gets, short_cost.gets);
  EXPECT_LE(long_cost.events, 11);  // the 10 missing and the client's own (a future check)
}

EVENTSOURCED_SYNC_TEST_ENGINES(sync_storage_test);

}  // namespace
}  // namespace eventsourced_test
