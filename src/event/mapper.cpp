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
  collection_event_types types = event_types_for(change.collection);
  const diff& d = change.diff;
  std::string& type = d.is_new ? types.created : d.is_deleted ? types.deleted : types.updated;
  json data = {
      {"version", d.version}, {"json_patch", d.json_patch}, {"merge_patch", d.merge_patch}};
  return {stream_ref{std::move(types.aggregate_type), std::string(change.id)},
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
