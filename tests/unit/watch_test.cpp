// Watch: document changes of one collection or of all, from a position, built on the log; on the
// memory engine and on a SQLite file.
#include <chrono>
#include <optional>
#include <thread>

#include <eventsourced/event/watch.hpp>

#include "unit/storage_test_support.hpp"

namespace eventsourced_test {
namespace {

using namespace std::chrono_literals;
using eventsourced::committed_change;
using eventsourced::event_log;
using eventsourced::watch;
using eventsourced::watch_options;

// Commits a write of collection/id at `version` (1: create) with `events` events recorded for
// it, as the store does: metadata "document" names the write. Returns the recorded events.
std::vector<eventsourced::recorded_event> write_with_events(eventsourced::engine& db,
                                                            const std::string& collection,
                                                            const std::string& id,
                                                            std::int64_t version, int events = 1) {
  eventsourced::commit_request request;
  request.writes.push_back(
      {collection, id, version - 1, eventsourced::write_op::put, {{"v", version}}});
  eventsourced::stream_append append{{collection, id}};
  const json metadata = {
      {"document", {{"collection", collection}, {"id", id}, {"version", version}}}};
  for (int i = 0; i < events; ++i) {
    append.events.push_back(eventsourced::make_event("Changed", {{"i", i}}, metadata));
  }
  request.appends.push_back(std::move(append));
  return db.commit(request).events;
}

// An event that no document write recorded (an aggregate's).
void append_plain_event(eventsourced::engine& db) {
  eventsourced::commit_request request;
  request.appends.push_back({{"ledger", "l1"}, std::nullopt, {eventsourced::make_event("X", {})}});
  db.commit(request);
}

class watch_test : public storage_test {};
EVENTSOURCED_STORAGE_TEST_ENGINES(watch_test);

TEST_P(watch_test, sees_the_changes_of_one_collection_in_commit_order) {
  auto store = open_store();
  auto& db = store->engine();
  write_with_events(db, "players", "p1", 1);
  write_with_events(db, "items", "i1", 1);
  append_plain_event(db);
  write_with_events(db, "players", "p2", 1);
  write_with_events(db, "players", "p1", 2);
  auto changes = watch(event_log(store), {.collection = "players"});
  std::vector<std::pair<std::string, std::int64_t>> seen;
  while (auto change = changes.next(0ms)) {
    EXPECT_EQ(change->collection, "players");
    ASSERT_EQ(change->events.size(), 1u);
    EXPECT_EQ(change->position, change->events.back().position);
    seen.emplace_back(change->id, change->version);
  }
  EXPECT_EQ(seen,
            (std::vector<std::pair<std::string, std::int64_t>>{{"p1", 1}, {"p2", 1}, {"p1", 2}}));
}

TEST_P(watch_test, without_a_collection_it_sees_every_document_change) {
  auto store = open_store();
  auto& db = store->engine();
  write_with_events(db, "players", "p1", 1);
  append_plain_event(db);
  write_with_events(db, "items", "i1", 1);
  auto changes = watch(event_log(store));
  EXPECT_EQ(changes.next(0ms)->collection, "players");
  EXPECT_EQ(changes.next(0ms)->collection, "items");
  EXPECT_FALSE(changes.next(0ms)) << "an event without document metadata is not a change";
}

TEST_P(watch_test, a_write_with_several_events_is_one_change_even_across_pages) {
  auto store = open_store();
  auto& db = store->engine();
  const auto first = write_with_events(db, "players", "p1", 1, 3);
  const auto second = write_with_events(db, "players", "p1", 2, 3);
  auto changes = watch(event_log(store), {.collection = "players", .batch_size = 2});
  const auto a = changes.next(0ms);
  ASSERT_TRUE(a);
  ASSERT_EQ(a->events.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(a->events[i].id, first[i].id);
  const auto b = changes.next(0ms);
  ASSERT_TRUE(b);
  ASSERT_EQ(b->events.size(), 3u);
  EXPECT_EQ(b->version, 2);
  EXPECT_EQ(b->position, second.back().position);
}

TEST_P(watch_test, a_watch_resumed_at_position_continues_with_the_next_change) {
  auto store = open_store();
  auto& db = store->engine();
  for (int i = 1; i <= 5; ++i) write_with_events(db, "players", "p" + std::to_string(i), 1, 2);
  auto changes = watch(event_log(store), {.collection = "players", .batch_size = 3});
  EXPECT_EQ(changes.next(0ms)->id, "p1");
  EXPECT_EQ(changes.next(0ms)->id, "p2");
  const auto token = changes.position();
  auto resumed = watch(event_log(open_store()), {.collection = "players", .after_position = token});
  EXPECT_EQ(resumed.next(0ms)->id, "p3");
  EXPECT_EQ(changes.next(0ms)->id, "p3");
}

TEST_P(watch_test, the_position_skips_events_of_other_collections_once_read) {
  auto store = open_store();
  auto& db = store->engine();
  write_with_events(db, "items", "i1", 1);
  const auto last = write_with_events(db, "items", "i2", 1);
  auto changes = watch(event_log(store), {.collection = "players"});
  EXPECT_FALSE(changes.next(0ms));
  EXPECT_EQ(changes.position(), last.back().position) << "a resumed watch need not re-read them";
}

TEST_P(watch_test, next_waits_for_a_change_committed_by_another_thread) {
  auto store = open_store();
  auto changes = watch(event_log(store), {.collection = "players"});
  std::optional<committed_change> got;
  std::thread watcher([&] { got = changes.next(30s); });
  auto writer = open_store();  // on SQLite: another engine object, noticed by polling
  write_with_events(writer->engine(), "items", "i1", 1);  // not a players change: keep waiting
  write_with_events(writer->engine(), "players", "p9", 1);
  watcher.join();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->id, "p9");
}

TEST_P(watch_test, next_returns_nothing_when_no_change_commits_in_time) {
  auto store = open_store();
  auto changes = watch(event_log(store), {.collection = "players"});
  EXPECT_FALSE(changes.next(10ms));
}

TEST_P(watch_test, sees_writes_made_through_a_store_collection_with_the_default_mapper) {
  eventsourced::store_options options;
  options.mapper = std::make_shared<eventsourced::default_event_mapper>();
  auto store = open_store(options);
  auto players = store->documents("players");
  players.find_one_and_upsert({{"id", "p1"}, {"gold", 1}});
  store->documents("items").find_one_and_upsert({{"id", "i1"}});
  players.update_one("p1", {{"$inc", {{"gold", 5}}}});
  players.delete_one("p1");
  auto changes = watch(event_log(store), {.collection = "players"});
  std::vector<std::int64_t> versions;
  std::vector<std::string> types;
  while (auto change = changes.next(0ms)) {
    EXPECT_EQ(change->id, "p1");
    versions.push_back(change->version);
    for (const auto& e : change->events) types.push_back(e.type);
  }
  EXPECT_EQ(versions, (std::vector<std::int64_t>{1, 2, 3}));
  EXPECT_EQ(types,
            (std::vector<std::string>{"players.created", "players.updated", "players.deleted"}));
}

TEST_P(watch_test, bad_arguments_are_refused) {
  auto store = open_store();
  using eventsourced::invalid_argument_error;
  EXPECT_THROW(watch(event_log(store), {.collection = "not a name"}), invalid_argument_error);
  EXPECT_THROW(watch(event_log(store), {.after_position = -1}), invalid_argument_error);
  EXPECT_THROW(watch(event_log(store), {.batch_size = 0}), invalid_argument_error);
  auto changes = watch(event_log(store));
  EXPECT_THROW(changes.next(-1ms), invalid_argument_error);
  store->close();
  EXPECT_THROW(changes.next(0ms), eventsourced::store_closed_error);
}

}  // namespace
}  // namespace eventsourced_test
