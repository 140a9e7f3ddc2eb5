// Aggregates: the write model of CQRS. An aggregate is an object whose state is the fold of the
// events of one stream (stream type = the aggregate's type, stream id = its id).
//
// A subclass registers one apply handler per event type in its constructor, and its command
// methods call raise(type, data): raise applies the event at once and keeps it as uncommitted
// until a repository saves it (aggregate/repository.hpp). Replaying the stored stream through
// apply() rebuilds the state.
//
//   class player final : public eventsourced::aggregate_root {
//    public:
//     explicit player(std::string id) : aggregate_root("player", std::move(id)) {
//       on("GoldEarned", [this](const eventsourced::event& e) {
//         gold_ += e.data.at("amount").get<int>();
//       });
//     }
//     void earn(int amount) { raise("GoldEarned", {{"amount", amount}}); }
//    private:
//     int gold_ = 0;
//   };
//
// Versions. version() is the stream version of the last applied event, raised or replayed (0 for
// a new aggregate). committed_version() is the stream version the store had when the aggregate
// was loaded or last saved: the expected version of the next save.
//
// Snapshots. An aggregate whose replay grows long overrides snapshot() and restore(): the
// repository then stores its state every N events (repository_options::snapshot_every) and keeps
// recent states in memory (repository_options::cache_capacity); later loads start from the latest
// snapshot or kept state and replay only the events after it. Snapshot and replay
// must agree: restore(snapshot()) followed by the remaining events gives the same state as a full
// replay (test it; aggregate_scenario helps). Bump snapshot_schema_version() when the shape of
// snapshot() changes: snapshots of another schema version are ignored (the load replays fully).
//
// \par Thread safety
// An aggregate_root is not safe to use from several threads at once; give each thread (or each
// command) its own, loaded from the repository. aggregate_registry is safe from any thread.
//
// \par Exception safety
// When an apply handler throws in raise() or apply(), the version and the uncommitted events are
// unchanged and the exception propagates; whatever state the handler changed before throwing is
// the handler's responsibility (check first, then mutate).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <eventsourced/engine/engine.hpp>
#include <eventsourced/error.hpp>
#include <eventsourced/event/event.hpp>

namespace eventsourced {

class aggregate_root {
 public:
  using apply_handler = std::function<void(const event&)>;

  virtual ~aggregate_root() = default;
  // Handlers capture `this`: an aggregate is neither copied nor moved.
  aggregate_root(const aggregate_root&) = delete;
  aggregate_root& operator=(const aggregate_root&) = delete;

  const std::string& id() const noexcept { return stream_.id; }
  const std::string& type() const noexcept { return stream_.type; }
  const stream_ref& stream() const noexcept { return stream_; }
  std::int64_t version() const noexcept { return version_; }
  std::int64_t committed_version() const noexcept { return committed_version_; }

  // Events raised since the aggregate was loaded or last saved, in order.
  const std::vector<new_event>& uncommitted() const noexcept { return uncommitted_; }

  // Forgets the uncommitted events and makes version() the committed version. The repository
  // calls it after a successful save.
  void mark_committed() noexcept;

  // Applies a recorded event of this aggregate's stream (replay). Throws invalid_argument_error
  // when the event belongs to another stream, when its stream version is not version() + 1, or
  // when there are uncommitted events (replay only on a clean aggregate). An event type without a
  // handler changes no state but still advances the version. Also advances committed_version().
  void apply(const event& e);

  // Whether a handler is registered for event_type.
  bool handles(std::string_view event_type) const;

  // The aggregate's state as JSON, for a snapshot and for the repository's in-memory cache;
  // nullopt (the default): this aggregate is never snapshotted nor cached. The repository calls it
  // after saves and loads, when nothing is uncommitted.
  virtual std::optional<json> snapshot() const { return std::nullopt; }
  // Restores state from what snapshot() returned. Called on a fresh aggregate only (version 0).
  // The default throws invalid_argument_error (an aggregate that snapshots must restore).
  virtual void restore(const json& state);
  // The schema of snapshot()'s JSON; snapshots written under another number are not used.
  virtual std::int64_t snapshot_schema_version() const { return 1; }

  // Restores a snapshot taken at `version`: calls restore(state), then sets version() and
  // committed_version() to `version`. Throws invalid_argument_error unless the aggregate is fresh
  // (version 0, nothing uncommitted) and version >= 1; what restore() throws (the aggregate must
  // then be discarded).
  void restore_snapshot(std::int64_t version, const json& state);

 protected:
  // Throws invalid_argument_error for an invalid type (validate_collection_name) or id
  // (validate_id).
  aggregate_root(std::string type, std::string id);

  // Registers the apply handler of event_type. Throws invalid_argument_error when event_type is
  // empty or already has a handler.
  void on(std::string event_type, apply_handler handler);

  // Typed: the event's data converted to T (nlohmann from_json) before calling handler. A data
  // member that does not convert throws serialization_error (nothing applied).
  template <class T, class F>
  requires std::is_invocable_v<F&, const T&>
  void on(std::string event_type, F handler) {
    on(std::move(event_type), apply_handler{[handler = std::move(handler)](const event& e) mutable {
         handler(detail_convert_event_data<T>(e));
       }});
  }

  // Applies a new event of event_type to this aggregate and records it as uncommitted. Throws
  // invalid_argument_error when no handler is registered for event_type (an unhandled raise is a
  // bug), and whatever the handler throws (nothing recorded then).
  void raise(std::string event_type, json data, json metadata = nullptr);

 private:
  template <class T>
  static T detail_convert_event_data(const event& e) {
    try {
      return e.data.get<T>();
    } catch (const json::exception& ex) {
      throw serialization_error("eventsourced: event " + e.type +
                                " data does not convert: " + ex.what());
    }
  }

  stream_ref stream_;
  std::int64_t version_ = 0;
  std::int64_t committed_version_ = 0;
  std::vector<new_event> uncommitted_;
  std::map<std::string, apply_handler, std::less<>> handlers_;
};

// Makes aggregates by type name: the repository's way to load an aggregate whose type is only
// known at run time.
//
// \par Thread safety
// Every member is safe to call from any thread.
class aggregate_registry {
 public:
  // Returns a new aggregate with the given id; must not return null.
  using factory = std::function<std::unique_ptr<aggregate_root>(std::string id)>;

  // Registers the factory of type. Throws invalid_argument_error for an invalid type name, a
  // null factory, or a type registered before.
  void add(std::string type, factory make);

  // Registers T, made as T(id). T's type() should equal `type`; create() checks it.
  template <class T>
  requires std::is_base_of_v<aggregate_root, T> && std::is_constructible_v<T, std::string>
  void add(std::string type) {
    add(std::move(type), [](std::string id) -> std::unique_ptr<aggregate_root> {
      return std::make_unique<T>(std::move(id));
    });
  }

  bool contains(std::string_view type) const;

  // A new aggregate of type with id (version 0, nothing applied). Throws invalid_argument_error
  // for a type nobody registered, and when the factory returns null or an aggregate of another
  // type or id; whatever the factory throws.
  std::unique_ptr<aggregate_root> create(std::string_view type, std::string id) const;

 private:
  mutable std::shared_mutex mutex_;
  std::map<std::string, factory, std::less<>> factories_;  // guarded by mutex_
};

}  // namespace eventsourced
