// The CQRS layer (aggregates, repository, commands) on SQLite against the same work done with
// less of the library.
//
//   aggregate_load_snapshot_vs_replay
//       Loading one player aggregate whose stream holds 10,000 events (SQLite file,
//       synchronous=NORMAL). Ours: repository::load with snapshot_every = 100, which restores the
//       latest snapshot (taken at version 9,950) and replays the 50 events after it, the average
//       tail for that interval. Baseline: the same repository class without snapshots on the same
//       file, replaying all 10,000 events. Both loads must give the same state (checked before
//       timing) and the snapshot must be in _es_snapshots (checked, or the benchmark fails).
//       Rate: loads per second.
//   commands_vs_direct_appends
//       Commands per second through dispatcher + aggregate_handler<player> + repository with the
//       idempotent save (every command a fresh id, recorded in _es_commands in the events'
//       commit), against the same events (same type, data and correlation/causation metadata)
//       appended directly with engine::commit: one stream_append per event with the expected
//       version kept in memory, no aggregate, no load, no command record, on its own SQLite file
//       with the same settings (synchronous=NORMAL). 100 players, each stream starting with 50
//       events, commands round-robin over them (EarnGold / GainExperience), 1 thread; ours uses
//       the repository's defaults: its in-memory cache of aggregate states (cache_capacity 1024,
//       more than the 100 players) restores each player's last state and reads only the events
//       after it (none: nobody else writes), no stored snapshots. Afterwards (not part of the
//       RESULT) a breakdown of one command's time by phase (find_command, load, handler, save
//       with and without the command record) against one direct commit.
//   commands_not_idempotent_vs_direct_appends
//       The same with aggregate_handler_options::idempotent = false: no find_command lookup and
//       no _es_commands record: what idempotency costs.
//   commands_without_cache_vs_direct_appends
//       The same with the cache off and snapshot_every = 20: every load reads the stored
//       snapshot and replays up to 19 events after it, and every 20th save of an aggregate writes
//       a snapshot in a second commit. Shows what the cache saves.
//
// Ours and the baseline take turns in slices (harness.hpp), so machine noise hits both alike.
// Each comparison ends with
//   RESULT name=<name> ours=<ops/s> baseline=<ops/s> ratio=<ours/baseline>
//
// Usage: eventsourced_cqrs_bench [name-substring...]   (no argument: every comparison)
// Environment: EVENTSOURCED_BENCH_SECONDS (measured seconds per side and comparison, default 3).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include <eventsourced/eventsourced.hpp>

#include "harness.hpp"

namespace {

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

double micros(steady::duration d) {
  return std::chrono::duration<double, std::micro>(d).count();
}

// ---------------------------------------------------------------------------------------------
// The aggregate: a game player earning gold and experience, levelling up.

constexpr std::string_view kPlayerType = "player";
const char* const kSources[] = {"quest", "monster", "trade", "daily_reward", "achievement"};

class player final : public eventsourced::aggregate_root {
 public:
  explicit player(std::string id) : aggregate_root(std::string(kPlayerType), std::move(id)) {
    on("PlayerCreated", [this](const eventsourced::event& e) {
      name_ = e.data.at("name").get<std::string>();
      level_ = 1;
    });
    on("GoldEarned", [this](const eventsourced::event& e) {
      const auto amount = e.data.at("amount").get<std::int64_t>();
      gold_ += amount;
      gold_by_source_[e.data.at("source").get<std::string>()] += amount;
    });
    on("ExperienceGained", [this](const eventsourced::event& e) {
      experience_ += e.data.at("amount").get<std::int64_t>();
      while (experience_ >= next_level_at()) ++level_;
    });
  }

  void create(const std::string& name, const json& metadata = nullptr) {
    if (version() != 0) throw eventsourced::invalid_argument_error("player exists");
    raise("PlayerCreated", {{"name", name}}, metadata);
  }
  void earn_gold(std::int64_t amount, const std::string& source, const json& metadata = nullptr) {
    require_created(amount);
    raise("GoldEarned", gold_event(amount, source), metadata);
  }
  void gain_experience(std::int64_t amount, const std::string& source,
                       const json& metadata = nullptr) {
    require_created(amount);
    raise("ExperienceGained", experience_event(amount, source), metadata);
  }

