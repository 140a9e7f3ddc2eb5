// The storage layer on SQLite against hand-written SQLite C API code doing the same work.
//
// Every comparison runs twice, on WAL with synchronous=NORMAL and with synchronous=FULL, each
// measurement on a fresh database file:
//   find_one_and_update           1 thread adds 1 to the gold of a ~1 KB document
//   two_threads_distinct_docs     2 threads, each on its own document
//   two_threads_one_doc           2 threads on one document (ours: optimistic, retries on;
//                                 baseline: BEGIN IMMEDIATE, so it queues on the lock instead)
//   depth_limit_overhead_find_one_and_update (synchronous=NORMAL only, the name without suffix;
//                                 measured 5 times as long as the others)
//                                 find_one_and_update with the JSON limit checks
//                                 (engine/json_limits.hpp: the walk of the edited body before
//                                 the store compares it, the engine's walk of the commit at the
//                                 store's limit, the checked parse of the stored body) against
//                                 the same store and file, taking turns, with them switched off
//                                 (src/engine/json_limits_switch.hpp, bench only)
//   write_with_event_vs_without   find_one_and_update on a store recording each write's event
//                                 (default_event_mapper) against the same store without events:
//                                 what invariant 2 costs (baseline: the library itself). On a
//                                 file the cost is mostly I/O: the event adds three B-tree leaves
//                                 to the commit (the events row, its event_id index, its stream
//                                 version index), ~5.4 WAL pages per commit against 2 (the ~1 KB
//                                 body takes a leaf and an overflow page), each page written,
//                                 checksummed and later checkpointed
// The baseline does the same JSON work the library must do (parse the stored body, convert it to
// the struct, edit, convert back, serialize) and gives the same durability: per operation
// BEGIN IMMEDIATE; SELECT version, body; UPDATE ... WHERE version = ?; check changes; COMMIT, with
// prepared statements reused. After every run the documents must hold exactly the successful
// increments (no lost update), or the benchmark fails.
//
// Ours and the baseline take turns of 100 ms on their own database files, so machine noise (other
// processes, a slow fsync) hits both alike; each side's rate is its operations over its own
// time. Each comparison ends with
//   RESULT name=<name> ours=<ops/s> baseline=<ops/s> ratio=<ours/baseline>
//
// Usage: eventsourced_storage_bench [name-substring...]   (no argument: every comparison)
// Environment: EVENTSOURCED_BENCH_SECONDS (measured seconds per side and comparison, default 3).
#include <sqlite3.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include <eventsourced/eventsourced.hpp>

#include "engine/json_limits_switch.hpp"
#include "harness.hpp"

namespace {

using json = nlohmann::json;
using eventsourced::sqlite_synchronous;
using eventsourced_bench::percentile;
using eventsourced_bench::run_stats;
using eventsourced_bench::scratch_dir;
using eventsourced_bench::take_turns;
using eventsourced_bench::thread_counters;
using eventsourced_bench::timing;
using eventsourced_bench::turns;

// ---------------------------------------------------------------------------------------------
// The document: a game player whose JSON form is about 1 KB.

struct inventory_item {
  std::string item_id;
  std::string name;
  int quantity = 0;
  std::string rarity;
  int durability = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(inventory_item, item_id, name, quantity, rarity, durability)

struct player {
  std::string id;
  std::string name;
  std::int64_t gold = 0;
  int level = 0;
  std::int64_t version = 0;
  std::vector<inventory_item> inventory;
  std::map<std::string, std::int64_t> stats;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(player, id, name, gold, level, version, inventory, stats)

constexpr std::int64_t kInitialGold = 1000;
constexpr std::string_view kCollection = "players";

player make_player(std::string id) {
  player p;
  p.id = std::move(id);
  p.name = "Aldric the Unyielding";
  p.gold = kInitialGold;
  p.level = 42;
  const char* rarities[] = {"common", "uncommon", "rare", "epic", "legendary"};
  for (int i = 0; i < 7; ++i) {
    p.inventory.push_back({.item_id = "item-" + std::to_string(1000 + i),
                           .name = "Longsword of the Northern Wastes " + std::to_string(i),
                           .quantity = 1 + i,
                           .rarity = rarities[i % 5],
                           .durability = 100 - i * 7});
  }
  for (const char* stat : {"strength", "dexterity", "constitution", "intelligence", "wisdom",
                           "charisma", "kills", "deaths", "quests_completed"}) {
    p.stats[stat] = 10 + static_cast<std::int64_t>(p.stats.size()) * 3;
  }
  return p;
}

const char* synchronous_name(sqlite_synchronous s) {
  switch (s) {
    case sqlite_synchronous::off:
      return "off";
    case sqlite_synchronous::normal:
      return "normal";
    case sqlite_synchronous::full:
      return "full";
  }
  return "?";
}

// ---------------------------------------------------------------------------------------------
// What a comparison runs.

struct workload {
  int threads = 1;
  bool one_document = false;  // all threads on one document; otherwise one each

