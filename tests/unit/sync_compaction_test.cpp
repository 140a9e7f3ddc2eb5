// event_sync_storage with sync_options::compact_events: old sync events are deleted once a kept
// snapshot covers them, and every client — at any old version, compacted or not — still catches
// up exactly; failures of compaction never fail a write.
#include <gtest/gtest.h>

#include <atomic>
#include <exception>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <eventsourced/eventsourced.hpp>

#include "sync_test_support.hpp"

namespace eventsourced_test {
namespace {

using eventsourced::json;

class sync_compaction_test : public sync_test {};

// Options set member by member: g++ 12 at -O2 warns falsely about nested designated initialisers
// of sync_options.
eventsourced::sync_options compacting(std::int64_t interval, std::size_t kept,
                                      std::size_t max_missing = 100) {
  eventsourced::sync_options options;
  options.snapshot_interval = interval;
  options.snapshots_kept = kept;
  options.max_missing_events = max_missing;
  options.compact_events = true;
  return options;
}

std::vector<std::int64_t> stored_versions(eventsourced::event_sync_storage& sync,
                                          const std::string& id) {
  std::vector<std::int64_t> out;
  for (const auto& e :
       sync.store()->engine().read_stream(eventsourced::sync_stream("games", id), 1, 1000)) {
    out.push_back(e.stream_version);
  }
  return out;
}

std::vector<std::int64_t> range(std::int64_t first, std::int64_t last) {
  std::vector<std::int64_t> out;
  for (std::int64_t v = first; v <= last; ++v) out.push_back(v);
  return out;
}

// Writes "games"/id `count` (>= 1) times (gold 0, 1, ...) and returns the document after each
// write: history[v] is the document at version v (history[0]: none).
std::vector<json> write_gold(eventsourced::event_sync_storage& sync, const std::string& id,
                             int count) {
  std::vector<json> history = {nullptr};
  sync.find_one_and_upsert("games", {{"id", id}, {"gold", 0}});
  history.push_back(*sync.find_one("games", id));
  for (int gold = 1; gold < count; ++gold) {
    sync.find_one_and_update("games", id, [gold](const json& g) {
      json next = g;
      next["gold"] = gold;
      return next;
    });
    history.push_back(*sync.find_one("games", id));
  }
  return history;
}

TEST_P(sync_compaction_test, events_older_than_the_oldest_kept_snapshot_are_deleted) {
  auto& sync = open_sync(compacting(/*interval=*/3, /*kept=*/2));
  write_gold(sync, "g1", 2);
  EXPECT_EQ(stored_versions(sync, "g1"), range(1, 2)) << "no snapshot yet: nothing deleted";
  write_gold(sync, "g2", 1);  // another document is compacted on its own
  sync.find_one_and_update("games", "g1", [](const json& g) {
    json next = g;
    next["gold"] = 100;
    return next;
  });
  EXPECT_EQ(stored_versions(sync, "g1"), range(3, 3)) << "one snapshot (3): events before it go";

  for (int i = 0; i < 7; ++i) {
    sync.find_one_and_update("games", "g1", [i](const json& g) {
      json next = g;
      next["n"] = i;
      return next;
    });
  }
  // Versions 1..10, snapshots at 3, 6, 9 of which 6 and 9 are kept: from 6 on.
  EXPECT_EQ(sync.latest_snapshot("games", "g1")->version, 9);
  EXPECT_EQ(stored_versions(sync, "g1"), range(6, 10));
  EXPECT_EQ(stored_versions(sync, "g2"), range(1, 1));
  EXPECT_EQ(sync.snapshot_failures(), 0);
}

TEST_P(sync_compaction_test, without_compact_events_every_event_is_kept) {
  eventsourced::sync_options options = compacting(3, 2);
  options.compact_events = false;
  auto& sync = open_sync(std::move(options));
  write_gold(sync, "g1", 10);
  EXPECT_EQ(stored_versions(sync, "g1"), range(1, 10));
}

TEST_P(sync_compaction_test, clients_at_any_old_version_catch_up_exactly_after_compaction) {
  auto& sync = open_sync(compacting(/*interval=*/4, /*kept=*/2, /*max_missing=*/3));
  const auto history = write_gold(sync, "g1", 23);
  // Snapshots at 4..20, kept 16 and 20: events 1..15 are gone.
  ASSERT_EQ(stored_versions(sync, "g1"), range(16, 23));
  const json server = *sync.find_one("games", "g1");
  for (std::int64_t v = 0; v <= 23; ++v) {
    SCOPED_TRACE("client at version " + std::to_string(v));
    simulated_client client{.version = v, .document = history[static_cast<std::size_t>(v)]};
    const auto batch = sync.get_missing_events("games", "g1", {.version = v});
    if (v < 15) {
      ASSERT_TRUE(batch.snapshot) << "its next event was compacted: only a snapshot bridges it";
      EXPECT_EQ(batch.snapshot->version, 20);
    }
    client.apply(batch);
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
    EXPECT_EQ(client.document, server);
    EXPECT_EQ(client.version, 23);
  }
}

TEST_P(sync_compaction_test, a_client_whose_next_event_is_the_oldest_left_needs_no_snapshot) {
  auto& sync = open_sync(compacting(/*interval=*/4, /*kept=*/1));
  const auto history = write_gold(sync, "g1", 9);
  ASSERT_EQ(stored_versions(sync, "g1"), range(8, 9));
  simulated_client client{.version = 7, .document = history[7]};
  const auto batch = sync.get_missing_events("games", "g1", {.version = 7});
  EXPECT_FALSE(batch.snapshot);
  client.apply(batch);
  EXPECT_EQ(client.document, history[9]);
}

TEST_P(sync_compaction_test, a_client_state_from_the_future_is_still_rejected_after_compaction) {
  auto& sync = open_sync(compacting(/*interval=*/2, /*kept=*/1));
  write_gold(sync, "g1", 6);
  ASSERT_EQ(stored_versions(sync, "g1"), range(6, 6));
  EXPECT_THROW(sync.get_missing_events("games", "g1", {.version = 7}),
               eventsourced::invalid_argument_error);
  EXPECT_THROW(sync.get_missing_events("games", "g1", {.version = 1000}),
               eventsourced::invalid_argument_error);
  EXPECT_THROW(sync.get_missing_events("games", "nope", {.version = 0}),
               eventsourced::not_found_error);
  // The client at the head needs nothing; a compacted one gets the snapshot.
  EXPECT_TRUE(sync.get_missing_events("games", "g1", {.version = 6}).events.empty());
  EXPECT_EQ(sync.get_missing_events("games", "g1", {.version = 1}).snapshot->version, 6);
}

TEST_P(sync_compaction_test, a_deleted_and_recreated_document_compacts_and_catches_up) {
  auto& sync = open_sync(compacting(/*interval=*/2, /*kept=*/1));
  write_gold(sync, "g1", 3);
  ASSERT_TRUE(sync.delete_one("games", "g1"));  // version 4: a snapshot of "deleted"
  ASSERT_EQ(stored_versions(sync, "g1"), range(4, 4));
  EXPECT_EQ(sync.find_one("games", "g1"), std::nullopt);
  sync.find_one_and_upsert("games", {{"id", "g1"}, {"gold", 7}});  // version 5
  simulated_client client;
  client.apply(sync.get_missing_events("games", "g1", {}));
  EXPECT_EQ(client.document, *sync.find_one("games", "g1"));
  EXPECT_EQ(client.version, 5);
}

// Forwards everything; truncate_stream fails while `fail_truncation` is set, and snapshot
// writes fail while `fail_snapshots` is set.
class failing_compaction_engine : public shared_engine {
 public:
  using shared_engine::shared_engine;
  std::atomic<bool> fail_truncation{false};
  std::atomic<bool> fail_snapshots{false};

