// memory_cache: hits and misses, LRU eviction, TTL expiry, version-monotonic put, tombstones,
// and use from several threads.
#include <eventsourced/storage/cache.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace eventsourced {
namespace {

using namespace std::chrono_literals;

cached_document doc(std::int64_t version, json body) {
  return {version, std::move(body)};
}
cached_document tombstone(std::int64_t version) {
  return {version, std::nullopt};
}

// A hit is only promised while the ttl has not run out; on a stalled machine it may have.
bool fresh_since(std::chrono::steady_clock::time_point since, std::chrono::milliseconds ttl) {
  return std::chrono::steady_clock::now() - since < ttl;
}

TEST(memory_cache, a_stored_document_is_a_hit_and_an_unknown_one_a_miss) {
  memory_cache cache;
  cache.put("players", "ann", doc(3, {{"gold", 10}}));
  const auto hit = cache.get("players", "ann");
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(hit->version, 3);
  EXPECT_EQ(hit->body, json({{"gold", 10}}));
  EXPECT_FALSE(cache.get("players", "bob").has_value());
  EXPECT_FALSE(cache.get("guilds", "ann").has_value());
}

TEST(memory_cache, collection_and_id_never_run_together_into_one_key) {
  memory_cache cache;
  cache.put("ab", "c", doc(1, "ab/c"));
  cache.put("a", "bc", doc(1, "a/bc"));
  EXPECT_EQ(cache.get("ab", "c")->body, json("ab/c"));
  EXPECT_EQ(cache.get("a", "bc")->body, json("a/bc"));
  EXPECT_EQ(cache.size(), 2u);
}

TEST(memory_cache, erase_forgets_one_entry_and_clear_forgets_all) {
  memory_cache cache;
  cache.put("c", "1", doc(1, 1));
  cache.put("c", "2", doc(1, 2));
  cache.erase("c", "1");
  cache.erase("c", "missing");  // a no-op
  EXPECT_FALSE(cache.get("c", "1").has_value());
  EXPECT_TRUE(cache.get("c", "2").has_value());
  cache.clear();
  EXPECT_FALSE(cache.get("c", "2").has_value());
  EXPECT_EQ(cache.size(), 0u);
  // An erased entry sets no version floor.
  cache.put("c", "2", doc(0, "again"));
  EXPECT_EQ(cache.get("c", "2")->body, json("again"));
}

TEST(memory_cache, evicts_the_least_recently_used_entry_beyond_max_entries) {
  memory_cache cache({.max_entries = 3, .ttl = 0ms});
  cache.put("c", "a", doc(1, "a"));
  cache.put("c", "b", doc(1, "b"));
  cache.put("c", "c", doc(1, "c"));
  ASSERT_TRUE(cache.get("c", "a").has_value());  // a is now the most recently used
  cache.put("c", "d", doc(1, "d"));              // evicts b
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_FALSE(cache.get("c", "b").has_value());
  EXPECT_TRUE(cache.get("c", "a").has_value());
  EXPECT_TRUE(cache.get("c", "c").has_value());
  EXPECT_TRUE(cache.get("c", "d").has_value());
  // Replacing an entry also makes it the most recently used: order is now a, c, d -> d, a, c.
  cache.put("c", "a", doc(2, "a2"));
  cache.put("c", "e", doc(1, "e"));  // evicts c
  EXPECT_FALSE(cache.get("c", "c").has_value());
  EXPECT_TRUE(cache.get("c", "a").has_value());
  EXPECT_TRUE(cache.get("c", "d").has_value());
  EXPECT_TRUE(cache.get("c", "e").has_value());
}

TEST(memory_cache, zero_max_entries_caches_nothing) {
  memory_cache cache({.max_entries = 0});
  cache.put("c", "a", doc(1, "a"));
  EXPECT_FALSE(cache.get("c", "a").has_value());
  EXPECT_EQ(cache.size(), 0u);
}

TEST(memory_cache, entries_expire_after_the_ttl) {
  memory_cache cache({.ttl = 20ms});
  cache.put("c", "a", doc(1, "a"));
  std::this_thread::sleep_for(60ms);
  EXPECT_FALSE(cache.get("c", "a").has_value());
  EXPECT_EQ(cache.size(), 0u);  // the expired entry was dropped when touched
}

TEST(memory_cache, a_zero_ttl_never_expires) {
  memory_cache cache({.ttl = 0ms});
  cache.put("c", "a", doc(1, "a"));
  std::this_thread::sleep_for(30ms);
  EXPECT_TRUE(cache.get("c", "a").has_value());
}

TEST(memory_cache, a_put_refreshes_the_ttl) {
  memory_cache cache({.ttl = 20ms});
  cache.put("c", "a", doc(1, "a"));
  std::this_thread::sleep_for(60ms);
  const auto put_at = std::chrono::steady_clock::now();
  cache.put("c", "a", doc(1, "a"));
  const bool hit = cache.get("c", "a").has_value();
  if (!fresh_since(put_at, 20ms)) GTEST_SKIP() << "the machine stalled past the ttl";
  EXPECT_TRUE(hit);
}

TEST(memory_cache, put_never_replaces_a_higher_version) {
  memory_cache cache;
  cache.put("c", "a", doc(5, "five"));
  cache.put("c", "a", doc(4, "four"));
  EXPECT_EQ(cache.get("c", "a")->version, 5);
  EXPECT_EQ(cache.get("c", "a")->body, json("five"));
  cache.put("c", "a", doc(5, "five again"));  // an equal version replaces
  EXPECT_EQ(cache.get("c", "a")->body, json("five again"));
  cache.put("c", "a", doc(6, "six"));
  EXPECT_EQ(cache.get("c", "a")->version, 6);
  EXPECT_EQ(cache.get("c", "a")->body, json("six"));
}

TEST(memory_cache, an_expired_entry_no_longer_holds_back_a_lower_version) {
  // Once expired an entry is a miss, and it does not keep vouching for its version.
  memory_cache cache({.ttl = 20ms});
  cache.put("c", "a", doc(5, "five"));
  std::this_thread::sleep_for(60ms);
  const auto put_at = std::chrono::steady_clock::now();
  cache.put("c", "a", doc(1, "re-created"));
  const auto hit = cache.get("c", "a");
  if (!fresh_since(put_at, 20ms)) GTEST_SKIP() << "the machine stalled past the ttl";
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(hit->version, 1);
}

TEST(memory_cache, tombstones_are_entries_like_any_other) {
  memory_cache cache;
  cache.put("c", "a", doc(1, "a"));
  cache.put("c", "a", tombstone(2));
  const auto hit = cache.get("c", "a");
  ASSERT_TRUE(hit.has_value());  // a hit that says "deleted", not a miss
  EXPECT_EQ(hit->version, 2);
  EXPECT_FALSE(hit->body.has_value());
  cache.put("c", "a", doc(1, "stale"));  // an older document does not resurrect it
  EXPECT_FALSE(cache.get("c", "a")->body.has_value());
  cache.put("c", "a", doc(3, "re-created"));
  EXPECT_EQ(cache.get("c", "a")->body, json("re-created"));
}

TEST(memory_cache, tombstones_are_evicted_and_expire_like_documents) {
  memory_cache small({.max_entries = 1, .ttl = 0ms});
  small.put("c", "a", tombstone(1));
  small.put("c", "b", tombstone(1));
  EXPECT_FALSE(small.get("c", "a").has_value());
  EXPECT_TRUE(small.get("c", "b").has_value());

  memory_cache short_lived({.ttl = 20ms});
  short_lived.put("c", "a", tombstone(1));
  std::this_thread::sleep_for(60ms);
  EXPECT_FALSE(short_lived.get("c", "a").has_value());
}

TEST(memory_cache, the_returned_entry_is_a_copy) {
  memory_cache cache;
  cache.put("c", "a", doc(1, {{"n", 1}}));
  auto hit = cache.get("c", "a");
  (*hit->body)["n"] = 2;
  EXPECT_EQ(cache.get("c", "a")->body, json({{"n", 1}}));
}

// Three writers put random versions (older and newer) of a few keys while a reader watches.
// Nothing is evicted or expires, so the cached version of a key is the highest put so far: the
// reader must never see it decrease, every body must belong to its version, and at the end each
// key holds the highest version any writer put.
TEST(memory_cache, concurrent_puts_never_move_a_version_backwards) {
  constexpr int kKeys = 8;
  constexpr int kWriters = 3;
  constexpr int kPutsPerWriter = 20000;
  memory_cache cache({.max_entries = 100, .ttl = 0ms});
  std::atomic<bool> done{false};
  std::vector<std::map<int, std::int64_t>> highest(kWriters);

  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      std::mt19937 rng(100 + w);
      std::uniform_int_distribution<int> key(0, kKeys - 1);
      std::uniform_int_distribution<std::int64_t> version(1, 5000);
      for (int i = 0; i < kPutsPerWriter; ++i) {
        const int k = key(rng);
        const std::int64_t v = version(rng);
        // Every fourth put is a tombstone: they obey the same version rule.
        cache.put("c", std::to_string(k),
                  i % 4 == 0 ? tombstone(v) : doc(v, {{"version", v}, {"key", k}}));
        std::int64_t& h = highest[w][k];
        h = std::max(h, v);
      }
    });
  }

  int decreases = 0;
  int mismatched_bodies = 0;
  std::int64_t reads = 0;
  std::thread reader([&] {
    std::vector<std::int64_t> last_seen(kKeys, 0);
    std::mt19937 rng(7);
    while (!done.load()) {
      const int k = static_cast<int>(rng() % kKeys);
      const auto hit = cache.get("c", std::to_string(k));
      ++reads;
      if (!hit) continue;
      if (hit->version < last_seen[k]) ++decreases;
      last_seen[k] = hit->version;
      if (hit->body && (*hit->body != json({{"version", hit->version}, {"key", k}}))) {
        ++mismatched_bodies;
      }
    }
  });

  for (auto& t : writers) t.join();
  done = true;
  reader.join();

  EXPECT_EQ(decreases, 0);
  EXPECT_EQ(mismatched_bodies, 0);
  EXPECT_GT(reads, 0);
  EXPECT_EQ(cache.size(), static_cast<std::size_t>(kKeys));
  for (int k = 0; k < kKeys; ++k) {
    std::int64_t expected = 0;
    for (const auto& h : highest) {
      if (h.count(k) != 0) expected = std::max(expected, h.at(k));
    }
    const auto hit = cache.get("c", std::to_string(k));
    ASSERT_TRUE(hit.has_value()) << k;
    EXPECT_EQ(hit->version, expected) << k;
  }
}