  std::string document_for(int thread) const {
    return "p" + std::to_string(one_document ? 0 : thread);
  }
  std::vector<std::string> documents() const {
    std::vector<std::string> out;
    for (int i = 0; i < (one_document ? 1 : threads); ++i) out.push_back(document_for(i));
    return out;
  }
};

// Every successful increment must be in the stored documents: nothing lost, nothing extra.
void check_no_lost_update(std::int64_t gold_added, std::uint64_t ops, const char* who) {
  if (gold_added != static_cast<std::int64_t>(ops)) {
    throw std::runtime_error(std::string(who) + ": " + std::to_string(ops) +
                             " successful increments but the documents gained " +
                             std::to_string(gold_added) + " gold");
  }
}

// ---------------------------------------------------------------------------------------------
// Ours: eventsourced::collection<player>::find_one_and_update.

class ours_side {
 public:
  // with_events: the store records each write's event (default_event_mapper) in its commit.
  ours_side(const workload& w, sqlite_synchronous sync, const std::string& path,
            bool with_events = false)
      : work_(w),
        with_events_(with_events),
        store_(eventsourced::open("sqlite:" + path + "?synchronous=" + synchronous_name(sync),
                                  options(with_events))),
        players_(store_->collection<player>(kCollection)) {
    for (const std::string& id : w.documents()) players_.find_one_and_upsert(make_player(id));
  }

  bool operator()(int thread, thread_counters& counters) {
    try {
      players_.find_one_and_update(work_.document_for(thread), [&counters](player p) {
        ++counters.attempts;
        p.gold += 1;
        return p;
      });
      return true;
    } catch (const eventsourced::conflict_error&) {
      return false;  // retries ran out
    }
  }

  void check(std::uint64_t ops) {
    std::int64_t added = 0;
    for (const std::string& id : work_.documents()) {
      added += players_.find_one(id).value().gold - kInitialGold;
    }
    check_no_lost_update(added, ops, "ours");
    if (with_events_) {
      // One event per creation and per increment, or invariant 2 is broken.
      const std::size_t events =
          store_->engine().read_all(0, ops + work_.documents().size() + 1).size();
      if (events != ops + work_.documents().size()) {
        throw std::runtime_error("ours: " + std::to_string(ops) + " increments recorded " +
                                 std::to_string(events) + " events");
      }
    }
  }

 private:
  static eventsourced::store_options options(bool with_events) {
    eventsourced::store_options o;
    if (with_events) o.mapper = std::make_shared<eventsourced::default_event_mapper>();
    return o;
  }

