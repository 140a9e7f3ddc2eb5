// The repository: loads aggregates by replaying their streams and saves their uncommitted events.
//
// save() appends an aggregate's uncommitted events as one stream_append whose expected version is
// the aggregate's committed_version(), in one engine commit. So two saves based on the same loaded
// version cannot both succeed: the second throws conflict_error and writes nothing, and no event
// is lost or recorded twice. Reload and re-run the command to retry.
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
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <eventsourced/aggregate/aggregate.hpp>
#include <eventsourced/engine/engine.hpp>
#include <eventsourced/storage/store.hpp>

namespace eventsourced {

struct repository_options {
  // Events read per engine::read_stream call while replaying. Must be at least 1.
  std::size_t page_size = 512;
};

class repository {
 public:
  // Throws invalid_argument_error when options.page_size is 0.
  explicit repository(engine& engine, repository_options options = {});
  // Uses s.engine(); s must outlive the repository.
  explicit repository(store& s, repository_options options = {});

  // Replays the stream of `aggregate` (which must be freshly made: version 0, nothing
  // uncommitted, else invalid_argument_error) from version 1, in pages. An empty stream leaves it
  // at version 0. Throws what the engine throws (store_closed_error, engine_error, ...) and what
  // the apply handlers throw; the aggregate is then partly replayed and must be discarded.
  void load_into(aggregate_root& aggregate) const;

  // A new T(id) with its stream replayed (version 0 when the stream is empty). Throws as
  // load_into() and T's constructor.
  template <class T>
  requires std::is_base_of_v<aggregate_root, T> && std::is_constructible_v<T, std::string>
      std::unique_ptr<T> load(std::string id)
  const {
    auto aggregate = std::make_unique<T>(std::move(id));
    load_into(*aggregate);
    return aggregate;
  }

  // An aggregate made by registry for (type, id), with its stream replayed. Throws
  // invalid_argument_error for a type nobody registered, and as load_into().
  std::unique_ptr<aggregate_root> load(const aggregate_registry& registry, std::string_view type,
                                       std::string id) const;

  // Appends aggregate.uncommitted() as one stream_append with expected version
  // aggregate.committed_version(), then marks the aggregate committed. Members of `metadata` (an
  // object or null) are added to each event's metadata where the event does not set them (e.g.
  // correlation and causation ids). Nothing uncommitted: no commit, returns an empty result.
  // Throws conflict_error (target stream) when the stream moved since the aggregate was loaded,
  // invalid_argument_error for metadata that is not an object or null, and what the engine
  // throws; in every case nothing is written and the aggregate is unchanged.
  commit_result save(aggregate_root& aggregate, const json& metadata = nullptr) const;

 private:
  engine* engine_;
  repository_options options_;
};

}  // namespace eventsourced
