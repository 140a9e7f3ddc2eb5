// sync_event_mapper: the sync event of every document change (sync/event_sync_storage.hpp).
#include <eventsourced/error.hpp>
#include <eventsourced/sync/event_sync_storage.hpp>

namespace eventsourced {

stream_ref sync_stream(std::string_view collection, std::string_view id) {
  std::string stream_id;
  stream_id.reserve(collection.size() + 1 + id.size());
  stream_id.append(collection).append("/").append(id);
  return stream_ref{std::string(kSyncStreamType), std::move(stream_id)};
}

stream_ref sync_mutation_stream(std::string_view client_id, std::string_view mutation_id) {
  // "<client id length>:<client id>:<mutation id>": any client id and mutation id are fine.
  std::string stream_id = std::to_string(client_id.size());
  stream_id.append(":").append(client_id).append(":").append(mutation_id);
  return stream_ref{std::string(kSyncMutationStreamType), std::move(stream_id)};
}

std::vector<mapped_event> sync_event_mapper::map(const document_change& change) const {
  std::vector<mapped_event> out;
  if (inner_) out = inner_->map(change);
  if (change.collection.starts_with(kReservedPrefix)) return out;

  const json* sync = nullptr;
  if (change.metadata.is_object()) {
    auto it = change.metadata.find(kSyncMetadataKey);
    if (it != change.metadata.end() && it->is_object()) sync = &*it;
  }
  if (sync == nullptr) {
    throw invalid_argument_error("eventsourced: " + std::string(change.collection) + "/" +
                                 std::string(change.id) +
                                 " is in a synced store: write it through event_sync_storage "
                                 "(the write carries no sync information)");
  }
  // A sync transaction gives the base of each document it touched, under "documents".
  const json* base = sync;
  if (auto docs = sync->find("documents"); docs != sync->end() && docs->is_object()) {
    std::string key(change.collection);
    key.append("/").append(change.id);
    auto it = docs->find(key);
    if (it == docs->end()) {
      throw invalid_argument_error("eventsourced: " + key +
                                   " was changed in a sync transaction without being read by it");
    }
    base = &*it;
  }
  const auto base_version = base->at("base_version").get<std::int64_t>();
  if (change.diff.version != base_version + 1) {
    // The write is based on another version than the clock it carries: retry on fresh state.
    throw conflict_error(conflict_target::document, std::string(change.collection),
                         std::string(change.id), base_version, change.diff.version - 1);
  }
  const auto client = sync->at("client_id").get<std::string>();
  json clock = base->at("base_clock");
  clock[client] = clock.value(client, std::int64_t{0}) + 1;

  const char* op = change.diff.is_new ? "create" : change.diff.is_deleted ? "delete" : "update";
  json data = {{"op", op},
               {"version", change.diff.version},
               {"json_patch", change.diff.json_patch},
               {std::string(kClientIdKey), client},
               {std::string(kVectorClockKey), clock}};
  json metadata = {{std::string(kClientIdKey), client}, {std::string(kVectorClockKey), clock}};
  const json* mutation = nullptr;
  if (auto it = sync->find("mutation_id"); it != sync->end() && it->is_string()) {
    mutation = &*it;
    data["mutation_id"] = *it;
  }
  out.push_back(
      mapped_event{sync_stream(change.collection, change.id),
                   make_event(std::string("sync.") + (change.diff.is_new       ? "created"
                                                      : change.diff.is_deleted ? "deleted"
                                                                               : "updated"),
                              std::move(data), std::move(metadata))});
  if (mutation != nullptr) {
    // The record that makes a resend of this client write a duplicate (apply_client_write).
    out.push_back(
        mapped_event{sync_mutation_stream(client, mutation->get_ref<const std::string&>()),
                     make_event("sync.mutation", {{"collection", std::string(change.collection)},
                                                  {"document_id", std::string(change.id)},
                                                  {"version", change.diff.version},
                                                  {"changed", true}})});
  }
  return out;
}

}  // namespace eventsourced