  static json gold_event(std::int64_t amount, const std::string& source) {
    return {{"amount", amount}, {"source", source}};
  }
  static json experience_event(std::int64_t amount, const std::string& source) {
    return {{"amount", amount}, {"source", source}};
  }

  std::optional<json> snapshot() const override {
    return json{{"name", name_},
                {"gold", gold_},
                {"experience", experience_},
                {"level", level_},
                {"gold_by_source", gold_by_source_}};
  }
  void restore(const json& state) override {
    name_ = state.at("name").get<std::string>();
    gold_ = state.at("gold").get<std::int64_t>();
    experience_ = state.at("experience").get<std::int64_t>();
    level_ = state.at("level").get<int>();
    gold_by_source_ = state.at("gold_by_source").get<std::map<std::string, std::int64_t>>();
  }

  std::int64_t gold() const { return gold_; }
  std::int64_t experience() const { return experience_; }
  int level() const { return level_; }

 private:
  void require_created(std::int64_t amount) const {
    if (version() == 0) throw eventsourced::invalid_argument_error("no such player: " + id());
    if (amount <= 0) throw eventsourced::invalid_argument_error("amount must be positive");
  }
  std::int64_t next_level_at() const {
    return 100 * static_cast<std::int64_t>(level_) * static_cast<std::int64_t>(level_);
  }

