// Projections: read-model writes and checkpoint in one commit (exactly-once effect), failures
// that commit nothing, rebuilds (also resumed after an interruption), conflicts, the store's view
// of the read model; on the memory engine and on a SQLite file.
#include <atomic>
#include <chrono>
#include <map>

#include <eventsourced/event/checkpoint.hpp>
#include <eventsourced/event/projection.hpp>

#include "support/event_workloads.hpp"
#include "unit/storage_test_support.hpp"

namespace eventsourced_test {
namespace {

using namespace std::chrono_literals;
using eventsourced::event;
using eventsourced::invalid_argument_error;
using eventsourced::projection;
using eventsourced::projection_options;
using eventsourced::projection_runner;
using eventsourced::read_model;
using eventsourced::testing::append_events;
using eventsourced::testing::counting_projection;

// Every document of a collection, by id, without the version field (versions depend on history;
// the content must not).
std::map<std::string, json> contents(eventsourced::engine& db, const std::string& collection) {
  std::map<std::string, json> out;
  for (auto& doc : db.find(collection, {})) {
    doc.body.erase("version");
    out[doc.id] = doc.body;
  }
  return out;
}

void run_to_head(projection_runner& runner) {
  while (runner.poll(0ms) > 0) {
  }
}

class projection_test : public storage_test {
 protected:
  static projection_options small() {
    return {.batch_size = 7,
            .rebuild_batch_size = 4,
            .wait_timeout = 20ms,
            .initial_backoff = 1ms,
            .max_backoff = 5ms};
  }
  // What counting_projection must show for the whole log.
  static void expect_counts_match_the_log(eventsourced::engine& db, const std::string& c) {
    const auto log = db.read_all(0, 1'000'000);
    std::int64_t sum = 0;
    for (const auto& e : log) sum += e.data.value("n", std::int64_t{0});
    const auto totals = db.get(c, "totals");
    ASSERT_TRUE(totals.has_value());
    EXPECT_EQ(totals->body["events"], static_cast<std::int64_t>(log.size()));
    EXPECT_EQ(totals->body["sum"], sum);
    EXPECT_EQ(totals->body["errors"], 0) << "an event was applied twice or out of order";
    EXPECT_EQ(totals->body["last_position"], log.back().position);
  }
};
EVENTSOURCED_STORAGE_TEST_ENGINES(projection_test);

TEST_P(projection_test, builds_a_read_model_readable_through_the_store) {
  auto store = open_store();
  const auto events = append_events(store->engine(), 25, 1);
  projection_runner runner(store, counting_projection("counts", "counts"), small());
  run_to_head(runner);
  expect_counts_match_the_log(store->engine(), "counts");
  EXPECT_EQ(runner.position(), events.back().position);
  EXPECT_EQ(eventsourced::load_checkpoint(store->engine(), "counts").position,
            events.back().position);
  const auto totals = store->documents("counts").find_one("totals");
  ASSERT_TRUE(totals.has_value());
  EXPECT_EQ((*totals)["id"], "totals") << "the store's id field is in the body";
  EXPECT_GE((*totals)["version"].get<std::int64_t>(), 1);
}

TEST_P(projection_test, a_handler_failure_commits_nothing_of_its_batch) {
  auto store = open_store();
  const auto events = append_events(store->engine(), 10, 2);
  auto p = counting_projection("counts", "counts");
  bool fail = true;
  auto count = p.handle;
  p.handle = [&, count](const event& e, read_model& rm) {
    count(e, rm);  // stages its writes first: they must not be committed
    if (fail && e.id == events[3].id) throw std::runtime_error("handler failed");
  };
  projection_runner runner(store, p, small());
  EXPECT_THROW(runner.poll(0ms), std::runtime_error);
  EXPECT_TRUE(store->engine().find("counts", {}).empty());
  EXPECT_EQ(eventsourced::load_checkpoint(store->engine(), "counts").version, 0);
  fail = false;
  run_to_head(runner);
  expect_counts_match_the_log(store->engine(), "counts");
}

TEST_P(projection_test, rebuild_clears_and_replays_to_the_same_read_model) {
  auto store = open_store();
  append_events(store->engine(), 20, 3);
  projection_runner runner(store, counting_projection("counts", "counts"), small());
  run_to_head(runner);
  const auto before = contents(store->engine(), "counts");
  runner.rebuild();
  EXPECT_TRUE(store->engine().find("counts", {}).empty());
  const auto cp = eventsourced::load_checkpoint(store->engine(), "counts");
  EXPECT_EQ(cp.position, 0);
  EXPECT_FALSE(cp.rebuilding);
  EXPECT_EQ(runner.position(), 0);
  run_to_head(runner);
  EXPECT_EQ(contents(store->engine(), "counts"), before);
  expect_counts_match_the_log(store->engine(), "counts");
}

TEST_P(projection_test, an_interrupted_rebuild_is_finished_before_any_event_is_applied) {
  auto store = open_store();
  append_events(store->engine(), 20, 4);
  {
    projection_runner runner(store, counting_projection("counts", "counts"), small());
    run_to_head(runner);
  }
  const auto fresh = contents(store->engine(), "counts");
  // What a process killed after the first chunk of a rebuild leaves: the checkpoint at 0 marked
  // "rebuilding", and most of the old read model still there.
  auto cp = eventsourced::load_checkpoint(store->engine(), "counts");
  cp.position = 0;
  cp.rebuilding = true;
  eventsourced::save_checkpoint(store->engine(), cp);
  projection_runner resumed(open_store(), counting_projection("counts", "counts"), small());
  run_to_head(resumed);
  EXPECT_EQ(contents(store->engine(), "counts"), fresh);
  expect_counts_match_the_log(store->engine(), "counts");
}

// Forwards to another engine, except that the find() calls after the first `finds_allowed`
// throw engine_unavailable_error (a transient failure), until disarmed. close() leaves the other
// engine open: its own store closes it.
class failing_find_engine final : public eventsourced::engine {
 public:
  explicit failing_find_engine(eventsourced::engine& target) : target_(target) {}
  std::atomic<int> finds_allowed{1'000'000};

