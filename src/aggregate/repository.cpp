#include <eventsourced/aggregate/repository.hpp>

#include "aggregate/state_cache.hpp"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include <eventsourced/engine/json_limits.hpp>

namespace eventsourced {
namespace {

// The snapshot document of an aggregate: "<type>/<id>" (a type never contains '/'). Empty when
// the key would exceed kMaxIdBytes: such aggregates are not snapshotted.
std::string snapshot_key(const stream_ref& s) {
  if (s.type.size() + 1 + s.id.size() > kMaxIdBytes) return {};
  std::string key;
  key.reserve(s.type.size() + 1 + s.id.size());
  key.append(s.type).append("/").append(s.id);
  return key;
}

void check_interval(std::int64_t n, std::string_view type) {
  if (n < 0) {
    throw invalid_argument_error("eventsourced: repository snapshot interval for " +
                                 std::string(type.empty() ? "all types" : type) +
                                 " must not be negative, got " + std::to_string(n));
  }
}

// The fields of a command record document.
constexpr const char* kRecordType = "type";
constexpr const char* kRecordStreamType = "stream_type";
constexpr const char* kRecordStreamId = "stream_id";
constexpr const char* kRecordFrom = "from_version";
constexpr const char* kRecordVersion = "version";

}  // namespace

repository::repository(eventsourced::engine& engine, repository_options options)
    : engine_(&engine), options_(std::move(options)) {
  if (options_.page_size == 0) {
    throw invalid_argument_error("eventsourced: repository page_size must be at least 1");
  }
  check_interval(options_.snapshot_every, "");
  for (const auto& [type, n] : options_.snapshot_every_by_type) check_interval(n, type);
  if (!options_.max_json_depth) options_.max_json_depth = kDefaultMaxJsonDepth;
  validate_max_json_depth(*options_.max_json_depth, "repository_options::max_json_depth");
  if (options_.cache_capacity > 0) {
    cache_ = std::make_shared<aggregate_internal::state_cache>(options_.cache_capacity);
  }
}

repository::repository(store& s, repository_options options)
    : repository(s.engine(), [&] {
        if (!options.upcasters) options.upcasters = s.options().upcasters;
        if (!options.max_json_depth) options.max_json_depth = s.options().max_json_depth;
        return std::move(options);
      }()) {}

std::int64_t repository::snapshot_interval(std::string_view type) const {
  auto it = options_.snapshot_every_by_type.find(type);
  return it != options_.snapshot_every_by_type.end() ? it->second : options_.snapshot_every;
}

void repository::load_into(aggregate_root& aggregate) const {
  load(aggregate, std::nullopt);
}

void repository::load_into(aggregate_root& aggregate, std::int64_t version) const {
  if (version < 0) {
    throw invalid_argument_error("eventsourced: cannot load " + aggregate.type() + "/" +
                                 aggregate.id() + " at negative version " +
                                 std::to_string(version));
  }
  load(aggregate, version);
}

void repository::load(aggregate_root& aggregate, std::optional<std::int64_t> version) const {
  if (aggregate.version() != 0 || !aggregate.uncommitted().empty()) {
    throw invalid_argument_error("eventsourced: load needs a fresh aggregate; " + aggregate.type() +
                                 "/" + aggregate.id() + " is at version " +
                                 std::to_string(aggregate.version()));
  }
  if (version == 0) return;
  std::int64_t restored = 0;
  if (cache_) {
    if (auto kept = cache_->find(aggregate.stream());
        kept && kept->schema_version == aggregate.snapshot_schema_version() &&
        (!version || kept->version <= *version)) {
      aggregate.restore_snapshot(kept->version, *kept->state);
      restored = kept->version;
    }
  }
  if (restored == 0 && snapshot_interval(aggregate.type()) > 0) {
    const std::string key = snapshot_key(aggregate.stream());
    std::optional<stored_document> doc;
    if (!key.empty()) doc = engine_->get(kSnapshotsCollection, key);
    if (doc) {
      const json& body = doc->body;
      auto at = body.find("version");
      auto schema = body.find("schema_version");
      auto state = body.find("state");
      if (at == body.end() || !at->is_number_integer() || schema == body.end() ||
          !schema->is_number_integer() || state == body.end()) {
        throw serialization_error("eventsourced: corrupt snapshot of " + aggregate.type() + "/" +
                                  aggregate.id());
      }
      const std::int64_t snapshot_version = at->get<std::int64_t>();
      if (schema->get<std::int64_t>() == aggregate.snapshot_schema_version() &&
          snapshot_version >= 1 && (!version || snapshot_version <= *version)) {
        aggregate.restore_snapshot(snapshot_version, *state);
      }
    }
  }
  replay(aggregate, version);
  if (!version && aggregate.version() > restored) remember(aggregate);
}

void repository::remember(const aggregate_root& aggregate, std::optional<json> state) const {
  if (!cache_ || aggregate.version() == 0) return;
  if (!state) {
    try {
      state = aggregate.snapshot();
    } catch (...) {
      if (options_.on_snapshot_error) {
        options_.on_snapshot_error(aggregate.stream(), std::current_exception());
      }
      return;
    }
  }
  if (!state) return;
  cache_->remember(
      aggregate.stream(),
      aggregate_internal::cached_state{.version = aggregate.version(),
                                       .schema_version = aggregate.snapshot_schema_version(),
                                       .state = std::make_shared<const json>(std::move(*state))});
}

void repository::replay(aggregate_root& aggregate, std::optional<std::int64_t> to_version) const {
  for (;;) {
    const std::int64_t from = aggregate.version() + 1;
    std::size_t max = options_.page_size;
    if (to_version) {
      if (from > *to_version) return;
      max = static_cast<std::size_t>(
          std::min<std::int64_t>(static_cast<std::int64_t>(max), *to_version - from + 1));
    }
    std::vector<recorded_event> page = engine_->read_stream(aggregate.stream(), from, max);
    for (recorded_event& e : page) {
      if (options_.upcasters) options_.upcasters->upcast(e);
      aggregate.apply(e);
    }
    if (page.size() < max) break;
  }
  if (to_version && aggregate.version() < *to_version) {
    throw invalid_argument_error("eventsourced: cannot load " + aggregate.type() + "/" +
                                 aggregate.id() + " at version " + std::to_string(*to_version) +
                                 ": its stream has " + std::to_string(aggregate.version()) +
                                 " events");
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
  return commit_save(aggregate, metadata, nullptr);
}

commit_result repository::commit_save(aggregate_root& aggregate, const json& metadata,
                                      const command* c) const {
  const std::int64_t saved_from = aggregate.committed_version();
  // Before the events are copied into the request.
  const std::size_t max_depth = *options_.max_json_depth;
  check_json(metadata, max_depth, "save metadata");
  for (const new_event& e : aggregate.uncommitted()) {
    for (const auto& [part, value] : {std::pair{"data", &e.data}, {"metadata", &e.metadata}}) {
      if (auto violation = find_json_violation(*value, max_depth)) {
        violation->raise("the " + std::string(part) + " of event " + e.type + " of " +
                             aggregate.type() + "/" + aggregate.id(),
                         max_depth);
      }
    }
  }
  commit_request request;
  if (!aggregate.uncommitted().empty()) {
    stream_append append{.stream = aggregate.stream(),
                         .expected_version = saved_from,
                         .events = aggregate.uncommitted()};
    for (new_event& e : append.events) {
      if (metadata.is_object()) {
        if (e.metadata.is_null()) e.metadata = json::object();
        if (e.metadata.is_object()) {  // anything else: the engine rejects it with a clear message
          for (auto it = metadata.begin(); it != metadata.end(); ++it) {
            if (!e.metadata.contains(it.key())) e.metadata[it.key()] = it.value();
          }
        }
      }
      if (options_.upcasters) options_.upcasters->stamp(e);
    }
    request.appends.push_back(std::move(append));
  }
  if (c != nullptr) {
    json record = json::object();
    record[kRecordType] = c->type;
    record[kRecordStreamType] = aggregate.type();
    record[kRecordStreamId] = aggregate.id();
    record[kRecordFrom] = saved_from + 1;
    record[kRecordVersion] = aggregate.version();
    request.writes.push_back(document_write{.collection = std::string(kCommandsCollection),
                                            .id = c->id,
                                            .expected_version = 0,
                                            .op = write_op::put,
                                            .body = std::move(record)});
  }
  commit_result result = engine_->commit(request);
  aggregate.mark_committed();
  if (!result.events.empty()) after_save(aggregate, saved_from);
  return result;
}

void repository::after_save(const aggregate_root& aggregate, std::int64_t saved_from) const {
  const std::int64_t every = snapshot_interval(aggregate.type());
  const bool due = every > 0 && saved_from / every != aggregate.version() / every;
  if (!due && !cache_) return;
  const auto report = [&] {
    if (options_.on_snapshot_error) {
      options_.on_snapshot_error(aggregate.stream(), std::current_exception());
    }
  };
  std::optional<json> state;
  try {
    state = aggregate.snapshot();
  } catch (...) {
    report();
    return;
  }
  if (!state) return;
  if (due) {
    try {
      write_snapshot(aggregate, *state);
    } catch (...) {
      report();
    }
  }
  remember(aggregate, std::move(state));
}

void repository::write_snapshot(const aggregate_root& aggregate, const json& state) const {
  const std::string key = snapshot_key(aggregate.stream());
  if (key.empty()) return;
  std::optional<stored_document> current = engine_->get(kSnapshotsCollection, key);
  if (current && current->body.value("version", std::int64_t{0}) >= aggregate.version()) {
    return;  // a newer snapshot is already there
  }
  json body = json::object();
  body["version"] = aggregate.version();
  body["schema_version"] = aggregate.snapshot_schema_version();
  body["state"] = state;
  commit_request request;
  request.writes.push_back(document_write{.collection = std::string(kSnapshotsCollection),
                                          .id = key,
                                          .expected_version = current ? current->version : 0,
                                          .op = write_op::put,
                                          .body = std::move(body)});
  engine_->commit(request);
}

command_result repository::save(aggregate_root& aggregate, const command& c) const {
  validate_id(c.id, "command id");
  const json metadata = causation_metadata(c);
  try {
    commit_result committed = commit_save(aggregate, metadata, &c);
    return command_result{.command_id = c.id,
                          .aggregate = aggregate.stream(),
                          .version = aggregate.version(),
                          .events = std::move(committed.events)};
  } catch (const conflict_error&) {
    // Either the stream moved or this command was recorded meanwhile (a racing duplicate, whose
    // events may be what moved the stream): the record decides.
    if (std::optional<command_result> earlier = lookup_command(c.id, true)) {
      return std::move(*earlier);
    }
    throw;
  }
}

std::optional<command_result> repository::find_command(std::string_view command_id) const {
  return lookup_command(command_id, false);
}

std::optional<command_result> repository::lookup_command(std::string_view command_id,
                                                         bool for_update) const {
  validate_id(command_id, "command id");
  std::optional<stored_document> doc =
      for_update ? engine_->get_for_update(kCommandsCollection, command_id)
                 : engine_->get(kCommandsCollection, command_id);
  if (!doc) return std::nullopt;
  command_result result;
  try {
    const json& body = doc->body;
    result.command_id = std::string(command_id);
    result.aggregate = stream_ref{body.at(kRecordStreamType).get<std::string>(),
                                  body.at(kRecordStreamId).get<std::string>()};
    const auto from = body.at(kRecordFrom).get<std::int64_t>();
    result.version = body.at(kRecordVersion).get<std::int64_t>();
    result.duplicate = true;
    if (result.version >= from) {
      result.events = engine_->read_stream(result.aggregate, from,
                                           static_cast<std::size_t>(result.version - from + 1));
      if (options_.upcasters) {
        for (recorded_event& e : result.events) options_.upcasters->upcast(e);
      }
    }
  } catch (const json::exception& e) {
    throw serialization_error("eventsourced: corrupt record of command " + std::string(command_id) +
                              ": " + e.what());
  }
  return result;
}

}  // namespace eventsourced
