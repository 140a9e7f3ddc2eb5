// event_sync_storage: writes with sync events, vector clocks, snapshots, and catching up.
#include <eventsourced/sync/event_sync_storage.hpp>

#include <algorithm>
#include <utility>

#include <eventsourced/error.hpp>
#include <eventsourced/storage/json_patch.hpp>
#include <eventsourced/storage/retry.hpp>

namespace eventsourced {
namespace {

constexpr std::size_t kPageSize = 256;
constexpr std::size_t kMaxSnapshotsKept = 1000;
// Attempts of the bookkeeping writes (snapshots, acknowledgements) against concurrent writers.
constexpr int kBookkeepingAttempts = 1000;
// Attempts of get_missing_events against concurrent compactions (each retry means a compaction
// made progress; many in a row mean events were deleted that no snapshot covers).
constexpr int kReadAttempts = 100;

// Throws invalid_argument_error unless collection/id name a document event_sync_storage can
// keep: a user collection name, a valid id, and reserved ids (snapshot slots, streams) that fit.
void check_document(std::string_view collection, std::string_view id) {
  validate_collection_name(collection);
  if (collection.starts_with(kReservedPrefix)) {
    throw invalid_argument_error("eventsourced: collection '" + std::string(collection) +
                                 "' has the reserved prefix " + std::string(kReservedPrefix));
  }
  validate_id(id);
  if (collection.size() + id.size() > kMaxSyncDocumentKeyBytes) {
    throw invalid_argument_error("eventsourced: collection name and id of " +
                                 std::string(collection) +
                                 "/... are too long together for sync (at most " +
                                 std::to_string(kMaxSyncDocumentKeyBytes) + " bytes)");
  }
}

void check_client_id(std::string_view client_id) {
  if (client_id.empty()) throw invalid_argument_error("eventsourced: empty client id");
  validate_id(client_id, "client id");
}

void check_options(const sync_options& options) {
  check_client_id(options.client_id);
  if (options.snapshot_interval < 1 || options.snapshots_kept < 1 ||
      options.snapshots_kept > kMaxSnapshotsKept || options.max_missing_events < 1) {
    throw invalid_argument_error(
        "eventsourced: sync_options need snapshot_interval >= 1, 1 <= snapshots_kept <= 1000 and "
        "max_missing_events >= 1");
  }
}

vector_clock_map clock_from_json(const json& j) {
  vector_clock_map clock;
  if (!j.is_object()) return clock;
  for (const auto& [client, counter] : j.items())
    clock.emplace(client, counter.get<std::int64_t>());
  return clock;
}

json clock_to_json(const vector_clock_map& clock) {
  json j = json::object();
  for (const auto& [client, counter] : clock) j[client] = counter;
  return j;
}

vector_clock_map clock_of(const event& e) {
  return clock_from_json(e.data.value(std::string(kVectorClockKey), json::object()));
}

// "<slot>:<collection>/<id>": collection names hold neither ':' nor '/', so ids never collide.
std::string snapshot_id(std::size_t slot, std::string_view collection, std::string_view id) {
  return std::to_string(slot) + ":" + std::string(collection) + "/" + std::string(id);
}

// "<client id length>:<client id>:<collection>/<id>" (length-prefixed: any client id is fine).
std::string state_id(std::string_view collection, std::string_view id, std::string_view client) {
  return std::to_string(client.size()) + ":" + std::string(client) + ":" + std::string(collection) +
         "/" + std::string(id);
}

// Every event of `stream` from `from`, paging.
std::vector<event> read_to_end(engine& engine, const stream_ref& stream, std::int64_t from) {
  std::vector<event> out;
  for (;;) {
    auto page = engine.read_stream(stream, from, kPageSize);
    const bool full = page.size() == kPageSize;
    for (auto& e : page) out.push_back(std::move(e));
    if (!full) return out;
    from = out.back().stream_version + 1;
  }
}

}  // namespace

std::unique_ptr<event_sync_storage> event_sync_storage::open(std::string_view uri,
                                                             sync_options options) {
  check_options(options);  // before opening anything
  auto store_options = options.storage;
  store_options.mapper = std::make_shared<sync_event_mapper>(store_options.mapper);
  auto s = store::open(uri, std::move(store_options));
  return std::unique_ptr<event_sync_storage>(
      new event_sync_storage(std::move(s), std::move(options)));
}

std::unique_ptr<event_sync_storage> event_sync_storage::wrap(
    std::unique_ptr<eventsourced::engine> engine, sync_options options) {
  check_options(options);
  auto store_options = options.storage;
  store_options.mapper = std::make_shared<sync_event_mapper>(store_options.mapper);
  auto s = store::wrap(std::move(engine), std::move(store_options));
  return std::unique_ptr<event_sync_storage>(
      new event_sync_storage(std::move(s), std::move(options)));
}

event_sync_storage::event_sync_storage(std::shared_ptr<eventsourced::store> store,
                                       sync_options options)
    : store_(std::move(store)), options_(std::move(options)) {}

event_sync_storage::~event_sync_storage() {
  close();
}

void event_sync_storage::close() noexcept {
  try {
    if (store_) store_->close();
  } catch (...) {  // closing is best effort; destructors never throw
  }
}

std::string event_sync_storage::client_of(const write_options& options) const {
  if (options.event_metadata.is_object()) {
    auto it = options.event_metadata.find(kClientIdKey);
    if (it != options.event_metadata.end()) {
      if (!it->is_string()) {
        throw invalid_argument_error("eventsourced: event_metadata.client_id must be a string");
      }
      const auto& client = it->get_ref<const std::string&>();
      check_client_id(client);
      return client;
    }
  } else if (!options.event_metadata.is_null()) {
    throw invalid_argument_error(
        "eventsourced: write_options::event_metadata must be an object or null");
  }
  return options_.client_id;
}

std::optional<json> event_sync_storage::find_one(std::string_view collection,
                                                 std::string_view id) const {
  check_document(collection, id);
  return store_->documents(collection).find_one(id);
}

std::optional<event> event_sync_storage::head_event(std::string_view collection,
                                                    std::string_view id) const {
  const auto snapshot = latest_snapshot(collection, id);
  auto events =
      read_to_end(store_->engine(), sync_stream(collection, id), snapshot ? snapshot->version : 1);
  if (events.empty()) return std::nullopt;
  return std::move(events.back());
}

event_sync_storage::sync_base event_sync_storage::base_of(std::string_view collection,
                                                          std::string_view id) const {
  auto& engine = store_->engine();
  for (int n = 1;; ++n) {
    auto doc = engine.get(collection, id);
    if (!doc) break;
    auto at = engine.read_stream(sync_stream(collection, id), doc->version, 1);
    if (!at.empty() && at.front().stream_version == doc->version) {
      return {doc->version, clock_of(at.front())};
    }
    // The event is gone when other writers moved the document on and a compaction deleted it
    // between the two reads (the latest event is never deleted): read again.
    auto again = engine.get(collection, id);
    if (!again || again->version != doc->version) {
      if (n < kBookkeepingAttempts) continue;
      throw conflict_error(conflict_target::document, std::string(collection), std::string(id),
                           doc->version, again ? again->version : 0);
    }
    throw invalid_argument_error("eventsourced: " + std::string(collection) + "/" +
                                 std::string(id) + " has no sync event for its version " +
                                 std::to_string(doc->version) +
                                 " (it was written around event_sync_storage)");
  }
  auto head = head_event(collection, id);
  if (!head) return {};
  return {head->stream_version, clock_of(*head)};
}

void event_sync_storage::write(std::string_view collection, std::string_view id,
                               const write_options& options,
                               const std::function<bool(const write_options&, json&)>& attempt) {
  check_document(collection, id);
  const std::string client = client_of(options);
  const retry_options& retry = options.retry ? *options.retry : store_->options().retry;
  for (int n = 1;; ++n) {
    sync_base base = base_of(collection, id);
    write_options once = options;
    once.retry = retry_options{.enabled = false};  // a retry needs a fresh base: done here
    if (once.event_metadata.is_null()) once.event_metadata = json::object();
    once.event_metadata[std::string(kSyncMetadataKey)] = {
        {"client_id", client},
        {"base_version", base.version},
        {"base_clock", clock_to_json(base.clock)}};
    try {
      json after;
      if (!attempt(once, after)) return;
      const std::int64_t version = base.version + 1;
      if (version % options_.snapshot_interval == 0) {
        base.clock[client] += 1;
        write_snapshot(collection, id,
                       sync_snapshot{.version = version,
                                     .document = std::move(after),
                                     .vector_clock = std::move(base.clock)});
      }
      return;
    } catch (const conflict_error&) {
      if (!retry.enabled || n >= retry.max_attempts) throw;
      detail::backoff_sleep(retry, n);
    }
  }
}

void event_sync_storage::write_snapshot(std::string_view collection, std::string_view id,
                                        const sync_snapshot& s) {
  const auto slot =
      static_cast<std::size_t>(s.version / options_.snapshot_interval) % options_.snapshots_kept;
  const std::string slot_id = snapshot_id(slot, collection, id);
  json body = {{"collection", collection},
               {"document_id", id},
               {"stream_version", s.version},
               {"document", s.document},
               {std::string(kVectorClockKey), clock_to_json(s.vector_clock)}};
  auto& engine = store_->engine();
  try {
    bool written = false;
    for (int n = 1; n <= kBookkeepingAttempts && !written; ++n) {
      auto current = engine.get(kSyncSnapshotCollection, slot_id);
      if (current && current->body.value("stream_version", std::int64_t{0}) >= s.version) {
        written = true;  // a newer one is there already: as good
        break;
      }
      commit_request request;
      request.writes.push_back(document_write{.collection = std::string(kSyncSnapshotCollection),
                                              .id = slot_id,
                                              .expected_version = current ? current->version : 0,
                                              .op = write_op::put,
                                              .body = body});
      try {
        engine.commit(request);
        written = true;
      } catch (const conflict_error&) {
        // another writer filled the slot meanwhile: look again
      }
    }
    if (!written) {
      snapshot_failures_.fetch_add(1);  // the slot kept changing under us
      return;
    }
    if (options_.compact_events) compact(collection, id);
  } catch (...) {
    // The write is committed; the snapshot is an optimisation the events can replace.
    snapshot_failures_.fetch_add(1);
    if (options_.on_snapshot_error) {
      try {
        options_.on_snapshot_error(sync_stream(collection, id), std::current_exception());
      } catch (...) {  // a throwing callback must not turn a committed write into a failure
      }
    }
  }
}

void event_sync_storage::compact(std::string_view collection, std::string_view id) {
  // The oldest snapshot still kept. Slots only move forward, so a slot overwritten after this
  // read holds a newer snapshot: every kept one stays at or after `oldest`.
  std::optional<std::int64_t> oldest;
  auto& engine = store_->engine();
  for (std::size_t slot = 0; slot < options_.snapshots_kept; ++slot) {
    auto doc = engine.get(kSyncSnapshotCollection, snapshot_id(slot, collection, id));
    if (!doc) continue;
    const auto version = doc->body.value("stream_version", std::int64_t{0});
    if (!oldest || version < *oldest) oldest = version;
  }
  if (oldest) engine.truncate_stream(sync_stream(collection, id), *oldest);
}

update_result<json> event_sync_storage::find_one_and_upsert(std::string_view collection, json body,
                                                            const write_options& options) {
  const std::string id = store_->documents(collection).id_of(body);
  std::optional<update_result<json>> result;
  write(collection, id, options, [&](const write_options& once, json& after) {
    result = store_->documents(collection).find_one_and_upsert(body, once);
    after = result->document;
    return result->diff.has_changes;
  });
  return std::move(*result);
}

update_result<json> event_sync_storage::find_one_and_update(
    std::string_view collection, std::string_view id,
    const document_collection::edit_function& edit, const write_options& options) {
  std::optional<update_result<json>> result;
  write(collection, id, options, [&](const write_options& once, json& after) {
    result = store_->documents(collection).find_one_and_update(id, edit, once);
    after = result->diff.is_deleted ? json(nullptr) : result->document;
    return result->diff.has_changes;
  });
  return std::move(*result);
}

bool event_sync_storage::delete_one(std::string_view collection, std::string_view id,
                                    const write_options& options) {
  bool deleted = false;
  write(collection, id, options, [&](const write_options& once, json& after) {
    deleted = store_->documents(collection).delete_one(id, once);
    after = nullptr;
    return deleted;
  });
  return deleted;
}

std::vector<json> event_sync_storage::find_many(std::string_view collection, const json& filter,
                                                const find_options& options) const {
  check_document(collection, "_");  // the name only: ids come from the engine
  return store_->documents(collection).find_many(filter, options);
}

// --- transactions ---

sync_transaction::touched& sync_transaction::touch(std::string_view collection,
                                                   std::string_view id) {
  auto key = std::make_pair(std::string(collection), std::string(id));
  if (auto it = touched_.find(key); it != touched_.end()) return it->second;
  check_document(collection, id);
  // The transaction's read first: its version is the one checked at commit. The base is read
  // after it; if the document moved on in between, the base is newer than what the transaction
  // read and the commit's version check fails (a conflict: retried on fresh state). The mapper's
  // own check (the new version must follow the base) would catch the other order too.
  auto before = tx_.find_one(collection, id);
  auto base = owner_.base_of(collection, id);
  json& sync = tx_.event_metadata()[std::string(kSyncMetadataKey)];
  sync["client_id"] = client_;
  sync["documents"][key.first + "/" + key.second] = {{"base_version", base.version},
                                                     {"base_clock", clock_to_json(base.clock)}};
  touched t;
  t.base_version = base.version;
  t.base_clock = std::move(base.clock);
  t.before = before ? std::move(*before) : json(nullptr);
  return touched_.emplace(std::move(key), std::move(t)).first->second;
}

std::optional<json> sync_transaction::find_one(std::string_view collection, std::string_view id) {
  touch(collection, id);
  return tx_.find_one(collection, id);
}

void sync_transaction::put(std::string_view collection, json body) {
  check_document(collection, "_");
  const std::string id = owner_.store_->documents(collection).id_of(body);
  touch(collection, id);
  tx_.put(collection, std::move(body));
}

json sync_transaction::find_one_and_update(
    std::string_view collection, std::string_view id,
    const std::function<edit_result<json>(const json&)>& edit) {
  touch(collection, id);
  return tx_.find_one_and_update(collection, id, edit);
}

bool sync_transaction::delete_one(std::string_view collection, std::string_view id) {
  touch(collection, id);
  return tx_.delete_one(collection, id);
}

std::vector<sync_transaction::due_snapshot> sync_transaction::snapshots_due() {
  std::vector<due_snapshot> out;
  const std::int64_t interval = owner_.options_.snapshot_interval;
  for (auto& [key, t] : touched_) {
    auto now = tx_.find_one(key.first, key.second);
    const json after = now ? std::move(*now) : json(nullptr);
    if (after == t.before) continue;  // unchanged: the transaction writes nothing for it
    const std::int64_t version = t.base_version + 1;
    if (version % interval != 0) continue;
    due_snapshot due{key.first, key.second, {}};
    due.snapshot.version = version;
    due.snapshot.document = after;
    if (!after.is_null()) due.snapshot.document[owner_.store_->options().version_field] = version;
    due.snapshot.vector_clock = t.base_clock;
    due.snapshot.vector_clock[client_] += 1;
    out.push_back(std::move(due));
  }
  return out;
}

void event_sync_storage::run_transaction(const std::function<void(sync_transaction&)>& fn,
                                         const write_options& options) {
  const std::string client = client_of(options);
  std::vector<sync_transaction::due_snapshot> snapshots;
  store_->with_transaction(
      [&](transaction& tx) {
        sync_transaction sync(*this, tx, client);
        fn(sync);
        snapshots = sync.snapshots_due();  // of the last attempt: the one that commits
      },
      options);
  for (const auto& due : snapshots) write_snapshot(due.collection, due.id, due.snapshot);
}

namespace {

// A client write's base_version is not the document's: reported as conflict_error, not retried.
struct stale_client_base {
  std::int64_t actual = 0;
};

void check_client_write(const client_write& w) {
  check_client_id(w.client_id);
  if (w.mutation_id.empty() || w.mutation_id.size() > kMaxMutationIdBytes) {
    throw invalid_argument_error("eventsourced: a mutation id has 1.." +
                                 std::to_string(kMaxMutationIdBytes) + " bytes");
  }
  validate_id(w.mutation_id, "mutation id");
  if (sync_mutation_stream(w.client_id, w.mutation_id).id.size() > kMaxIdBytes) {
    throw invalid_argument_error("eventsourced: client id and mutation id too long together");
  }
  if (w.base_version && *w.base_version < 0) {
    throw invalid_argument_error("eventsourced: negative base version");
  }
  switch (w.op) {
    case client_write::kind::put:
      if (!w.document.is_object()) {
        throw invalid_argument_error("eventsourced: a put needs an object document, got " +
                                     std::string(w.document.type_name()));
      }
      break;
    case client_write::kind::patch:
      if (!w.patch.is_array()) {
        throw invalid_argument_error("eventsourced: a patch needs a JSON Patch array, got " +
                                     std::string(w.patch.type_name()));
      }
      break;
    case client_write::kind::remove:
      break;
  }
}

}  // namespace

client_write_result event_sync_storage::apply_client_write(std::string_view collection,
                                                           std::string_view id,
                                                           const client_write& w) {
  check_document(collection, id);
  check_client_write(w);
  const stream_ref record = sync_mutation_stream(w.client_id, w.mutation_id);
  auto& engine = store_->engine();
  auto documents = store_->documents(collection);
  const std::string& id_field = store_->options().id_field;
  json body;
  if (w.op == client_write::kind::put) {
    body = w.document;
    auto it = body.find(id_field);
    if (it == body.end()) {
      body[id_field] = std::string(id);
    } else if (!it->is_string() || it->get_ref<const std::string&>() != id) {
      throw invalid_argument_error("eventsourced: the document's '" + id_field +
                                   "' field is not '" + std::string(id) + "'");
    }
  }

  write_options options;
  options.event_metadata = {{std::string(kClientIdKey), w.client_id}};
  client_write_result out;
  try {
    write(collection, id, options, [&](const write_options& base_options, json& after) {
      const auto base_version =
          base_options.event_metadata.at(std::string(kSyncMetadataKey)).at("base_version");
      // Read after the base (write() read it): a first send committed before that base is
      // visible here, so a resend always finds its record.
      auto recorded = engine.read_stream(record, 1, 1);
      if (!recorded.empty()) {
        const json& data = recorded.front().data;
        out = client_write_result{.version = data.value("version", std::int64_t{0}),
                                  .duplicate = true,
                                  .changed = data.value("changed", false)};
        return false;
      }
      if (w.base_version && *w.base_version != base_version.get<std::int64_t>()) {
        throw stale_client_base{base_version.get<std::int64_t>()};
      }
      write_options once = base_options;
      once.event_metadata[std::string(kSyncMetadataKey)]["mutation_id"] = w.mutation_id;
      bool changed = false;
      switch (w.op) {
        case client_write::kind::put: {
          // Creates the document, or replaces the body of the one there.
          auto r = documents.find_one_and_upsert(body, once);
          if (!r.diff.is_new) {
            r = documents.find_one_and_update(
                id, [&](const json&) -> edit_result<json> { return body; }, once);
          }
          changed = r.diff.has_changes;
          after = std::move(r.document);
          break;
        }
        case client_write::kind::patch: {
          auto r = documents.find_one_and_update(
              id,
              [&](const json& current) -> edit_result<json> {
                json_patch_limits limits;
                limits.max_depth = store_->options().max_json_depth;
                limits.max_copied_bytes = store_->options().max_document_bytes;
                return apply_json_patch(current, w.patch, limits);
              },
              once);
          changed = r.diff.has_changes;
          after = r.diff.is_deleted ? json(nullptr) : std::move(r.document);
          break;
        }
        case client_write::kind::remove:
          changed = documents.delete_one(id, once);
          after = nullptr;
          break;
      }
      if (changed) {
        out = client_write_result{
            .version = base_version.get<std::int64_t>() + 1, .duplicate = false, .changed = true};
        return true;
      }
      // Nothing to write: record the outcome alone, checked against the document's version so
      // that it is ordered with the writes around it, and against the record's absence (a
      // racing resend records once).
      auto current = engine.get(collection, id);
      commit_request request;
      request.writes.push_back(document_write{.collection = std::string(collection),
                                              .id = std::string(id),
                                              .expected_version = current ? current->version : 0,
                                              .op = write_op::check,
                                              .body = {}});
      stream_append append;
      append.stream = record;
      append.expected_version = 0;
      append.events.push_back(make_event("sync.mutation", {{"collection", std::string(collection)},
                                                           {"document_id", std::string(id)},
                                                           {"version", base_version},
                                                           {"changed", false}}));
      request.appends.push_back(std::move(append));
      engine.commit(request);  // a conflict: write() retries on fresh state
      out = client_write_result{
          .version = base_version.get<std::int64_t>(), .duplicate = false, .changed = false};
      return false;
    });
  } catch (const stale_client_base& stale) {
    throw conflict_error(conflict_target::document, std::string(collection), std::string(id),
                         *w.base_version, stale.actual);
  }
  return out;
}

vector_clock_map event_sync_storage::vector_clock(std::string_view collection,
                                                  std::string_view id) const {
  check_document(collection, id);
  auto& engine = store_->engine();
  if (auto doc = engine.get(collection, id)) {
    auto at = engine.read_stream(sync_stream(collection, id), doc->version, 1);
    if (!at.empty()) return clock_of(at.front());
  }
  auto head = head_event(collection, id);
  if (!head) throw not_found_error(std::string(collection), std::string(id));
  return clock_of(*head);
}

std::optional<vector_clock_map> event_sync_storage::acknowledged_vector_clock(
    std::string_view collection, std::string_view id, std::string_view client_id) const {
  check_document(collection, id);
  check_client_id(client_id);
  auto doc = store_->engine().get(kSyncStateCollection, state_id(collection, id, client_id));
  if (!doc) return std::nullopt;
  return clock_from_json(doc->body.value(std::string(kVectorClockKey), json::object()));
}

vector_clock_map event_sync_storage::update_vector_clock(std::string_view collection,
                                                         std::string_view id,
                                                         std::string_view client_id,
                                                         const vector_clock_map& seen) {
  check_document(collection, id);
  check_client_id(client_id);
  const std::string sid = state_id(collection, id, client_id);
  if (sid.size() > kMaxIdBytes) {
    throw invalid_argument_error("eventsourced: client id too long for " + std::string(collection) +
                                 "/" + std::string(id));
  }
  for (const auto& [client, counter] : seen) {
    check_client_id(client);
    if (counter < 0) {
      throw invalid_argument_error("eventsourced: negative vector clock counter for client '" +
                                   client + "'");
    }
  }
  const vector_clock_map current = vector_clock(collection, id);  // not_found_error first
  for (const auto& [client, counter] : seen) {
    auto it = current.find(client);
    const std::int64_t have = it == current.end() ? 0 : it->second;
    if (counter > have) {
      throw invalid_argument_error("eventsourced: vector clock from the future for " +
                                   std::string(collection) + "/" + std::string(id) + ": client '" +
                                   client + "' at " + std::to_string(counter) +
                                   ", the document has " + std::to_string(have));
    }
  }
  auto& engine = store_->engine();
  for (int n = 1;; ++n) {
    auto stored = engine.get(kSyncStateCollection, sid);
    vector_clock_map merged =
        stored ? clock_from_json(stored->body.value(std::string(kVectorClockKey), json::object()))
               : vector_clock_map{};
    bool changed = !stored;
    for (const auto& [client, counter] : seen) {
      auto [it, inserted] = merged.emplace(client, counter);
      if (!inserted && it->second < counter) {
        it->second = counter;
        changed = true;
      } else if (inserted) {
        changed = true;
      }
    }
    if (!changed) return merged;
    commit_request request;
    request.writes.push_back(
        document_write{.collection = std::string(kSyncStateCollection),
                       .id = sid,
                       .expected_version = stored ? stored->version : 0,
                       .op = write_op::put,
                       .body = {{"collection", collection},
                                {"document_id", id},
                                {std::string(kClientIdKey), client_id},
                                {std::string(kVectorClockKey), clock_to_json(merged)}}});
    try {
      engine.commit(request);
      return merged;
    } catch (const conflict_error&) {
      if (n >= kBookkeepingAttempts) throw;
      detail::backoff_sleep(store_->options().retry, std::min(n, 10));
    }
  }
}

std::optional<sync_snapshot> event_sync_storage::latest_snapshot(std::string_view collection,
                                                                 std::string_view id) const {
  check_document(collection, id);
  std::optional<sync_snapshot> latest;
  auto& engine = store_->engine();
  for (std::size_t slot = 0; slot < options_.snapshots_kept; ++slot) {
    auto doc = engine.get(kSyncSnapshotCollection, snapshot_id(slot, collection, id));
    if (!doc) continue;
    const auto version = doc->body.value("stream_version", std::int64_t{0});
    if (latest && latest->version >= version) continue;
    latest = sync_snapshot{.version = version,
                           .document = doc->body.value("document", json(nullptr)),
                           .vector_clock = clock_from_json(
                               doc->body.value(std::string(kVectorClockKey), json::object()))};
  }
  return latest;
}

sync_batch event_sync_storage::get_missing_events(std::string_view collection, std::string_view id,
                                                  client_state state) const {
  check_document(collection, id);
  if (state.version < 0) {
    throw invalid_argument_error("eventsourced: negative client version " +
                                 std::to_string(state.version));
  }
  for (int n = 1;; ++n) {
    if (auto batch = try_get_missing_events(collection, id, state)) return std::move(*batch);
    if (n >= kReadAttempts) {
      throw engine_error("eventsourced: the sync events of " + std::string(collection) + "/" +
                         std::string(id) +
                         " kept changing under get_missing_events (concurrent compaction), or "
                         "events were deleted that no snapshot covers");
    }
  }
}

std::optional<sync_batch> event_sync_storage::try_get_missing_events(std::string_view collection,
                                                                     std::string_view id,
                                                                     client_state state) const {
  auto& engine = store_->engine();
  const stream_ref stream = sync_stream(collection, id);
  const std::size_t limit = options_.max_missing_events;
  // From the client's own version (to tell a state from the future), one past the limit. The
  // latest event is never compacted: an empty read means the version was never written.
  auto events = engine.read_stream(stream, std::max<std::int64_t>(state.version, 1), limit + 2);
  if (events.empty()) {
    if (state.version == 0 || engine.read_stream(stream, 1, 1).empty()) {
      throw not_found_error(std::string(collection), std::string(id));
    }
    throw invalid_argument_error("eventsourced: client state from the future for " +
                                 std::string(collection) + "/" + std::string(id) + ": version " +
                                 std::to_string(state.version) + " was never written");
  }
  if (state.version > 0 && events.front().stream_version == state.version) {
    events.erase(events.begin());
  }
  // The event after the client's version was compacted: only a snapshot can bridge the gap.
  const bool gap = !events.empty() && events.front().stream_version != state.version + 1;
  sync_batch batch;
  batch.version = state.version;
  if (events.size() <= limit && !gap) {
    batch.events = std::move(events);
  } else {
    std::int64_t from = state.version + 1;
    auto snapshot = latest_snapshot(collection, id);
    if (snapshot && snapshot->version > state.version) {
      from = snapshot->version + 1;
      batch.version = snapshot->version;
      batch.snapshot = std::move(snapshot);
    }
    batch.events = read_to_end(engine, stream, from);
    // A compaction between the reads (after a newer snapshot replaced the one read here) may
    // have deleted events right after `from`: then this batch would not follow on.
    std::int64_t expected = from;
    for (const event& e : batch.events) {
      if (e.stream_version != expected++) return std::nullopt;
    }
  }
  if (!batch.events.empty()) batch.version = batch.events.back().stream_version;
  return batch;
}

}  // namespace eventsourced
