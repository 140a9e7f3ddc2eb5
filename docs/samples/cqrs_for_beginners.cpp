// The walk-through of docs/cqrs_for_beginners.md, end to end. The document shows the regions
// between `//! [name]` lines verbatim (checked by doc_samples_in_sync); this program runs them.
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <eventsourced/eventsourced.hpp>
#include <eventsourced/testing/scenario.hpp>

namespace es = eventsourced;

// The sample's own check: prints what failed and exits with status 1.
void expect(bool ok, const char* what) {
  if (!ok) {
    std::cerr << "sample check failed: " << what << "\n";
    std::exit(1);
  }
}

//! [events]
// Event data: plain structs that nlohmann::json converts.
struct gold_earned {
  int amount = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(gold_earned, amount)

struct item_bought {
  std::string item;
  int price = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(item_bought, item, price)
//! [events]

//! [aggregate]
// A broken game rule. Thrown before anything is raised, so nothing is recorded.
struct not_enough_gold : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class player final : public es::aggregate_root {
 public:
  explicit player(std::string id) : aggregate_root("Player", std::move(id)) {
    // How each event changes the state. No rule checks here: events are facts.
    on<gold_earned>("GoldEarned", [this](const gold_earned& e) { gold_ += e.amount; });
    on<item_bought>("ItemBought", [this](const item_bought& e) {
      gold_ -= e.price;
      items_.push_back(e.item);
    });
  }

  // Command methods: check the rules against the current state, then raise events.
  void earn(int amount) {
    if (amount <= 0) throw std::invalid_argument("gold earned must be positive");
    raise("GoldEarned", gold_earned{amount});
  }
  void buy(const std::string& item, int price) {
    if (price > gold_) {
      throw not_enough_gold(item + " costs " + std::to_string(price) + ", " + id() + " has " +
                            std::to_string(gold_));
    }
    raise("ItemBought", item_bought{item, price});
  }

  int gold() const { return gold_; }
  const std::vector<std::string>& items() const { return items_; }

 private:
  int gold_ = 0;
  std::vector<std::string> items_;
};
//! [aggregate]

//! [settings]
// Plain CRUD data: no rules that depend on history. A document is enough.
struct settings {
  std::string id;
  std::string language = "en";
  bool music = true;
  std::int64_t version = 0;  // kept equal to the stored version by the store
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(settings, id, language, music, version)
//! [settings]

int main() {
  try {
    //! [setup]
    auto store = es::open("sqlite::memory:");  // or "sqlite:game.db", "memory:"
    es::repository players(*store);

    es::dispatcher commands;
    commands.register_handler(
        "EarnGold", es::aggregate_handler<player>(players, [](player& p, const es::command& c) {
          p.earn(c.payload.at("amount").get<int>());
        }));
    commands.register_handler(
        "BuyItem", es::aggregate_handler<player>(players, [](player& p, const es::command& c) {
          auto order = c.payload_as<item_bought>();
          p.buy(order.item, order.price);
        }));
    //! [setup]

    //! [dispatch]
    es::command_result earned =
        commands.dispatch(es::make_command("EarnGold", "p1", {{"amount", 100}}));
    expect(earned.version == 1 && earned.events.at(0).type == "GoldEarned", "p1 earned gold");

    commands.dispatch(es::make_command("BuyItem", "p1", {{"item", "sword"}, {"price", 30}}));

    try {
      commands.dispatch(es::make_command("BuyItem", "p1", {{"item", "castle"}, {"price", 5000}}));
      expect(false, "a castle is too expensive");
    } catch (const not_enough_gold& e) {
      std::cout << "refused: " << e.what() << "\n";  // nothing was recorded
    }
    //! [dispatch]

    //! [load]
    std::unique_ptr<player> p1 = players.load<player>("p1");  // replays Player/p1
    expect(p1->version() == 2, "two events: GoldEarned, ItemBought");
    expect(p1->gold() == 70 && p1->items() == std::vector<std::string>{"sword"}, "state");

    std::unique_ptr<player> before = players.load_at<player>("p1", 1);  // time travel
    expect(before->gold() == 100 && before->items().empty(), "p1 before buying the sword");
    //! [load]

    //! [version_check]
    auto first = players.load<player>("p1");  // two requests load version 2 at once
    auto second = players.load<player>("p1");
    first->earn(5);
    second->buy("shield", 60);
    players.save(*first);  // appends version 3: the stream was at 2, as expected
    try {
      players.save(*second);  // expects version 2 too, but the stream is at 3 now
      expect(false, "the second save conflicts");
    } catch (const es::conflict_error& e) {
      std::cout << "conflict: " << e.what() << "\n";  // nothing of `second` was written
    }
    //! [version_check]

    //! [read_model]
    es::projection sales{.name = "item-sales",
                         .collections = {"item_sales"},
                         .handle = [](const es::event& e, es::read_model& rm) {
                           if (e.type != "ItemBought") return;
                           const auto item = e.data.at("item").get<std::string>();
                           es::json row = rm.get("item_sales", item).value_or(es::json::object());
                           row["sold"] = row.value("sold", 0) + 1;
                           rm.put("item_sales", item, row);
                         }};
    es::projection_runner runner(store, sales);
    runner.poll(std::chrono::seconds(1));  // one batch here; runner.start() runs a thread

    std::optional<es::json> sword = store->documents("item_sales").find_one("sword");
    expect(sword && sword->at("sold") == 1, "one sword sold");
    //! [read_model]

    //! [documents]
    auto all_settings = store->collection<settings>("settings");
    all_settings.find_one_and_upsert(settings{.id = "p1"});
    all_settings.find_one_and_update("p1", [](settings s) {
      s.music = false;
      return s;
    });
    expect(all_settings.find_one("p1")->version == 2, "created, then updated once");
    //! [documents]

    //! [testing]
    // In a unit test (any framework): given these past events, when a command method runs,
    // then it raises exactly these events, or throws this error.
    using es::testing::aggregate_scenario;
    es::testing::verdict buys = aggregate_scenario<player>("p1")
                                    .given({{"GoldEarned", {{"amount", 50}}}})
                                    .when([](player& p) { p.buy("sword", 30); })
                                    .then({{"ItemBought", {{"item", "sword"}, {"price", 30}}}});
    es::testing::verdict refuses = aggregate_scenario<player>("p1")
                                       .given({{"GoldEarned", {{"amount", 10}}}})
                                       .when([](player& p) { p.buy("sword", 30); })
                                       .then_error<not_enough_gold>("sword costs 30");
    if (!buys || !refuses) std::cerr << buys << "\n" << refuses << "\n";
    //! [testing]
    expect(buys && refuses, "the scenarios hold");

    std::cout << "cqrs_for_beginners: ok\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