  std::string name_;
  std::int64_t gold_ = 0;
  std::int64_t experience_ = 0;
  int level_ = 0;
  std::map<std::string, std::int64_t> gold_by_source_;
};

// The metadata a command's events carry (causation_metadata of a command with a fresh id).
json fresh_causation_metadata() {
  const std::string id = eventsourced::make_event_id();
  return {{std::string(eventsourced::kCorrelationIdKey), id},
          {std::string(eventsourced::kCausationIdKey), id}};
}

// The n-th change of the workload: alternately gold and experience, amounts and sources varying.
struct change {
  bool gold;
  std::int64_t amount;
  std::string source;
};
change nth_change(std::uint64_t n) {
  return {n % 2 == 0, static_cast<std::int64_t>(1 + n % 17), kSources[n % 5]};
}

void apply_change(player& p, const change& c, const json& metadata = nullptr) {
  if (c.gold) {
    p.earn_gold(c.amount, c.source, metadata);
  } else {
    p.gain_experience(c.amount, c.source, metadata);
  }
}

// ---------------------------------------------------------------------------------------------
// aggregate_load_snapshot_vs_replay

constexpr std::int64_t kLongStream = 10'000;
constexpr std::int64_t kSnapshotEvery = 100;
constexpr std::int64_t kSnapshotAt = kLongStream - kSnapshotEvery / 2;  // 9,950

void aggregate_load_snapshot_vs_replay(const timing& t, scratch_dir& dir) {
  auto engine = eventsourced::open_engine("sqlite:" + dir.fresh_database());
  // No in-memory cache on either side: this compares the stored snapshot with a full replay.
  const eventsourced::repository with_snapshots(
      *engine, {.snapshot_every = kSnapshotEvery, .cache_capacity = 0});
  const eventsourced::repository without_snapshots(*engine, {.cache_capacity = 0});
  const std::string id = "p1";

  // The stream: saves of 100 events ending at 50 mod 100, so the snapshotting repository's last
  // snapshot is at 9,950; the last 50 events are saved by the other one (no snapshot), leaving a
  // tail of 50 to replay.
  {
    auto p = with_snapshots.load<player>(id);
    p->create("Aldric the Unyielding", fresh_causation_metadata());
    std::uint64_t n = 0;
    auto fill_to = [&](std::int64_t version) {
      while (p->version() < version) apply_change(*p, nth_change(n++), fresh_causation_metadata());
    };
    for (std::int64_t v = kSnapshotEvery / 2; v <= kSnapshotAt; v += kSnapshotEvery) {
      fill_to(v);
      with_snapshots.save(*p);
    }
    fill_to(kLongStream);
    without_snapshots.save(*p);
  }

  // The snapshot must be there, at 9,950, or ours would measure a full replay too.
  const auto snapshot =
      engine->get(eventsourced::kSnapshotsCollection, std::string(kPlayerType) + "/" + id);
  check(snapshot.has_value(), "aggregate_load_snapshot_vs_replay: no snapshot was written");
  check(snapshot->body.value("version", std::int64_t{0}) == kSnapshotAt,
        "aggregate_load_snapshot_vs_replay: the snapshot is at version " +
            snapshot->body.value("version", json()).dump() + ", not " +
            std::to_string(kSnapshotAt));

  // Both loads must give the same aggregate.
  {
    const auto a = with_snapshots.load<player>(id);
    const auto b = without_snapshots.load<player>(id);
    check(a->version() == kLongStream && b->version() == kLongStream,
          "aggregate_load_snapshot_vs_replay: loaded versions " + std::to_string(a->version()) +
              " and " + std::to_string(b->version()) + ", expected " + std::to_string(kLongStream));
    check(*a->snapshot() == *b->snapshot(),
          "aggregate_load_snapshot_vs_replay: snapshot+replay gives " + a->snapshot()->dump() +
              " but a full replay gives " + b->snapshot()->dump());
    check(a->level() > 1 && a->gold() > 0, "aggregate_load_snapshot_vs_replay: empty state");
  }

  std::int64_t sink = 0;  // keeps the loads from being optimised away
  auto ours = [&](int, thread_counters&) {
    const auto p = with_snapshots.load<player>(id);
    sink += p->gold();
    return p->version() == kLongStream;
  };
  auto baseline = [&](int, thread_counters&) {
    const auto p = without_snapshots.load<player>(id);
    sink += p->gold();
    return p->version() == kLongStream;
  };
  timing slow = t;
  slow.slice = std::chrono::duration<double>(0.5);  // a full replay takes tens of milliseconds
  const turns result = take_turns(1, slow, ours, baseline);
  check(result.ours.failures == 0 && result.baseline.failures == 0,
        "aggregate_load_snapshot_vs_replay: a load gave the wrong version");
  check(sink != 0, "aggregate_load_snapshot_vs_replay: no gold");

  const double ours_rate = result.ours.ops_per_second();
  const double baseline_rate = result.baseline.ops_per_second();
  std::printf(
      "== aggregate_load_snapshot_vs_replay: one player, %lld events, SQLite file, "
      "synchronous=NORMAL, 1 thread\n",
      static_cast<long long>(kLongStream));
  std::printf("  baseline %8.1f us/load (no snapshots: replays %lld events, pages of 512)\n",
              1e6 / baseline_rate, static_cast<long long>(kLongStream));
  std::printf(
      "  ours     %8.1f us/load (snapshot_every=%lld: snapshot at %lld + replay of %lld "
      "events)\n",
      1e6 / ours_rate, static_cast<long long>(kSnapshotEvery), static_cast<long long>(kSnapshotAt),
      static_cast<long long>(kLongStream - kSnapshotAt));
  print_result("aggregate_load_snapshot_vs_replay", ours_rate, baseline_rate);
}

// ---------------------------------------------------------------------------------------------
// commands_vs_direct_appends

constexpr int kPlayers = 100;
constexpr std::int64_t kInitialEvents = 50;  // per player, before timing

std::string player_id(std::uint64_t n) {
  return "p" + std::to_string(n % kPlayers);
}

// The first kInitialEvents events of every player, written directly (both sides start alike).
void prefill(eventsourced::engine& db) {
  for (int i = 0; i < kPlayers; ++i) {
    eventsourced::commit_request request;
    eventsourced::stream_append append{
        .stream = {std::string(kPlayerType), player_id(static_cast<std::uint64_t>(i))},
        .expected_version = 0};
    append.events.push_back(eventsourced::make_event(
        "PlayerCreated", {{"name", "Player " + std::to_string(i)}}, fresh_causation_metadata()));
    for (std::int64_t v = 2; v <= kInitialEvents; ++v) {
      const change c = nth_change(static_cast<std::uint64_t>(v));
      append.events.push_back(
          eventsourced::make_event(c.gold ? "GoldEarned" : "ExperienceGained",
                                   c.gold ? player::gold_event(c.amount, c.source)
                                          : player::experience_event(c.amount, c.source),
                                   fresh_causation_metadata()));
    }
    request.appends.push_back(std::move(append));
    db.commit(request);
  }
}

json command_payload(const change& c) {
  return {{"amount", c.amount}, {"source", c.source}};
}

// Ours: a dispatcher with one aggregate_handler per command type.
class command_side {
 public:
  command_side(const std::string& path, eventsourced::repository_options options,
               eventsourced::aggregate_handler_options handler_options)
      : engine_(eventsourced::open_engine("sqlite:" + path)),
        repo_(*engine_, std::move(options)),
        idempotent_(handler_options.idempotent) {
    prefill(*engine_);
    const auto read = [](const eventsourced::command& c) {
      return change{c.type == "EarnGold", c.payload.at("amount").get<std::int64_t>(),
                    c.payload.at("source").get<std::string>()};
    };
    dispatcher_.register_handler("EarnGold", eventsourced::aggregate_handler<player>(
                                                 repo_,
                                                 [read](player& p, const eventsourced::command& c) {
                                                   const change ch = read(c);
                                                   p.earn_gold(ch.amount, ch.source);
                                                 },
                                                 handler_options));
    dispatcher_.register_handler("GainExperience",
                                 eventsourced::aggregate_handler<player>(
                                     repo_,
                                     [read](player& p, const eventsourced::command& c) {
                                       const change ch = read(c);
                                       p.gain_experience(ch.amount, ch.source);
                                     },
                                     handler_options));
  }

