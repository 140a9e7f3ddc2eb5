// The event log on SQLite against hand-written code doing the same work.
//
//   log_read_all            Reading the whole log of a SQLite file (100,000 events of about
//                           300 bytes) in pages of 1,000 through event_log::read_all, against the
//                           same SELECT written by hand with the sqlite3 C API on its own
//                           connection (prepared once, WAL, query_only), building the same
//                           recorded_event values: strings copied, the timestamp converted, and
//                           the data and metadata JSON columns parsed with nlohmann::json. Each
//                           side pages through the file from its own cursor, wrapping around at
//                           the end; the rate is events read per second.
//   commit_to_handler_p50   Commit-to-handler latency: a producer commits one event (an engine
//   commit_to_handler_p99   commit of one append, SQLite file, synchronous=NORMAL) and waits for a
//                           handler to receive it. Ours: an outbox_relay reading the log and
//                           publishing to an asynchronous in_memory_event_bus (1 worker) whose
//                           handler signals the producer. Baseline: the same commit on its own
//                           file, then a condition-variable wake of a waiting thread that plays
//                           the handler. Latency runs from before the commit call to the handler,
//                           so both include the commit. Samples alternate in blocks of 50. The
//                           RESULT figures are 1/latency (per second), so that a ratio >= 1 means
//                           ours is as fast as the baseline (DESIGN.md, "Measuring").
//   commit_to_handler_sync_bus_p50 / _p99
//                           The same with a synchronous bus: the handler runs on the relay's
//                           thread, so what remains is the relay's own cost (wake, read, publish).
//
// Each comparison ends with
//   RESULT name=<name> ours=<per second> baseline=<per second> ratio=<ours/baseline>
//
// Usage: eventsourced_log_bench [name-substring...]   (no argument: every comparison)
// Environment: EVENTSOURCED_BENCH_SECONDS (measured seconds per side and comparison, default 3).
#include <sqlite3.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include <eventsourced/event/log.hpp>
#include <eventsourced/event/memory_bus.hpp>
#include <eventsourced/event/relay.hpp>
#include <eventsourced/eventsourced.hpp>

#include "harness.hpp"

namespace {

using namespace std::chrono_literals;
using eventsourced::json;
using eventsourced_bench::check;
using eventsourced_bench::percentile;
using eventsourced_bench::print_result;
using eventsourced_bench::scratch_dir;
using eventsourced_bench::take_turns;
using eventsourced_bench::thread_counters;
using eventsourced_bench::timing;
using eventsourced_bench::turns;
using steady = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------------------
// log_read_all

constexpr int kEvents = 100'000;
constexpr std::size_t kPage = 1000;

void fill_log(eventsourced::engine& db) {
  for (int c = 0; c < kEvents / 100; ++c) {
    eventsourced::commit_request request;
    eventsourced::stream_append append{{"players", "p" + std::to_string(c % 50)}};
    for (int i = 0; i < 100; ++i) {
      const int n = c * 100 + i;
      append.events.push_back(eventsourced::make_event(
          "players.updated",
          {{"version", n}, {"merge_patch", {{"gold", n}, {"last_seen", "2026-11-22T01:00:00Z"}}}},
          {{"document", {{"collection", "players"}, {"id", append.stream.id}, {"version", n}}},
           {"correlation_id", "req-" + std::to_string(n)}}));
    }
    request.appends.push_back(std::move(append));
    db.commit(request);
  }
}

// The hand-written reader: what one would write without the library.
class hand_written_reader {
 public:
  explicit hand_written_reader(const std::string& path) {
    check(sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                          nullptr) == SQLITE_OK,
          "open");
    check(sqlite3_exec(db_, "PRAGMA journal_mode=WAL; PRAGMA query_only=1", nullptr, nullptr,
                       nullptr) == SQLITE_OK,
          "pragma");
    const char* sql =
        "SELECT position, event_id, stream_type, stream_id, stream_version, type, timestamp_us, "
        "data, metadata FROM events WHERE position > ?1 ORDER BY position LIMIT ?2";
    check(
        sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &select_, nullptr) == SQLITE_OK,
        sqlite3_errmsg(db_));
  }
  ~hand_written_reader() {
    sqlite3_finalize(select_);
    sqlite3_close(db_);
  }
  hand_written_reader(const hand_written_reader&) = delete;
  hand_written_reader& operator=(const hand_written_reader&) = delete;

  std::vector<eventsourced::recorded_event> read(std::int64_t after, std::size_t max) {
    sqlite3_bind_int64(select_, 1, after);
    sqlite3_bind_int64(select_, 2, static_cast<sqlite3_int64>(max));
    std::vector<eventsourced::recorded_event> out;
    int rc;
    while ((rc = sqlite3_step(select_)) == SQLITE_ROW) {
      eventsourced::recorded_event e;
      e.position = sqlite3_column_int64(select_, 0);
      e.id = text(1);
      e.stream.type = text(2);
      e.stream.id = text(3);
      e.stream_version = sqlite3_column_int64(select_, 4);
      e.type = text(5);
      e.timestamp = std::chrono::system_clock::time_point(
          std::chrono::duration_cast<std::chrono::system_clock::duration>(
              std::chrono::microseconds(sqlite3_column_int64(select_, 6))));
      e.data = json::parse(text_view(7));
      e.metadata = json::parse(text_view(8));
      out.push_back(std::move(e));
    }
    check(rc == SQLITE_DONE, sqlite3_errmsg(db_));
    sqlite3_reset(select_);
    return out;
  }

 private:
  std::string_view text_view(int column) {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(select_, column));
    return {p, static_cast<std::size_t>(sqlite3_column_bytes(select_, column))};
  }
  std::string text(int column) { return std::string(text_view(column)); }

  sqlite3* db_ = nullptr;
  sqlite3_stmt* select_ = nullptr;
};

