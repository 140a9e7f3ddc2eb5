// The storage layer on PostgreSQL against hand-written libpq code doing the same statements.
//
//   find_one_and_update_with_event    1 thread adds 1 to the gold of a ~1 KB document; the store
//                                     records the write's event (default_event_mapper) in the
//                                     same commit
//   ..._2_writers, ..._8_writers      the same from 2 and 8 threads, each on its own document
//                                     (ours: one store, a pool of 8 connections; baseline: one
//                                     connection per thread)
//   gap_safe_log_head_lock_vs_plain_sequence_8_writers
//                                     what invariant 3 costs: the hand-written baseline with
//                                     positions taken under the log_head row lock (as the engine
//                                     does) against the same with a plain sequence (not gap-safe:
//                                     a reader could miss events). This bounds what the other
//                                     known approach (xid-snapshot visibility, which leaves
//                                     writers unserialised) could gain on the write side.
//
// The baseline is what a careful programmer would write by hand against the same tables, with
// prepared statements and one transaction per increment, running the engine's statements one
// after the other:
//   SELECT version, body (outside the transaction, as the store reads before it edits)
//   parse, convert to the struct, edit, convert back, serialize, JSON Patch + Merge Patch of the
//   change (the event's data, as default_event_mapper records it), a random event id
//   BEGIN; UPDATE documents ... WHERE version = $v RETURNING version;
//   SELECT max(stream_version) of the stream;
//   WITH head AS (UPDATE log_head ... RETURNING position, pg_notify(...)) INSERT the event;
//   COMMIT
// — six round trips. The engine sends BEGIN with the UPDATE and COMMIT with the INSERT (libpq
// pipeline mode): four round trips, and the log_head lock is held for one round trip instead of
// two. With several writers that shorter lock is most of the difference.
// Both sides run on the same server, each in its own schema, taking turns of 100 ms. After each
// comparison the documents must hold exactly the successful increments and the log one event per
// increment, or the benchmark fails. Each comparison ends with
//   RESULT name=postgres_<name> ours=<ops/s> baseline=<ops/s> ratio=<ours/baseline>
//
// Usage: eventsourced_postgres_bench [name-substring...]
// Environment: EVENTSOURCED_TEST_POSTGRES_URI (scripts/services.sh; without it the benchmark says
// "skipped" and exits 0), EVENTSOURCED_BENCH_SECONDS (measured seconds per side, default 3).
#include <libpq-fe.h>
#include <unistd.h>

#include <algorithm>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <eventsourced/engine/postgres.hpp>
#include <eventsourced/eventsourced.hpp>

#include "harness.hpp"

namespace {

using json = nlohmann::json;
using eventsourced_bench::check;
using eventsourced_bench::print_result;
using eventsourced_bench::take_turns;
using eventsourced_bench::thread_counters;
using eventsourced_bench::timing;

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

std::string document_id(int thread) {
  return "p" + std::to_string(thread);
}

eventsourced::postgres_options options_for(const std::string& uri, const std::string& schema) {
  auto o = eventsourced::parse_postgres_uri(uri);
  o.schema = schema;
  return o;
}

// Runs SQL on a fresh connection (setup and cleanup).
void exec_once(const std::string& conninfo, const std::string& sql) {
  PGconn* c = PQconnectdb(conninfo.c_str());
  PQsetNoticeProcessor(
      c, [](void*, const char*) {}, nullptr);
  PGresult* r = PQexec(c, sql.c_str());
  const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
  std::string message = ok ? "" : PQresultErrorMessage(r);
  PQclear(r);
  PQfinish(c);
  if (!ok) throw std::runtime_error("setup SQL failed: " + message);
}

// ---------------------------------------------------------------------------------------------
// Ours: collection<player>::find_one_and_update on a store recording each write's event.

class ours_side {
 public:
  ours_side(const std::string& uri, const std::string& schema, int threads)
      : threads_(threads),
        store_(eventsourced::store::wrap(
            eventsourced::make_postgres_engine(options_for(uri, schema)), options())),
        players_(store_->collection<player>("players")) {
    for (int t = 0; t < threads; ++t) players_.find_one_and_upsert(make_player(document_id(t)));
  }
  ~ours_side() { store_->close(); }

  bool operator()(int thread, thread_counters& counters) {
    players_.find_one_and_update(document_id(thread), [&counters](player p) {
      ++counters.attempts;
      p.gold += 1;
      return p;
    });
    return true;
  }

  void check_totals(std::uint64_t ops) {
    std::int64_t added = 0;
    for (int t = 0; t < threads_; ++t) {
      added += players_.find_one(document_id(t)).value().gold - kInitialGold;
    }
    check(added == static_cast<std::int64_t>(ops), "ours: increments lost or invented");
    const auto events = store_->engine().read_all(0, ops + 1000).size();
    check(events == ops + static_cast<std::size_t>(threads_), "ours: events differ from writes");
  }

 private:
  static eventsourced::store_options options() {
    eventsourced::store_options o;
    o.mapper = std::make_shared<eventsourced::default_event_mapper>();
    return o;
  }

