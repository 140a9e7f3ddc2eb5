// Faults: a PostgreSQL server of the test's own (scripts/services.sh on a private port and state
// directory) is stopped and restarted while writers increment a counter through a store and a
// waiter waits for events. Clients reconnect by themselves, nothing committed is lost, the errors
// seen during the outage are the retryable kind, and every call returns.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <eventsourced/engine/postgres.hpp>
#include <eventsourced/error.hpp>
#include <eventsourced/event/mapper.hpp>
#include <eventsourced/storage/store.hpp>

#include "support/servers.hpp"

namespace eventsourced {
namespace {

using namespace std::chrono_literals;

// A PostgreSQL server started by scripts/services.sh in a state directory and on a port of its
// own; removed on destruction.
class private_postgres {
 public:
  private_postgres()
      : dir_("/tmp/eventsourced-pgfault-" + std::to_string(::getpid())),
        port_(55500 + ::getpid() % 400) {
    run("start postgres");
  }
  ~private_postgres() { run("clean", /*check=*/false); }

  void stop() { run("stop postgres"); }
  void start() { run("start postgres"); }
  std::string uri() const {
    return "postgresql://es_test:es_test_password@127.0.0.1:" + std::to_string(port_) +
           "/es_test?pool_size=4";
  }

 private:
  void run(const std::string& what, bool check = true) const {
    const std::string command =
        "EVENTSOURCED_SERVICES_DIR=" + dir_ + " EVENTSOURCED_PG_PORT=" + std::to_string(port_) +
        " " + EVENTSOURCED_SOURCE_DIR "/scripts/services.sh " + what + " >/dev/null 2>&1";
    const int status = std::system(command.c_str());
    if (check && status != 0) throw std::runtime_error("failed: " + command);
  }

  std::string dir_;
  int port_;
};

TEST(postgres_fault, a_server_restart_loses_nothing_and_clients_reconnect) {
  std::string shared_server;  // the private one is started here; the shared one proves the
  EVENTSOURCED_REQUIRE_SERVER("EVENTSOURCED_TEST_POSTGRES_URI", shared_server);  // tools exist
  private_postgres server;
  store_options options;
  options.mapper = std::make_shared<default_event_mapper>();
  auto s = store::wrap(make_postgres_engine(parse_postgres_uri(server.uri())), options);
  auto counters = s->documents("counters");
  counters.find_one_and_upsert({{"id", "c"}, {"n", 0}});

  std::atomic<int> successes{0}, outage_errors{0}, unknown_outcomes{0};
  std::atomic<bool> restarted{false}, stop{false};
  std::atomic<int> successes_after_restart{0};
  std::mutex mutex;
  std::vector<std::string> unexpected;
  const auto record_unexpected = [&](const std::string& what) {
    std::lock_guard lock(mutex);
    unexpected.push_back(what);
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&] {
      auto handle = s->documents("counters");
      while (!stop) {
        try {
          handle.find_one_and_update("c", [](json doc) {
            doc["n"] = doc["n"].get<int>() + 1;
            return doc;
          });
          ++successes;
          if (restarted) ++successes_after_restart;
        } catch (const commit_outcome_unknown_error&) {
          ++unknown_outcomes;
        } catch (const error& e) {
          if (e.retryable()) {
            ++outage_errors;
            std::this_thread::sleep_for(20ms);
          } else {
            record_unexpected(e.what());
          }
        } catch (const std::exception& e) {
          record_unexpected(e.what());
        }
      }
    });
  }
  // A waiter: wait_for keeps returning (true, false or a retryable error), never hangs.
  std::atomic<int> waits{0};
  threads.emplace_back([&] {
    while (!stop) {
      try {
        s->engine().wait_for(std::numeric_limits<std::int64_t>::max() - 1, 100ms);
        ++waits;
      } catch (const error& e) {
        if (!e.retryable()) record_unexpected(std::string("wait_for: ") + e.what());
        std::this_thread::sleep_for(20ms);
      }
    }
  });

  const auto wait_until = [&](auto condition, std::chrono::seconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!condition() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(10ms);
    }
    return condition();
  };
  EXPECT_TRUE(wait_until([&] { return successes.load() >= 100; }, 60s));
  server.stop();
  std::this_thread::sleep_for(300ms);  // writers meet the outage
  server.start();
  restarted = true;
  EXPECT_TRUE(wait_until([&] { return successes_after_restart.load() >= 100; }, 60s))
      << "the writers did not recover after the restart";
  stop = true;
  for (auto& t : threads) t.join();

  std::cout << "successes " << successes << ", retryable errors during the outage " << outage_errors
            << ", unknown outcomes " << unknown_outcomes << ", waits " << waits << "\n";
  EXPECT_EQ(unexpected, std::vector<std::string>{});
  EXPECT_GT(outage_errors.load(), 0) << "the outage was never observed";
  EXPECT_GT(waits.load(), 0);
  // Every success is in the document; an unknown outcome may or may not be.
  const int n = (*counters.find_one("c"))["n"].get<int>();
  EXPECT_GE(n, successes.load());
  EXPECT_LE(n, successes.load() + unknown_outcomes.load());
  // And every write's event is in the log, once: the upsert and n increments.
  EXPECT_EQ(s->engine().read_all(0, 1000000).size(), static_cast<std::size_t>(n) + 1);
  s->close();
}

}  // namespace
}  // namespace eventsourced
