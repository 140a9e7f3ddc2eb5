// The seed's EventSyncStorage flow, runnable: a server-authoritative game state, a client that
// watches it live, disconnects, misses updates and catches up — through sync_service, the way a
// transport (WebSocket, a game socket) would drive it. Prints what the reconnecting client
// receives. The protocol is docs/sync_protocol.md.
//
//   ./build/examples/game_sync [database-file]
//   (default: game_sync.db in the current directory, removed before and after the run)
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <string>
#include <vector>

#include <eventsourced/eventsourced.hpp>

using eventsourced::json;
using namespace std::chrono_literals;

namespace {

// A client of the sync protocol, in process: keeps a copy of the game document, applies
// snapshots and patches in order, and prints each message when asked to.
class game_client {
 public:
  explicit game_client(std::string name) : name_(std::move(name)) {}

  eventsourced::sync_service::send_function sender() {
    return [this](const std::string& text) {
      const json m = json::parse(text);
      std::lock_guard lock(mu_);
      if (verbose_) std::cout << "  " << name_ << " <- " << text << "\n";
      const std::string type = m["type"];
      if (type == "snapshot") {
        copy_ = m["document"];
        version_ = m["version"];
      } else if (type == "event" && m["version"].get<std::int64_t>() == version_ + 1) {
        copy_ = copy_.patch(m["json_patch"]);
        version_ = m["version"];
        clock_ = m["vector_clock"];
      } else if (type == "ok" || type == "error") {
        replies_.push_back(m);
      }
      cv_.notify_all();
    };
  }

  void verbose(bool on) {
    std::lock_guard lock(mu_);
    verbose_ = on;
  }
  json wait_reply(int request_id) {
    std::unique_lock lock(mu_);
    json found;
    cv_.wait_for(lock, 10s, [&] {
      for (const auto& r : replies_) {
        if (r.value("request_id", -1) == request_id) {
          found = r;
          return true;
        }
      }
      return false;
    });
    return found;
  }
  void wait_version(std::int64_t version) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, 10s, [&] { return version_ >= version; });
  }
  std::int64_t version() {
    std::lock_guard lock(mu_);
    return version_;
  }
  json copy() {
    std::lock_guard lock(mu_);
    return copy_;
  }
  json clock() {
    std::lock_guard lock(mu_);
    return clock_;
  }

 private:
  std::string name_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool verbose_ = false;
  json copy_ = nullptr;
  std::int64_t version_ = 0;
  json clock_ = json::object();
  std::vector<json> replies_;
};

json subscribe(int request_id, std::int64_t version) {
  return {{"type", "subscribe"},
          {"request_id", request_id},
          {"documents", {{{"collection", "games"}, {"id", "game-1"}, {"version", version}}}}};
}

// gold += 50, experience += 100; every 300 experience is a level.
eventsourced::edit_result<json> play_a_round(const json& game) {
  json next = game;
  next["gold"] = game["gold"].get<int>() + 50;
  next["experience"] = game["experience"].get<int>() + 100;
  return next;
}

eventsourced::edit_result<json> level_up(const json& game) {
  if (game["experience"].get<int>() < 300 * game["level"].get<int>()) {
    return eventsourced::no_change;
  }
  json next = game;
  next["level"] = game["level"].get<int>() + 1;
  return next;
}

}  // namespace

