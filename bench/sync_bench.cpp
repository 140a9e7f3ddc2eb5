// Event sync (event_sync_storage) on SQLite: catching a client up.
//
//   sync_missing_events_long_vs_short_history
//       get_missing_events for a client missing the last 10 events of a document, on a document
//       with 1,000,000 events of history (ours) against one with 10 (baseline: a client at
//       version 0, missing all 10). Both documents are in one store on one SQLite file
//       (synchronous=NORMAL, the default options: snapshot_interval 100, max_missing_events 100),
//       so only the history differs; ratio ~1 means the cost does not grow with history (the
//       header promises it grows with what is missing). Ours reads 11 events (the first is the
//       client's own version, read to tell a state from the future), the baseline 10. Each call
//       must return exactly the 10 missing events, no snapshot (checked before timing).
//       Rate: calls per second.
//       Building the long history. Through event_sync_storage every write reads the base clock,
//       reads the document, diffs and commits: the bench writes kSampleWrites documents that way
//       first and prints the rate and what 1,000,000 would take. The long history is instead
//       written with one engine commit per version, each the document put at that version and
//       its sync event exactly as sync_event_mapper makes it (the mapper itself is called, and
//       the store's "document" metadata member added as store::commit_writes adds it), so the
//       file holds what event_sync_storage would have written, minus the reads. The engine gives
//       a document its version one commit at a time, so the document cannot be batched (a
//       commit of 1,000 events with one document write would leave the document at version
//       1,000 and its stream at 1,000,000, a store event_sync_storage refuses). The last
//       2 * snapshot_interval writes go through event_sync_storage itself, so the newest
//       snapshots and events are the library's own; get_missing_events, the timed call, reads
//       only the stream.
//   sync_catch_up_edits_per_mb_patches_vs_whole_document
//       A ~10 KB game document (profile, 70-item inventory, stats, quests) and 100 small edits
//       (gold += n, one item's count, one field set), written through event_sync_storage. Ours:
//       a client at the document's first version catches up with get_missing_events; the bytes
//       it receives are the serialized `data` of each sync event (op, version, json_patch,
//       client_id, vector_clock), the json_patch alone is printed too. Baseline: the server sends
//       the whole document (serialized) after each edit. The client's copy must equal the
//       server's (checked). Sizes are printed as edits per MB (10^6 bytes) so that, as for rates,
//       lower is worse and ratio >= 1 means patches are smaller; ratio = whole-document bytes /
//       sync-event bytes. Deterministic: no timing, the same figures every run.
//
// Usage: eventsourced_sync_bench [name-substring...]   (no argument: every comparison)
// Environment: EVENTSOURCED_BENCH_SECONDS (measured seconds per side, default 3);
//   EVENTSOURCED_SYNC_BENCH_HISTORY (events of the long history, default 1000000; smaller for a
//   quick run).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
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
using eventsourced_bench::print_result;
using eventsourced_bench::scratch_dir;
using eventsourced_bench::take_turns;
using eventsourced_bench::thread_counters;
using eventsourced_bench::timing;
using eventsourced_bench::turns;
using steady = std::chrono::steady_clock;

constexpr std::string_view kCollection = "games";
constexpr std::int64_t kMissing = 10;
constexpr std::int64_t kSampleWrites = 2000;

double seconds_since(steady::time_point start) {
  return std::chrono::duration<double>(steady::now() - start).count();
}

// The n-th body of a small game document: gold and experience grow by turns.
json small_game(const std::string& id, std::int64_t n) {
  return {{"id", id}, {"gold", n * 3}, {"experience", n / 2}, {"zone", "harbour"}};
}

eventsourced::document_collection::edit_function next_small_game(const std::string& id) {
  return [id](const json& current) {
    return small_game(id, current.at("gold").get<std::int64_t>() / 3 + 1);
  };
}

// Writes versions 1..count of `id` through event_sync_storage.
void write_through_sync(eventsourced::event_sync_storage& sync, const std::string& id,
                        std::int64_t count) {
  if (count < 1) return;
  if (!sync.find_one(kCollection, id)) {
    sync.find_one_and_upsert(kCollection, small_game(id, 0));
    --count;
  }
  for (std::int64_t i = 0; i < count; ++i) {
    sync.find_one_and_update(kCollection, id, next_small_game(id));
  }
}

