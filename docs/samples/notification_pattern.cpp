// The samples of docs/patterns/notification_pattern.md. The document shows the regions between
// `//! [name]` lines verbatim (checked by doc_samples_in_sync); this program runs them.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <eventsourced/eventsourced.hpp>

namespace es = eventsourced;

// The sample's own check: prints what failed and exits with status 1.
void expect(bool ok, const char* what) {
  if (!ok) {
    std::cerr << "sample check failed: " << what << "\n";
    std::exit(1);
  }
}

struct not_enough_gold : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The player of docs/cqrs_for_beginners.md, with achievements.
class player final : public es::aggregate_root {
 public:
  explicit player(std::string id) : aggregate_root("Player", std::move(id)) {
    on("GoldEarned", [this](const es::event& e) { gold_ += e.data.at("amount").get<int>(); });
    on("ItemBought", [this](const es::event& e) { gold_ -= e.data.at("price").get<int>(); });
    on("AchievementUnlocked",
       [this](const es::event& e) { achievements_.insert(e.data.at("name").get<std::string>()); });
  }
  void earn(int amount) { raise("GoldEarned", {{"amount", amount}}); }
  void buy(const std::string& item, int price) {
    if (price > gold_) throw not_enough_gold(item + " costs more than " + id() + " has");
    raise("ItemBought", {{"item", item}, {"price", price}});
  }
  void unlock(const std::string& achievement) {
    if (achievements_.count(achievement) == 0) {
      raise("AchievementUnlocked", {{"name", achievement}});
    }
  }

 private:
  int gold_ = 0;
  std::set<std::string> achievements_;
};

//! [client]
// What a game client keeps of one player: its view, and the stream version the view reflects.
struct player_view {
  std::int64_t version = 0;
  int gold = 0;
  void apply(const es::event& e) {
    if (e.type == "GoldEarned") gold += e.data.at("amount").get<int>();
    if (e.type == "ItemBought") gold -= e.data.at("price").get<int>();
    version = e.stream_version;
  }
};

// A pushed event reaches the view once, in stream order: a redelivery is ignored, and a gap (a
// dropped message, a reconnect) is filled from the log first. `log` stands in for the server's
// "events of this stream after version N" call.
void receive(player_view& view, const es::event& pushed, const es::event_log& log) {
  if (pushed.stream_version <= view.version) return;  // already applied
  if (pushed.stream_version == view.version + 1) {
    view.apply(pushed);
    return;
  }
  const auto missing = static_cast<std::size_t>(pushed.stream_version - view.version);
  for (const es::event& e : log.read_stream(pushed.stream, view.version + 1, missing)) {
    view.apply(e);
  }
}
//! [client]

int main() {
  try {
    //! [setup]
    // Subscribe before the relay starts, so no handler misses an event already in the log.
    auto storage = es::event_sourced_storage::open("sqlite::memory:", {.start_relay = false});
    es::repository players(*storage->store());
    es::dispatcher commands;
    //! [setup]
    commands.register_handler(
        "EarnGold", es::aggregate_handler<player>(players, [](player& p, const es::command& c) {
          p.earn(c.payload.at("amount").get<int>());
        }));
    commands.register_handler(
        "BuyItem", es::aggregate_handler<player>(players, [](player& p, const es::command& c) {
          p.buy(c.payload.at("item").get<std::string>(), c.payload.at("price").get<int>());
        }));
    commands.register_handler(
        "UnlockAchievement",
        es::aggregate_handler<player>(players, [](player& p, const es::command& c) {
          p.unlock(c.payload.at("name").get<std::string>());
        }));

    //! [push]
    std::mutex clients_mutex;
    std::map<std::string, player_view> clients;  // connected clients, by player id

    auto push = storage->subscribe(es::kAllEvents, [&](const es::event& e) {
      if (e.stream.type != "Player") return;
      std::lock_guard lock(clients_mutex);
      if (auto client = clients.find(e.stream.id); client != clients.end()) {
        receive(client->second, e, storage->log());
      }
    });
    //! [push]

    //! [reaction]
    // A reaction: buying an item unlocks an achievement. The command's id is derived from the
    // event's id, so a redelivered event dispatches a duplicate command, which does nothing.
    auto achievements = storage->subscribe("ItemBought", [&](const es::event& e) {
      es::command unlock =
          es::make_command("UnlockAchievement", e.stream.id, {{"name", "first purchase"}},
                           {{"correlation_id", es::correlation_id(e).value_or(e.id)}});
      unlock.id = "unlock-for-" + e.id;
      commands.dispatch(unlock);
    });
    //! [reaction]
    storage->relay().start();

    commands.dispatch(es::make_command("EarnGold", "p1", {{"amount", 100}}));
    storage->wait_until_published(std::chrono::seconds(5));
    {
      std::lock_guard lock(clients_mutex);
      clients["p1"];  // p1's client connects now, knowing nothing yet (version 0)
    }

    //! [correlation]
    // The request's id travels with the command into the events it causes.
    es::command buy = es::make_command("BuyItem", "p1", {{"item", "sword"}, {"price", 30}},
                                       {{"correlation_id", "request-42"}});
    es::command_result bought = commands.dispatch(buy);
    const es::event& sword = bought.events.at(0);
    expect(es::correlation_id(sword) == "request-42", "the request's correlation id");
    expect(es::causation_id(sword) == buy.id, "caused by the command");
    //! [correlation]

    // Published: the push filled the client's gap (v1) before applying the sword (v2). The
    // reaction committed its event from the relay's thread meanwhile; wait for that one too.
    storage->wait_until_published(std::chrono::seconds(5));
    storage->wait_until_published(std::chrono::seconds(5));
    {
      std::lock_guard lock(clients_mutex);
      expect(clients["p1"].gold == 70, "the client's view has both events");
      expect(clients["p1"].version == 3, "and the achievement's");
    }

    //! [redelivery]
    // Delivery is at least once: publishing an event again is what a redelivery looks like.
    storage->bus().publish(bought.events.at(0));  // the default bus runs handlers right here
    //! [redelivery]
    {
      std::lock_guard lock(clients_mutex);
      expect(clients["p1"].gold == 70, "the client ignored the redelivered event");
    }
    const auto stream = storage->log().read_stream({"Player", "p1"});
    expect(stream.size() == 3, "one AchievementUnlocked: the duplicate command did nothing");
    expect(es::correlation_id(stream.back()) == "request-42", "the reaction kept the correlation");
    expect(es::causation_id(stream.back()) == "unlock-for-" + sword.id, "caused by its command");

    //! [checkpoint]
    // A consumer that must not miss an event across restarts reads the log after its checkpoint.
    std::vector<std::string> receipts;
    auto send_receipt = [&](const es::event& e) {
      if (e.type == "ItemBought") receipts.push_back(e.data.at("item").get<std::string>());
    };
    {
      es::catch_up_subscription mailer(storage->log(), send_receipt, {.checkpoint_name = "mailer"});
      mailer.poll(std::chrono::seconds(1));  // one batch here; mailer.start() runs a thread
    }  // the process stops; the checkpoint "mailer" stays in the store

    commands.dispatch(es::make_command("BuyItem", "p1", {{"item", "bow"}, {"price", 20}}));

    es::catch_up_subscription restarted(storage->log(), send_receipt,
                                        {.checkpoint_name = "mailer"});
    restarted.poll(std::chrono::seconds(1));  // resumes after the checkpoint: only the bow
    expect(receipts == std::vector<std::string>{"sword", "bow"}, "each receipt once");
    //! [checkpoint]

    storage->close();
    std::cout << "notification_pattern: ok\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
