// A game server with live sync over WebSocket: players' gold and level in an event_sync_storage,
// served to browsers by sync_websocket_server together with a static page
// (examples/web/index.html) that shows them live and has buttons that send writes.
//
//   ./build/examples/game_sync_server [--port 8080] [--db sqlite:game.db] [--web DIR] [--tick-ms
//   2000] then open http://127.0.0.1:8080/?token=demo-ann
//
// Every --tick-ms the server grants a player some gold (a server-side write the page shows live;
// 0: no ticks). Tokens (demo only): demo-ann -> client "ann", demo-bob -> client "bob".
// Commands on standard input, one per line (the browser test drives the server with them):
//   gold <player> <delta>   a server-side write; prints "ok <version>"
//   kick <client>           closes that client's connections; prints "ok <count>"
//   state                   prints the players as one JSON line
//   quit                    stops (so does the end of input when --tick-ms is 0)
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>

#include <eventsourced/eventsourced.hpp>
#include <eventsourced/websocket/sync_websocket_server.hpp>

using eventsourced::json;

namespace {

constexpr const char* kPlayers = "players";

// A level per 100 gold earned in all, as in examples/game_player.cpp's spirit: kept simple.
json with_gold(json player, std::int64_t delta) {
  const std::int64_t gold = std::max<std::int64_t>(0, player.value("gold", 0) + delta);
  player["gold"] = gold;
  if (delta > 0) player["earned"] = player.value("earned", 0) + delta;
  player["level"] = 1 + player.value("earned", 0) / 100;
  return player;
}

std::string players_json(eventsourced::event_sync_storage& storage) {
  json out = json::object();
  for (const json& p : storage.find_many(kPlayers)) out[p["id"].get<std::string>()] = p;
  return out.dump();
}

}  // namespace

int main(int argc, char** argv) {
  std::uint16_t port = 8080;
  std::string db = "memory:";
  std::filesystem::path web = std::filesystem::path(argv[0]).parent_path() / "web";
  int tick_ms = 2000;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const std::string value = argv[i + 1];
    if (flag == "--port") {
      port = static_cast<std::uint16_t>(std::stoi(value));
    } else if (flag == "--db") {
      db = value;
    } else if (flag == "--web") {
      web = value;
    } else if (flag == "--tick-ms") {
      tick_ms = std::stoi(value);
    } else {
      std::cerr << "unknown option " << flag << "\n";
      return 2;
    }
  }

  try {
    eventsourced::sync_options sync_options;
    sync_options.client_id = "server";
    sync_options.snapshot_interval = 20;
    auto storage = std::shared_ptr(eventsourced::event_sync_storage::open(db, sync_options));
    for (const auto& [id, name] : {std::pair{"p1", "Ann"}, std::pair{"p2", "Bob"}}) {
      if (!storage->find_one(kPlayers, id)) {
        storage->find_one_and_upsert(
            kPlayers, {{"id", id}, {"name", name}, {"gold", 0}, {"earned", 0}, {"level", 1}});
      }
    }
    auto service = std::shared_ptr(eventsourced::sync_service::start(storage));
    eventsourced::sync_websocket_server_options options;
    options.port = port;
    options.static_root = web;
    options.authenticate = [](std::string_view token) -> std::optional<std::string> {
      if (token == "demo-ann") return "ann";
      if (token == "demo-bob") return "bob";
      return std::nullopt;
    };
    auto server = eventsourced::sync_websocket_server::start(service, options);
    std::cout << "listening on http://127.0.0.1:" << server->port() << "/?token=demo-ann"
              << std::endl;

    std::mutex mu;
    std::condition_variable stop_cv;
    bool stopping = false;
    std::thread ticker;
    if (tick_ms > 0) {
      ticker = std::thread([&] {
        std::mt19937 random(7);
        std::unique_lock lock(mu);
        while (
            !stop_cv.wait_for(lock, std::chrono::milliseconds(tick_ms), [&] { return stopping; })) {
          const char* id = random() % 2 == 0 ? "p1" : "p2";
          storage->find_one_and_update(kPlayers, id, [&](const json& p) {
            return with_gold(p, 1 + static_cast<std::int64_t>(random() % 20));
          });
        }
      });
    }

    std::string line;
    while (std::getline(std::cin, line)) {
      std::istringstream in(line);
      std::string command;
      in >> command;
      try {
        if (command == "gold") {
          std::string id;
          std::int64_t delta = 0;
          in >> id >> delta;
          const auto result = storage->find_one_and_update(
              kPlayers, id, [&](const json& p) { return with_gold(p, delta); });
          std::cout << "ok " << result.document["version"] << std::endl;
        } else if (command == "kick") {
          std::string client;
          in >> client;
          std::cout << "ok " << server->disconnect_client(client, "kicked by the server")
                    << std::endl;
        } else if (command == "state") {
          std::cout << players_json(*storage) << std::endl;
        } else if (command == "quit") {
          break;
        } else if (!command.empty()) {
          std::cout << "error unknown command " << command << std::endl;
        }
      } catch (const std::exception& e) {
        std::cout << "error " << e.what() << std::endl;
      }
    }
    if (tick_ms > 0 && std::cin.eof()) {
      // Interactive use without input (e.g. started in the background): run until killed.
      std::unique_lock lock(mu);
      stop_cv.wait(lock, [&] { return stopping; });
    }
    {
      std::lock_guard lock(mu);
      stopping = true;
    }
    stop_cv.notify_all();
    if (ticker.joinable()) ticker.join();
    server->stop();
    service->stop();
  } catch (const std::exception& e) {
    std::cerr << "game_sync_server: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