// Writes versions 1..count of `id` with one engine commit each (see the header comment): the
// document put at that version and the sync event sync_event_mapper makes for it, with the
// "document" metadata member store::commit_writes adds. The client is the store's default one.
void write_through_engine(eventsourced::engine& engine, const std::string& client,
                          const std::string& id, std::int64_t count) {
  const eventsourced::sync_event_mapper mapper;
  const eventsourced::stream_ref stream = eventsourced::sync_stream(kCollection, id);
  json before = nullptr;
  for (std::int64_t v = 1; v <= count; ++v) {
    json after = small_game(id, v - 1);
    after["version"] = v;  // the store stamps the version field before the commit
    const eventsourced::diff d = eventsourced::make_diff(before, after, v);
    const json metadata = {{std::string(eventsourced::kSyncMetadataKey),
                            {{"client_id", client},
                             {"base_version", v - 1},
                             {"base_clock", v == 1 ? json::object() : json{{client, v - 1}}}}}};
    std::vector<eventsourced::mapped_event> mapped =
        mapper.map(eventsourced::document_change{kCollection, id, before, after, d, metadata});
    check(mapped.size() == 1,
          "sync_event_mapper made " + std::to_string(mapped.size()) + " events for one write");
    eventsourced::new_event& e = mapped.front().event;
    e.metadata[std::string(eventsourced::kDocumentKey)] = {
        {"collection", kCollection}, {"id", id}, {"version", v}};
    eventsourced::commit_request request;
    request.version_field = "version";
    request.writes.push_back(eventsourced::document_write{.collection = std::string(kCollection),
                                                          .id = id,
                                                          .expected_version = v - 1,
                                                          .op = eventsourced::write_op::put,
                                                          .body = after});
    request.appends.push_back(eventsourced::stream_append{
        .stream = stream, .expected_version = v - 1, .events = {std::move(e)}});
    engine.commit(request);
    before = std::move(after);
  }
}

// ---------------------------------------------------------------------------------------------
// sync_missing_events_long_vs_short_history

std::int64_t history_length() {
  const char* value = std::getenv("EVENTSOURCED_SYNC_BENCH_HISTORY");
  const std::int64_t n = value ? std::stoll(value) : 1'000'000;
  check(n >= 4 * 100 + kMissing, "EVENTSOURCED_SYNC_BENCH_HISTORY must be at least 410");
  return n;
}

// Each call must give exactly the events after `from` up to `head`, and no snapshot.
bool missing_ok(const eventsourced::sync_batch& batch, std::int64_t from, std::int64_t head) {
  return !batch.snapshot && batch.version == head &&
         batch.events.size() == static_cast<std::size_t>(head - from) &&
         batch.events.front().stream_version == from + 1;
}

