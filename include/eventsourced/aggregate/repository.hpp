// The repository: loads aggregates by replaying their streams (from the latest snapshot when
// there is one) and saves their uncommitted events.
//
// save() appends an aggregate's uncommitted events as one stream_append whose expected version is
// the aggregate's committed_version(), in one engine commit. So two saves based on the same loaded
// version cannot both succeed: the second throws conflict_error and writes nothing, and no event
// is lost or recorded twice. Reload and re-run the command to retry (aggregate_handler in
// command/aggregate_handler.hpp does that when asked).
//
// Commands. save(aggregate, command) also records the command's id in the reserved collection
// kCommandsCollection in the same commit, with the outcome (the aggregate's version and the
// stream versions of the events it caused). A command id already recorded is not applied again:
// the save returns the earlier outcome (command_result::duplicate) and writes nothing, also when
// two saves of one command race. find_command() looks an id up before running a handler at all.
// Records are kept forever (no pruning yet).
//
// Snapshots. With snapshot_every = N (per aggregate type, or for all), a save that takes an
// aggregate across a multiple of N stores aggregate.snapshot() in kSnapshotsCollection (one
// snapshot per aggregate, the latest) in a second commit after the events' commit. A snapshot is a
// cache: if its commit fails (a crash, a race with a newer snapshot, an engine error), the events
// are saved all the same, the save does not throw, the error goes to on_snapshot_error, and loads
// replay a little more. Loads use the snapshot when its snapshot_schema_version() matches and it
// is not past the version asked for.
//
// Cache. A repository keeps the states of recently used aggregates in memory
// (repository_options::cache_capacity, for aggregates that implement snapshot()): a command on a
// hot aggregate then reads only the events after the kept state instead of its whole stream.
//
// Upcasting. Every event read for a load passes through `upcasters` (event/upcaster.hpp), and
// every event saved is stamped with its type's current schema version.
//
// \par Ownership
// A repository refers to an engine (or a store's engine) that it does not own: keep the engine or
// store alive and open for as long as the repository is used.
//
// \par Thread safety
// A repository is safe to use from many threads at once (the engine is); the aggregates it returns
// are not (aggregate/aggregate.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <eventsourced/aggregate/aggregate.hpp>
#include <eventsourced/command/command.hpp>
#include <eventsourced/engine/engine.hpp>
#include <eventsourced/event/upcaster.hpp>
#include <eventsourced/storage/store.hpp>

namespace eventsourced {

namespace aggregate_internal {
class state_cache;
}

// Where the repository keeps aggregate snapshots (document id "<type>/<id>", body {version,
// schema_version, state}; aggregates whose "<type>/<id>" exceeds kMaxIdBytes are not
// snapshotted) and processed command ids (document id = command id, body {type, stream_type,
// stream_id, from_version, version}: the stream versions of the events the command caused).
inline constexpr std::string_view kSnapshotsCollection = "_es_snapshots";
inline constexpr std::string_view kCommandsCollection = "_es_commands";

struct repository_options {
  // Events read per engine::read_stream call while replaying. Must be at least 1.
  std::size_t page_size = 512;
  // Take a snapshot every this many events (0: never), for aggregate types not named in
  // snapshot_every_by_type. Only aggregates whose snapshot() returns a value are snapshotted.
  std::int64_t snapshot_every = 0;
  // Per aggregate type; overrides snapshot_every (0 turns snapshots off for that type).
  std::map<std::string, std::int64_t, std::less<>> snapshot_every_by_type{};
  // Called (on the calling thread) with what a snapshot commit or the aggregate's snapshot() threw
  // after a save or a load (for the cache); the save or load itself succeeded. Must not throw.
  // Null: the error is dropped.
  std::function<void(const stream_ref& aggregate, std::exception_ptr error)> on_snapshot_error{};
  // Upcasts events read for a load, stamps events saved. Null: events are used as stored.
  // repository(store&) takes the store's options().upcasters when this is null.
  std::shared_ptr<const upcaster_chain> upcasters{};
  // How many aggregate states the repository keeps in memory (0: none). After a load or a save,
  // the state snapshot() returns is kept with its version; the next load of that aggregate
  // restores it and reads only the events after it from the engine (usually none), instead of
  // replaying the stream. Events never change, so a kept state is never wrong, only possibly
  // behind — and the events after it are always read. Only aggregates whose snapshot() returns a
  // value are kept; least recently used ones are dropped first. Shared by copies of the
  // repository.
  std::size_t cache_capacity = 1024;
  // Deepest nesting accepted in the data and metadata of saved events (engine/json_limits.hpp);
  // deeper: json_depth_error, nothing saved. nullopt: the store's max_json_depth with
  // repository(store&), kDefaultMaxJsonDepth on a bare engine.
  std::optional<std::size_t> max_json_depth{};
};

class repository {
 public:
  // Throws invalid_argument_error when options.page_size is 0 or a snapshot interval is
  // negative.
  explicit repository(engine& engine, repository_options options = {});
  // Uses s.engine() (and s.options().upcasters unless options has its own); s must outlive the
  // repository.
  explicit repository(store& s, repository_options options = {});

