// with_transaction (transaction.hpp): several documents in several collections, one commit;
// every document read or written is version-checked at commit, so a transaction re-runs on fresh
// state (or fails with conflict_error) when anything it depended on changed meanwhile.
#include <functional>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "unit/storage_test_support.hpp"

namespace eventsourced_test {
namespace {

using eventsourced::conflict_error;
using eventsourced::transaction;

struct Account {
  std::string id;
  std::string owner;
  std::int64_t balance = 0;
  std::int64_t version = 0;
  friend bool operator==(const Account&, const Account&) = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Account, id, owner, balance, version)

class transactions : public storage_test {
 protected:
  void SetUp() override {
    storage_test::SetUp();
    store_ = open_store();
    other_ = open_store();  // a writer outside the transaction, as another process would be
    wallets().find_one_and_upsert(Account{.id = "ann", .owner = "Ann", .balance = 100});
    vaults().find_one_and_upsert(Account{.id = "guild", .owner = "Guild", .balance = 1000});
    store_->documents("config").find_one_and_upsert({{"id", "fee"}, {"percent", 10}});
  }

  eventsourced::collection<Account> wallets() { return store_->collection<Account>("wallets"); }
  eventsourced::collection<Account> vaults() { return store_->collection<Account>("vaults"); }
  std::int64_t balance(eventsourced::collection<Account> c, const std::string& id) {
    return c.find_one(id).value().balance;
  }

  // Moves `amount` from the wallet to the vault, minus the configured fee (read, never written).
  // after_reads runs once everything is read and before anything is written: the moment a
  // concurrent writer can invalidate what the transaction read.
  static void pay_into_vault(
      transaction& tx, std::int64_t amount, const std::function<void()>& after_reads = [] {}) {
    const json fee = tx.find_one("config", "fee").value();
    auto w = tx.collection<Account>("wallets");
    auto v = tx.collection<Account>("vaults");
    Account from = w.find_one("ann").value();
    Account to = v.find_one("guild").value();
    after_reads();
    from.balance -= amount;
    to.balance += amount - amount * fee["percent"].get<std::int64_t>() / 100;
    w.put(from);
    v.put(to);
  }