  int threads_;
  std::shared_ptr<eventsourced::store> store_;
  eventsourced::collection<player> players_;
};

// ---------------------------------------------------------------------------------------------
// Baseline: the same statements by hand, one connection per thread.

class baseline_connection {
 public:
  // plain_sequence: positions from a sequence, without the log_head lock (not gap-safe: for
  // measuring what the lock costs).
  baseline_connection(const std::string& conninfo, const std::string& schema,
                      bool plain_sequence = false) {
    conn_ = PQconnectdb(conninfo.c_str());
    if (PQstatus(conn_) != CONNECTION_OK) throw std::runtime_error(PQerrorMessage(conn_));
    const std::string s = "\"" + schema + "\"";
    prepare("get",
            "SELECT version, body::text FROM " + s +
                ".documents WHERE collection = $1::text AND id = $2::text AND body IS NOT NULL");
    prepare("update", "UPDATE " + s +
                          ".documents SET version = version + 1, body = $3::jsonb WHERE "
                          "collection = $1::text AND id = $2::text AND version = $4::bigint "
                          "RETURNING version");
    prepare("head", "SELECT coalesce(max(stream_version), 0) FROM " + s +
                        ".events WHERE stream_type = $1::text AND stream_id = $2::text");
    // The engine's own statement: the position under the log_head row lock, taken in the INSERT
    // (or, for the lock-cost comparison, from a sequence), the notification at COMMIT.
    const std::string position =
        plain_sequence ? "nextval('" + s + ".positions')" : "(SELECT position FROM head)";
    const std::string head_cte =
        plain_sequence ? "WITH head AS (SELECT pg_notify($6::text, ''))"
                       : "WITH head AS (UPDATE " + s +
                             ".log_head SET position = position + 1 RETURNING position, "
                             "pg_notify($6::text, position::text))";
    prepare("insert", head_cte + " INSERT INTO " + s +
                          ".events (position, id, stream_type, stream_id, stream_version, type, "
                          "recorded_at, data, metadata) SELECT " +
                          position +
                          ", $1::text, $2::text, $3::text, $4::bigint, $5::text, now(), $7::json, "
                          "NULL FROM head RETURNING position");
    channel_ = "es_log_" + schema;
  }
  ~baseline_connection() { PQfinish(conn_); }

  // One increment; false when the version check failed.
  bool increment(const std::string& id, std::mt19937_64& random) {
    const auto row = exec("get", {"players", id.c_str()});
    const std::int64_t version = std::stoll(PQgetvalue(row.get(), 0, 0));
    const json before = json::parse(PQgetvalue(row.get(), 0, 1));
    player p = before.get<player>();
    p.gold += 1;
    p.version = version + 1;
    const json after = p;
    const std::string body = after.dump();
    const json data = {{"version", version + 1},
                       {"json_patch", json::diff(before, after)},
                       {"merge_patch", {{"gold", p.gold}, {"version", version + 1}}}};
    char event_id[40];
    std::snprintf(event_id, sizeof event_id, "%016llx%016llx",
                  static_cast<unsigned long long>(random()),
                  static_cast<unsigned long long>(random()));
    exec_simple("BEGIN");
    const std::string expected = std::to_string(version);
    const auto updated = exec("update", {"players", id.c_str(), body.c_str(), expected.c_str()});
    if (PQntuples(updated.get()) != 1) {
      exec_simple("ROLLBACK");
      return false;
    }
    const auto head = exec("head", {"players", id.c_str()});
    const std::string stream_version = std::to_string(std::stoll(PQgetvalue(head.get(), 0, 0)) + 1);
    const std::string data_text = data.dump();
    exec("insert", {event_id, "players", id.c_str(), stream_version.c_str(), "players.updated",
                    channel_.c_str(), data_text.c_str()});
    exec_simple("COMMIT");
    return true;
  }

 private:
  struct result_deleter {
    void operator()(PGresult* r) const { PQclear(r); }
  };
  using result = std::unique_ptr<PGresult, result_deleter>;

  void prepare(const char* name, const std::string& sql) {
    result r(PQprepare(conn_, name, sql.c_str(), 0, nullptr));
    if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
      throw std::runtime_error(PQresultErrorMessage(r.get()));
    }
  }
  result exec(const char* name, std::vector<const char*> values) {
    result r(PQexecPrepared(conn_, name, static_cast<int>(values.size()), values.data(), nullptr,
                            nullptr, 0));
    const auto status = PQresultStatus(r.get());
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      throw std::runtime_error(PQresultErrorMessage(r.get()));
    }
    return r;
  }
  void exec_simple(const char* sql) {
    result r(PQexec(conn_, sql));
    if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
      throw std::runtime_error(PQresultErrorMessage(r.get()));
    }
  }

  PGconn* conn_ = nullptr;
  std::string channel_;
};

