#include <eventsourced/storage/store.hpp>

#include <algorithm>
#include <cstdio>

#include <eventsourced/engine/open.hpp>
#include <eventsourced/event/event.hpp>

namespace eventsourced {

store::store(std::unique_ptr<eventsourced::engine> engine, store_options options)
    : engine_(std::move(engine)), options_(std::move(options)) {
  if (!engine_) throw invalid_argument_error("store needs an engine, got nullptr");
  for (const std::string* field : {&options_.id_field, &options_.version_field}) {
    // Both become members of every body and the engine's commit_request::version_field.
    if (field->empty() || field_path::parse(*field).segments().size() != 1) {
      throw invalid_argument_error("store_options: '" + *field +
                                   "' cannot be an id or version field: it must be one top-level "
                                   "member name, without '.', quotes or a leading '$'");
    }
  }
  if (options_.id_field == options_.version_field) {
    throw invalid_argument_error("store_options: id_field and version_field must differ");
  }
  if (options_.retry.max_attempts < 1) {
    throw invalid_argument_error("retry_options::max_attempts must be at least 1");
  }
  validate_max_json_depth(options_.max_json_depth, "store_options::max_json_depth");
}

void report_unreadable_document(const unreadable_document& document) {
  const unreadable_document_error e(document);
  std::fprintf(stderr, "eventsourced: find passed over an unreadable document: %s\n", e.what());
}

store::~store() {
  try {
    close();
  } catch (...) {  // Destructors never throw; close() failing leaves nothing to clean up.
  }
}

std::shared_ptr<store> store::open(std::string_view uri, store_options options) {
  return wrap(open_engine(uri), std::move(options));
}

std::shared_ptr<store> store::wrap(std::unique_ptr<eventsourced::engine> engine,
                                   store_options options) {
  return std::shared_ptr<store>(new store(std::move(engine), std::move(options)));
}

eventsourced::engine& store::engine() {
  check_open();
  return *engine_;
}

void store::close() {
  if (closed_.exchange(true)) return;
  if (options_.cache) options_.cache->clear();
  engine_->close();
}

void store::check_open() const {
  if (closed_.load()) throw store_closed_error();
}

void store::check_user_collection(std::string_view name) {
  validate_collection_name(name);
  if (name.starts_with(kReservedPrefix)) {
    throw invalid_argument_error("collection name '" + std::string(name) + "' uses the prefix '" +
                                 std::string(kReservedPrefix) +
                                 "', which is reserved for the library");
  }
}

std::string store::id_in(const json& body, std::string_view collection) const {
  const auto it = body.find(options_.id_field);
  if (it == body.end() || !it->is_string()) {
    throw invalid_argument_error("a document for collection '" + std::string(collection) +
                                 "' needs a string '" + options_.id_field + "' field");
  }
  std::string id = it->get<std::string>();
  validate_id(id);
  return id;
}

std::optional<stored_document> store::read(std::string_view collection, std::string_view id,
                                           read_source source) {
  check_open();
  if (source == read_source::cache && options_.cache) {
    // Only a cached document is trusted. Absence (a cached tombstone) is always confirmed by the
    // engine, so a stale cache never makes a delete or upsert decide that nothing is there.
    if (auto hit = options_.cache->get(collection, id); hit && hit->body) {
      return stored_document{std::string(id), hit->version, std::move(*hit->body)};
    }
  }
  auto doc = source == read_source::engine_latest ? engine_->get_for_update(collection, id)
                                                  : engine_->get(collection, id);
  if (doc) {
    accept_stored(*doc, collection);
    if (options_.cache) options_.cache->put(collection, id, {doc->version, doc->body});
  }
  return doc;
}

void store::accept_stored(stored_document& doc, std::string_view collection) const {
  if (!doc.body.is_object()) {
    throw serialization_error("document '" + std::string(collection) + "/" + doc.id +
                              "' is stored as " + doc.body.type_name() +
                              ", not as a JSON object: the database was changed outside the store");
  }
  stamp(doc.body, doc.id, doc.version);
}

void store::accept_edited(json& body, std::string_view collection, std::string_view id,
                          std::int64_t version) const {
  const auto what = [&] {
    return "an edit of '" + std::string(collection) + "/" + std::string(id);
  };
  check_input(body, [&] { return what() + "'"; });  // before the caller compares it
  if (!body.is_object()) {
    throw invalid_argument_error(what() + "' returned " + body.type_name() +
                                 ", expected an object");
  }
  const auto given = body.find(options_.id_field);
  if (given != body.end() && *given != id) {
    throw invalid_argument_error(what() + "' changed its id; ids are immutable");
  }
  stamp(body, id, version);
}

void store::stamp(json& body, std::string_view id, std::int64_t version) const {
  body[options_.id_field] = id;
  body[options_.version_field] = version;
}

namespace {

// Adds `extra`'s members to metadata, keeping members already there. Reserved members
// (kReservedPrefix) are for mappers only and never reach an event.
void add_members(json& metadata, const json& extra) {
  if (!extra.is_object()) return;
  for (const auto& [key, value] : extra.items()) {
    if (std::string_view(key).starts_with(kReservedPrefix)) continue;
    if (!metadata.contains(key)) metadata[key] = value;
  }
}

}  // namespace

std::vector<stream_append> store::map_changes(const commit_request& request,
                                              std::span<const std::int64_t> versions,
                                              const std::vector<pending_write>& writes,
                                              const json& event_metadata, std::vector<diff>& diffs,
                                              std::vector<std::optional<json>>& after,
                                              std::vector<std::size_t>& owner) const {
  // The engine calls this once per commit attempt; start clean in case it ever calls it again.
  diffs.clear();
  diffs.reserve(request.writes.size());
  after.assign(request.writes.size(), std::nullopt);
  std::vector<stream_append> appends;
  std::vector<std::vector<std::size_t>> owners;  // per append, the write of each event
  static const json kNull;
  for (std::size_t i = 0; i < request.writes.size(); ++i) {
    const document_write& w = request.writes[i];
    const std::int64_t version = versions[i];
    if (w.op == write_op::check) {
      diffs.emplace_back().version = version;
      continue;  // a read validated at commit changes nothing: no event
    }
    const json* body = &kNull;
    if (w.op == write_op::put) {
      body = &w.body;
      if (w.body.value(options_.version_field, json()) != version) {
        // A re-created document continues after its tombstone: stamp the version it really gets.
        after[i] = w.body;
        (*after[i])[options_.version_field] = version;
        body = &*after[i];
      }
    }
    const diff& d = diffs.emplace_back(make_diff(writes[i].before, *body, version));
    if (w.collection.starts_with(kReservedPrefix)) continue;  // the library's bookkeeping
    std::vector<mapped_event> mapped = options_.mapper->map(
        document_change{w.collection, w.id, writes[i].before, *body, d, event_metadata});
    for (mapped_event& m : mapped) {
      new_event& e = m.event;
      if (e.id.empty()) e.id = make_event_id();
      if (e.metadata.is_null()) e.metadata = json::object();
      if (e.metadata.is_object()) {  // anything else fails the commit's validation
        if (!e.metadata.contains(kDocumentKey)) {
          json document = json::object();
          document.emplace("collection", w.collection);
          document.emplace("id", w.id);
          document.emplace("version", version);
          e.metadata.emplace(kDocumentKey, std::move(document));
        }
        add_members(e.metadata, event_metadata);
      }
      if (options_.upcasters) options_.upcasters->stamp(e);
      auto it = std::find_if(appends.begin(), appends.end(),
                             [&](const stream_append& a) { return a.stream == m.stream; });
      if (it == appends.end()) {
        appends.push_back(stream_append{std::move(m.stream), std::nullopt, {}});
        owners.emplace_back();
        it = appends.end() - 1;
      }
      it->events.push_back(std::move(e));
      owners[static_cast<std::size_t>(it - appends.begin())].push_back(i);
    }
  }
  owner.clear();
  for (const auto& o : owners) owner.insert(owner.end(), o.begin(), o.end());
  return appends;
}

std::vector<store::committed_write> store::commit_writes(std::vector<pending_write> writes,
                                                         const write_options& options) {
  check_open();
  if (!options.event_metadata.is_null() && !options.event_metadata.is_object()) {
    throw invalid_argument_error("write_options::event_metadata must be an object or null, got " +
                                 std::string(options.event_metadata.type_name()));
  }
  check_input(options.event_metadata, [] { return "write_options::event_metadata"; });
  commit_request request;
  request.version_field = options_.version_field;
  request.max_body_bytes = options_.max_document_bytes;
  // Every body as it will be stored, whichever way it was made (a whole document, update
  // operators, a section edit, a patch): the engine checks them against the store's limit, in
  // the walk it makes anyway.
  request.max_json_depth = options_.max_json_depth;
  request.writes.reserve(writes.size());
  for (pending_write& w : writes) {
    // The version the engine will give unless the document is re-created after a tombstone (then
    // the engine corrects it): stamping it here spares the engine a copy of the body.
    if (w.write.op == write_op::put)
      w.write.body[options_.version_field] = w.write.expected_version + 1;
    request.writes.push_back(std::move(w.write));
  }
  // Filled inside the commit when there is a mapper (the diffs are needed there).
  std::vector<diff> diffs;
  std::vector<std::optional<json>> restamped;
  std::vector<std::size_t> owner;
  if (options_.mapper) {
    request.derived_appends = [&](std::span<const std::int64_t> versions) {
      return map_changes(request, versions, writes, options.event_metadata, diffs, restamped,
                         owner);
    };
  }
  commit_result result;
  try {
    result = engine_->commit(request);
  } catch (const conflict_error& e) {
    if (options_.cache && e.target() == conflict_target::document) {
      options_.cache->erase(e.collection(), e.id());
    }
    throw;
  }
  const bool mapped = options_.mapper != nullptr;
  std::vector<committed_write> out;
  out.reserve(writes.size());
  for (std::size_t i = 0; i < writes.size(); ++i) {
    document_write& w = request.writes[i];
    const std::int64_t version = result.versions[i];
    json& before = writes[i].before;
    switch (w.op) {
      case write_op::put: {
        if (mapped && restamped[i]) {
          w.body = std::move(*restamped[i]);
        } else {
          w.body[options_.version_field] = version;  // as the engine stored it
        }
        if (options_.cache) options_.cache->put(w.collection, w.id, {version, w.body});
        diff d = mapped ? std::move(diffs[i]) : make_diff(before, w.body, version);
        out.push_back({std::move(w.body), std::move(d)});
        break;
      }
      case write_op::erase: {
        if (options_.cache) options_.cache->put(w.collection, w.id, {version, std::nullopt});
        diff d = mapped ? std::move(diffs[i]) : make_diff(before, json(), version);
        out.push_back({std::move(before), std::move(d)});
        break;
      }
      case write_op::check: {
        diff d = make_diff(before, before, version);
        out.push_back({std::move(before), std::move(d)});
        break;
      }
    }
  }
  for (std::size_t k = 0; k < result.events.size() && k < owner.size(); ++k) {
    out[owner[k]].events.push_back(std::move(result.events[k]));
  }
  return out;
}

store::committed_write store::commit_write(pending_write write, const write_options& options) {
  std::vector<pending_write> writes;
  writes.push_back(std::move(write));  // a braced list would deep-copy both bodies
  return std::move(commit_writes(std::move(writes), options).front());
}

}  // namespace eventsourced