  const workload& work_;
  const bool with_events_;
  std::shared_ptr<eventsourced::store> store_;
  eventsourced::collection<player> players_;
};

// ---------------------------------------------------------------------------------------------
// Baseline: the same transaction written by hand with the SQLite C API.

class raw_connection {
 public:
  raw_connection(const std::string& path, sqlite_synchronous sync) {
    // NOMUTEX: each connection is used by one thread, as the library's are.
    check(
        sqlite3_open_v2(path.c_str(), &db_,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr),
        "open");
    sqlite3_busy_timeout(db_, 5000);  // the library's default busy_timeout
    exec("PRAGMA journal_mode=WAL");
    exec(sync == sqlite_synchronous::full ? "PRAGMA synchronous=FULL"
                                          : "PRAGMA synchronous=NORMAL");
    exec(
        "CREATE TABLE IF NOT EXISTS documents (collection TEXT NOT NULL, id TEXT NOT NULL, "
        "version INTEGER NOT NULL, body TEXT, PRIMARY KEY (collection, id)) WITHOUT ROWID");
    begin_ = prepare("BEGIN IMMEDIATE");
    select_ = prepare("SELECT version, body FROM documents WHERE collection = ?1 AND id = ?2");
    update_ = prepare(
        "UPDATE documents SET body = ?1, version = version + 1 "
        "WHERE collection = ?2 AND id = ?3 AND version = ?4");
    commit_ = prepare("COMMIT");
  }
  ~raw_connection() {
    for (sqlite3_stmt* s : {begin_, select_, update_, commit_}) sqlite3_finalize(s);
    sqlite3_close_v2(db_);
  }
  raw_connection(const raw_connection&) = delete;
  raw_connection& operator=(const raw_connection&) = delete;

  void insert(const player& p) {
    player stored = p;
    stored.version = 1;
    sqlite3_stmt* s =
        prepare("INSERT INTO documents (collection, id, version, body) VALUES (?1, ?2, 1, ?3)");
    const std::string body = json(stored).dump();
    bind_text(s, 1, kCollection);
    bind_text(s, 2, p.id);
    bind_text(s, 3, body);
    const int rc = sqlite3_step(s);
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE) check(rc, "insert");
  }

  // One read-modify-write transaction: the work find_one_and_update does for a user.
  void add_gold(const std::string& id, std::int64_t amount) {
    step_done(begin_, "BEGIN IMMEDIATE");
    bind_text(select_, 1, kCollection);
    bind_text(select_, 2, id);
    select_row(id);
    const std::int64_t version = sqlite3_column_int64(select_, 0);
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(select_, 1));
    player p = json::parse(text, text + sqlite3_column_bytes(select_, 1)).get<player>();
    sqlite3_reset(select_);
    p.gold += amount;
    p.version = version + 1;
    const std::string body = json(p).dump();
    bind_text(update_, 1, body);
    bind_text(update_, 2, kCollection);
    bind_text(update_, 3, id);
    sqlite3_bind_int64(update_, 4, version);
    step_done(update_, "update");
    if (sqlite3_changes(db_) != 1) throw std::runtime_error("baseline: version check failed");
    step_done(commit_, "COMMIT");
  }

  std::int64_t gold_of(const std::string& id) {
    bind_text(select_, 1, kCollection);
    bind_text(select_, 2, id);
    select_row(id);
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(select_, 1));
    const std::int64_t gold = json::parse(text).at("gold").get<std::int64_t>();
    sqlite3_reset(select_);
    return gold;
  }

 private:
  // Steps select_ (already bound) onto the document's row.
  void select_row(const std::string& id) {
    const int rc = sqlite3_step(select_);
    if (rc == SQLITE_ROW) return;
    sqlite3_reset(select_);
    if (sqlite3_get_autocommit(db_) == 0) exec("ROLLBACK");
    if (rc == SQLITE_DONE) throw std::runtime_error("baseline: no document " + id);
    check(rc, "select");
  }
  void check(int rc, const char* what) const {
    if (rc != SQLITE_OK) {
      throw std::runtime_error(std::string("baseline: ") + what + ": " + sqlite3_errmsg(db_));
    }
  }
  void exec(const char* sql) { check(sqlite3_exec(db_, sql, nullptr, nullptr, nullptr), sql); }
  sqlite3_stmt* prepare(const char* sql) {
    sqlite3_stmt* s = nullptr;
    check(sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr), sql);
    return s;
  }
  static void bind_text(sqlite3_stmt* s, int index, std::string_view text) {
    sqlite3_bind_text64(s, index, text.data(), text.size(), SQLITE_STATIC, SQLITE_UTF8);
  }
  void step_done(sqlite3_stmt* s, const char* what) {
    const int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) {
      if (sqlite3_get_autocommit(db_) == 0) exec("ROLLBACK");
      check(rc, what);
    }
  }

  sqlite3* db_ = nullptr;
  sqlite3_stmt* begin_ = nullptr;
  sqlite3_stmt* select_ = nullptr;
  sqlite3_stmt* update_ = nullptr;
  sqlite3_stmt* commit_ = nullptr;
};