void sync_missing_events_long_vs_short_history(const timing& t, scratch_dir& dir) {
  const std::int64_t history = history_length();
  const std::string path = dir.fresh_database();
  {
    auto sync = eventsourced::event_sync_storage::open("sqlite:" + path);
    const std::int64_t interval = sync->options().snapshot_interval;

    auto start = steady::now();
    write_through_sync(*sync, "sample", kSampleWrites);
    const double sync_rate = static_cast<double>(kSampleWrites) / seconds_since(start);

    write_through_sync(*sync, "short", kMissing);

    start = steady::now();
    const std::int64_t by_engine = history - 2 * interval;
    write_through_engine(sync->store()->engine(), sync->options().client_id, "long", by_engine);
    const double engine_seconds = seconds_since(start);
    start = steady::now();
    write_through_sync(*sync, "long", 2 * interval);
    const double last_seconds = seconds_since(start);
    check(sync->vector_clock(kCollection, "long").at(sync->options().client_id) == history &&
              (*sync->find_one(kCollection, "long"))["version"] == history,
          "the long history does not end at version " + std::to_string(history));
    const auto snapshot = sync->latest_snapshot(kCollection, "long");
    check(snapshot && snapshot->version == history - history % interval,
          "no snapshot at the long history's last interval");

    std::printf("== sync_missing_events_long_vs_short_history: SQLite file, synchronous=NORMAL\n");
    std::printf(
        "  writes through event_sync_storage: %.0f/s (%lld writes of a small document): "
        "%lld would take %.0f s\n",
        sync_rate, static_cast<long long>(kSampleWrites), static_cast<long long>(history),
        static_cast<double>(history) / sync_rate);
    std::printf(
        "  long history built: %lld versions by engine commits in %.1f s (%.0f/s), "
        "the last %lld through event_sync_storage in %.2f s\n",
        static_cast<long long>(by_engine), engine_seconds,
        static_cast<double>(by_engine) / engine_seconds, static_cast<long long>(2 * interval),
        last_seconds);

    const std::int64_t long_from = history - kMissing;
    auto ours = [&](int, thread_counters&) {
      return missing_ok(sync->get_missing_events(kCollection, "long", {.version = long_from}),
                        long_from, history);
    };
    auto baseline = [&](int, thread_counters&) {
      return missing_ok(sync->get_missing_events(kCollection, "short", {.version = 0}), 0,
                        kMissing);
    };
    thread_counters unused;
    check(ours(0, unused) && baseline(0, unused),
          "get_missing_events did not return exactly the 10 missing events");
    const turns result = take_turns(1, t, ours, baseline);
    check(result.ours.failures == 0 && result.baseline.failures == 0,
          "get_missing_events returned something else than the 10 missing events");
    const double ours_rate = result.ours.ops_per_second();
    const double baseline_rate = result.baseline.ops_per_second();
    std::printf("  ours     %7.1f us/call (%lld events of history, client at %lld)\n",
                1e6 / ours_rate, static_cast<long long>(history),
                static_cast<long long>(long_from));
    std::printf("  baseline %7.1f us/call (%lld events of history, client at 0)\n",
                1e6 / baseline_rate, static_cast<long long>(kMissing));
    print_result("sync_missing_events_long_vs_short_history", ours_rate, baseline_rate);
  }
  scratch_dir::remove_database(path);
}

// ---------------------------------------------------------------------------------------------
// sync_catch_up_edits_per_mb_patches_vs_whole_document

constexpr int kItems = 70;
constexpr int kEdits = 100;

