// A game server's player as an event-sourced aggregate: gold, experience and level-up rules,
// commands through a dispatcher (one handler retrying on conflicts), snapshots every few events,
// time travel to an earlier version, and a leaderboard read model built by a projection.
//
//   ./build/examples/game_player [database-file]
//   (default: game_player.db in the current directory, removed before and after the run)
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <eventsourced/eventsourced.hpp>

namespace game {

inline constexpr int kExperiencePerLevel = 100;

struct player_state {
  std::string name;
  int gold = 0;
  int experience = 0;
  int level = 1;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(player_state, name, gold, experience, level)

// A broken game rule; the command changes nothing.
struct rule_violation : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class player final : public eventsourced::aggregate_root {
 public:
  explicit player(std::string id) : aggregate_root("Player", std::move(id)) {
    using eventsourced::event;
    on("PlayerRegistered",
       [this](const event& e) { state_.name = e.data.at("name").get<std::string>(); });
    on("GoldEarned", [this](const event& e) { state_.gold += e.data.at("amount").get<int>(); });
    on("GoldSpent", [this](const event& e) { state_.gold -= e.data.at("amount").get<int>(); });
    on("ExperienceGained",
       [this](const event& e) { state_.experience += e.data.at("amount").get<int>(); });
    on("LevelUp", [this](const event& e) { state_.level = e.data.at("level").get<int>(); });
  }

  void register_as(const std::string& name) {
    if (version() != 0) throw rule_violation("player " + id() + " is already registered");
    raise("PlayerRegistered", {{"name", name}});
  }
  void earn_gold(int amount) {
    check_registered();
    if (amount <= 0) throw rule_violation("gold earned must be positive");
    raise("GoldEarned", {{"amount", amount}});
  }
  void spend_gold(int amount, const std::string& item) {
    check_registered();
    if (amount > state_.gold) {
      throw rule_violation(state_.name + " cannot buy " + item + " for " + std::to_string(amount) +
                           " gold: has only " + std::to_string(state_.gold));
    }
    raise("GoldSpent", {{"amount", amount}, {"item", item}});
  }
  // One command, several events: the experience, then one LevelUp per level it crosses.
  void gain_experience(int amount) {
    check_registered();
    if (amount <= 0) throw rule_violation("experience gained must be positive");
    raise("ExperienceGained", {{"amount", amount}});
    while (state_.experience / kExperiencePerLevel + 1 > state_.level) {
      raise("LevelUp", {{"level", state_.level + 1}});
    }
  }

  const player_state& state() const { return state_; }

  // Snapshots: the repository stores this every N events; loads restore it and replay the rest.
  std::optional<eventsourced::json> snapshot() const override { return eventsourced::json(state_); }
  void restore(const eventsourced::json& state) override { state_ = state.get<player_state>(); }

 private:
  void check_registered() const {
    if (version() == 0) throw rule_violation("no player " + id());
  }

