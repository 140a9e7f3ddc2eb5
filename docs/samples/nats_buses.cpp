// The samples of docs/nats.md, run against the NATS server of scripts/services.sh
// (EVENTSOURCED_TEST_NATS_URL). Without that variable the program exits with 77, which ctest
// reports as skipped — except under CI, where a missing server is a failure (exit 1).
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

//! [bus]
#include <eventsourced/nats/jetstream_bus.hpp>

// url: one server or a comma-separated list, e.g. "nats://nats1:4222,nats://nats2:4222"
std::shared_ptr<eventsourced::jetstream_bus> make_game_bus(const std::string& url) {
  return std::make_shared<eventsourced::jetstream_bus>(
      eventsourced::jetstream_bus_options{.connection = {.url = url}, .ns = "game"});
}
//! [bus]

#include <eventsourced/eventsourced.hpp>
#include <eventsourced/nats/nats_bus.hpp>

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
  const char* server = std::getenv("EVENTSOURCED_TEST_NATS_URL");
  if (server == nullptr || *server == '\0') {
    const char* ci = std::getenv("CI");
    const bool in_ci =
        ci != nullptr && *ci != '\0' && std::string(ci) != "0" && std::string(ci) != "false";
    std::cerr << "EVENTSOURCED_TEST_NATS_URL is not set (scripts/services.sh start nats)\n";
    return in_ci ? 1 : 77;
  }
  const std::string url = server;
  try {
    es::store_options options;
    options.mapper = std::make_shared<es::default_event_mapper>();
    auto store = es::open("sqlite::memory:", options);
    auto players = store->collection<player>("players");
    const std::string id = "p-" + std::to_string(::getpid());
    const es::event created = players.find_one_and_upsert(player{.id = id}).events.at(0);

    {
      seen_ids seen;
      //! [core]
      eventsourced::nats_bus bus({.connection = {.url = url}, .ns = "game"});
      auto s = bus.subscribe("players.created", [&](const eventsourced::event& e) { seen.add(e); });
      bus.publish(created);
      bus.flush();  // waits until this bus's subscriptions handled what it published
      //! [core]
      expect(seen.has(created.id), "the core bus delivered the event");
    }

    auto bus = make_game_bus(url);
    seen_ids live_seen, billing_seen, audit_seen;
    auto handler = [&](const es::event& e) { billing_seen.add(e); };
    auto live_handler = [&](const es::event& e) { live_seen.add(e); };
    auto audit_handler = [&](const es::event& e) { audit_seen.add(e); };
    {
      //! [consumers]
      // Ephemeral: events published from now on, to this process.
      auto live = bus->subscribe(eventsourced::kAllEvents, live_handler);
      // Durable: kept by the server while the process is down; resumes where it stopped.
      auto billing = bus->subscribe("players.created", handler, {.durable = "billing"});
      // Start a new durable at the next event instead of the stream's first:
      auto audit = bus->subscribe(eventsourced::kAllEvents, audit_handler,
                                  {.durable = "audit", .start_at_new = true});
      //! [consumers]

      //! [relay]
      eventsourced::outbox_relay relay(eventsourced::event_log(store), bus, {.name = "to-nats"});
      relay.start();
      //! [relay]
      expect(eventually([&] { return live_seen.has(created.id); }), "the live subscription got it");
      expect(eventually([&] { return billing_seen.has(created.id); }),
             "the billing durable got it");
      expect(eventually([&] { return audit_seen.has(created.id); }), "the audit durable got it");
      relay.stop();
    }
    bus->close();
    std::cout << "event " << created.id << " reached the core bus and three JetStream consumers\n";
  } catch (const std::exception& ex) {
    std::cerr << "sample failed: " << ex.what() << "\n";
    return 1;
  }
}
