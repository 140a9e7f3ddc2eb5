// Aggregate snapshots and time travel on both engines: snapshot + tail equals a full replay (a
// property over random command sequences and snapshot intervals), loading at every version equals
// replaying that prefix, stale or foreign snapshots are not used, and a failing snapshot commit
// never fails the save.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <eventsourced/eventsourced.hpp>

#include "cqrs_test_support.hpp"
#include "storage_test_support.hpp"

namespace {

using eventsourced::invalid_argument_error;
using eventsourced::json;
using eventsourced::kSnapshotsCollection;
using eventsourced::repository;
using eventsourced::repository_options;
using eventsourced_test::hero;
using eventsourced_test::replayed_state;

class snapshot_test : public eventsourced_test::storage_test {};

// One random command on h: several event types, sometimes several events (level-ups), sometimes
// a domain error (nothing raised).
void random_command(hero& h, std::mt19937& rng) {
  switch (rng() % 5) {
    case 0:
      h.earn(1 + rng() % 50);
      break;
    case 1:
      try {
        h.spend(1 + rng() % 80);
      } catch (const eventsourced_test::not_enough_gold&) {
      }
      break;
    case 2:
    case 3:
      h.gain(1 + rng() % 250);  // may level up more than once
      break;
    default:
      h.rename("name-" + std::to_string(rng() % 1000));
  }
}

TEST_P(snapshot_test, snapshot_plus_tail_equals_full_replay_and_time_travel_equals_the_prefix) {
  auto s = open_store();
  const int rounds = on_sqlite() ? 12 : 40;
  for (int round = 0; round < rounds; ++round) {
    std::mt19937 rng(static_cast<unsigned>(round) * 7919u + 17u);
    const std::int64_t every = std::vector<std::int64_t>{1, 2, 3, 5, 7, 10, 16, 50}[rng() % 8];
    repository snapshotting(*s, repository_options{.page_size = 1 + rng() % 8,
                                                   .snapshot_every_by_type = {{"hero", every}},
                                                   .cache_capacity = 0});
    repository plain(*s, repository_options{.page_size = 1 + rng() % 8, .cache_capacity = 0});
    const std::string id = "h" + std::to_string(round);
    const int commands = 1 + static_cast<int>(rng() % 60);
    std::int64_t last_multiple_crossed = 0;
    for (int i = 0; i < commands; ++i) {
      auto h = snapshotting.load<hero>(id);
      const std::int64_t before = h->version();
      const int in_this_save = 1 + static_cast<int>(rng() % 3);
      for (int k = 0; k < in_this_save; ++k) random_command(*h, rng);
      snapshotting.save(*h);
      if (before / every != h->version() / every) last_multiple_crossed = h->version();

      // Loading through the snapshot gives the state of a full replay.
      auto via_snapshot = snapshotting.load<hero>(id);
      ASSERT_EQ(via_snapshot->state(), plain.load<hero>(id)->state())
          << "round " << round << " command " << i << " every " << every;
      ASSERT_EQ(via_snapshot->state(), replayed_state(s->engine(), id, h->version()));
      // The snapshot is the one of the last save that crossed a multiple of `every`.
      auto doc = s->engine().get(kSnapshotsCollection, "hero/" + id);
      if (last_multiple_crossed == 0) {
        ASSERT_FALSE(doc.has_value());
        ASSERT_EQ(via_snapshot->restores, 0);
      } else {
        ASSERT_TRUE(doc.has_value());
        ASSERT_EQ(doc->body.at("version"), last_multiple_crossed);
        ASSERT_EQ(via_snapshot->restores, 1);
      }
    }
    // Time travel to every version equals replaying the prefix, snapshot or not.
    const std::int64_t head = plain.load<hero>(id)->version();
    for (std::int64_t v = 0; v <= head; ++v) {
      auto then = snapshotting.load_at<hero>(id, v);
      ASSERT_EQ(then->version(), v);
      ASSERT_EQ(then->state(), replayed_state(s->engine(), id, v))
          << "round " << round << " v " << v;
      ASSERT_EQ(then->restores, (last_multiple_crossed != 0 && last_multiple_crossed <= v) ? 1 : 0)
          << "a snapshot is used exactly when it is not past the version asked for";
    }
    EXPECT_THROW(snapshotting.load_at<hero>(id, head + 1), invalid_argument_error);
    EXPECT_THROW(snapshotting.load_at<hero>(id, -1), invalid_argument_error);
  }
}

TEST_P(snapshot_test, a_load_replays_only_the_events_after_the_snapshot) {
  auto s = open_store();
  repository repo(*s, repository_options{.snapshot_every = 100, .cache_capacity = 0});
  auto h = repo.load<hero>("h1");
  for (int i = 0; i < 250; ++i) h->earn(1);
  repo.save(*h);  // crosses 100 and 200: one snapshot, at 250
  for (int i = 0; i < 10; ++i) h->earn(1);
  repo.save(*h);
  auto loaded = repo.load<hero>("h1");
  EXPECT_EQ(loaded->restores, 1);
  EXPECT_EQ(loaded->gold(), 260);
  EXPECT_EQ(loaded->version(), 260);
  EXPECT_EQ(s->engine().get(kSnapshotsCollection, "hero/h1")->body.at("version"), 250);
}

TEST_P(snapshot_test, snapshots_of_another_schema_version_are_ignored) {
  auto s = open_store();
  repository repo(*s, repository_options{.snapshot_every = 2, .cache_capacity = 0});
  auto h = repo.load<hero>("h1");
  h->earn(5);
  h->earn(6);
  repo.save(*h);
  auto same = repo.load<hero>("h1");
  EXPECT_EQ(same->restores, 1);
  hero changed("h1");
  changed.schema = 2;  // the code's snapshot shape moved on
  repo.load_into(changed);
  EXPECT_EQ(changed.restores, 0);
  EXPECT_EQ(changed.gold(), 11);
  EXPECT_EQ(changed.version(), 2);
}

TEST_P(snapshot_test, snapshot_intervals_are_per_type_and_off_by_default) {
  auto s = open_store();
  repository off(*s, repository_options{.cache_capacity = 0});
  auto h = off.load<hero>("h1");
  for (int i = 0; i < 5; ++i) h->earn(1);
  off.save(*h);
  EXPECT_EQ(h->snapshots_taken, 0);
  EXPECT_FALSE(s->engine().get(kSnapshotsCollection, "hero/h1"));
  repository by_type(
      *s, repository_options{.snapshot_every = 1, .snapshot_every_by_type = {{"hero", 0}}});
  EXPECT_EQ(by_type.snapshot_interval("hero"), 0);
  EXPECT_EQ(by_type.snapshot_interval("guild"), 1);
  h->earn(1);
  by_type.save(*h);
  EXPECT_FALSE(s->engine().get(kSnapshotsCollection, "hero/h1"));
  EXPECT_THROW(repository(*s, repository_options{.snapshot_every = -1}), invalid_argument_error);
  EXPECT_THROW(repository(*s, repository_options{.snapshot_every_by_type = {{"hero", -5}}}),
               invalid_argument_error);
}

TEST_P(snapshot_test, a_corrupt_snapshot_is_a_serialization_error) {
  auto s = open_store();
  repository repo(*s, repository_options{.snapshot_every = 1, .cache_capacity = 0});
  auto h = repo.load<hero>("h1");
  h->earn(1);
  repo.save(*h);
  auto doc = s->engine().get(kSnapshotsCollection, "hero/h1");
  ASSERT_TRUE(doc);
  eventsourced::commit_request request;
  request.writes.push_back({std::string(kSnapshotsCollection), "hero/h1", doc->version,
                            eventsourced::write_op::put, json{{"version", "one"}}});
  s->engine().commit(request);
  EXPECT_THROW(repo.load<hero>("h1"), eventsourced::serialization_error);
}

// Fault injection: an engine whose commits touching the snapshot collection fail.
class snapshot_failing_engine final : public eventsourced_test::shared_engine {
 public:
  using shared_engine::shared_engine;
  eventsourced::commit_result commit(const eventsourced::commit_request& request) override {
    for (const auto& w : request.writes) {
      if (w.collection == kSnapshotsCollection) throw eventsourced::engine_error("disk full");
    }
    return shared_engine::commit(request);
  }
};

TEST(snapshot_failure_test, a_failing_snapshot_commit_is_reported_and_the_save_stands) {
  std::shared_ptr<eventsourced::engine> memory = eventsourced::make_memory_engine();
  snapshot_failing_engine failing(memory);
  std::atomic<int> reported{0};
  repository repo(failing, repository_options{.snapshot_every = 2,
                                              .on_snapshot_error =
                                                  [&](const eventsourced::stream_ref& aggregate,
                                                      std::exception_ptr error) {
                                                    EXPECT_EQ(aggregate.id, "h1");
                                                    try {
                                                      std::rethrow_exception(error);
                                                    } catch (const eventsourced::engine_error&) {
                                                      ++reported;
                                                    }
                                                  },
                                              .cache_capacity = 0});
  auto h = repo.load<hero>("h1");
  h->earn(1);
  h->earn(2);
  auto result = repo.save(*h);  // does not throw
  EXPECT_EQ(result.events.size(), 2u);
  EXPECT_EQ(reported.load(), 1);
  EXPECT_EQ(h->uncommitted().size(), 0u);
  auto loaded = repo.load<hero>("h1");
  EXPECT_EQ(loaded->gold(), 3);
  EXPECT_EQ(loaded->restores, 0);
  // Without a callback the error is dropped, and the save still stands.
  repository quiet(failing, repository_options{.snapshot_every = 1, .cache_capacity = 0});
  auto again = quiet.load<hero>("h1");
  again->earn(4);
  EXPECT_NO_THROW(quiet.save(*again));
  EXPECT_EQ(quiet.load<hero>("h1")->gold(), 7);
}

// The in-memory cache of aggregate states: loads through it equal full replays also while
// another repository (its own cache, another store object) writes the same aggregates.
TEST_P(snapshot_test, cached_states_with_a_second_writer_equal_full_replays) {
  auto s = open_store();
  auto other_store = open_store();
  for (int round = 0; round < (on_sqlite() ? 6 : 20); ++round) {
    std::mt19937 rng(static_cast<unsigned>(round) * 104729u + 3u);
    repository cached(*s, repository_options{.snapshot_every = static_cast<std::int64_t>(rng() % 4),
                                             .cache_capacity = 1 + rng() % 3});
    repository other(*other_store, repository_options{.cache_capacity = 1 + rng() % 3});
    repository plain(*s, repository_options{.cache_capacity = 0});
    int cache_hits = 0;
    for (int i = 0; i < 60; ++i) {
      const std::string id = "r" + std::to_string(round) + "-" + std::to_string(rng() % 4);
      repository& writer = (rng() % 3 == 0) ? other : cached;
      auto h = writer.load<hero>(id);
      ASSERT_EQ(h->state(), plain.load<hero>(id)->state()) << "round " << round << " op " << i;
      cache_hits += h->restores;
      random_command(*h, rng);
      writer.save(*h);
      auto reloaded = cached.load<hero>(id);
      ASSERT_EQ(reloaded->state(), replayed_state(s->engine(), id, reloaded->version()));
      ASSERT_EQ(reloaded->version(), plain.load<hero>(id)->version()) << "never behind";
      // Time travel never uses a cached state past the version asked for.
      if (reloaded->version() > 1) {
        const std::int64_t v = 1 + static_cast<std::int64_t>(rng()) % (reloaded->version() - 1);
        ASSERT_EQ(cached.load_at<hero>(id, v)->state(), replayed_state(s->engine(), id, v));
      }
    }
    EXPECT_GT(cache_hits, 0) << "the cache was used";
  }
}

TEST_P(snapshot_test, the_cache_keeps_the_most_recently_used_states) {
  auto s = open_store();
  repository repo(*s, repository_options{.cache_capacity = 2});
  for (const char* id : {"a", "b", "c"}) {
    auto h = repo.load<hero>(id);
    h->earn(1);
    repo.save(*h);
  }
  EXPECT_EQ(repo.load<hero>("a")->restores, 0) << "evicted: replayed";
  EXPECT_EQ(repo.load<hero>("c")->restores, 1);
  EXPECT_EQ(repo.load<hero>("a")->restores, 1) << "kept again after its load";
  hero other_schema("a");
  other_schema.schema = 2;
  repo.load_into(other_schema);
  EXPECT_EQ(other_schema.restores, 0) << "a state of another schema version is not used";
  EXPECT_EQ(other_schema.gold(), 1);
}

// snapshot() that throws after a save: reported, the save stands.
class fragile_hero final : public eventsourced::aggregate_root {
 public:
  explicit fragile_hero(std::string id) : aggregate_root("fragile", std::move(id)) {
    on("Poked", [](const eventsourced::event&) {});
  }
  void poke() { raise("Poked", json::object()); }
  std::optional<json> snapshot() const override { throw std::runtime_error("no snapshot today"); }
};

TEST_P(snapshot_test, a_throwing_snapshot_is_reported_and_the_save_stands) {
  auto s = open_store();
  int reported = 0;
  repository repo(*s,
                  repository_options{.snapshot_every = 1,
                                     .on_snapshot_error = [&](const eventsourced::stream_ref&,
                                                              std::exception_ptr) { ++reported; }});
  auto f = repo.load<fragile_hero>("f1");
  f->poke();
  EXPECT_NO_THROW(repo.save(*f));
  EXPECT_EQ(reported, 1);
  EXPECT_EQ(repo.load<fragile_hero>("f1")->version(), 1);
}

EVENTSOURCED_STORAGE_TEST_ENGINES(snapshot_test);

}  // namespace
