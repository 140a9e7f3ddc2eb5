// collection<T>: typed access to the documents of one collection.
//
// T converts to and from JSON by the nlohmann::json convention (ADL to_json / from_json, or
// NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE). Its JSON form must be an object; if T has members named
// like store_options::id_field and ::version_field ("id" and "version" by default) the store
// fills them: the version T carries is always the stored one.
//
//   auto players = store->collection<Player>("players");
//   players.find_one_and_upsert(Player{.id = "p1", .name = "Ann"});
//   auto [player, diff, events] = players.find_one_and_update("p1", [](Player p) { p.gold += 50;
//   return p;
//   });
//
// Every operation is the one of document_collection (document_collection.hpp documents the
// semantics); a body that does not convert to T throws serialization_error and changes nothing.
//
// \par Thread safety
// A cheap, copyable handle; use it from any number of threads (the store is thread-safe).
#pragma once

#include <functional>
#include <optional>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <eventsourced/detail/convert.hpp>
#include <eventsourced/storage/document_collection.hpp>

namespace eventsourced {

namespace detail {

// Runs a user edit (returning T or edit_result<T>) on a JSON body.
template <typename T, typename F>
edit_result<json> run_typed_edit(F& edit, const json& body, std::string_view collection,
                                 std::string_view id) {
  using returned = std::invoke_result_t<F&, T>;
  static_assert(std::is_convertible_v<returned, edit_result<T>>,
                "an edit function must take T and return T or eventsourced::edit_result<T>");
  edit_result<T> result = edit(from_body<T>(body, collection, id));
  if (result.is_no_change()) return no_change;
  if (result.is_delete()) return delete_document;
  return to_body(result.document(), collection);
}

}  // namespace detail

template <typename T>
class collection {
 public:
  collection(std::shared_ptr<store> owner, std::string_view name) : docs_(std::move(owner), name) {}

  const std::string& name() const noexcept { return docs_.name(); }
  // The untyped view of the same collection.
  document_collection& documents() noexcept { return docs_; }

  std::optional<T> find_one(std::string_view id) const {
    auto body = docs_.find_one(id);
    if (!body) return std::nullopt;
    return detail::from_body<T>(*body, name(), id);
  }

  std::vector<T> find_many(const json& filter = json::object(),
                           const find_options& options = {}) const {
    std::vector<T> out;
    for (const json& body : docs_.find_many(filter, options)) {
      out.push_back(detail::from_body<T>(body, name(), docs_.id_of(body)));
    }
    return out;
  }

  update_result<T> find_one_and_upsert(const T& document, const write_options& options = {}) {
    return typed(docs_.find_one_and_upsert(detail::to_body(document, name()), options));
  }

  // edit: T(T) or edit_result<T>(T). See edit.hpp.
  template <typename F>
  update_result<T> find_one_and_update(std::string_view id, F edit,
                                       const write_options& options = {}) {
    return typed(docs_.find_one_and_update(
        id, [&](const json& body) { return detail::run_typed_edit<T>(edit, body, name(), id); },
        options));
  }

  update_result<T> update_one(std::string_view id, const json& update,
                              const write_options& options = {}) {
    return typed(docs_.update_one(id, update, options));
  }

  // edit: S(S), where S is the type of the sub-tree at path (json by default). A missing
  // sub-tree is passed as S{} (null for json).
  template <typename S = json, typename F>
  update_result<T> update_section(std::string_view id, std::string_view path, F edit,
                                  const write_options& options = {}) {
    return typed(docs_.update_section(
        id, path,
        [&](json section) -> json {
          if constexpr (std::is_same_v<S, json>) {
            return edit(std::move(section));
          } else {
            S value = section.is_null() ? S{} : detail::from_body<S>(section, name(), id);
            json out;
            try {
              out = edit(std::move(value));
            } catch (const json::exception& e) {
              throw serialization_error("section '" + std::string(path) + "' of '" + name() + "/" +
                                        std::string(id) +
                                        "' does not convert to JSON: " + e.what());
            }
            return out;
          }
        },
        options));
  }

  bool delete_one(std::string_view id, const write_options& options = {}) {
    return docs_.delete_one(id, options);
  }

 private:
  update_result<T> typed(update_result<json> r) const {
    return {detail::from_body<T>(r.document, name(), docs_.id_of(r.document)), std::move(r.diff),
            std::move(r.events)};
  }

  document_collection docs_;
};

}  // namespace eventsourced
