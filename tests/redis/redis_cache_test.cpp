// redis_cache: the cache.hpp contract on Redis — round trips, tombstones, versions that never go
// backwards under racing writers, TTL, clear() of its own prefix only, ids with ':' — and what it
// does when the server is unreachable.
#include <eventsourced/redis/redis_cache.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <eventsourced/error.hpp>

#include "conformance/event_bus_conformance.hpp"  // eventually()
#include "redis_test_support.hpp"
#include "support/servers.hpp"

namespace eventsourced {
namespace {

using namespace std::chrono_literals;
using redis_testing::kRedisUri;

class redis_cache_test : public ::testing::Test {
 protected:
  void SetUp() override {
    EVENTSOURCED_REQUIRE_SERVER(kRedisUri, uri_);
    cleanup_ = std::make_unique<redis_testing::namespace_cleanup>(uri_, ns_);
    other_cleanup_ = std::make_unique<redis_testing::namespace_cleanup>(uri_, ns_ + "x");
  }
  redis_cache_options options(std::string prefix = {}) const {
    return {.connection = {.uri = uri_}, .prefix = prefix.empty() ? ns_ : prefix};
  }
  std::string uri_;
  std::string ns_ = redis_testing::unique_namespace();
  std::unique_ptr<redis_testing::namespace_cleanup> cleanup_, other_cleanup_;
};

TEST_F(redis_cache_test, a_put_entry_reads_back_and_a_missing_one_is_nullopt) {
  redis_cache cache(options());
  EXPECT_FALSE(cache.get("players", "ann").has_value());
  const json body = {{"name", "Ann"}, {"scores", {1, 2, 3}}, {"nested", {{"x", nullptr}}}};
  cache.put("players", "ann", {.version = 7, .body = body});
  const auto got = cache.get("players", "ann");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->version, 7);
  ASSERT_TRUE(got->body.has_value());
  EXPECT_EQ(*got->body, body);
  EXPECT_FALSE(cache.get("players", "bob").has_value());
  EXPECT_FALSE(cache.get("teams", "ann").has_value());
  EXPECT_EQ(cache.failures(), 0u);
}

TEST_F(redis_cache_test, a_tombstone_is_an_entry_without_body) {
  redis_cache cache(options());
  cache.put("players", "ann", {.version = 1, .body = json{{"a", 1}}});
  cache.put("players", "ann", {.version = 2, .body = std::nullopt});
  const auto got = cache.get("players", "ann");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->version, 2);
  EXPECT_FALSE(got->body.has_value());
}

TEST_F(redis_cache_test, a_lower_version_never_replaces_a_higher_one) {
  redis_cache cache(options());
  cache.put("c", "1", {.version = 10, .body = json{{"v", 10}}});
  cache.put("c", "1", {.version = 9, .body = json{{"v", 9}}});
  EXPECT_EQ(cache.get("c", "1").value().version, 10);
  cache.put("c", "1", {.version = 10, .body = json{{"v", "again"}}});
  EXPECT_EQ(*cache.get("c", "1").value().body, (json{{"v", "again"}}));
  // Compared as numbers, not text: 100 > 99, and 2^62 > 9.
  cache.put("c", "1", {.version = 99, .body = json{{"v", 99}}});
  cache.put("c", "1", {.version = 100, .body = json{{"v", 100}}});
  cache.put("c", "1", {.version = 99, .body = json{{"v", 99}}});
  EXPECT_EQ(cache.get("c", "1").value().version, 100);
  cache.put("c", "1", {.version = std::int64_t{1} << 62, .body = json{{"v", "big"}}});
  cache.put("c", "1", {.version = 9, .body = json{{"v", 9}}});
  EXPECT_EQ(cache.get("c", "1").value().version, std::int64_t{1} << 62);
  EXPECT_THROW(cache.put("c", "1", {.version = -1, .body = json{}}), invalid_argument_error);
}