  std::optional<eventsourced::stored_document> get(std::string_view c,
                                                   std::string_view id) override {
    return target_.get(c, id);
  }
  std::vector<eventsourced::stored_document> find(std::string_view c,
                                                  const eventsourced::query& q) override {
    if (finds_allowed.fetch_sub(1) <= 0) {
      throw eventsourced::engine_unavailable_error("injected: find failed");
    }
    return target_.find(c, q);
  }
  eventsourced::commit_result commit(const eventsourced::commit_request& r) override {
    return target_.commit(r);
  }
  std::vector<event> read_stream(const eventsourced::stream_ref& s, std::int64_t from,
                                 std::size_t max) override {
    return target_.read_stream(s, from, max);
  }
  std::vector<event> read_all(std::int64_t after, std::size_t max) override {
    return target_.read_all(after, max);
  }
  std::size_t truncate_stream(const eventsourced::stream_ref& s, std::int64_t before) override {
    return target_.truncate_stream(s, before);
  }
  bool wait_for(std::int64_t position, std::chrono::milliseconds timeout) override {
    return target_.wait_for(position, timeout);
  }
  void close() override {}

 private:
  eventsourced::engine& target_;
};

TEST_P(projection_test, a_rebuild_that_fails_part_way_is_finished_before_any_event_is_applied) {
  auto base = open_store();
  append_events(base->engine(), 20, 9);
  auto faulty = std::make_unique<failing_find_engine>(base->engine());
  failing_find_engine& faults = *faulty;
  auto store = eventsourced::store::wrap(std::move(faulty));
  projection_runner runner(store, counting_projection("counts", "counts"), small());
  run_to_head(runner);
  const auto fresh = contents(base->engine(), "counts");
  ASSERT_GT(fresh.size(), 8u) << "the read model must span several rebuild chunks";

  faults.finds_allowed = 1;  // the first chunk is found and committed, the second find fails
  EXPECT_THROW(runner.rebuild(), eventsourced::engine_unavailable_error);
  const auto cp = eventsourced::load_checkpoint(base->engine(), "counts");
  EXPECT_TRUE(cp.rebuilding);
  EXPECT_EQ(cp.position, 0);
  faults.finds_allowed = 1'000'000;
  run_to_head(runner);
  EXPECT_EQ(contents(base->engine(), "counts"), fresh);
  expect_counts_match_the_log(base->engine(), "counts");
  store->close();
}

TEST_P(projection_test, on_its_thread_it_follows_live_commits) {
  auto store = open_store();
  append_events(store->engine(), 5, 5);
  projection_runner runner(store, counting_projection("counts", "counts"), small());
  runner.start();
  const auto live = append_events(store->engine(), 15, 6, 100);
  ASSERT_TRUE(runner.wait_until_processed(live.back().position, 60s));
  runner.stop();
  expect_counts_match_the_log(store->engine(), "counts");
}

TEST_P(projection_test, a_read_model_conflict_commits_nothing_and_the_batch_is_handled_again) {
  auto store = open_store();
  append_events(store->engine(), 5, 7);
  auto p = counting_projection("counts", "counts");
  auto count = p.handle;
  bool interfere = true;
  p.handle = [&, count](const event& e, read_model& rm) {
    count(e, rm);
    if (interfere) {  // someone else writes the read model between the read and the commit
      interfere = false;
      eventsourced::commit_request request;
      request.writes.push_back({"counts",
                                "totals",
                                0,
                                eventsourced::write_op::put,
                                {{"events", 0}, {"sum", 0}, {"last_position", 0}, {"errors", 0}}});
      store->engine().commit(request);
    }
  };
  projection_runner runner(store, p, small());
  EXPECT_THROW(runner.poll(0ms), eventsourced::conflict_error);
  EXPECT_EQ(eventsourced::load_checkpoint(store->engine(), "counts").version, 0);
  run_to_head(runner);
  const auto totals = store->engine().get("counts", "totals");
  ASSERT_TRUE(totals);
  EXPECT_EQ(totals->body["events"],
            static_cast<std::int64_t>(store->engine().read_all(0, 1'000'000).size()));
}

TEST_P(projection_test,
       a_second_runner_with_the_same_name_conflicts_on_the_checkpoint_and_commits_nothing) {
  auto store = open_store();
  append_events(store->engine(), 5, 8);
  projection_runner first(store, counting_projection("counts", "counts"), small());
  projection_runner second(open_store(), counting_projection("counts", "counts"), small());
  run_to_head(first);
  EXPECT_EQ(second.poll(0ms), 0u);  // loads first's checkpoint: nothing new
  append_events(store->engine(), 5, 9, 100);
  EXPECT_GT(first.poll(0ms), 0u);
  EXPECT_THROW(second.poll(0ms), eventsourced::conflict_error);
  run_to_head(first);
  expect_counts_match_the_log(store->engine(), "counts");  // second's batch left no trace
}

TEST_P(projection_test, the_store_cache_is_refreshed_by_projection_writes) {
  eventsourced::store_options options;
  options.cache = std::make_shared<eventsourced::memory_cache>();
  auto store = open_store(options);
  append_events(store->engine(), 3, 10);
  projection_runner runner(store, counting_projection("counts", "counts"), small());
  run_to_head(runner);
  auto docs = store->documents("counts");
  const auto first = docs.find_one("totals");  // now cached
  ASSERT_TRUE(first);
  append_events(store->engine(), 3, 11, 100);
  run_to_head(runner);
  const auto second = docs.find_one("totals");
  ASSERT_TRUE(second);
  EXPECT_GT((*second)["version"].get<std::int64_t>(), (*first)["version"].get<std::int64_t>());
  EXPECT_EQ(*second, store->engine().get("counts", "totals")->body);
}

TEST_P(projection_test, the_handler_may_only_touch_its_own_collections_with_object_bodies) {
  auto store = open_store();
  append_events(store->engine(), 1, 12);
  auto attempt = [&](std::function<void(read_model&)> touch) {
    projection p{"bad", {"mine"}, [touch](const event&, read_model& rm) { touch(rm); }};
    projection_runner runner(store, p, small());
    EXPECT_THROW(runner.poll(0ms), invalid_argument_error);
  };
  attempt([](read_model& rm) { rm.put("other", "x", json::object()); });
  attempt([](read_model& rm) { rm.get("other", "x"); });
  attempt([](read_model& rm) { rm.erase("other", "x"); });
  attempt([](read_model& rm) { rm.put("mine", "x", json::array()); });
  attempt([](read_model& rm) { rm.put("mine", "x", {{"id", "y"}}); });
  attempt([](read_model& rm) { rm.put("mine", "", json::object()); });
  EXPECT_TRUE(store->engine().find("mine", {}).empty());
}

TEST_P(projection_test, staged_writes_are_seen_by_later_reads_of_the_same_batch) {
  auto store = open_store();
  append_events(store->engine(), 1, 13);
  bool checked = false;
  projection p{"staging", {"mine"}, [&](const event&, read_model& rm) {
                 EXPECT_FALSE(rm.get("mine", "a"));
                 rm.put("mine", "a", {{"n", 1}});
                 EXPECT_EQ(rm.get("mine", "a").value()["n"], 1);
                 rm.erase("mine", "a");
                 EXPECT_FALSE(rm.get("mine", "a"));
                 rm.erase("mine", "never");  // nothing to delete: no write
                 rm.put("mine", "b", {{"n", 2}});
                 checked = true;
               }};
  projection_runner runner(store, p, small());
  run_to_head(runner);
  EXPECT_TRUE(checked);
  EXPECT_FALSE(store->engine().get("mine", "a"));
  EXPECT_EQ(store->engine().get("mine", "b")->body["n"], 2);
}

TEST_P(projection_test, projects_the_events_of_store_writes_made_through_a_collection) {
  eventsourced::store_options options;
  options.mapper = std::make_shared<eventsourced::default_event_mapper>();
  auto store = open_store(options);
  auto players = store->documents("players");
  players.find_one_and_upsert({{"id", "p1"}, {"gold", 10}});
  players.find_one_and_upsert({{"id", "p2"}, {"gold", 5}});
  players.update_one("p1", {{"$inc", {{"gold", 7}}}});
  players.delete_one("p2");
  // Writes per document, from the "document" metadata the store records.
  projection writes_per_player{
      "writes-per-player", {"player_writes"}, [](const event& e, read_model& rm) {
        const auto doc = eventsourced::document_of(e);
        if (!doc || doc->collection != "players") return;
        json row = rm.get("player_writes", doc->id).value_or(json{{"writes", 0}});
        row["writes"] = row["writes"].get<int>() + 1;
        row["last_type"] = e.type;
        rm.put("player_writes", doc->id, row);
      }};
  projection_runner runner(store, writes_per_player, small());
  run_to_head(runner);
  auto rows = store->documents("player_writes");
  EXPECT_EQ(rows.find_one("p1").value()["writes"], 2);
  EXPECT_EQ(rows.find_one("p1").value()["last_type"], "players.updated");
  EXPECT_EQ(rows.find_one("p2").value()["writes"], 2);
  EXPECT_EQ(rows.find_one("p2").value()["last_type"], "players.deleted");
  EXPECT_EQ(store->engine().read_all(0, 100).size(), 4u) << "projection writes record no events";
}

TEST_P(projection_test, bad_definitions_and_options_are_refused) {
  auto store = open_store();
  auto ok = counting_projection("counts", "counts");
  auto with = [&](auto change) {
    auto p = ok;
    change(p);
    return p;
  };
  EXPECT_THROW(projection_runner(nullptr, ok), invalid_argument_error);
  EXPECT_THROW(projection_runner(store, with([](projection& p) { p.name = ""; })),
               invalid_argument_error);
  EXPECT_THROW(projection_runner(store, with([](projection& p) { p.handle = nullptr; })),
               invalid_argument_error);
  EXPECT_THROW(projection_runner(store, with([](projection& p) { p.collections = {"_es_x"}; })),
               invalid_argument_error);
  EXPECT_THROW(projection_runner(store, with([](projection& p) {
                                   p.collections = {"a", "a"};
                                 })),
               invalid_argument_error);
  EXPECT_THROW(projection_runner(store, with([](projection& p) { p.collections = {"no spaces"}; })),
               invalid_argument_error);
  EXPECT_THROW(projection_runner(store, ok, {.batch_size = 0}), invalid_argument_error);
  EXPECT_THROW(projection_runner(store, ok, {.rebuild_batch_size = 0}), invalid_argument_error);
  EXPECT_THROW(projection_runner(store, ok, {.max_backoff = 0ms}), invalid_argument_error);
  projection_runner runner(store, ok, small());
  EXPECT_THROW(runner.poll(-1ms), invalid_argument_error);
  EXPECT_THROW(runner.wait_until_processed(-1, 1ms), invalid_argument_error);
  store->close();
  EXPECT_THROW(projection_runner(store, ok), eventsourced::store_closed_error);
}

}  // namespace
}  // namespace eventsourced_test