  // Loads the stream of `aggregate` (which must be freshly made: version 0, nothing uncommitted,
  // else invalid_argument_error): restores the latest usable snapshot, then replays the events
  // after it, in pages. An empty stream leaves it at version 0. Throws what the engine throws
  // (store_closed_error, engine_error, ...) and what restore() and the apply handlers throw; the
  // aggregate is then partly loaded and must be discarded.
  void load_into(aggregate_root& aggregate) const;

  // Time travel: loads `aggregate` as it was at stream version `version` (0: nothing applied),
  // using a snapshot only if it was taken at or before `version`. Throws invalid_argument_error
  // for a negative version or one past the end of the stream, and as load_into().
  void load_into(aggregate_root& aggregate, std::int64_t version) const;

  // A new T(id), loaded (version 0 when the stream is empty). Throws as load_into() and T's
  // constructor.
  template <class T>
  requires std::is_base_of_v<aggregate_root, T> && std::is_constructible_v<T, std::string>
      std::unique_ptr<T> load(std::string id)
  const {
    auto aggregate = std::make_unique<T>(std::move(id));
    load_into(*aggregate);
    return aggregate;
  }

  // A new T(id) as it was at `version`. Throws as load_into(aggregate, version).
  template <class T>
  requires std::is_base_of_v<aggregate_root, T> && std::is_constructible_v<T, std::string>
      std::unique_ptr<T> load_at(std::string id, std::int64_t version)
  const {
    auto aggregate = std::make_unique<T>(std::move(id));
    load_into(*aggregate, version);
    return aggregate;
  }

  // An aggregate made by registry for (type, id), loaded. Throws invalid_argument_error for a
  // type nobody registered, and as load_into().
  std::unique_ptr<aggregate_root> load(const aggregate_registry& registry, std::string_view type,
                                       std::string id) const;

  // Appends aggregate.uncommitted() as one stream_append with expected version
  // aggregate.committed_version(), then marks the aggregate committed and takes a snapshot when
  // one is due. Members of `metadata` (an object or null) are added to each event's metadata
  // where the event does not set them (e.g. correlation and causation ids). Nothing uncommitted:
  // no commit, returns an empty result. Throws conflict_error (target stream) when the stream
  // moved since the aggregate was loaded, invalid_argument_error for metadata that is not an
  // object or null, and what the engine throws; in every case nothing is written and the
  // aggregate is unchanged.
  commit_result save(aggregate_root& aggregate, const json& metadata = nullptr) const;

  // save() for the events command c caused, idempotently: the events get causation_metadata(c),
  // and c.id is recorded in kCommandsCollection in the same commit (also when the command raised
  // nothing). When c.id was recorded before, nothing is written and the earlier outcome is
  // returned with duplicate = true (the aggregate keeps its uncommitted events: discard it).
  // Throws invalid_argument_error for an invalid command id (validate_id), conflict_error when
  // the stream moved (and the command was not recorded meanwhile), and what the engine throws.
  command_result save(aggregate_root& aggregate, const command& c) const;

  // The recorded outcome of command id (duplicate = true, its events read back), or nullopt when
  // no save recorded it. A plain read: a record committed at this very moment by another process
  // may be missed, which is harmless before a save (the save's commit detects it). Throws
  // invalid_argument_error for an invalid id, serialization_error for a corrupt record, and what
  // the engine throws.
  std::optional<command_result> find_command(std::string_view command_id) const;

  // The snapshot interval that applies to aggregate type `type`.
  std::int64_t snapshot_interval(std::string_view type) const;

 private:
  void load(aggregate_root& aggregate, std::optional<std::int64_t> version) const;
  // for_update: through engine::get_for_update, after a conflict (sees the commit that won).
  std::optional<command_result> lookup_command(std::string_view command_id, bool for_update) const;
  void replay(aggregate_root& aggregate, std::optional<std::int64_t> to_version) const;
  // After a save that recorded events: the snapshot when one is due, and the cache. Never throws
  // (the save has committed): errors go to on_snapshot_error.
  void after_save(const aggregate_root& aggregate, std::int64_t saved_from) const;
  void write_snapshot(const aggregate_root& aggregate, const json& state) const;
  commit_result commit_save(aggregate_root& aggregate, const json& metadata,
                            const command* c) const;

  // Keeps aggregate's state in the cache when it is newer than what is kept (no-op without one).
  // What snapshot() throws goes to on_snapshot_error.
  void remember(const aggregate_root& aggregate, std::optional<json> state = std::nullopt) const;

  engine* engine_;
  repository_options options_;
  std::shared_ptr<aggregate_internal::state_cache> cache_;  // null when cache_capacity is 0
};

}  // namespace eventsourced
