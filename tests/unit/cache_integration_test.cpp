// A read-through cache never causes a lost update (cache.hpp): updates are version-checked by the
// engine, and after a conflict the store re-reads from the engine, not the cache.
//
// Two processes are simulated by two store objects, each with its own memory_cache, on one
// storage (one SQLite file; one memory engine shared through a forwarding engine). Store A caches
// a document, store B changes it behind A's back. A stale read from A is allowed (cache.hpp: "a
// stale entry can make a read return an older document ... until its TTL passes"); a write from
// A that overwrites B's change is not.
#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "unit/storage_test_support.hpp"

namespace eventsourced_test {
namespace {

using eventsourced::conflict_error;
using eventsourced::transaction;

class cache_integration : public storage_test {
 protected:
  void SetUp() override {
    storage_test::SetUp();
    a_ = open_store({.cache = std::make_shared<eventsourced::memory_cache>()});
    b_ = open_store({.cache = std::make_shared<eventsourced::memory_cache>()});
    truth_ = open_store();  // no cache: what is really stored
    a().find_one_and_upsert({{"id", "c"}, {"count", 0}, {"other", {{"n", 0}}}});
    a_cached_ = a().find_one("c").value();             // A now holds version 1 in its cache
    b().update_one("c", {{"$inc", {{"count", 10}}}});  // version 2, behind A's back
  }

  eventsourced::document_collection a() { return a_->documents("counters"); }
  eventsourced::document_collection b() { return b_->documents("counters"); }
  json stored() { return truth_->documents("counters").find_one("c").value(); }

  std::shared_ptr<eventsourced::store> a_, b_, truth_;
  json a_cached_;
};
EVENTSOURCED_STORAGE_TEST_ENGINES(cache_integration);

TEST_P(cache_integration, a_stale_read_returns_a_committed_state_never_an_invented_one) {
  ASSERT_EQ(stored(), (json{{"id", "c"}, {"count", 10}, {"other", {{"n", 0}}}, {"version", 2}}));
  // Allowed to be stale (version 1), or fresh (version 2); nothing else.
  const json seen = a().find_one("c").value();
  EXPECT_TRUE(seen == a_cached_ || seen == stored()) << seen.dump();
}

TEST_P(cache_integration, an_update_based_on_a_stale_entry_lands_on_top_of_the_other_write) {
  std::vector<json> seen;
  const auto r = a().find_one_and_update("c", [&](json doc) {
    seen.push_back(doc);
    doc["count"] = doc["count"].get<int>() + 1;
    return doc;
  });
  const json expected = {{"id", "c"}, {"count", 11}, {"other", {{"n", 0}}}, {"version", 3}};
  EXPECT_EQ(r.document, expected);
  EXPECT_EQ(stored(), expected);
  // The first run was based on A's stale entry; the one that committed on B's write.
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], a_cached_);
  EXPECT_EQ(seen[1]["count"], 10);
  // After the write, A's cache holds the new version.
  EXPECT_EQ(a().find_one("c"), expected);
}

TEST_P(cache_integration, with_retries_off_a_stale_entry_gives_a_conflict_not_an_overwrite) {
  // A's memory_cache (60 s TTL) still holds version 1, so A's edit is based on it; committing it
  // would lose B's +10. It must fail instead.
  const json before = stored();
  int runs = 0;
  try {
    a().find_one_and_update(
        "c",
        [&](json doc) {
          ++runs;
          EXPECT_EQ(doc, a_cached_);  // the stale entry: this test exercises the stale path
          doc["count"] = 1000;
          return doc;
        },
        no_retries());
    FAIL() << "expected conflict_error";
  } catch (const conflict_error& e) {
    EXPECT_EQ(e.collection(), "counters");
    EXPECT_EQ(e.id(), "c");
    EXPECT_EQ(e.expected_version(), 1);
    EXPECT_EQ(e.actual_version(), 2);
  }
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(stored(), before);
  // The conflict dropped the stale entry (store.hpp: "drops the conflicting document from the
  // cache"): A now reads what is stored.
  EXPECT_EQ(a().find_one("c"), before);
}

TEST_P(cache_integration, update_one_on_a_stale_entry_keeps_both_increments) {
  a().update_one("c", {{"$inc", {{"count", 1}}}});
  EXPECT_EQ(stored()["count"], 11);
  EXPECT_EQ(stored()["version"], 3);
}

