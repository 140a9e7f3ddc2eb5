// What an edit function passed to find_one_and_update may return.
//
//   players.find_one_and_update("p1", [](Player p) { p.gold += 50; return p; });
//   players.find_one_and_update("p1", [](Player p) -> eventsourced::edit_result<Player> {
//     if (p.gold < 10) return eventsourced::no_change;   // no write, no version bump
//     if (p.banned) return eventsourced::delete_document;
//     p.gold -= 10;
//     return p;
//   });
//
// Returning a document equal to the current one is also treated as no change.
#pragma once

#include <utility>
#include <variant>

namespace eventsourced {

struct no_change_t {
  explicit constexpr no_change_t() = default;
};
inline constexpr no_change_t no_change{};

struct delete_document_t {
  explicit constexpr delete_document_t() = default;
};
inline constexpr delete_document_t delete_document{};

template <typename T>
class edit_result {
 public:
  edit_result(T document) : value_(std::move(document)) {}     // NOLINT: implicit on purpose
  edit_result(no_change_t) : value_(no_change) {}              // NOLINT
  edit_result(delete_document_t) : value_(delete_document) {}  // NOLINT

  bool is_no_change() const noexcept { return std::holds_alternative<no_change_t>(value_); }
  bool is_delete() const noexcept { return std::holds_alternative<delete_document_t>(value_); }
  // The new document; only when neither is_no_change() nor is_delete().
  T& document() { return std::get<T>(value_); }

 private:
  std::variant<T, no_change_t, delete_document_t> value_;
};

}  // namespace eventsourced