class baseline_side {
 public:
  baseline_side(const std::string& uri, const std::string& schema, int threads,
                bool plain_sequence = false)
      : threads_(threads) {
    // The tables: the engine's own DDL, then the documents written the same way.
    auto setup =
        eventsourced::store::wrap(eventsourced::make_postgres_engine(options_for(uri, schema)), {});
    auto players = setup->collection<player>("players");
    for (int t = 0; t < threads; ++t) players.find_one_and_upsert(make_player(document_id(t)));
    setup->close();
    const auto conninfo = options_for(uri, schema).conninfo;
    if (plain_sequence) exec_once(conninfo, "CREATE SEQUENCE \"" + schema + "\".positions");
    for (int t = 0; t < threads; ++t) {
      connections_.push_back(
          std::make_unique<baseline_connection>(conninfo, schema, plain_sequence));
      randoms_.emplace_back(static_cast<std::uint64_t>(t) * 7919 + 17);
    }
    check_store_ =
        eventsourced::store::wrap(eventsourced::make_postgres_engine(options_for(uri, schema)), {});
  }
  ~baseline_side() { check_store_->close(); }

  bool operator()(int thread, thread_counters& counters) {
    ++counters.attempts;
    const auto t = static_cast<std::size_t>(thread);
    return connections_[t]->increment(document_id(thread), randoms_[t]);
  }

  void check_totals(std::uint64_t ops) {
    auto players = check_store_->collection<player>("players");
    std::int64_t added = 0;
    for (int t = 0; t < threads_; ++t) {
      added += players.find_one(document_id(t)).value().gold - kInitialGold;
    }
    check(added == static_cast<std::int64_t>(ops), "baseline: increments lost or invented");
    const auto events = check_store_->engine().read_all(0, ops + 1000).size();
    check(events == ops, "baseline: events differ from writes");
  }

 private:
  int threads_;
  std::vector<std::unique_ptr<baseline_connection>> connections_;
  std::vector<std::mt19937_64> randoms_;
  std::shared_ptr<eventsourced::store> check_store_;
};

// Ours is the library and the baseline hand-written libpq; with lock_cost both are hand-written:
// ours with the log_head lock, the baseline with a plain sequence.
void compare(const std::string& uri, const std::string& name, int threads, const timing& t,
             bool lock_cost = false) {
  const std::string suffix = std::to_string(::getpid());
  const std::string ours_schema = "bench_ours_" + suffix, base_schema = "bench_base_" + suffix;
  const auto conninfo = eventsourced::parse_postgres_uri(uri).conninfo;
  for (const auto& s : {ours_schema, base_schema}) {
    exec_once(conninfo, "DROP SCHEMA IF EXISTS \"" + s + "\" CASCADE");
  }
  if (lock_cost) {
    baseline_side ours(uri, ours_schema, threads);
    baseline_side baseline(uri, base_schema, threads, /*plain_sequence=*/true);
    const auto result = take_turns(threads, t, ours, baseline);
    ours.check_totals(result.ours_ops_all);
    baseline.check_totals(result.baseline_ops_all);
    print_result("postgres_" + name, result.ours.ops_per_second(),
                 result.baseline.ops_per_second());
  } else {
    ours_side ours(uri, ours_schema, threads);
    baseline_side baseline(uri, base_schema, threads);
    const auto result = take_turns(threads, t, ours, baseline);
    ours.check_totals(result.ours_ops_all);
    baseline.check_totals(result.baseline_ops_all);
    std::printf("%s: ours %.0f/s, baseline %.0f/s (pairs: min %.3f, max %.3f)\n", name.c_str(),
                result.ours.ops_per_second(), result.baseline.ops_per_second(),
                *std::min_element(result.ratios.begin(), result.ratios.end()),
                *std::max_element(result.ratios.begin(), result.ratios.end()));
    print_result("postgres_" + name, result.ours.ops_per_second(),
                 result.baseline.ops_per_second());
  }
  for (const auto& s : {ours_schema, base_schema}) {
    exec_once(conninfo, "DROP SCHEMA IF EXISTS \"" + s + "\" CASCADE");
  }
}

}  // namespace

int main(int argc, char** argv) {
  const char* uri = std::getenv("EVENTSOURCED_TEST_POSTGRES_URI");
  if (uri == nullptr || *uri == '\0') {
    std::printf("skipped: EVENTSOURCED_TEST_POSTGRES_URI is not set (scripts/services.sh)\n");
    return 0;
  }
  timing t;
  if (const char* seconds = std::getenv("EVENTSOURCED_BENCH_SECONDS")) {
    t.measured = std::chrono::duration<double>(std::atof(seconds));
  }
  struct comparison {
    std::string name;
    int threads;
    bool lock_cost;
  };
  const std::vector<comparison> comparisons = {
      {"find_one_and_update_with_event", 1, false},
      {"find_one_and_update_with_event_2_writers", 2, false},
      {"find_one_and_update_with_event_8_writers", 8, false},
      {"gap_safe_log_head_lock_vs_plain_sequence_8_writers", 8, true}};
  try {
    for (const auto& c : comparisons) {
      bool wanted = argc < 2;
      for (int i = 1; i < argc; ++i) wanted = wanted || c.name.find(argv[i]) != std::string::npos;
      if (wanted) compare(uri, c.name, c.threads, t, c.lock_cost);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "postgres bench failed: %s\n", e.what());
    return 1;
  }
  return 0;
}