TEST_P(cache_integration, update_section_on_a_stale_entry_keeps_the_other_write) {
  a_->collection<json>("counters")
      .update_section(
          "c", "other.n", [](json n) { return n.get<int>() + 5; }, no_retries());
  const json expected = {{"id", "c"}, {"count", 10}, {"other", {{"n", 5}}}, {"version", 3}};
  EXPECT_EQ(stored(), expected);
}

TEST_P(cache_integration, an_update_on_a_stale_entry_of_a_deleted_document_does_not_resurrect_it) {
  ASSERT_TRUE(b().delete_one("c"));
  EXPECT_THROW(a().find_one_and_update("c",
                                       [](json doc) {
                                         doc["count"] = -1;
                                         return doc;
                                       }),
               eventsourced::not_found_error);
  EXPECT_EQ(truth_->documents("counters").find_one("c"), std::nullopt);
}

TEST_P(cache_integration, a_transaction_reads_the_engine_not_the_cache) {
  int runs = 0;
  a_->with_transaction([&](transaction& tx) {
    ++runs;
    tx.find_one_and_update("counters", "c", [](json doc) {
      doc["count"] = doc["count"].get<int>() * 2;
      return doc;
    });
  });
  EXPECT_EQ(runs, 1);  // never based on the stale entry, so never a conflict
  EXPECT_EQ(stored()["count"], 20);
  EXPECT_EQ(stored()["version"], 3);
}

TEST_P(cache_integration, a_stores_own_writes_are_visible_through_its_cache_at_once) {
  // cache.hpp: the store "refreshes it after every write". B's cache holds version 2 (its own
  // write); every further write through B must show in B's next read.
  auto p = b_->collection<json>("counters");
  auto expect_read = [&](std::int64_t version, int count) {
    const json seen = p.find_one("c").value();
    EXPECT_EQ(seen["version"], version);
    EXPECT_EQ(seen["count"], count);
    EXPECT_EQ(stored(), seen);
  };
  expect_read(2, 10);
  p.find_one_and_update("c", [](json d) {
    d["count"] = 20;
    return d;
  });
  expect_read(3, 20);
  p.update_one("c", {{"$inc", {{"count", 1}}}});
  expect_read(4, 21);
  p.update_section("c", "count", [](json n) { return n.get<int>() + 1; });
  expect_read(5, 22);
  b_->with_transaction([](transaction& tx) {
    tx.find_one_and_update("counters", "c", [](json d) {
      d["count"] = 30;
      return d;
    });
  });
  expect_read(6, 30);
  ASSERT_TRUE(p.delete_one("c"));
  EXPECT_EQ(p.find_one("c"), std::nullopt);
  p.find_one_and_upsert({{"id", "c"}, {"count", 1}});
  expect_read(8, 1);  // re-created after the tombstone at 7
  b_->with_transaction([](transaction& tx) { tx.delete_one("counters", "c"); });
  EXPECT_EQ(p.find_one("c"), std::nullopt);
  EXPECT_EQ(truth_->documents("counters").find_one("c"), std::nullopt);
}

TEST_P(cache_integration, threads_of_two_cached_stores_incrementing_one_document_lose_nothing) {
  constexpr int kThreadsPerStore = 2;
  constexpr int kIncrements = 500;
  std::mutex mutex;
  std::vector<std::string> failures;
  std::vector<std::thread> threads;
  for (int t = 0; t < 2 * kThreadsPerStore; ++t) {
    threads.emplace_back([&, t] {
      auto docs = (t % 2 == 0 ? a_ : b_)->documents("counters");
      try {
        for (int i = 0; i < kIncrements; ++i) {
          docs.find_one_and_update(
              "c",
              [](json doc) {
                doc["count"] = doc["count"].get<int>() + 1;
                return doc;
              },
              patient());
        }
      } catch (const std::exception& e) {
        std::lock_guard lock(mutex);
        failures.push_back(e.what());
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures, std::vector<std::string>{});
  EXPECT_EQ(stored()["count"], 10 + 2 * kThreadsPerStore * kIncrements);
  EXPECT_EQ(stored()["version"], 2 + 2 * kThreadsPerStore * kIncrements);
}

}  // namespace
}  // namespace eventsourced_test
