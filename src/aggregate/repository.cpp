#include <eventsourced/aggregate/repository.hpp>

#include <string>
#include <utility>
#include <vector>

namespace eventsourced {

repository::repository(eventsourced::engine& engine, repository_options options)
    : engine_(&engine), options_(options) {
  if (options_.page_size == 0) {
    throw invalid_argument_error("eventsourced: repository page_size must be at least 1");
  }
}

repository::repository(store& s, repository_options options) : repository(s.engine(), options) {}

void repository::load_into(aggregate_root& aggregate) const {
  if (aggregate.version() != 0 || !aggregate.uncommitted().empty()) {
    throw invalid_argument_error("eventsourced: load needs a fresh aggregate; " + aggregate.type() +
                                 "/" + aggregate.id() + " is at version " +
                                 std::to_string(aggregate.version()));
  }
  std::int64_t from = 1;
  for (;;) {
    std::vector<recorded_event> page =
        engine_->read_stream(aggregate.stream(), from, options_.page_size);
    for (const recorded_event& e : page) aggregate.apply(e);
    if (page.size() < options_.page_size) break;
    from = aggregate.version() + 1;
  }
}

std::unique_ptr<aggregate_root> repository::load(const aggregate_registry& registry,
                                                 std::string_view type, std::string id) const {
  std::unique_ptr<aggregate_root> aggregate = registry.create(type, std::move(id));
  load_into(*aggregate);
  return aggregate;
}

commit_result repository::save(aggregate_root& aggregate, const json& metadata) const {
  if (!metadata.is_null() && !metadata.is_object()) {
    throw invalid_argument_error("eventsourced: save metadata must be an object or null");
  }
  if (aggregate.uncommitted().empty()) return {};
  commit_request request;
  stream_append append{.stream = aggregate.stream(),
                       .expected_version = aggregate.committed_version(),
                       .events = aggregate.uncommitted()};
  if (metadata.is_object()) {
    for (new_event& e : append.events) {
      if (e.metadata.is_null()) e.metadata = json::object();
      if (!e.metadata.is_object()) continue;  // the engine rejects it with a clear message
      for (auto it = metadata.begin(); it != metadata.end(); ++it) {
        if (!e.metadata.contains(it.key())) e.metadata[it.key()] = it.value();
      }
    }
  }
  request.appends.push_back(std::move(append));
  commit_result result = engine_->commit(request);
  aggregate.mark_committed();
  return result;
}

}  // namespace eventsourced