class baseline_side {
 public:
  baseline_side(const workload& w, sqlite_synchronous sync, const std::string& path) : work_(w) {
    for (int i = 0; i < w.threads; ++i) {
      connections_.push_back(std::make_unique<raw_connection>(path, sync));
    }
    for (const std::string& id : w.documents()) connections_[0]->insert(make_player(id));
  }

  bool operator()(int thread, thread_counters& counters) {
    ++counters.attempts;
    connections_[static_cast<std::size_t>(thread)]->add_gold(work_.document_for(thread), 1);
    return true;
  }

  void check(std::uint64_t ops) {
    std::int64_t added = 0;
    for (const std::string& id : work_.documents()) {
      added += connections_[0]->gold_of(id) - kInitialGold;
    }
    check_no_lost_update(added, ops, "baseline");
  }

 private:
  const workload& work_;
  std::vector<std::unique_ptr<raw_connection>> connections_;  // one per thread
};

// ---------------------------------------------------------------------------------------------
// Comparisons.

struct comparison {
  std::string name;  // without the _sqlite_<synchronous> suffix
  std::string description;
  workload work;
  // Ours records each write's event; the baseline is the same store writing without events
  // (the cost of invariant 2) instead of hand-written SQL.
  bool events_vs_no_events = false;
  // Ours checks JSON limits, the baseline is the same store with the checks switched off; runs
  // at synchronous=NORMAL only, named without the suffix.
  bool json_checks_vs_none = false;
  // Measured time: this many times EVENTSOURCED_BENCH_SECONDS. A difference of about 1% (the
  // JSON checks) needs longer than the default to stand out of the turn-to-turn noise of ±10%.
  double time_scale = 1;
};

// The two sides of json_checks_vs_none: one store (one file, one cache), its process-wide checks
// switched on for ours and off for the baseline before each operation. The sides take turns
// (never run at once), so each operation runs as its side says.
struct json_checks_store {
  ours_side& store;
  std::uint64_t ops_reported = 0;
  int sides_reported = 0;
};
struct json_checks_side {
  json_checks_store& shared;
  bool checks;
  bool operator()(int thread, thread_counters& counters) {
    eventsourced::engine_detail::set_json_checks_for_benchmark(checks);
    return shared.store(thread, counters);
  }
  // No update lost: checked once both sides have said how many increments they made.
  void check(std::uint64_t ops) {
    eventsourced::engine_detail::set_json_checks_for_benchmark(true);
    shared.ops_reported += ops;
    if (++shared.sides_reported == 2) shared.store.check(shared.ops_reported);
  }
};

// Retries, operations that gave up, and how evenly the threads shared the work.
std::string describe(const run_stats& s, const workload& w) {
  char text[200];
  int n = std::snprintf(text, sizeof text, "%.0f ops/s", s.ops_per_second());
  auto more = [&](auto... args) {
    n += std::snprintf(text + n, sizeof text - static_cast<std::size_t>(n), args...);
  };
  if (w.one_document) more(", retries/op %.3f", s.retries_per_op());
  if (w.threads > 1) more(", slowest thread did %.0f%% of ops", 100 * s.slowest_thread_share());
  if (s.failures > 0) {
    more(", %llu ops gave up (conflict_error)", static_cast<unsigned long long>(s.failures));
  }
  return text;
}

