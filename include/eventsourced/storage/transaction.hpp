// Several documents, possibly in several collections, committed together or not at all.
//
//   store->with_transaction([](eventsourced::transaction& tx) {
//     auto players = tx.collection<Player>("players");
//     auto from = players.find_one("ann").value();
//     auto to = players.find_one("bob").value();
//     from.gold -= 10;
//     to.gold += 10;
//     players.put(from);
//     players.put(to);
//   });
//
// Reads inside a transaction see the transaction's own writes. At commit, every document the
// transaction read or wrote is checked against the version it was read at (a document read as
// missing must still be missing), in one engine commit: if any changed meanwhile, nothing is
// written and the function runs again on fresh state (store_options::retry, or the per-call
// retry_options); when retries are off or run out, conflict_error propagates. So transactions
// are serializable over the documents they touch by id. find_many is not offered inside a
// transaction, because a range read cannot be validated this way.
//
// The function may run several times: keep side effects other than transaction calls out of
// it. If it throws, nothing is written and the exception propagates unchanged (it is not
// retried, even when it is a conflict_error).
//
// \par Thread safety
// A transaction object belongs to the thread running the function; do not share it.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <eventsourced/detail/convert.hpp>
#include <eventsourced/storage/diff.hpp>
#include <eventsourced/storage/edit.hpp>

namespace eventsourced {

class store;
template <typename T, typename Tx>
class transaction_collection;

class transaction {
 public:
  transaction(const transaction&) = delete;
  transaction& operator=(const transaction&) = delete;

  template <typename T>
  transaction_collection<T, transaction> collection(std::string_view name) {
    return transaction_collection<T, transaction>(*this, name);
  }

  // Untyped operations; transaction_collection<T> wraps them.
  std::optional<json> find_one(std::string_view collection, std::string_view id);
  // Creates or replaces the document with this body (its id is read from the id field).
  void put(std::string_view collection, json body);
  // Throws not_found_error when the document does not exist. Returns the new body.
  json find_one_and_update(std::string_view collection, std::string_view id,
                           const std::function<edit_result<json>(const json&)>& edit);
  // Returns false when the document did not exist.
  bool delete_one(std::string_view collection, std::string_view id);

  const store& owner() const noexcept { return store_; }

  // Event metadata of this attempt's commit: its members are added to write_options::event_metadata
  // (replacing members of the same name) for the mapper and the events of this commit. Null at the
  // start of every attempt. For layers built on transactions that tell their mapper what each
  // attempt read (event_sync_storage's sync transactions); reserved members (kReservedPrefix)
  // reach the mapper only, as in write_options::event_metadata.
  json& event_metadata() noexcept { return event_metadata_; }

 private:
  friend class store;
  explicit transaction(store& owner) : store_(owner) {}

  struct touched {
    std::int64_t read_version = 0;  // 0: read as missing
    json before;                    // null: read as missing
    std::optional<json> after;      // set once written; null json: deleted
  };
  touched& touch(std::string_view collection, std::string_view id);

  store& store_;
  std::map<std::pair<std::string, std::string>, touched> touched_;
  json event_metadata_;
};

// Typed access to one collection of a transaction. Tx is transaction, or a type offering the same
// untyped operations (event_sync_storage's sync_transaction).
template <typename T, typename Tx = transaction>
class transaction_collection {
 public:
  transaction_collection(Tx& tx, std::string_view name) : tx_(tx), name_(name) {}

  std::optional<T> find_one(std::string_view id) {
    auto body = tx_.find_one(name_, id);
    if (!body) return std::nullopt;
    return detail::from_body<T>(*body, name_, id);
  }
  void put(const T& document) { tx_.put(name_, detail::to_body(document, name_)); }
  // edit: T(T) or edit_result<T>(T); returns the document as the transaction now sees it.
  template <typename F>
  std::optional<T> find_one_and_update(std::string_view id, F edit) {
    json body = tx_.find_one_and_update(name_, id, [&](const json& current) -> edit_result<json> {
      edit_result<T> r = edit(detail::from_body<T>(current, name_, id));
      if (r.is_no_change()) return no_change;
      if (r.is_delete()) return delete_document;
      return detail::to_body(r.document(), name_);
    });
    if (body.is_null()) return std::nullopt;
    return detail::from_body<T>(body, name_, id);
  }
  bool delete_one(std::string_view id) { return tx_.delete_one(name_, id); }

 private:
  Tx& tx_;
  std::string name_;
};

}  // namespace eventsourced
