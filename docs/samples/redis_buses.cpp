// The samples of docs/redis.md, run against the Redis server of scripts/services.sh
// (EVENTSOURCED_TEST_REDIS_URI). Without that variable the program exits with 77, which ctest
// reports as skipped — except under CI, where a missing server is a failure (exit 1).
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

//! [bus]
#include <eventsourced/redis/redis_streams_bus.hpp>

// uri: e.g. "redis://app:secret@redis1:6379/2" (user app, password secret, database 2)
std::shared_ptr<eventsourced::redis_streams_bus> make_game_bus(const std::string& uri) {
  return std::make_shared<eventsourced::redis_streams_bus>(eventsourced::redis_streams_bus_options{
      .connection = {.uri = uri,
                     .connect_timeout = std::chrono::seconds(2),
                     .command_timeout = std::chrono::seconds(5)},
      .ns = "game",
  });
}
//! [bus]

#include <eventsourced/eventsourced.hpp>
#include <eventsourced/redis/redis_cache.hpp>
#include <eventsourced/redis/redis_pubsub_bus.hpp>

namespace es = eventsourced;

struct player {
  std::string id;
  int gold = 0;
  std::int64_t version = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(player, id, gold, version)

void expect(bool ok, const char* what) {
  if (!ok) {
    std::cerr << "sample check failed: " << what << "\n";
    std::exit(1);
  }
}

// Events whose ids a handler saw, for the sample's checks.
struct seen_ids {
  std::mutex mutex;
  std::set<std::string> ids;
  void add(const es::event& e) {
    std::lock_guard lock(mutex);
    ids.insert(e.id);
  }
  bool has(const std::string& id) {
    std::lock_guard lock(mutex);
    return ids.count(id) != 0;
  }
};

bool eventually(const std::function<bool()>& condition) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

int main() {
  const char* server = std::getenv("EVENTSOURCED_TEST_REDIS_URI");
  if (server == nullptr || *server == '\0') {
    const char* ci = std::getenv("CI");
    const bool in_ci =
        ci != nullptr && *ci != '\0' && std::string(ci) != "0" && std::string(ci) != "false";
    std::cerr << "EVENTSOURCED_TEST_REDIS_URI is not set (scripts/services.sh start redis)\n";
    return in_ci ? 1 : 77;
  }
  const std::string uri = server;
  try {
    //! [cache]
    auto cache = std::make_shared<eventsourced::redis_cache>(eventsourced::redis_cache_options{
        .connection = {.uri = uri}, .prefix = "game-cache", .ttl = std::chrono::minutes(5)});
    eventsourced::store_options options;
    options.cache = cache;  // every process sharing the server shares the cache
    options.mapper = std::make_shared<eventsourced::default_event_mapper>();
    auto store = eventsourced::open("sqlite::memory:", options);
    //! [cache]
    auto players = store->collection<player>("players");
    const std::string id = "p-" + std::to_string(::getpid());
    const es::event created = players.find_one_and_upsert(player{.id = id}).events.at(0);
    expect(cache->get("players", id).has_value(), "the write put the document in the cache");

    {
      seen_ids seen;
      auto handler = [&](const es::event& e) { seen.add(e); };
      //! [pubsub]
      eventsourced::redis_pubsub_bus bus({.connection = {.uri = uri}, .ns = "game"});
      auto s = bus.subscribe("players.created", handler);
      bus.publish(created);  // PUBLISH game:e:players.created <event as JSON>
      bus.flush();           // true once this bus's subscriptions handled what it published
      //! [pubsub]
      expect(seen.has(created.id), "the Pub/Sub bus delivered the event");
    }

    auto bus = make_game_bus(uri);
    seen_ids live_seen, billing_seen;
    auto handler = [&](const es::event& e) { billing_seen.add(e); };
    {
      //! [streams]
      // Plain: every event from now on, to this process only.
      auto live = bus->subscribe(eventsourced::kAllEvents,
                                 [&](const eventsourced::event& e) { live_seen.add(e); });
      // Durable: the group "billing" keeps its place while every subscriber is down; the
      // subscriptions of one group (in any process) compete: each event is handled by one of them.
      auto billing = bus->subscribe("players.created", handler,
                                    {.group = "billing", .consumer = "billing-host1"});
      //! [streams]

      //! [relay]
      eventsourced::outbox_relay relay(eventsourced::event_log(store), bus, {.name = "to-redis"});
      relay.start();
      //! [relay]
      expect(eventually([&] { return live_seen.has(created.id); }), "the plain subscription");
      expect(eventually([&] { return billing_seen.has(created.id); }), "the billing group");
      relay.stop();
    }
    bus->close();
    std::cout << "event " << created.id << " reached Pub/Sub, a plain and a durable subscription\n";
  } catch (const std::exception& ex) {
    std::cerr << "sample failed: " << ex.what() << "\n";
    return 1;
  }
}