void run_comparison(const comparison& c, sqlite_synchronous sync, timing t, scratch_dir& scratch) {
  t.measured *= c.time_scale;
  const std::string name =
      c.json_checks_vs_none ? c.name : c.name + "_sqlite_" + synchronous_name(sync);
  std::printf("== %s: %s; WAL, synchronous=%s; %.1f s each, in turns of %.0f ms\n", name.c_str(),
              c.description.c_str(), synchronous_name(sync), t.measured.count(),
              t.slice.count() * 1000);
  const std::string ours_path = scratch.fresh_database();
  const std::string baseline_path = scratch.fresh_database();
  const auto measure = [&](auto& ours, auto& baseline) {
    const turns result = take_turns(c.work.threads, t, ours, baseline);
    ours.check(result.ours_ops_all);
    baseline.check(result.baseline_ops_all);

    std::printf("  baseline %s\n", describe(result.baseline, c.work).c_str());
    std::printf("  ours     %s\n", describe(result.ours, c.work).c_str());
    std::printf("  ratio per turn: p10 %.3f  median %.3f  p90 %.3f\n",
                percentile(result.ratios, 0.1), percentile(result.ratios, 0.5),
                percentile(result.ratios, 0.9));
    if (c.work.one_document) std::printf("retries_per_op=%.3f\n", result.ours.retries_per_op());
    std::printf("RESULT name=%s ours=%.0f baseline=%.0f ratio=%.3f\n", name.c_str(),
                result.ours.ops_per_second(), result.baseline.ops_per_second(),
                result.ours.ops_per_second() / result.baseline.ops_per_second());
    std::fflush(stdout);
  };
  if (c.json_checks_vs_none) {
    ours_side store(c.work, sync, ours_path);
    json_checks_store shared{store};
    json_checks_side ours{shared, true};
    json_checks_side baseline{shared, false};
    measure(ours, baseline);
  } else if (c.events_vs_no_events) {
    ours_side ours(c.work, sync, ours_path, /*with_events=*/true);
    ours_side baseline(c.work, sync, baseline_path, /*with_events=*/false);
    measure(ours, baseline);
  } else {
    ours_side ours(c.work, sync, ours_path);
    baseline_side baseline(c.work, sync, baseline_path);
    measure(ours, baseline);
  }
  scratch_dir::remove_database(ours_path);
  scratch_dir::remove_database(baseline_path);
}

timing timing_from_environment() {
  timing t;
  if (const char* seconds = std::getenv("EVENTSOURCED_BENCH_SECONDS")) {
    t.measured = std::chrono::duration<double>(std::stod(seconds));
  }
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const timing t = timing_from_environment();
    const std::size_t document_bytes = json(make_player("p0")).dump().size();
    const std::string doc = std::to_string(document_bytes) + "-byte document";
    const std::vector<comparison> comparisons = {
        {"find_one_and_update", "1 thread, +1 gold per op on one " + doc, {1, false}},
        {"two_threads_distinct_docs",
         "2 threads, each +1 gold per op on its own " + doc,
         {2, false}},
        {"two_threads_one_doc",
         "2 threads, +1 gold per op on one shared " + doc +
             " (ours: optimistic with retries; baseline: BEGIN IMMEDIATE queues on the lock)",
         {2, true}},
        {"write_with_event_vs_without",
         "1 thread, +1 gold per op on one " + doc +
             "; ours records its event (default mapper) in the commit, baseline: the same "
             "store without a mapper",
         {1, false},
         true},
        {"depth_limit_overhead_find_one_and_update",
         "1 thread, +1 gold per op on one " + doc +
             "; ours checks JSON limits, baseline: the same store with the checks off",
         {1, false},
         false,
         true,
         5},
    };
    const std::vector<std::string_view> filters(argv + 1, argv + argc);
    scratch_dir scratch;
    for (sqlite_synchronous sync : {sqlite_synchronous::normal, sqlite_synchronous::full}) {
      for (const comparison& c : comparisons) {
        if (c.json_checks_vs_none && sync != sqlite_synchronous::normal) continue;
        const std::string name =
            c.json_checks_vs_none ? c.name : c.name + "_sqlite_" + synchronous_name(sync);
        const bool wanted =
            filters.empty() || std::any_of(filters.begin(), filters.end(), [&](std::string_view f) {
              return name.find(f) != std::string::npos;
            });
        if (wanted) run_comparison(c, sync, t, scratch);
      }
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "storage_bench: %s\n", e.what());
    return 1;
  }
}