  static eventsourced::command command_for(std::uint64_t n) {
    const change c = nth_change(n);
    return eventsourced::make_command(c.gold ? "EarnGold" : "GainExperience", player_id(n),
                                      command_payload(c));
  }

  bool operator()(int, thread_counters&) {
    const eventsourced::command_result r = dispatcher_.dispatch(command_for(next_++));
    return !r.duplicate && r.events.size() == 1;
  }

  std::uint64_t commands() const { return next_; }
  eventsourced::engine& engine() { return *engine_; }
  const eventsourced::repository& repo() const { return repo_; }

  // Every command's event is in its stream and every command is recorded once.
  void check_all(std::uint64_t dispatched) {
    std::int64_t events = 0;
    for (int i = 0; i < kPlayers; ++i) {
      events += repo_.load<player>(player_id(static_cast<std::uint64_t>(i)))->version();
    }
    const auto expected = static_cast<std::int64_t>(dispatched) + kPlayers * kInitialEvents;
    check(events == expected, "commands: " + std::to_string(dispatched) +
                                  " commands left streams of " + std::to_string(events) +
                                  " events in all, expected " + std::to_string(expected));
    const std::size_t records = engine_->find(eventsourced::kCommandsCollection, {}).size();
    const std::size_t expected_records = idempotent_ ? dispatched : 0;
    check(records == expected_records, "commands: " + std::to_string(dispatched) +
                                           " commands but " + std::to_string(records) +
                                           " command records");
  }

 private:
  std::unique_ptr<eventsourced::engine> engine_;
  eventsourced::repository repo_;
  eventsourced::dispatcher dispatcher_;
  bool idempotent_;
  std::uint64_t next_ = 0;
};

// Baseline: the same events, appended with engine::commit.
class append_side {
 public:
  explicit append_side(const std::string& path)
      : engine_(eventsourced::open_engine("sqlite:" + path)), versions_(kPlayers, kInitialEvents) {
    prefill(*engine_);
  }

  eventsourced::commit_result append(std::uint64_t n) {
    const change c = nth_change(n);
    std::int64_t& version = versions_[n % kPlayers];
    eventsourced::commit_request request;
    request.appends.push_back(
        {.stream = {std::string(kPlayerType), player_id(n)},
         .expected_version = version,
         .events = {eventsourced::make_event(c.gold ? "GoldEarned" : "ExperienceGained",
                                             command_payload(c), fresh_causation_metadata())}});
    eventsourced::commit_result r = engine_->commit(request);
    ++version;
    return r;
  }

