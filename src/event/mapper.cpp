#include <eventsourced/error.hpp>
#include <eventsourced/event/mapper.hpp>

#include <mutex>

namespace eventsourced {
namespace {

// The default name of an event type: "<collection>.<what>".
std::string default_type(std::string_view collection, std::string_view what) {
  std::string name;
  name.reserve(collection.size() + 1 + what.size());
  return name.append(collection).append(1, '.').append(what);
}

}  // namespace

void default_event_mapper::register_collection_event_types(std::string_view collection,
                                                           collection_event_types types) {
  validate_collection_name(collection);
  if (!types.aggregate_type.empty())
    validate_collection_name(types.aggregate_type, "aggregate type");
  std::unique_lock lock(mutex_);
  registered_.insert_or_assign(std::string(collection), std::move(types));
}

collection_event_types default_event_mapper::event_types_for(std::string_view collection) const {
  collection_event_types types;
  {
    std::shared_lock lock(mutex_);
    if (const auto it = registered_.find(collection); it != registered_.end()) types = it->second;
  }
  const auto fill = [&](std::string& name, std::string_view what) {
    if (name.empty()) name = default_type(collection, what);
  };
  fill(types.created, "created");
  fill(types.updated, "updated");
  fill(types.deleted, "deleted");
  if (types.aggregate_type.empty()) types.aggregate_type = std::string(collection);
  return types;
}

mapped_event default_event_mapper::default_event(const document_change& change) const {
  // Runs inside every commit: builds only the two names it needs, not all of event_types_for().
  struct kind {
    std::string collection_event_types::*registered;
    std::string_view name;
  };
  const diff& d = change.diff;
  const kind k = d.is_new       ? kind{&collection_event_types::created, "created"}
                 : d.is_deleted ? kind{&collection_event_types::deleted, "deleted"}
                                : kind{&collection_event_types::updated, "updated"};
  std::string type;
  std::string aggregate_type;
  {
    std::shared_lock lock(mutex_);
    if (const auto it = registered_.find(change.collection); it != registered_.end()) {
      type = it->second.*k.registered;
      aggregate_type = it->second.aggregate_type;
    }
  }
  if (type.empty()) type = default_type(change.collection, k.name);
  if (aggregate_type.empty()) aggregate_type = change.collection;
  json data = json::object();
  data.emplace("version", d.version);
  data.emplace("json_patch", d.json_patch);
  data.emplace("merge_patch", d.merge_patch);
  return {stream_ref{std::move(aggregate_type), std::string(change.id)},
          new_event{std::string(), std::move(type), std::move(data), nullptr}};
}

std::vector<mapped_event> default_event_mapper::map(const document_change& change) const {
  std::vector<mapped_event> out;
  out.push_back(default_event(change));
  return out;
}

function_event_mapper::function_event_mapper(function fn) : fn_(std::move(fn)) {
  if (!fn_)
    throw invalid_argument_error("function_event_mapper needs a function, got an empty one");
}

}  // namespace eventsourced