TEST_F(redis_cache_test, racing_puts_from_many_threads_leave_the_highest_version) {
  // Two caches (two "processes") and several threads each put every version 1..N of a few keys
  // in shuffled orders; whatever the interleaving, each key ends at N, and no get ever sees a
  // version lower than one a get on the same thread saw before.
  redis_cache a(options());
  redis_cache b(options());
  constexpr int kVersions = 200;
  constexpr int kThreads = 6;
  const std::vector<std::string> keys = {"k1", "k2", "k3"};
  std::atomic<int> went_backwards{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      redis_cache& cache = t % 2 == 0 ? a : b;
      std::vector<int> order(kVersions);
      for (int i = 0; i < kVersions; ++i) order[static_cast<std::size_t>(i)] = i + 1;
      std::mt19937 rng(static_cast<unsigned>(t) * 7919u + 1u);
      std::shuffle(order.begin(), order.end(), rng);
      std::int64_t seen = 0;
      for (const int v : order) {
        const std::string& key = keys[static_cast<std::size_t>(v) % keys.size()];
        cache.put("c", key, {.version = v, .body = json{{"v", v}}});
        if (key == "k1") {
          const auto got = cache.get("c", "k1");
          if (got && got->version < seen) ++went_backwards;
          if (got) seen = got->version;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(went_backwards.load(), 0);
  for (const auto& key : keys) {
    const auto got = a.get("c", key);
    ASSERT_TRUE(got.has_value()) << key;
    // The highest version of each key among 1..kVersions with v % 3 picking it.
    int highest = 0;
    for (int v = 1; v <= kVersions; ++v) {
      if (keys[static_cast<std::size_t>(v) % keys.size()] == key) highest = v;
    }
    EXPECT_EQ(got->version, highest) << key;
    EXPECT_EQ(*got->body, (json{{"v", highest}})) << key;
  }
  EXPECT_EQ(a.failures() + b.failures(), 0u);
}

TEST_F(redis_cache_test, entries_expire_after_the_ttl) {
  redis_testing::raw_client raw(uri_);
  auto minute = options();
  minute.ttl = 60s;
  redis_cache long_lived(minute);
  long_lived.put("c", "3", {.version = 1, .body = json{}});
  const long long ttl = raw.integer({"PTTL", long_lived.key_of("c", "3")});
  EXPECT_GT(ttl, 0);
  EXPECT_LE(ttl, 60000);

  auto o = options();
  o.ttl = 200ms;
  redis_cache cache(o);
  cache.put("c", "1", {.version = 1, .body = json{{"a", 1}}});
  EXPECT_TRUE(conformance::eventually([&] { return !cache.get("c", "1").has_value(); }));
  // Expired, an older version may be stored again.
  long_lived.put("c", "1", {.version = 0, .body = json{{"a", 0}}});
  const auto again = long_lived.get("c", "1");
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->version, 0);

  auto forever = options();
  forever.ttl = 0ms;
  redis_cache persistent(forever);
  persistent.put("c", "2", {.version = 1, .body = json{}});
  EXPECT_EQ(raw.integer({"PTTL", persistent.key_of("c", "2")}), -1);
}

TEST_F(redis_cache_test, ids_with_colons_cannot_collide) {
  redis_cache cache(options());
  cache.put("a:b", "c", {.version = 1, .body = json{{"which", "a:b/c"}}});
  cache.put("a", "b:c", {.version = 2, .body = json{{"which", "a/b:c"}}});
  cache.put("a", "b%3Ac", {.version = 3, .body = json{{"which", "a/b%3Ac"}}});
  EXPECT_EQ(*cache.get("a:b", "c").value().body, (json{{"which", "a:b/c"}}));
  EXPECT_EQ(*cache.get("a", "b:c").value().body, (json{{"which", "a/b:c"}}));
  EXPECT_EQ(*cache.get("a", "b%3Ac").value().body, (json{{"which", "a/b%3Ac"}}));
  EXPECT_NE(cache.key_of("a:b", "c"), cache.key_of("a", "b:c"));
}

TEST_F(redis_cache_test, erase_forgets_one_entry) {
  redis_cache cache(options());
  cache.put("c", "1", {.version = 1, .body = json{}});
  cache.put("c", "2", {.version = 1, .body = json{}});
  cache.erase("c", "1");
  EXPECT_FALSE(cache.get("c", "1").has_value());
  EXPECT_TRUE(cache.get("c", "2").has_value());
}

TEST_F(redis_cache_test, clear_deletes_only_its_own_prefix) {
  redis_cache mine(options());
  redis_cache other(options(ns_ + "x"));  // a prefix that starts like ours
  redis_testing::raw_client raw(uri_);
  for (int i = 0; i < 1200; ++i) mine.put("c", std::to_string(i), {.version = 1, .body = json{}});
  other.put("c", "1", {.version = 1, .body = json{}});
  raw.run({"SET", ns_ + "-unrelated", "x"});
  mine.clear();
  EXPECT_FALSE(mine.get("c", "0").has_value());
  EXPECT_FALSE(mine.get("c", "1199").has_value());
  EXPECT_TRUE(other.get("c", "1").has_value());
  EXPECT_EQ(raw.integer({"EXISTS", ns_ + "-unrelated"}), 1);
  raw.run({"DEL", ns_ + "-unrelated"});
}

TEST_F(redis_cache_test, the_script_is_loaded_again_after_the_server_forgot_it) {
  redis_cache cache(options());
  cache.put("c", "1", {.version = 1, .body = json{}});
  redis_testing::raw_client raw(uri_);
  raw.run({"SCRIPT", "FLUSH"});
  cache.put("c", "1", {.version = 2, .body = json{}});
  EXPECT_EQ(cache.get("c", "1").value().version, 2);
  EXPECT_EQ(cache.failures(), 0u);
}

TEST(redis_cache_unreachable, reads_miss_and_writes_are_counted_never_thrown) {
  const int port = redis_testing::free_port();
  redis_cache cache({.connection = {.uri = "redis://127.0.0.1:" + std::to_string(port),
                                    .connect_timeout = 300ms}});
  EXPECT_FALSE(cache.get("c", "1").has_value());
  EXPECT_NO_THROW(cache.put("c", "1", {.version = 1, .body = json{}}));
  EXPECT_NO_THROW(cache.erase("c", "1"));
  EXPECT_EQ(cache.failures(), 3u);
  EXPECT_THROW(cache.clear(), engine_unavailable_error);
}

}  // namespace
}  // namespace eventsourced