// Four threads put, get and erase over more keys than fit: the cache never holds more than
// max_entries, and every entry it returns is one that was put (body matching key and version).
TEST(memory_cache, concurrent_use_with_eviction_keeps_the_bound_and_the_entries_whole) {
  constexpr std::size_t kMaxEntries = 16;
  memory_cache cache({.max_entries = kMaxEntries, .ttl = 1ms});
  std::atomic<int> over_bound{0};
  std::atomic<int> torn{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(1000 + t);
      for (int i = 0; i < 20000; ++i) {
        const int k = static_cast<int>(rng() % 64);
        const std::string id = std::to_string(k);
        switch (rng() % 8) {
          case 0:
            cache.erase("c", id);
            break;
          case 1:
          case 2:
          case 3: {
            const auto v = static_cast<std::int64_t>(rng() % 1000);
            cache.put("c", id, doc(v, {{"key", k}, {"version", v}}));
            break;
          }
          default: {
            const auto hit = cache.get("c", id);
            if (hit && *hit->body != json({{"key", k}, {"version", hit->version}})) ++torn;
          }
        }
        if (cache.size() > kMaxEntries) ++over_bound;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(over_bound.load(), 0);
  EXPECT_EQ(torn.load(), 0);
  EXPECT_LE(cache.size(), kMaxEntries);
}

}  // namespace
}  // namespace eventsourced