  bool operator()(int, thread_counters&) { return append(next_++).events.size() == 1; }

  std::uint64_t appends() const { return next_; }
  eventsourced::engine& engine() { return *engine_; }

  void check_all(std::uint64_t appended) {
    std::int64_t events = 0;
    for (std::int64_t v : versions_) events += v;
    const auto expected = static_cast<std::int64_t>(appended) + kPlayers * kInitialEvents;
    check(
        events == expected && engine_->read_all(0, static_cast<std::size_t>(expected) + 1).size() ==
                                  static_cast<std::size_t>(expected),
        "direct appends: the log does not hold " + std::to_string(expected) + " events");
  }

 private:
  std::unique_ptr<eventsourced::engine> engine_;
  std::vector<std::int64_t> versions_;
  std::uint64_t next_ = 0;
};

// One command's time by phase, as aggregate_handler spends it, against one direct commit of the
// same event, in the same loop (after the timed run, on the same two files). Commands alternate
// between two ways of handling them; with 100 players round-robin, each player always gets the
// same one:
//   0  aggregate_handler's steps, timed one by one: find_command, load, handler, save(aggregate,
//      command) (with the _es_commands record)
//   1  the same with save(aggregate, causation_metadata(c)): the same events, no record
void breakdown(command_side& ours, append_side& baseline, std::chrono::duration<double> duration) {
  struct phase_sum {
    double find_command = 0, load = 0, handler = 0, save = 0, total = 0, direct = 0,
           stream_length = 0;
    std::uint64_t count = 0;
    std::vector<double> totals, saves;  // per command, for the medians
  };
  phase_sum sums[2];
  std::vector<double> directs;
  const auto& repo = ours.repo();
  std::uint64_t n = ours.commands();
  std::uint64_t m = baseline.appends();
  const auto end = steady::now() + duration;
  for (std::uint64_t i = 0; steady::now() < end; ++i) {
    const int mode = static_cast<int>(i % 2);
    phase_sum& sum = sums[mode];
    const eventsourced::command c = command_side::command_for(n);
    const change ch = nth_change(n++);
    const auto t0 = steady::now();
    check(!repo.find_command(c.id).has_value(), "breakdown: a fresh command id was recorded");
    const auto t1 = steady::now();
    std::unique_ptr<player> p = repo.load<player>(c.aggregate_id);
    const auto t2 = steady::now();
    sum.stream_length += static_cast<double>(p->version());
    apply_change(*p, ch);
    const auto t3 = steady::now();
    if (mode == 1) {
      repo.save(*p, eventsourced::causation_metadata(c));
    } else {
      repo.save(*p, c);
    }
    const auto t4 = steady::now();
    baseline.append(m++);
    const auto t5 = steady::now();
    sum.find_command += micros(t1 - t0);
    sum.load += micros(t2 - t1);
    sum.handler += micros(t3 - t2);
    sum.save += micros(t4 - t3);
    sum.total += micros(t4 - t0);
    sum.direct += micros(t5 - t4);
    sum.totals.push_back(micros(t4 - t0));
    sum.saves.push_back(micros(t4 - t3));
    directs.push_back(micros(t5 - t4));
    ++sum.count;
  }
  const auto mean = [&](int mode, double phase_sum::*field) {
    return sums[mode].*field / static_cast<double>(std::max<std::uint64_t>(sums[mode].count, 1));
  };
  const double direct = std::accumulate(directs.begin(), directs.end(), 0.0) /
                        static_cast<double>(std::max<std::size_t>(directs.size(), 1));
  const double direct_p50 = percentile(directs, 0.5);
  const double pct = 100.0 / mean(0, &phase_sum::total);
  std::printf(
      "  breakdown of one command (%zu commands in 2 ways, after the run; us, mean; a WAL "
      "checkpoint stalls whichever commit triggers it, so small differences show in the "
      "medians):\n",
      directs.size());
  std::printf("    find_command (_es_commands lookup)          %7.1f  %4.1f%%\n",
              mean(0, &phase_sum::find_command), mean(0, &phase_sum::find_command) * pct);
  std::printf("    load of a stream of %4.0f events             %7.1f  %4.1f%%\n",
              mean(0, &phase_sum::stream_length), mean(0, &phase_sum::load),
              mean(0, &phase_sum::load) * pct);
  std::printf("    handler (raise)                             %7.1f  %4.1f%%\n",
              mean(0, &phase_sum::handler), mean(0, &phase_sum::handler) * pct);
  std::printf("    save with the _es_commands record           %7.1f  %4.1f%%\n",
              mean(0, &phase_sum::save), mean(0, &phase_sum::save) * pct);
  std::printf("    command total                               %7.1f  (median %.1f)\n",
              mean(0, &phase_sum::total), percentile(sums[0].totals, 0.5));
  std::printf(
      "    save of the same events without the record  %7.1f  (the record: %+.1f; medians "
      "%.1f vs %.1f)\n",
      mean(1, &phase_sum::save), mean(0, &phase_sum::save) - mean(1, &phase_sum::save),
      percentile(sums[0].saves, 0.5), percentile(sums[1].saves, 0.5));
  std::printf("    direct commit of the same event (baseline)  %7.1f  (median %.1f)\n", direct,
              direct_p50);
}

void commands_vs_direct_appends(const timing& t, scratch_dir& dir,
                                const eventsourced::repository_options& options,
                                const eventsourced::aggregate_handler_options& handler_options,
                                const std::string& name) {
  const std::string ours_path = dir.fresh_database();
  const std::string baseline_path = dir.fresh_database();
  {
    command_side ours(ours_path, options, handler_options);
    append_side baseline(baseline_path);
    const turns result = take_turns(1, t, ours, baseline);
    check(result.ours.failures == 0, name + ": a command was a duplicate or raised no event");
    check(result.baseline.failures == 0, name + ": a direct append recorded no event");
    ours.check_all(ours.commands());
    baseline.check_all(baseline.appends());

    const double ours_rate = result.ours.ops_per_second();
    const double baseline_rate = result.baseline.ops_per_second();
    std::printf(
        "== %s: %d players, streams of %lld events to begin with, round-robin, 1 thread, SQLite "
        "files, synchronous=NORMAL\n",
        name.c_str(), kPlayers, static_cast<long long>(kInitialEvents));
    std::printf(
        "  baseline %7.1f us/event (engine::commit, one stream_append with the expected version)\n",
        1e6 / baseline_rate);
    std::printf(
        "  ours     %7.1f us/command (dispatcher + aggregate_handler, %s, "
        "snapshot_every=%lld, cache_capacity=%zu); streams ended at %.0f events on average\n",
        1e6 / ours_rate,
        handler_options.idempotent ? "idempotent save" : "idempotent=false: no command record",
        static_cast<long long>(options.snapshot_every), options.cache_capacity,
        static_cast<double>(ours.commands()) / kPlayers + kInitialEvents);
    breakdown(ours, baseline, std::chrono::duration<double>(2.0));
    print_result(name, ours_rate, baseline_rate);
  }
  scratch_dir::remove_database(ours_path);
  scratch_dir::remove_database(baseline_path);
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
    scratch_dir dir;
    if (wanted("aggregate_load_snapshot_vs_replay")) aggregate_load_snapshot_vs_replay(t, dir);
    if (wanted("commands_vs_direct_appends")) {
      commands_vs_direct_appends(t, dir, {}, {}, "commands_vs_direct_appends");
    }
    if (wanted("commands_not_idempotent_vs_direct_appends")) {
      commands_vs_direct_appends(t, dir, {}, {.idempotent = false},
                                 "commands_not_idempotent_vs_direct_appends");
    }
    if (wanted("commands_without_cache_vs_direct_appends")) {
      commands_vs_direct_appends(t, dir, {.snapshot_every = 20, .cache_capacity = 0}, {},
                                 "commands_without_cache_vs_direct_appends");
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "eventsourced_cqrs_bench: %s\n", e.what());
    return 1;
  }
}
