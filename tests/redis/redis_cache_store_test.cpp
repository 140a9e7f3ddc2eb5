// redis_cache under a store: two "processes" (two stores on one SQLite file, each with its own
// redis_cache object on the same prefix) increment one counter from several threads. The shared
// cache is read before every update, yet no increment is lost (updates are version-checked by the
// engine), and afterwards both see the final document through the cache.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <eventsourced/eventsourced.hpp>
#include <eventsourced/redis/redis_cache.hpp>

#include "redis_test_support.hpp"
#include "support/servers.hpp"
#include "support/temporary_directory.hpp"

namespace eventsourced {
namespace {

TEST(redis_cache_store, concurrent_increments_through_a_shared_cache_lose_nothing) {
  std::string uri;
  EVENTSOURCED_REQUIRE_SERVER(redis_testing::kRedisUri, uri);
  const std::string prefix = redis_testing::unique_namespace();
  redis_testing::namespace_cleanup cleanup(uri, prefix);
  eventsourced::testing::temporary_directory dir;
  const std::string db = "sqlite:" + (dir.path() / "counter.db").string();

  auto cache_a = std::make_shared<redis_cache>(
      redis_cache_options{.connection = {.uri = uri}, .prefix = prefix});
  auto cache_b = std::make_shared<redis_cache>(
      redis_cache_options{.connection = {.uri = uri}, .prefix = prefix});
  // Generous retries: 4 threads on one document conflict often, and a conflict after the last
  // attempt would be an error of the test setup, not a lost update.
  const retry_options retry{.max_attempts = 1000};
  auto a = store::open(db, {.retry = retry, .cache = cache_a});
  auto b = store::open(db, {.retry = retry, .cache = cache_b});
  a->documents("counters").find_one_and_upsert({{"id", "c"}, {"count", 0}});

  constexpr int kThreads = 4;
  constexpr int kIncrements = 50;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto counters = (t % 2 == 0 ? a : b)->documents("counters");
      for (int i = 0; i < kIncrements; ++i) {
        counters.find_one_and_update("c", [](const json& doc) -> edit_result<json> {
          json next = doc;
          next["count"] = doc["count"].get<int>() + 1;
          return next;
        });
      }
    });
  }
  for (auto& t : threads) t.join();

  const json through_a = a->documents("counters").find_one("c").value();
  const json through_b = b->documents("counters").find_one("c").value();
  EXPECT_EQ(through_a["count"], kThreads * kIncrements);
  EXPECT_EQ(through_b["count"], kThreads * kIncrements);
  const auto cached = cache_a->get("counters", "c");
  ASSERT_TRUE(cached.has_value());
  EXPECT_EQ(cached->version, through_a["version"].get<std::int64_t>());
  EXPECT_EQ(cache_a->failures() + cache_b->failures(), 0u);
}

}  // namespace
}  // namespace eventsourced