void log_read_all(const timing& t) {
  scratch_dir dir;
  const std::string path = dir.fresh_database();
  auto store = eventsourced::open("sqlite:" + path);
  fill_log(store->engine());
  eventsourced::event_log log(store);
  hand_written_reader reader(path);

  // One operation reads one page; its event count goes into `attempts` (the harness's spare
  // counter) so the rate can be given in events.
  std::int64_t ours_cursor = 0, baseline_cursor = 0;
  auto ours = [&](int, thread_counters& c) {
    const auto page = log.read_all(ours_cursor, kPage);
    ours_cursor = page.events.empty() ? 0 : page.next_position;
    c.attempts += page.events.size();
    return true;
  };
  auto baseline = [&](int, thread_counters& c) {
    const auto events = reader.read(baseline_cursor, kPage);
    baseline_cursor = events.empty() ? 0 : events.back().position;
    c.attempts += events.size();
    return true;
  };
  check(log.read_all(0, kPage).events.size() == reader.read(0, kPage).size(), "page sizes differ");
  const turns result = take_turns(1, t, ours, baseline);
  const double ours_rate = static_cast<double>(result.ours.attempts) / result.ours.elapsed.count();
  const double baseline_rate =
      static_cast<double>(result.baseline.attempts) / result.baseline.elapsed.count();
  std::printf("== log_read_all: %d events of ~300 bytes, pages of %zu, 1 thread\n", kEvents, kPage);
  std::printf("  baseline %.0f events/s (sqlite3 C API + nlohmann::json::parse)\n", baseline_rate);
  std::printf("  ours     %.0f events/s (event_log::read_all)\n", ours_rate);
  print_result("log_read_all", ours_rate, baseline_rate);
}

// ---------------------------------------------------------------------------------------------
// commit_to_handler

// What the handler side signals to the producer.
struct receipt {
  std::mutex mutex;
  std::condition_variable changed;
  std::uint64_t count = 0;  // GUARDED_BY(mutex)
  steady::time_point at;    // GUARDED_BY(mutex): when the last one arrived

  void arrive() {
    {
      std::lock_guard lock(mutex);
      at = steady::now();
      ++count;
    }
    changed.notify_all();
  }
  // Waits for arrival number n; returns its time.
  steady::time_point wait_for(std::uint64_t n) {
    std::unique_lock lock(mutex);
    if (!changed.wait_for(lock, 30s, [&] { return count >= n; })) {
      throw std::runtime_error("commit_to_handler: the handler never got event " +
                               std::to_string(n));
    }
    return at;
  }
};

eventsourced::commit_request one_event(std::uint64_t n) {
  eventsourced::commit_request request;
  request.appends.push_back(
      {{"players", "p" + std::to_string(n % 50)},
       std::nullopt,
       {eventsourced::make_event("players.updated", {{"gold", n}},
                                 {{"document", {{"collection", "players"}, {"id", "p1"}}}})}});
  return request;
}

