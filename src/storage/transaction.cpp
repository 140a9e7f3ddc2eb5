#include <eventsourced/storage/transaction.hpp>

#include <eventsourced/storage/store.hpp>

namespace eventsourced {

transaction::touched& transaction::touch(std::string_view collection, std::string_view id) {
  store::check_user_collection(collection);
  auto key = std::make_pair(std::string(collection), std::string(id));
  if (auto it = touched_.find(key); it != touched_.end()) return it->second;
  // Always the engine, never the cache: the version read here is checked at commit.
  auto doc = store_.read(collection, id, store::read_source::engine);
  touched t;
  if (doc) {
    t.read_version = doc->version;
    t.before = std::move(doc->body);
  }
  return touched_.emplace(std::move(key), std::move(t)).first->second;
}

std::optional<json> transaction::find_one(std::string_view collection, std::string_view id) {
  const touched& t = touch(collection, id);
  const json& current = t.after ? *t.after : t.before;
  if (current.is_null()) return std::nullopt;
  return current;
}

void transaction::put(std::string_view collection, json body) {
  store_.check_input(body,
                     [&] { return "a document for collection '" + std::string(collection) + "'"; });
  const std::string id = store_.id_in(body, collection);
  touched& t = touch(collection, id);
  store_.stamp(body, id, t.read_version);
  t.after = std::move(body);
}

json transaction::find_one_and_update(std::string_view collection, std::string_view id,
                                      const std::function<edit_result<json>(const json&)>& edit) {
  touched& t = touch(collection, id);
  const json& current = t.after ? *t.after : t.before;
  if (current.is_null()) throw not_found_error(std::string(collection), std::string(id));
  edit_result<json> result = edit(current);
  if (result.is_no_change()) return current;
  if (result.is_delete()) {
    t.after = json();
    return json();
  }
  json& body = result.document();
  store_.accept_edited(body, collection, id, t.read_version);
  t.after = std::move(body);
  return *t.after;
}

bool transaction::delete_one(std::string_view collection, std::string_view id) {
  touched& t = touch(collection, id);
  const json& current = t.after ? *t.after : t.before;
  if (current.is_null()) return false;
  t.after = json();
  return true;
}

void store::run_transaction(const std::function<void(transaction&)>& fn,
                            const write_options& options) {
  const retry_options& retry = retry_for(options);
  for (int attempt = 0;; ++attempt) {
    check_open();
    transaction tx(*this);
    fn(tx);  // an exception leaves: nothing was written
    std::vector<pending_write> writes;
    for (auto& [key, t] : tx.touched_) {
      // Member by member: GCC 12 at -O2 misreads the nested braced form as leaving the body
      // uninitialized (-Wmaybe-uninitialized).
      pending_write w;
      w.write.collection = key.first;
      w.write.id = key.second;
      w.write.expected_version = t.read_version;
      w.write.op = write_op::check;
      w.before = t.before;
      if (t.after && *t.after != t.before) {
        if (t.after->is_null()) {
          w.write.op = write_op::erase;
        } else {
          w.write.op = write_op::put;
          w.write.body = std::move(*t.after);
        }
      }
      writes.push_back(std::move(w));
    }
    if (writes.empty()) return;
    try {
      check_input(tx.event_metadata_, [] { return "transaction::event_metadata()"; });
      check_input(options.event_metadata, [] { return "write_options::event_metadata"; });
      if (!tx.event_metadata_.is_null()) {
        if (!tx.event_metadata_.is_object()) {
          throw invalid_argument_error("transaction::event_metadata() must be an object, got " +
                                       std::string(tx.event_metadata_.type_name()));
        }
        write_options with_metadata = options;
        if (!with_metadata.event_metadata.is_object()) {
          if (!with_metadata.event_metadata.is_null()) {
            throw invalid_argument_error(
                "write_options::event_metadata must be an object or null, got " +
                std::string(with_metadata.event_metadata.type_name()));
          }
          with_metadata.event_metadata = json::object();
        }
        for (auto& [key, value] : tx.event_metadata_.items())
          with_metadata.event_metadata[key] = std::move(value);
        commit_writes(std::move(writes), with_metadata);
      } else {
        commit_writes(std::move(writes), options);
      }
      return;
    } catch (const conflict_error&) {
      if (!retry.enabled || attempt + 1 >= retry.max_attempts) throw;
      detail::backoff_sleep(retry, attempt);
    }
  }
}

}  // namespace eventsourced
