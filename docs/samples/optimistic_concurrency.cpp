// The samples of docs/patterns/optimistic_concurrency.md. The document shows the regions between
// `//! [name]` lines verbatim (checked by doc_samples_in_sync); this program runs them.
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <stdexcept>
#include <string>
#include <thread>
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

// The player of docs/cqrs_for_beginners.md, reduced to its gold.
class player final : public es::aggregate_root {
 public:
  explicit player(std::string id) : aggregate_root("Player", std::move(id)) {
    on("GoldEarned", [this](const es::event& e) { gold_ += e.data.at("amount").get<int>(); });
    on("ItemBought", [this](const es::event& e) { gold_ -= e.data.at("price").get<int>(); });
  }
  void earn(int amount) { raise("GoldEarned", {{"amount", amount}}); }
  void buy(const std::string& item, int price) {
    if (price > gold_) throw not_enough_gold(item + " costs more than " + id() + " has");
    raise("ItemBought", {{"item", item}, {"price", price}});
  }
  int gold() const { return gold_; }

 private:
  int gold_ = 0;
};

struct wallet {
  std::string id;
  int gems = 0;
  std::int64_t version = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(wallet, id, gems, version)

//! [surface]
// A game server's request handler: a conflict is the player's business when the decision
// depended on state that has just changed.
std::string buy_request(const es::dispatcher& commands, const std::string& player_id,
                        const std::string& item, int price) {
  try {
    commands.dispatch(es::make_command("BuyItem", player_id, {{"item", item}, {"price", price}}));
    return "bought " + item;
  } catch (const es::conflict_error&) {
    return "your gold changed meanwhile: check the price and confirm again";
  } catch (const not_enough_gold& e) {
    return e.what();
  }
}
//! [surface]

int main() {
  try {
    auto store = es::open("sqlite::memory:");
    es::repository players(*store);
    {
      auto p1 = players.load<player>("p1");
      p1->earn(100);  // p1 starts at version 1 with 100 gold
      players.save(*p1);
    }

    //! [conflict]
    auto a = players.load<player>("p1");  // two requests load version 1 at once
    auto b = players.load<player>("p1");
    a->earn(10);
    b->buy("shield", 50);
    players.save(*a);  // expected version 1: the stream goes to version 2
    try {
      players.save(*b);  // expected version 1 as well, but the stream is at 2
      expect(false, "the second save conflicts");
    } catch (const es::conflict_error& e) {
      // "version conflict on stream 'Player/p1': expected version 1, found 2"
      expect(e.target() == es::conflict_target::stream, "a stream conflict");
      expect(e.collection() == "Player" && e.id() == "p1", "names the stream");
      expect(e.expected_version() == 1 && e.actual_version() == 2, "carries both versions");
      expect(e.retryable(), "re-running the command on fresh state may succeed");
    }
    expect(players.load<player>("p1")->gold() == 110, "b's purchase was not recorded");
    //! [conflict]

    //! [handlers]
    es::dispatcher commands;
    // Earning gold does not depend on what a concurrent request did: re-run it on a conflict.
    commands.register_handler("EarnGold", es::aggregate_handler<player>(
                                              players,
                                              [](player& p, const es::command& c) {
                                                p.earn(c.payload.at("amount").get<int>());
                                              },
                                              {.retry = {.enabled = true, .max_attempts = 20}}));
    // Buying does: the player decided on a balance that may have changed. No retry.
    commands.register_handler(
        "BuyItem", es::aggregate_handler<player>(players, [](player& p, const es::command& c) {
          p.buy(c.payload.at("item").get<std::string>(), c.payload.at("price").get<int>());
        }));
    //! [handlers]

    //! [retry]
    std::vector<std::thread> servers;
    for (int t = 0; t < 4; ++t) {
      servers.emplace_back([&] {
        for (int i = 0; i < 25; ++i) {
          commands.dispatch(es::make_command("EarnGold", "p2", {{"amount", 1}}));
        }
      });
    }
    for (std::thread& t : servers) t.join();
    expect(players.load<player>("p2")->gold() == 100, "100 commands, 100 gold: none lost");
    //! [retry]

    // buy_request on its normal path, then on a dispatcher whose BuyItem handler lets another
    // request pay p1 between its load and its save (the race the conflict path is for).
    expect(buy_request(commands, "p1", "sword", 30) == "bought sword", "a normal purchase");
    expect(buy_request(commands, "p1", "castle", 5000).find("costs more") != std::string::npos,
           "a refused purchase");
    es::dispatcher racing;
    bool raced = false;
    racing.register_handler(
        "BuyItem", es::aggregate_handler<player>(players, [&](player& p, const es::command& c) {
          if (!raced) {
            raced = true;
            commands.dispatch(es::make_command("EarnGold", p.id(), {{"amount", 1}}));
          }
          p.buy(c.payload.at("item").get<std::string>(), c.payload.at("price").get<int>());
        }));
    expect(buy_request(racing, "p1", "bow", 20).find("changed meanwhile") != std::string::npos,
           "a conflicting purchase is surfaced");

    //! [idempotent]
    es::command pay = es::make_command("EarnGold", "p3", {{"amount", 5}});
    pay.id = "client-7/request-42";  // chosen by the client, the same on every resend

    es::command_result first = commands.dispatch(pay);
    es::command_result again = commands.dispatch(pay);  // resent after a timeout
    expect(!first.duplicate && again.duplicate, "the second dispatch executed nothing");
    expect(again.version == first.version && again.events.size() == 1 &&
               again.events[0].id == first.events[0].id,
           "and returned the first outcome");
    expect(players.load<player>("p3")->gold() == 5, "paid once");
    //! [idempotent]

    //! [documents]
    auto wallets = store->collection<wallet>("wallets");
    wallets.find_one_and_upsert(wallet{.id = "p1"});

    // The edit gets the stored document and returns the new one. On a conflict the store
    // re-reads the document and runs the edit again (store_options::retry), so the edit must
    // compute only from its argument.
    wallets.find_one_and_update("p1", [](wallet w) {
      w.gems += 5;
      return w;
    });

    // With retries off, the first conflict is the caller's.
    try {
      bool first_run = true;
      wallets.find_one_and_update(
          "p1",
          [&](wallet w) {
            if (first_run) {  // another writer slips in between our read and our write
              first_run = false;
              wallets.update_one("p1", {{"$inc", {{"gems", 1}}}});
            }
            w.gems += 5;
            return w;
          },
          es::write_options{.retry = es::retry_options{.enabled = false}});
      expect(false, "the write conflicts");
    } catch (const es::conflict_error& e) {
      expect(e.target() == es::conflict_target::document, "a document conflict");
      expect(e.expected_version() == 2 && e.actual_version() == 3, "read 2, found 3");
    }
    expect(wallets.find_one("p1")->gems == 6, "the losing edit wrote nothing");
    //! [documents]

    std::cout << "optimistic_concurrency: ok\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