void commit_to_handler(const timing& t, eventsourced::bus_dispatch dispatch,
                       const std::string& name) {
  scratch_dir dir;

  // Ours: commit, relay, asynchronous bus, handler.
  auto ours_store = eventsourced::open("sqlite:" + dir.fresh_database());
  receipt ours_receipt;
  auto bus = std::make_shared<eventsourced::in_memory_event_bus>(
      eventsourced::in_memory_bus_options{.dispatch = dispatch});
  auto sub = bus->subscribe(eventsourced::kAllEvents,
                            [&](const eventsourced::event&) { ours_receipt.arrive(); });
  eventsourced::outbox_relay relay(eventsourced::event_log(ours_store), bus, {.name = "bench"});
  relay.start();

  // Baseline: commit, then wake the thread that plays the handler.
  auto baseline_store = eventsourced::open("sqlite:" + dir.fresh_database());
  receipt baseline_receipt;
  std::mutex wake_mutex;
  std::condition_variable wake;
  std::uint64_t committed = 0;  // GUARDED_BY(wake_mutex)
  bool stop = false;            // GUARDED_BY(wake_mutex)
  std::thread handler_thread([&] {
    std::uint64_t seen = 0;
    std::unique_lock lock(wake_mutex);
    while (true) {
      wake.wait(lock, [&] { return stop || committed > seen; });
      if (stop) return;
      seen = committed;
      lock.unlock();
      baseline_receipt.arrive();
      lock.lock();
    }
  });

  std::vector<double> ours_us, baseline_us;
  std::chrono::duration<double> ours_time{0}, baseline_time{0};
  std::uint64_t ours_n = 0, baseline_n = 0;
  const auto sample_ours = [&] {
    const auto start = steady::now();
    ours_store->engine().commit(one_event(++ours_n));
    const auto at = ours_receipt.wait_for(ours_n);
    ours_us.push_back(std::chrono::duration<double, std::micro>(at - start).count());
    ours_time += steady::now() - start;
  };
  const auto sample_baseline = [&] {
    const auto start = steady::now();
    baseline_store->engine().commit(one_event(++baseline_n));
    {
      std::lock_guard lock(wake_mutex);
      committed = baseline_n;
    }
    wake.notify_one();
    const auto at = baseline_receipt.wait_for(baseline_n);
    baseline_us.push_back(std::chrono::duration<double, std::micro>(at - start).count());
    baseline_time += steady::now() - start;
  };
  for (int i = 0; i < 50; ++i) sample_ours(), sample_baseline();  // warm-up
  ours_us.clear(), baseline_us.clear();
  ours_time = baseline_time = {};
  for (int block = 0; ours_time < t.measured || baseline_time < t.measured; ++block) {
    for (int i = 0; i < 50; ++i) (block % 2 == 0) ? sample_ours() : sample_baseline();
    for (int i = 0; i < 50; ++i) (block % 2 == 0) ? sample_baseline() : sample_ours();
  }
  {
    std::lock_guard lock(wake_mutex);
    stop = true;
  }
  wake.notify_one();
  handler_thread.join();
  relay.stop();
  check(relay.failure() == nullptr, "commit_to_handler: the relay failed");

  const bool async = dispatch == eventsourced::bus_dispatch::asynchronous;
  std::printf(
      "== %s: 1 event per commit, SQLite synchronous=NORMAL, %s bus; %zu samples each, "
      "in alternating blocks of 50\n",
      name.c_str(), async ? "asynchronous" : "synchronous", ours_us.size());
  for (const double p : {0.5, 0.99}) {
    const double ours = percentile(ours_us, p), baseline = percentile(baseline_us, p);
    std::printf(
        "  p%.0f: baseline %.1f us (commit + condvar wake), ours %.1f us (commit + relay "
        "+ bus)\n",
        p * 100, baseline, ours);
    print_result(name + (p == 0.5 ? "_p50" : "_p99"), 1e6 / ours, 1e6 / baseline);
  }
}

}  // namespace

int main(int argc, char** argv) {
  timing t;
  if (const char* seconds = std::getenv("EVENTSOURCED_BENCH_SECONDS")) {
    t.measured = std::chrono::duration<double>(std::stod(seconds));
  }
  const auto wanted = [&](std::string_view name) {
    if (argc < 2) return true;
    for (int i = 1; i < argc; ++i) {
      if (name.find(argv[i]) != std::string_view::npos) return true;
    }
    return false;
  };
  try {
    if (wanted("log_read_all")) log_read_all(t);
    if (wanted("commit_to_handler_p")) {
      commit_to_handler(t, eventsourced::bus_dispatch::asynchronous, "commit_to_handler");
    }
    if (wanted("commit_to_handler_sync_bus")) {
      commit_to_handler(t, eventsourced::bus_dispatch::synchronous, "commit_to_handler_sync_bus");
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "eventsourced_log_bench: %s\n", e.what());
    return 1;
  }
}