  std::shared_ptr<eventsourced::store> store_;
  std::shared_ptr<eventsourced::store> other_;
};
EVENTSOURCED_STORAGE_TEST_ENGINES(transactions);

TEST_P(transactions, a_transfer_between_two_collections_commits_both_documents) {
  store_->with_transaction([](transaction& tx) { pay_into_vault(tx, 30); });
  EXPECT_EQ(wallets().find_one("ann"),
            (Account{.id = "ann", .owner = "Ann", .balance = 70, .version = 2}));
  EXPECT_EQ(vaults().find_one("guild"),
            (Account{.id = "guild", .owner = "Guild", .balance = 1027, .version = 2}));
  EXPECT_EQ(store_->documents("config").find_one("fee")->at("version"), 1);  // only read
}

TEST_P(transactions, an_exception_midway_writes_nothing_and_propagates_unchanged) {
  int runs = 0;
  EXPECT_THROW(store_->with_transaction([&](transaction& tx) {
    ++runs;
    auto w = tx.collection<Account>("wallets");
    Account a = w.find_one("ann").value();
    a.balance = 0;
    w.put(a);
    tx.put("wallets", {{"id", "new"}, {"owner", "New"}, {"balance", 5}});
    throw std::logic_error("boom");
  }),
               std::logic_error);
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(wallets().find_one("ann"),
            (Account{.id = "ann", .owner = "Ann", .balance = 100, .version = 1}));
  EXPECT_EQ(wallets().find_one("new"), std::nullopt);
}

TEST_P(transactions, a_conflict_error_thrown_by_the_function_itself_is_not_retried) {
  int runs = 0;
  EXPECT_THROW(store_->with_transaction([&](transaction& tx) {
    ++runs;
    tx.put("wallets", {{"id", "ann"}, {"owner", "Ann"}, {"balance", 0}});
    throw conflict_error(eventsourced::conflict_target::document, "x", "y", 1, 2);
  }),
               conflict_error);
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(balance(wallets(), "ann"), 100);
}

TEST_P(transactions, a_concurrent_write_to_a_document_it_only_read_re_runs_it_on_fresh_state) {
  int runs = 0;
  store_->with_transaction([&](transaction& tx) {
    ++runs;
    pay_into_vault(tx, 30, [&] {
      if (runs == 1) other_->documents("config").update_one("fee", {{"$set", {{"percent", 50}}}});
    });
  });
  EXPECT_EQ(runs, 2);
  EXPECT_EQ(balance(wallets(), "ann"), 70);
  EXPECT_EQ(balance(vaults(), "guild"), 1015);  // the fresh 50% fee, not the 10% of the first run
  EXPECT_EQ(wallets().find_one("ann")->version, 2);
}

TEST_P(transactions, with_retries_off_a_conflict_on_a_read_document_throws_and_writes_nothing) {
  int runs = 0;
  try {
    store_->with_transaction(
        [&](transaction& tx) {
          ++runs;
          pay_into_vault(tx, 30, [&] {
            other_->documents("config").update_one("fee", {{"$set", {{"percent", 50}}}});
          });
        },
        no_retries());
    FAIL() << "expected conflict_error";
  } catch (const conflict_error& e) {
    EXPECT_EQ(e.collection(), "config");
    EXPECT_EQ(e.id(), "fee");
    EXPECT_EQ(e.expected_version(), 1);
    EXPECT_EQ(e.actual_version(), 2);
  }
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(wallets().find_one("ann"),
            (Account{.id = "ann", .owner = "Ann", .balance = 100, .version = 1}));
  EXPECT_EQ(vaults().find_one("guild"),
            (Account{.id = "guild", .owner = "Guild", .balance = 1000, .version = 1}));
  EXPECT_EQ(store_->documents("config").find_one("fee")->at("percent"), 50);
}

TEST_P(transactions, a_document_read_as_missing_that_appears_meanwhile_re_runs_it) {
  int runs = 0;
  store_->with_transaction([&](transaction& tx) {
    ++runs;
    auto w = tx.collection<Account>("wallets");
    const bool missing = !w.find_one("bob");
    if (runs == 1) {
      other_->collection<Account>("wallets").find_one_and_upsert(
          Account{.id = "bob", .owner = "Bob (other)", .balance = 7});
    }
    if (missing) w.put(Account{.id = "bob", .owner = "Bob (tx)", .balance = 1});
  });
  EXPECT_EQ(runs, 2);
  EXPECT_EQ(wallets().find_one("bob"),
            (Account{.id = "bob", .owner = "Bob (other)", .balance = 7, .version = 1}));
}

TEST_P(transactions, a_read_only_transaction_never_returns_a_torn_view) {
  // Between its two reads another store moves 10 from the wallet to the vault. Were the reads not
  // validated at commit, the first run's sum would count those 10 twice.
  int runs = 0;
  const std::int64_t total = store_->with_transaction([&](transaction& tx) {
    ++runs;
    const std::int64_t wallet = tx.collection<Account>("wallets").find_one("ann")->balance;
    if (runs == 1) {
      other_->with_transaction([](transaction& t) {
        auto w = t.collection<Account>("wallets");
        auto v = t.collection<Account>("vaults");
        Account from = w.find_one("ann").value();
        Account to = v.find_one("guild").value();
        from.balance -= 10;
        to.balance += 10;
        w.put(from);
        v.put(to);
      });
    }
    return wallet + tx.collection<Account>("vaults").find_one("guild")->balance;
  });
  EXPECT_EQ(runs, 2);
  EXPECT_EQ(total, 1100);
  EXPECT_EQ(balance(wallets(), "ann"), 90);
}

TEST_P(transactions, an_edit_inside_that_changes_the_id_is_refused_and_nothing_is_written) {
  EXPECT_THROW(store_->with_transaction([](transaction& tx) {
    auto v = tx.collection<Account>("vaults");
    Account g = v.find_one("guild").value();
    g.balance = 0;
    v.put(g);
    tx.collection<Account>("wallets").find_one_and_update("ann", [](Account a) {
      a.id = "eve";
      return a;
    });
  }),
               eventsourced::invalid_argument_error);
  EXPECT_EQ(balance(vaults(), "guild"), 1000);
  EXPECT_EQ(wallets().find_one("eve"), std::nullopt);
  EXPECT_EQ(wallets().find_one("ann")->version, 1);
}

TEST_P(transactions, reads_inside_see_the_transactions_own_writes) {
  store_->with_transaction([](transaction& tx) {
    auto w = tx.collection<Account>("wallets");
    w.put(Account{.id = "bob", .owner = "Bob", .balance = 5});
    EXPECT_EQ(w.find_one("bob")->balance, 5);
    const auto updated = w.find_one_and_update("bob", [](Account a) {
      a.balance *= 10;
      return a;
    });
    EXPECT_EQ(updated->balance, 50);
    EXPECT_EQ(w.find_one("bob")->balance, 50);
    EXPECT_TRUE(w.delete_one("ann"));
    EXPECT_EQ(w.find_one("ann"), std::nullopt);
    EXPECT_FALSE(w.delete_one("ann"));
  });
  EXPECT_EQ(wallets().find_one("bob"),
            (Account{.id = "bob", .owner = "Bob", .balance = 50, .version = 1}));
  EXPECT_EQ(wallets().find_one("ann"), std::nullopt);
}

TEST_P(transactions, a_delete_inside_commits_with_the_other_writes) {
  store_->with_transaction([](transaction& tx) {
    auto w = tx.collection<Account>("wallets");
    auto v = tx.collection<Account>("vaults");
    Account closing = w.find_one("ann").value();
    Account vault = v.find_one("guild").value();
    vault.balance += closing.balance;
    v.put(vault);
    EXPECT_TRUE(w.delete_one("ann"));
    EXPECT_FALSE(w.delete_one("nobody"));
  });
  EXPECT_EQ(wallets().find_one("ann"), std::nullopt);
  EXPECT_EQ(balance(vaults(), "guild"), 1100);
  // The tombstone keeps the version sequence: a re-creation continues after it.
  EXPECT_EQ(wallets().find_one_and_upsert(Account{.id = "ann", .owner = "Ann"}).diff.version, 3);
}

TEST_P(transactions, what_the_function_returns_is_passed_through) {
  const int number = store_->with_transaction([](transaction&) { return 42; });
  EXPECT_EQ(number, 42);
  const std::string owner = store_->with_transaction(
      [](transaction& tx) { return tx.collection<Account>("wallets").find_one("ann")->owner; });
  EXPECT_EQ(owner, "Ann");
  const Account moved = store_->with_transaction([](transaction& tx) {
    auto w = tx.collection<Account>("wallets");
    return *w.find_one_and_update("ann", [](Account a) {
      a.balance = 1;
      return a;
    });
  });
  EXPECT_EQ(moved.balance, 1);
  EXPECT_EQ(balance(wallets(), "ann"), 1);
}

TEST_P(transactions, concurrent_transfers_between_ten_accounts_preserve_the_total_exactly) {
  constexpr int kAccounts = 10;
  constexpr int kThreads = 4;
  constexpr int kTransfers = 500;
  constexpr std::int64_t kInitial = 1000;
  auto bank = store_->collection<Account>("bank");
  for (int i = 0; i < kAccounts; ++i) {
    bank.find_one_and_upsert(
        Account{.id = "a" + std::to_string(i), .owner = "bank", .balance = kInitial});
  }
  std::mutex mutex;
  std::vector<std::string> failures;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(1234 + t));
      std::uniform_int_distribution<int> pick(0, kAccounts - 1);
      std::uniform_int_distribution<int> amount(1, 100);
      try {
        for (int n = 0; n < kTransfers; ++n) {
          const int from = pick(rng);
          const int to = (from + 1 + pick(rng) % (kAccounts - 1)) % kAccounts;  // never `from`
          const std::int64_t sum = amount(rng);
          store_->with_transaction(
              [&](transaction& tx) {
                auto accounts = tx.collection<Account>("bank");
                Account a = accounts.find_one("a" + std::to_string(from)).value();
                Account b = accounts.find_one("a" + std::to_string(to)).value();
                a.balance -= sum;
                b.balance += sum;
                accounts.put(a);
                accounts.put(b);
              },
              patient());
        }
      } catch (const std::exception& e) {
        std::lock_guard lock(mutex);
        failures.push_back(e.what());
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures, std::vector<std::string>{});
  std::int64_t total = 0;
  std::int64_t writes = 0;
  for (const Account& a : bank.find_many()) {
    total += a.balance;
    writes += a.version - 1;
  }
  EXPECT_EQ(total, kAccounts * kInitial);
  EXPECT_EQ(writes, 2 * kThreads * kTransfers);  // every transfer wrote its two accounts once
}

}  // namespace
}  // namespace eventsourced_test