int main(int argc, char** argv) {
  const std::filesystem::path file = argc > 1 ? argv[1] : "game_sync.db";
  std::filesystem::remove(file);
  int status = 0;
  {
    // 1–4. Storage with sync events, vector clocks and a snapshot every 5 versions. (Options set
    // one by one: g++ 12 at -O2 warns falsely about nested designated initialisers here.)
    eventsourced::sync_options options;
    options.client_id = "server";
    options.snapshot_interval = 5;
    options.max_missing_events = 3;
    std::shared_ptr<eventsourced::event_sync_storage> storage =
        eventsourced::event_sync_storage::open("sqlite:" + file.string(), std::move(options));
    // 5–6. The sync service (the transport is the lambdas of game_client here).
    auto service = eventsourced::sync_service::start(storage);

    // 7. Create the game state (find_one_and_upsert).
    storage->find_one_and_upsert(
        "games",
        {{"id", "game-1"}, {"player", "ann"}, {"gold", 100}, {"experience", 0}, {"level", 1}});
    std::cout << "created game-1 at version 1\n";

    // Ann's client connects and follows the game live.
    game_client ann("ann");
    auto connection = service->connect("ann", ann.sender());
    service->receive(connection, subscribe(1, 0).dump());
    ann.wait_reply(1);
    std::cout << "ann subscribed: version " << ann.version() << ", gold " << ann.copy()["gold"]
              << "\n";

    // 8. Update gold and experience (find_one_and_update): pushed to ann as patches.
    storage->find_one_and_update("games", "game-1", play_a_round);
    ann.wait_version(2);
    std::cout << "after a round, ann sees version " << ann.version() << ": gold "
              << ann.copy()["gold"] << ", experience " << ann.copy()["experience"] << "\n";

    // Ann sends a write of her own: buy a sword. Sent twice (the reply was "lost"): applied once.
    const json buy = {{"type", "write"},
                      {"mutation_id", "ann-buy-sword-1"},
                      {"collection", "games"},
                      {"id", "game-1"},
                      {"op", "patch"},
                      {"patch",
                       {{{"op", "test"}, {"path", "/gold"}, {"value", 150}},
                        {{"op", "replace"}, {"path", "/gold"}, {"value", 120}},
                        {{"op", "add"}, {"path", "/sword"}, {"value", true}}}}};
    json first = buy, resend = buy;
    first["request_id"] = 2;
    resend["request_id"] = 3;
    service->receive(connection, first.dump());
    service->receive(connection, resend.dump());
    std::cout << "ann's write: " << ann.wait_reply(2).dump() << "\n";
    std::cout << "ann's resend: " << ann.wait_reply(3).dump() << "\n";

    // 11. Ann acknowledges what she has applied (update_vector_clock).
    ann.wait_version(3);
    service->receive(connection, json{{"type", "ack"},
                                      {"request_id", 4},
                                      {"collection", "games"},
                                      {"id", "game-1"},
                                      {"vector_clock", ann.clock()}}
                                     .dump());
    std::cout << "ann acknowledged " << ann.wait_reply(4)["vector_clock"] << "\n";

    // Ann disconnects. The server keeps playing: rounds and level-ups she misses.
    const auto ann_had = ann.version();
    service->disconnect(connection);
    std::cout << "ann disconnects at version " << ann_had << "\n";
    for (int round = 0; round < 6; ++round) {
      storage->find_one_and_update("games", "game-1", play_a_round);
      storage->find_one_and_update("games", "game-1", level_up);  // 9. level up when due
    }
    const auto server = storage->find_one("games", "game-1").value();
    std::cout << "server is at version " << server["version"] << ": gold " << server["gold"]
              << ", level " << server["level"] << "\n";

    // 10. What she misses (get_missing_events): more than max_missing_events, so a snapshot
    // first, then the events after it.
    const auto batch = storage->get_missing_events("games", "game-1", {.version = ann_had});
    std::cout << "get_missing_events from version " << ann_had << ": "
              << (batch.snapshot ? "snapshot at " + std::to_string(batch.snapshot->version)
                                 : std::string("no snapshot"))
              << " + " << batch.events.size() << " events\n";

    // Ann reconnects with her state vector and receives exactly that.
    std::cout << "ann reconnects and receives:\n";
    ann.verbose(true);
    connection = service->connect("ann", ann.sender());
    service->receive(connection, subscribe(5, ann_had).dump());
    ann.wait_reply(5);
    ann.verbose(false);
    const bool same = ann.copy() == storage->find_one("games", "game-1").value();
    std::cout << "ann's copy at version " << ann.version()
              << (same ? " equals the server's document\n" : " DIFFERS from the server's\n");
    std::cout << "game-1 vector clock: " << json(storage->vector_clock("games", "game-1")) << "\n";
    if (!same) status = 1;
    service->stop();
  }
  std::filesystem::remove(file);
  std::filesystem::remove(file.string() + "-wal");
  std::filesystem::remove(file.string() + "-shm");
  return status;
}
