#include <eventsourced/storage/document_collection.hpp>

#include <eventsourced/storage/store.hpp>
#include <eventsourced/storage/update_operators.hpp>

namespace eventsourced {
namespace {

// How many times update_section writes its edited sub-tree into a fresher document because
// other parts of it changed, before giving up with the conflict.
constexpr int kMaxSectionSplices = 1000;

update_result<json> unchanged(stored_document current) {
  diff d;
  d.version = current.version;
  return {std::move(current.body), std::move(d)};
}

}  // namespace

document_collection::document_collection(std::shared_ptr<store> owner, std::string_view name)
    : store_(std::move(owner)), name_(name) {
  if (!store_)
    throw invalid_argument_error("collection '" + name_ + "' needs a store, got nullptr");
  store::check_user_collection(name_);
}

std::string document_collection::id_of(const json& body) const {
  const auto it = body.find(store_->options().id_field);
  return it != body.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::optional<json> document_collection::find_one(std::string_view id) const {
  auto doc = store_->read(name_, id, store::read_source::cache);
  if (!doc) return std::nullopt;
  return std::move(doc->body);
}

std::vector<json> document_collection::find_many(const json& filter_spec,
                                                 const find_options& options) const {
  store_->check_open();
  query q;
  q.where = filter::parse(filter_spec, store_->options().max_json_depth);
  q.sort = options.sort;
  q.limit = options.limit;
  q.skip = options.skip;
  q.on_unreadable = store_->options().on_unreadable_document;
  std::vector<json> out;
  for (stored_document& doc : store_->engine_->find(name_, q)) {
    store_->accept_stored(doc, name_);
    out.push_back(std::move(doc.body));
  }
  return out;
}

std::vector<unreadable_document> document_collection::find_unreadable() const {
  store_->check_open();
  std::vector<unreadable_document> found;
  query q;
  q.on_unreadable = [&](const unreadable_document& u) {
    found.push_back(u);
    if (const auto& report = store_->options().on_unreadable_document) report(u);
  };
  store_->engine_->find(name_, q);
  return found;
}

update_result<json> document_collection::find_one_and_upsert(json body,
                                                             const write_options& options) {
  store_->check_input(body, [&] { return "a document for collection '" + name_ + "'"; });
  const std::string id = store_->id_in(body, name_);
  // A conflict here means another writer created (or deleted) the document meanwhile: read again
  // and return what is there now. Bounded in case creations and deletions keep racing.
  constexpr int kAttempts = 3;
  for (int attempt = 0;; ++attempt) {
    // Never the cache: a stale entry would make this return a document that no longer exists.
    const auto source =
        attempt == 0 ? store::read_source::engine : store::read_source::engine_latest;
    if (auto existing = store_->read(name_, id, source)) return unchanged(std::move(*existing));
    store_->stamp(body, id, 0);
    try {
      auto done = store_->commit_write({{name_, id, 0, write_op::put, body}, json()}, options);
      return {std::move(done.document), std::move(done.diff), std::move(done.events)};
    } catch (const conflict_error&) {
      if (attempt + 1 >= kAttempts) throw;
    }
  }
}

std::optional<update_result<json>> document_collection::update(std::string_view id,
                                                               const edit_function& edit,
                                                               const write_options& options,
                                                               when_missing missing) {
  const retry_options& retry = store_->retry_for(options);
  for (int attempt = 0;; ++attempt) {
    // The first attempt may trust the cache; after a conflict, only the engine's latest state.
    auto current = store_->read(
        name_, id, attempt == 0 ? store::read_source::cache : store::read_source::engine_latest);
    if (!current) {
      if (missing == when_missing::throw_not_found) throw not_found_error(name_, std::string(id));
      return std::nullopt;
    }
    edit_result<json> result = edit(current->body);
    if (result.is_no_change()) return unchanged(std::move(*current));
    store::pending_write w{{name_, std::string(id), current->version, write_op::erase, json()},
                           json()};
    if (!result.is_delete()) {
      json& body = result.document();
      store_->accept_edited(body, name_, id, current->version);
      if (body == current->body) return unchanged(std::move(*current));
      w.write.op = write_op::put;
      w.write.body = std::move(body);
    }
    w.before = std::move(current->body);
    try {
      auto done = store_->commit_write(std::move(w), options);
      return update_result<json>{std::move(done.document), std::move(done.diff),
                                 std::move(done.events)};
    } catch (const conflict_error&) {
      if (!retry.enabled || attempt + 1 >= retry.max_attempts) throw;
      detail::backoff_sleep(retry, attempt);
    }
  }
}

update_result<json> document_collection::find_one_and_update(std::string_view id,
                                                             const edit_function& edit,
                                                             const write_options& options) {
  return *update(id, edit, options, when_missing::throw_not_found);
}

update_result<json> document_collection::update_one(std::string_view id, const json& update_spec,
                                                    const write_options& options) {
  store_->check_input(update_spec,
                      [&] { return "the update of '" + name_ + "/" + std::string(id) + "'"; });
  const store_options& so = store_->options();
  return find_one_and_update(
      id,
      [&](const json& body) -> edit_result<json> {
        json updated = apply_update(body, update_spec);
        for (const std::string* field : {&so.id_field, &so.version_field}) {
          if (updated.value(*field, json()) != body.value(*field, json())) {
            throw invalid_argument_error("update_one on '" + name_ + "/" + std::string(id) +
                                         "' may not change the '" + *field + "' field");
          }
        }
        return updated;
      },
      options);
}

update_result<json> document_collection::update_section(std::string_view id, std::string_view path,
                                                        const std::function<json(json)>& edit,
                                                        const write_options& options) {
  const field_path section = field_path::parse(path);
  const store_options& so = store_->options();
  if (section.segments().front() == so.id_field || section.segments().front() == so.version_field) {
    throw invalid_argument_error("update_section may not edit the '" + section.segments().front() +
                                 "' field");
  }
  const retry_options& retry = store_->retry_for(options);
  auto current = store_->read(name_, id, store::read_source::cache);
  for (int attempt = 0;; ++attempt) {
    if (!current) throw not_found_error(name_, std::string(id));
    const json* found = section.resolve(current->body);
    const bool existed = found != nullptr;  // `found` dangles once `current` is re-read
    const json before = existed ? *found : json();
    const json after = edit(before);
    store_->check_input(after, [&] {
      return "section '" + section.str() + "' of '" + name_ + "/" + std::string(id) + "'";
    });
    if (after == before && (existed || after.is_null())) return unchanged(std::move(*current));

    for (int splice = 0;; ++splice) {
      // Member by member: GCC 12 at -O2 misreads the nested braced form as leaving the body
      // uninitialized (-Wmaybe-uninitialized).
      store::pending_write w;
      w.write.collection = name_;
      w.write.id = std::string(id);
      w.write.expected_version = current->version;
      w.write.op = write_op::put;
      w.write.body = apply_update(current->body, {{"$set", {{section.str(), after}}}});
      w.before = current->body;
      try {
        auto done = store_->commit_write(std::move(w), options);
        return {std::move(done.document), std::move(done.diff), std::move(done.events)};
      } catch (const conflict_error&) {
        current = store_->read(name_, id, store::read_source::engine_latest);
        if (!current) throw not_found_error(name_, std::string(id));
        const json* now = section.resolve(current->body);
        const bool section_unchanged = now == nullptr ? !existed : (existed && *now == before);
        if (section_unchanged) {
          if (splice + 1 >= kMaxSectionSplices) throw;
          continue;  // only other parts changed: write our sub-tree into the fresh document
        }
        if (!retry.enabled || attempt + 1 >= retry.max_attempts) throw;
        detail::backoff_sleep(retry, attempt);
        break;  // our sub-tree changed: re-run edit on the fresh document
      }
    }
  }
}

bool document_collection::delete_one(std::string_view id, const write_options& options) {
  const retry_options& retry = store_->retry_for(options);
  for (int attempt = 0;; ++attempt) {
    try {
      return update(
                 id, [](const json&) -> edit_result<json> { return delete_document; }, options,
                 when_missing::return_empty)
          .has_value();
    } catch (const unreadable_document_error& e) {
      // Its body cannot be read: delete it at the version stored with it. Mappers see it
      // change from an empty object (what it held cannot be known) to deleted.
      store::pending_write w;
      w.write.collection = name_;
      w.write.id = std::string(id);
      w.write.expected_version = e.document().version;
      w.write.op = write_op::erase;
      w.before = json::object();
      try {
        store_->commit_write(std::move(w), options);
        return true;
      } catch (const conflict_error&) {  // written meanwhile: look again
        if (!retry.enabled || attempt + 1 >= retry.max_attempts) throw;
        detail::backoff_sleep(retry, attempt);
      }
    }
  }
}

}  // namespace eventsourced