  eventsourced::commit_result commit(const eventsourced::commit_request& request) override {
    for (const auto& w : request.writes) {
      if (fail_snapshots && w.collection == eventsourced::kSyncSnapshotCollection) {
        throw eventsourced::engine_error("injected: snapshot write failed");
      }
    }
    return shared_engine::commit(request);
  }
  std::size_t truncate_stream(const eventsourced::stream_ref& stream,
                              std::int64_t before_version) override {
    if (fail_truncation) throw eventsourced::engine_unavailable_error("injected: truncate failed");
    return shared_engine::truncate_stream(stream, before_version);
  }
};

TEST_P(sync_compaction_test, a_failing_compaction_fails_no_write_and_is_reported) {
  failing_compaction_engine* faults = nullptr;
  std::vector<std::string> reported;
  eventsourced::sync_options options = compacting(/*interval=*/2, /*kept=*/1);
  options.on_snapshot_error = [&](const eventsourced::stream_ref& doc, std::exception_ptr error) {
    try {
      std::rethrow_exception(error);
    } catch (const eventsourced::engine_unavailable_error&) {
      reported.push_back(doc.id);
    } catch (...) {
      reported.push_back("unexpected error for " + doc.id);
    }
  };
  auto& sync = open_sync_wrapped(
      [&](std::shared_ptr<eventsourced::engine> e) {
        auto engine = std::make_unique<failing_compaction_engine>(std::move(e));
        faults = engine.get();
        return engine;
      },
      std::move(options));
  faults->fail_truncation = true;
  const auto history = write_gold(sync, "g1", 5);  // snapshots at 2 and 4: both compactions fail
  EXPECT_EQ((*sync.find_one("games", "g1"))["gold"], 4);
  EXPECT_EQ(sync.snapshot_failures(), 2);
  EXPECT_EQ(reported, (std::vector<std::string>{"games/g1", "games/g1"}));
  EXPECT_EQ(stored_versions(sync, "g1"), range(1, 5)) << "nothing deleted";
  simulated_client client{.version = 1, .document = history[1]};
  client.apply(sync.get_missing_events("games", "g1", {.version = 1}));
  EXPECT_EQ(client.document, history[5]);

  // The next snapshot's compaction deletes what the failed ones left.
  faults->fail_truncation = false;
  sync.find_one_and_update("games", "g1", [](const json& g) {
    json next = g;
    next["gold"] = 5;
    return next;
  });  // version 6
  EXPECT_EQ(stored_versions(sync, "g1"), range(6, 6));
}

TEST_P(sync_compaction_test, events_no_kept_snapshot_covers_are_never_deleted) {
  failing_compaction_engine* faults = nullptr;
  auto& sync = open_sync_wrapped(
      [&](std::shared_ptr<eventsourced::engine> e) {
        auto engine = std::make_unique<failing_compaction_engine>(std::move(e));
        faults = engine.get();
        return engine;
      },
      compacting(/*interval=*/3, /*kept=*/1));
  auto history = write_gold(sync, "g1", 3);  // snapshot 3: events before it go
  ASSERT_EQ(stored_versions(sync, "g1"), range(3, 3));
  faults->fail_snapshots = true;  // the snapshot at 6 is not written: nothing compacted for it
  for (int gold = 3; gold < 7; ++gold) {
    sync.find_one_and_update("games", "g1", [gold](const json& g) {
      json next = g;
      next["gold"] = gold;
      return next;
    });
    history.push_back(*sync.find_one("games", "g1"));
  }
  EXPECT_EQ(sync.snapshot_failures(), 1);
  EXPECT_EQ(sync.latest_snapshot("games", "g1")->version, 3);
  EXPECT_EQ(stored_versions(sync, "g1"), range(3, 7));
  for (std::int64_t v = 0; v <= 7; ++v) {
    SCOPED_TRACE("client at version " + std::to_string(v));
    simulated_client client{.version = v, .document = history[static_cast<std::size_t>(v)]};
    client.apply(sync.get_missing_events("games", "g1", {.version = v}));
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
    EXPECT_EQ(client.document, history[7]);
  }
}

// Readers catching up while a writer keeps snapshotting and compacting (one kept snapshot: each
// new one makes the events after the previous one deletable) always get a batch that follows on.
TEST_P(sync_compaction_test, clients_catching_up_during_compaction_always_get_a_batch_that_fits) {
  auto& sync = open_sync(compacting(/*interval=*/2, /*kept=*/1, /*max_missing=*/1));
  std::mutex mutex;
  std::vector<json> history = write_gold(sync, "g1", 1);  // GUARDED_BY(mutex)
  constexpr int kWrites = 150;
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (int gold = 1; gold <= kWrites; ++gold) {
      sync.find_one_and_update("games", "g1", [gold](const json& g) {
        json next = g;
        next["gold"] = gold;
        return next;
      });
      const json now = *sync.find_one("games", "g1");
      std::lock_guard lock(mutex);
      history.push_back(now);
    }
    done = true;
  });
  std::string failure;  // no ASSERT while the writer runs
  std::mt19937 rng(7);
  int rounds = 0;
  while ((!done || rounds == 0) && failure.empty()) {
    ++rounds;
    simulated_client client;
    {
      std::lock_guard lock(mutex);
      client.version = static_cast<std::int64_t>(rng() % history.size());
      client.document = history[static_cast<std::size_t>(client.version)];
    }
    try {
      const auto batch = sync.get_missing_events("games", "g1", {.version = client.version});
      if (batch.snapshot) {
        client.document = batch.snapshot->document;
        client.version = batch.snapshot->version;
      }
      for (const auto& e : batch.events) {
        if (e.stream_version != client.version + 1) {
          failure = "event " + std::to_string(e.stream_version) + " after version " +
                    std::to_string(client.version);
          break;
        }
        client.document = client.document.patch(e.data.at("json_patch"));
        client.version = e.stream_version;
      }
    } catch (const std::exception& e) {
      failure = std::string("get_missing_events threw: ") + e.what();
    }
    if (!failure.empty()) break;
    // The writer records a version's document just after writing it: wait for it.
    for (;;) {
      std::lock_guard lock(mutex);
      if (static_cast<std::int64_t>(history.size()) > client.version) {
        if (client.document != history[static_cast<std::size_t>(client.version)]) {
          failure = "wrong document at version " + std::to_string(client.version);
        }
        break;
      }
    }
  }
  writer.join();
  EXPECT_EQ(failure, "");
  EXPECT_EQ(stored_versions(sync, "g1"), range(kWrites, kWrites + 1));
}

EVENTSOURCED_SYNC_TEST_ENGINES(sync_compaction_test);

}  // namespace
}  // namespace eventsourced_test
