// The quick-start demo: typed documents on embedded SQLite, optimistic concurrency, diffs, and
// the events every write records in its own commit.
//
//   ./build/examples/quickstart [database-file]      (default: quickstart.db, recreated each run)
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <eventsourced/eventsourced.hpp>

namespace game {

struct Player {
  std::string id;
  std::string name;
  int gold = 0;
  int level = 1;
  std::int64_t version = 0;  // filled in by the store
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Player, id, name, gold, level, version)

}  // namespace game

namespace {

void step(const std::string& title) {
  std::cout << "\n== " << title << "\n";
}

void show(const game::Player& p) {
  std::cout << "   " << p.id << ": " << p.name << ", gold " << p.gold << ", level " << p.level
            << " (version " << p.version << ")\n";
}

}  // namespace

int main(int argc, char** argv) {
  using game::Player;
  namespace es = eventsourced;
  const std::string file = argc > 1 ? argv[1] : "quickstart.db";
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(file + suffix);

  try {
    // With a mapper, every write records its events in the same commit as the document change.
    es::store_options options;
    options.mapper = std::make_shared<es::default_event_mapper>();
    auto store = es::open("sqlite:" + file, options);
    auto players = store->collection<Player>("players");
    std::cout << std::boolalpha << "Opened embedded SQLite store '" << file << "'.\n";

    step("1. Create a player (find_one_and_upsert creates it once, then returns it)");
    auto created = players.find_one_and_upsert(Player{.id = "p1", .name = "Ann"});
    show(created.document);
    std::cout << "   is_new=" << created.diff.is_new << "\n";

    step("2. Update it: the edit runs on the stored document, the write is version-checked");
    auto [player, diff, events] = players.find_one_and_update("p1", [](Player p) {
      p.gold += 50;
      return p;
    });
    show(player);
    std::cout << "   JSON Patch  (RFC 6902): " << diff.json_patch.dump() << "\n"
              << "   Merge Patch (RFC 7396): " << diff.merge_patch.dump() << "\n";
    for (const es::event& e : events) {
      std::cout << "   event '" << e.type << "' at log position " << e.position << ", version "
                << e.stream_version << " of stream " << e.stream.type << "/" << e.stream.id
                << ", recorded in the same commit\n";
    }

    step("3. Four threads add 1 gold 250 times each, at the same time");
    std::atomic<int> edits_run{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < 250; ++i) {
          players.find_one_and_update("p1", [&](Player p) {
            ++edits_run;  // an edit runs again each time its write loses a race
            p.gold += 1;
            return p;
          });
        }
      });
    }
    for (auto& t : threads) t.join();
    const Player after = players.find_one("p1").value();
    show(after);
    std::cout << "   expected gold " << 50 + 1000 << ": "
              << (after.gold == 1050 ? "exact" : "LOST UPDATES") << "; " << edits_run - 1000
              << " conflicts were retried automatically\n";

    step("4. With retries off, a conflict surfaces as an error");
    try {
      bool first = true;
      players.find_one_and_update(
          "p1",
          [&](Player p) {
            if (first) {  // another writer slips in between our read and our write
              first = false;
              players.update_one("p1", {{"$inc", {{"gold", 5}}}});
            }
            p.level += 1;
            return p;
          },
          es::write_options{.retry = es::retry_options{.enabled = false}});
    } catch (const es::conflict_error& e) {
      std::cout << "   conflict_error: " << e.what() << "\n"
                << "   (expected version " << e.expected_version() << ", found "
                << e.actual_version() << "; retryable=" << e.retryable() << ")\n";
    }

    step("5. MongoDB-style update operators and queries, executed inside SQLite");
    players.find_one_and_upsert(Player{.id = "p2", .name = "Bob", .gold = 300, .level = 4});
    players.find_one_and_upsert(Player{.id = "p3", .name = "Cid", .gold = 80, .level = 2});
    players.find_one_and_upsert(Player{.id = "p4", .name = "Dee", .gold = 900, .level = 7});
    players.update_one("p3", {{"$inc", {{"level", 2}}}, {"$set", {{"name", "Cid the Bold"}}}});
    std::cout << "   players with level >= 3, richest first:\n";
    for (const Player& p : players.find_many({{"level", {{"$gte", 3}}}},
                                             {.sort = {{"gold", es::sort_order::descending}}})) {
      show(p);
    }

    step("6. A transaction: move 100 gold from Dee to Ann, both or neither");
    store->with_transaction([](es::transaction& tx) {
      auto ps = tx.collection<Player>("players");
      auto from = ps.find_one("p4").value();
      auto to = ps.find_one("p1").value();
      from.gold -= 100;
      to.gold += 100;
      ps.put(from);
      ps.put(to);
    });
    show(players.find_one("p4").value());
    show(players.find_one("p1").value());

    step("7. Bad input is refused with a clear error, and changes nothing");
    try {
      players.update_one("p2", {{"$inc", {{"name", 1}}}});
    } catch (const es::invalid_argument_error& e) {
      std::cout << "   invalid_argument_error: " << e.what() << "\n";
    }
    try {
      store->collection<Player>("players; DROP TABLE documents");
    } catch (const es::invalid_argument_error& e) {
      std::cout << "   invalid_argument_error: " << e.what() << "\n";
    }
    step("8. The event log: one event per committed write, none for the refused ones");
    const auto log = store->engine().read_all(0, 100'000);
    std::cout << "   " << log.size() << " events; the last: '" << log.back().type << "' "
              << log.back().data["merge_patch"].dump() << "\n";

    std::cout << "\nDone. The data is in '" << file << "'.\n";
    return 0;
  } catch (const es::error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