  player_state state_;
};

struct amount {
  int value = 0;
};
inline void from_json(const eventsourced::json& j, amount& a) {
  j.at("amount").get_to(a.value);
}

}  // namespace game

namespace {

void show(const std::string& label, const game::player& p) {
  const game::player_state& s = p.state();
  std::cout << "   " << label << ": " << s.name << ", level " << s.level << ", " << s.experience
            << " xp, " << s.gold << " gold (version " << p.version() << ")\n";
}

}  // namespace

int main(int argc, char** argv) {
  namespace es = eventsourced;
  using game::player;
  const std::string file = argc > 1 ? argv[1] : "game_player.db";
  const auto remove_database = [&] {
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(file + suffix);
  };
  remove_database();

  try {
    auto store = es::open("sqlite:" + file);
    es::repository players(*store, {.snapshot_every_by_type = {{"Player", 5}}});

    es::dispatcher commands;
    commands.register_handler(
        "RegisterPlayer",
        es::aggregate_handler<player>(players, [](player& p, const es::command& c) {
          p.register_as(c.payload.at("name").get<std::string>());
        }));
    // Earning gold never depends on what a concurrent command did, so a conflict is retried:
    // reload the player, run the command again, save again.
    std::atomic<int> earn_runs{0};  // counts the re-runs after conflicts too
    commands.register_handler("EarnGold", es::aggregate_handler<player>(
                                              players,
                                              [&earn_runs](player& p, const es::command& c) {
                                                ++earn_runs;
                                                p.earn_gold(c.payload_as<game::amount>().value);
                                              },
                                              {.retry = {.enabled = true, .max_attempts = 50}}));
    // Spending is checked against the gold the player has: without retry, a conflict goes back
    // to the client, which sees the new balance before deciding again.
    commands.register_handler(
        "SpendGold", es::aggregate_handler<player>(players, [](player& p, const es::command& c) {
          p.spend_gold(c.payload.at("amount").get<int>(), c.payload.at("item").get<std::string>());
        }));
    commands.register_handler(
        "GainExperience",
        es::aggregate_handler<player>(players, [](player& p, const es::command& c) {
          p.gain_experience(c.payload_as<game::amount>().value);
        }));

    std::cout << "== Register two players and play a little\n";
    commands.dispatch(es::make_command("RegisterPlayer", "p1", {{"name", "Ann"}}));
    commands.dispatch(es::make_command("RegisterPlayer", "p2", {{"name", "Bob"}}));
    commands.dispatch(es::make_command("EarnGold", "p1", {{"amount", 120}}));
    commands.dispatch(es::make_command("GainExperience", "p2", {{"amount", 90}}));
    es::command_result r =
        commands.dispatch(es::make_command("GainExperience", "p1", {{"amount", 250}}));
    std::cout << "   GainExperience 250 for Ann recorded:";
    for (const es::event& e : r.events) std::cout << " " << e.type << e.data.dump();
    std::cout << "\n";
    show("Ann", *players.load<player>("p1"));

    std::cout << "== Spending more gold than Ann has is refused, and records nothing\n";
    try {
      commands.dispatch(
          es::make_command("SpendGold", "p1", {{"amount", 500}, {"item", "dragon saddle"}}));
    } catch (const game::rule_violation& e) {
      std::cout << "   refused: " << e.what() << "\n";
    }
    commands.dispatch(es::make_command("SpendGold", "p1", {{"amount", 80}, {"item", "sword"}}));
    show("Ann after buying a sword", *players.load<player>("p1"));

    std::cout << "== Four game-server threads pay Bob 1 gold 10 times each, at the same time\n";
    earn_runs = 0;
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < 10; ++i) {
          commands.dispatch(es::make_command("EarnGold", "p2", {{"amount", 1}}));
        }
      });
    }
    for (std::thread& t : threads) t.join();
    const auto bob = players.load<player>("p2");
    show("Bob", *bob);
    std::cout << "   " << (bob->state().gold == 40 ? "exactly 40 gold" : "GOLD LOST OR DOUBLED")
              << " from 40 commands; saves that conflicted and were re-run on the reloaded player: "
              << earn_runs - 40 << "\n";

    std::cout << "== Snapshots: the repository keeps one every 5 events of a player\n";
    for (const char* id : {"Player/p1", "Player/p2"}) {
      if (auto snap = store->engine().get(es::kSnapshotsCollection, id)) {
        std::cout << "   " << id << ": snapshot at version " << snap->body["version"] << " "
                  << snap->body["state"].dump() << "; a load replays only the events after it\n";
      }
    }

    std::cout << "== Time travel: Ann at every version of her stream\n";
    const auto ann = players.load<player>("p1");
    for (std::int64_t v = 1; v <= ann->version(); ++v) {
      show("v" + std::to_string(v), *players.load_at<player>("p1", v));
    }

    std::cout << "== A leaderboard read model, built from the log by a projection\n";
    es::projection leaderboard{
        .name = "leaderboard",
        .collections = {"leaderboard"},
        .handle = [](const es::event& e, es::read_model& rm) {
          if (e.stream.type != "Player") return;
          es::json row = rm.get("leaderboard", e.stream.id).value_or(es::json::object());
          if (e.type == "PlayerRegistered") {
            row["name"] = e.data.at("name");
            row["level"] = 1;
            row["experience"] = 0;
          } else if (e.type == "ExperienceGained") {
            row["experience"] = row.value("experience", 0) + e.data.at("amount").get<int>();
          } else if (e.type == "LevelUp") {
            row["level"] = e.data.at("level");
          } else {
            return;
          }
          rm.put("leaderboard", e.stream.id, row);
        }};
    es::projection_runner runner(store, leaderboard);
    // Pull form, to print once it has caught up; a server would call runner.start() instead.
    while (runner.poll(std::chrono::milliseconds(0)) > 0) {
    }
    int rank = 0;
    for (const es::json& row :
         store->documents("leaderboard")
             .find_many(es::json::object(),
                        {.sort = {{"level", es::sort_order::descending},
                                  {"experience", es::sort_order::descending}}})) {
      std::cout << "   #" << ++rank << " " << row["name"].get<std::string>() << "  level "
                << row["level"] << "  " << row["experience"] << " xp\n";
    }

    store->close();
    remove_database();
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