// A player's game state as a game server keeps it: ~10 KB serialized.
json game_state(const std::string& id) {
  static const char* const kNames[] = {"Iron Sword",    "Healing Potion", "Oak Shield",
                                       "Leather Boots", "Mana Crystal",   "Silver Ring",
                                       "Fire Scroll",   "Wolf Pelt",      "Torch"};
  static const char* const kTypes[] = {"weapon", "consumable", "armor", "material", "trinket"};
  static const char* const kRarities[] = {"common", "uncommon", "rare", "epic"};
  json inventory = json::array();
  for (int i = 0; i < kItems; ++i) {
    json item = {{"item_id", "itm-" + std::to_string(10'000 + i * 37)},
                 {"name", kNames[i % 9]},
                 {"type", kTypes[i % 5]},
                 {"rarity", kRarities[i % 4]},
                 {"count", 1 + i % 12},
                 {"durability", 100 - i % 40},
                 {"equipped", i < 6}};
    if (i % 3 == 0) item["enchantments"] = {{{"kind", "sharpness"}, {"level", 1 + i % 5}}};
    inventory.push_back(std::move(item));
  }
  return {{"id", id},
          {"profile",
           {{"name", "Annika Stormborn"},
            {"level", 37},
            {"experience", 1'234'567},
            {"guild", "Night Watch"},
            {"title", "Dragonslayer"},
            {"created_at", "2023-11-02T18:45:12Z"},
            {"last_login", "2024-05-17T07:12:40Z"},
            {"settings", {{"language", "en"}, {"music_volume", 0.6}, {"show_tutorial", false}}}}},
          {"gold", 15'200},
          {"gems", 42},
          {"position", {{"zone", "harbour"}, {"x", 1204.5}, {"y", -88.25}}},
          {"inventory", std::move(inventory)},
          {"stats",
           {{"strength", 31},
            {"agility", 24},
            {"intellect", 18},
            {"stamina", 40},
            {"monsters_defeated", 5821},
            {"quests_completed", 212},
            {"deaths", 77}}},
          {"quests",
           {{{"quest_id", "q-101"}, {"state", "active"}, {"progress", 3}, {"goal", 10}},
            {{"quest_id", "q-117"}, {"state", "active"}, {"progress", 0}, {"goal", 1}},
            {{"quest_id", "q-090"}, {"state", "done"}, {"progress", 5}, {"goal", 5}}}}};
}

// The i-th small edit: gold, an item's count, or one field, by turns.
json edit_game(json game, int i) {
  switch (i % 3) {
    case 0:
      game["gold"] = game["gold"].get<std::int64_t>() + 5 + i % 50;
      break;
    case 1: {
      json& count = game["inventory"][static_cast<std::size_t>((i * 7) % kItems)]["count"];
      count = count.get<int>() + (i % 2 == 0 ? 1 : -1);
      break;
    }
    default:
      game["position"]["x"] = 1204.5 + i;
      game["profile"]["last_login"] = "2024-05-17T07:" + std::to_string(10 + i % 50) + ":00Z";
      break;
  }
  return game;
}

void sync_catch_up_edits_per_mb_patches_vs_whole_document() {
  eventsourced::sync_options options;
  options.max_missing_events = kEdits;  // no snapshot: the client gets every edit's event
  auto sync = eventsourced::event_sync_storage::wrap(eventsourced::make_memory_engine(), options);
  const std::string id = "p1";
  sync->find_one_and_upsert(kCollection, game_state(id));
  const json first = *sync->find_one(kCollection, id);
  const std::size_t document_bytes = first.dump().size();
  check(document_bytes >= 8'000 && document_bytes <= 12'000,
        "the game document is " + std::to_string(document_bytes) + " bytes, not ~10 KB");

  std::size_t whole_bytes = 0;  // baseline: the whole document after each edit
  for (int i = 0; i < kEdits; ++i) {
    auto r = sync->find_one_and_update(kCollection, id,
                                       [i](const json& current) { return edit_game(current, i); });
    check(r.diff.has_changes, "edit " + std::to_string(i) + " changed nothing");
    whole_bytes += r.document.dump().size();
  }

  const std::int64_t client_version = first["version"].get<std::int64_t>();
  const eventsourced::sync_batch batch =
      sync->get_missing_events(kCollection, id, {.version = client_version});
  check(!batch.snapshot && batch.events.size() == static_cast<std::size_t>(kEdits),
        "the client did not get exactly the 100 edits' events");
  std::size_t data_bytes = 0;
  std::size_t patch_bytes = 0;
  json client = first;
  for (const auto& e : batch.events) {
    data_bytes += e.data.dump().size();
    patch_bytes += e.data.at("json_patch").dump().size();
    client = client.patch(e.data.at("json_patch"));
  }
  check(client == *sync->find_one(kCollection, id),
        "the client's copy differs from the server's after the patches");

  const double mb = 1e6;
  std::printf(
      "== sync_catch_up_edits_per_mb_patches_vs_whole_document: a %zu-byte document, %d edits\n",
      document_bytes, kEdits);
  std::printf(
      "  ours     %8zu bytes: sync event data (%.0f per edit; json_patch alone %zu, %.0f)\n",
      data_bytes, static_cast<double>(data_bytes) / kEdits, patch_bytes,
      static_cast<double>(patch_bytes) / kEdits);
  std::printf("  baseline %8zu bytes: the whole document after each edit (%.0f per edit)\n",
              whole_bytes, static_cast<double>(whole_bytes) / kEdits);
  print_result("sync_catch_up_edits_per_mb_patches_vs_whole_document",
               kEdits * mb / static_cast<double>(data_bytes),
               kEdits * mb / static_cast<double>(whole_bytes));
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
    if (wanted("sync_missing_events_long_vs_short_history")) {
      sync_missing_events_long_vs_short_history(t, dir);
    }
    if (wanted("sync_catch_up_edits_per_mb_patches_vs_whole_document")) {
      sync_catch_up_edits_per_mb_patches_vs_whole_document();
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "eventsourced_sync_bench: %s\n", e.what());
    return 1;
  }
}
