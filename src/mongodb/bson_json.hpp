// Private to the MongoDB engine: JSON (nlohmann::json) <-> BSON (libbson).
//
// JSON to BSON, for everything the engine sends:
//   object -> embedded document, keys in nlohmann's order (sorted by bytes: two equal JSON objects
//             give byte-identical BSON, which MongoDB's order-sensitive document comparison needs)
//   array -> array; string -> UTF-8 string (checked: invalid UTF-8 is refused); boolean; null
//   integer -> int64; an unsigned integer above 2^63-1 -> decimal128 (exact)
//   floating point -> double; NaN and infinities -> null (as the JSON text the other engines store)
// Refused with invalid_argument_error, before anything is sent: keys holding NUL (BSON keys are C
// strings), invalid UTF-8 in keys or strings, binary values, more than kMaxNestingDepth levels of
// nesting (MongoDB's limit), and documents larger than a limit given by the caller.
//
// BSON to JSON, for everything the engine reads: int32 and int64 -> integer, double -> floating
// point, decimal128 -> an integer when it is one that fits (int64 or uint64), else a floating
// point number (inexact), undefined -> null. Types JSON lacks (ObjectId, dates, binary, regular
// expressions, timestamps, ...) appear only in data written around the engine; they are read as
// MongoDB's relaxed Extended JSON ({"$oid": "..."}, {"$date": ...}).
//
// Thread safety: stateless functions; a bson_value is not shared between threads.
#pragma once

#include <bson/bson.h>

#include <cstddef>
#include <string_view>

#include <nlohmann/json.hpp>

namespace eventsourced::mongodb_detail {

using json = nlohmann::json;

// MongoDB refuses documents nested deeper than this.
inline constexpr int kMaxNestingDepth = 100;
// MongoDB's largest document (BSON bytes).
inline constexpr std::size_t kMaxDocumentBytes = 16 * 1024 * 1024;

// An owned, heap-allocated bson_t (a class of its own: bson_t's alignment attribute rules out
// std::unique_ptr<bson_t>, which would drop it).
class bson_ptr {
 public:
  explicit bson_ptr(bson_t* b = nullptr) noexcept : b_(b) {}
  bson_ptr(bson_ptr&& other) noexcept : b_(other.b_) { other.b_ = nullptr; }
  bson_ptr& operator=(bson_ptr&& other) noexcept {
    if (this != &other) {
      reset();
      b_ = other.b_;
      other.b_ = nullptr;
    }
    return *this;
  }
  bson_ptr(const bson_ptr&) = delete;
  bson_ptr& operator=(const bson_ptr&) = delete;
  ~bson_ptr() { reset(); }

  bson_t* get() const noexcept { return b_; }
  bson_t& operator*() const noexcept { return *b_; }
  bson_t* operator->() const noexcept { return b_; }

 private:
  void reset() noexcept {
    if (b_ != nullptr) bson_destroy(b_);
    b_ = nullptr;
  }
  bson_t* b_;
};

bson_ptr new_bson();

// Appends `value` under `key` to `out`. `depth` is the nesting level of `out` (1 for a top-level
// document). Throws invalid_argument_error as described above; `out` is then partly written.
void append_json(bson_t* out, std::string_view key, const json& value, int depth = 1);

// A BSON document of the members of a JSON object. Throws invalid_argument_error for anything but
// an object, for what append_json refuses, and when the result exceeds max_bytes.
bson_ptr to_bson(const json& object, std::size_t max_bytes = kMaxDocumentBytes);

// The JSON value of the element `it` points at.
json to_json(const bson_iter_t& it);
// The JSON object of a whole document.
json to_json(const bson_t& document);

}  // namespace eventsourced::mongodb_detail
