// Filters (engine/query.hpp) from any JSON: parsing, the reference matcher, and the SQLite
// translation run on real rows — the engines must agree with filter::matches and
// compare_for_sort ("Semantics (identical on every engine)").
//
// Input, one JSON value per line: the filter first, then documents (objects, up to
// kMaxInputDocuments) and sort keys (an array of paths, "-path" for descending); other lines are
// ignored. A few fixed documents join the input's, so that a filter alone has something to match.
//
// Each input's documents are written to a memory and a SQLite (:memory:) engine, found with the
// filter and sort, and deleted again. Promises checked: parsing refuses with
// invalid_argument_error or succeeds; on both engines the documents found are exactly those
// filter::matches accepts, in compare_for_sort order (ties by id), with the bodies stored. Inputs
// that reach a difference src/engine/sqlite_query.hpp lists as known are not compared.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <eventsourced/engine/engine.hpp>
#include <eventsourced/engine/open.hpp>
#include <eventsourced/engine/query.hpp>

#include "engine/sqlite_query.hpp"
#include "fuzz_support.hpp"

using eventsourced::json;
namespace es = eventsourced;
namespace fuzz = eventsourced::fuzz;

namespace {

constexpr std::size_t kMaxInputDocuments = 12;
constexpr std::string_view kCollection = "fuzz";
// Deeper than the filter's own limit, so that filter::parse's depth check is reached.
constexpr std::size_t kLineDepth = es::kDefaultMaxJsonDepth + 8;

// One of each kind the semantics distinguish, plus the edges of numbers.
const std::vector<json>& fixed_documents() {
  static const std::vector<json> documents = {
      json::parse(R"({"a": 1, "b": "x", "c": {"d": [1, 2, {"e": null}]}, "t": [true]})"),
      json::parse(R"({"a": 1.5, "b": "y", "c": {"d": []}, "n": null})"),
      json::parse(R"({"a": -9223372036854775808, "b": "", "c": [], "s": {"k": "v"}})"),
      json::parse(R"({"a": "1", "b": false, "c": {"d": {"0": "zero"}}})"),
      json::parse(R"({"a": [1], "b": true, "x.y": 2, "u": "\u00e9z"})"),
      json::parse(R"({"a": 9007199254740993, "b": 0.1, "c": {}, "e": 1e308})"),
  };
  return documents;
}

// SQLite reads integers above INT64_MAX as reals (sqlite_query.hpp, known differences).
bool has_unsigned_beyond_int64(const json& v) {
  if (v.is_number_unsigned()) {
    return v.get<std::uint64_t>() >
           static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  }
  if (v.is_structured()) {
    return std::any_of(v.begin(), v.end(),
                       [](const json& c) { return has_unsigned_beyond_int64(c); });
  }
  return false;
}

// SQLite's JSON functions end a string at U+0000 (sqlite_query.hpp, known differences).
bool has_string_with_nul(const json& v) {
  if (v.is_string()) return v.get_ref<const std::string&>().find('\0') != std::string::npos;
  if (v.is_structured()) {
    return std::any_of(v.begin(), v.end(), [](const json& c) { return has_string_with_nul(c); });
  }
  return false;
}

// SQLite sorts integers beyond 2^53 against reals exactly, compare_for_sort as doubles
// (sqlite_query.hpp, known differences). Only the values sort keys name count: objects and
// arrays sort by their text.
bool sorts_integer_beyond_2_53(const es::query& q, const json& doc) {
  constexpr std::int64_t kLimit = std::int64_t{1} << 53;
  for (const auto& key : q.sort) {
    const json* v = es::field_path::parse(key.path).resolve(doc);
    if (v == nullptr || !v->is_number_integer()) continue;
    if (v->is_number_unsigned()) {
      if (v->get<std::uint64_t>() > static_cast<std::uint64_t>(kLimit)) return true;
    } else if (v->get<std::int64_t>() > kLimit || v->get<std::int64_t>() < -kLimit) {
      return true;
    }
  }
  return false;
}

struct input_document {
  std::string id;
  json body;
};

// What every engine must return: the matching documents in the query's order.
std::vector<std::string> expected_ids(const es::query& q, const std::vector<input_document>& docs) {
  std::vector<const input_document*> found;
  for (const auto& d : docs) {
    if (q.where.matches(d.body)) found.push_back(&d);
  }
  std::vector<es::field_path> paths;
  for (const auto& key : q.sort) paths.push_back(es::field_path::parse(key.path));
  std::stable_sort(
      found.begin(), found.end(), [&](const input_document* a, const input_document* b) {
        for (std::size_t i = 0; i < paths.size(); ++i) {
          int c = es::compare_for_sort(paths[i].resolve(a->body), paths[i].resolve(b->body));
          if (q.sort[i].order == es::sort_order::descending) c = -c;
          if (c != 0) return c < 0;
        }
        return a->id < b->id;
      });
  std::vector<std::string> ids;
  for (const auto* d : found) ids.push_back(d->id);
  return ids;
}

std::string describe(const std::vector<std::string>& ids) {
  std::string out = "[";
  for (const auto& id : ids) out += (out.size() > 1 ? ", " : "") + id;
  return out + "]";
}

struct engines {
  std::unique_ptr<es::engine> memory = es::open_engine("memory:");
  std::unique_ptr<es::engine> sqlite = es::open_engine("sqlite::memory:");
};

// Runs q on e over docs (written for the call, deleted after it) and checks the result.
void check_engine(es::engine& e, const char* name, const es::query& q,
                  const std::vector<input_document>& docs, const std::vector<std::string>& expected,
                  bool compare_order, const std::string& filter_text) {
  es::commit_request put;
  for (const auto& d : docs) {
    put.writes.push_back({.collection = std::string(kCollection), .id = d.id, .body = d.body});
  }
  const es::commit_result written = e.commit(put);
  std::vector<es::stored_document> found;
  std::string error;
  try {
    found = e.find(kCollection, q);
  } catch (const std::exception& ex) {
    error = ex.what();
  }
  es::commit_request erase;
  for (std::size_t i = 0; i < docs.size(); ++i) {
    erase.writes.push_back({.collection = std::string(kCollection),
                            .id = docs[i].id,
                            .expected_version = written.versions[i],
                            .op = es::write_op::erase});
  }
  e.commit(erase);
  if (!error.empty())
    fuzz::fail(std::string(name) + ": find failed: " + error + " for " + filter_text);

  std::vector<std::string> ids;
  for (const auto& d : found) ids.push_back(d.id);
  std::vector<std::string> sorted_ids = ids, sorted_expected = expected;
  if (!compare_order) {
    std::sort(sorted_ids.begin(), sorted_ids.end());
    std::sort(sorted_expected.begin(), sorted_expected.end());
  }
  if (sorted_ids != sorted_expected) {
    fuzz::fail(std::string(name) + " found " + describe(ids) + ", filter::matches " +
               describe(expected) + " for " + filter_text);
  }
  for (const auto& d : found) {
    const auto it =
        std::find_if(docs.begin(), docs.end(), [&](const auto& x) { return x.id == d.id; });
    if (d.body != it->body) {
      fuzz::fail(std::string(name) + " returned " + d.body.dump() + " for the stored " +
                 it->body.dump());
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static engines* const all = new engines();  // for the whole run: opening SQLite is slow

  const auto input = fuzz::lines(fuzz::as_text(data, size), 2 + 2 * kMaxInputDocuments);
  if (input.empty()) return 0;
  const auto spec = fuzz::parse_line(input[0], kLineDepth);
  if (!spec) return 0;
  es::query q;
  try {
    q.where = es::filter::parse(*spec);
  } catch (const es::invalid_argument_error&) {
    return 0;  // the only way parse may refuse
  }

  std::vector<input_document> docs;
  for (const json& body : fixed_documents()) {
    docs.push_back({"f" + std::to_string(docs.size()), body});
  }
  for (std::size_t i = 1; i < input.size(); ++i) {
    auto value = fuzz::parse_line(input[i], es::kDefaultMaxJsonDepth);
    if (!value) continue;
    if (value->is_object() && docs.size() < fixed_documents().size() + kMaxInputDocuments) {
      // Ids sort like the documents' order, whatever the count.
      docs.push_back(
          {"i" + std::string(1, static_cast<char>('a' + docs.size())), std::move(*value)});
    } else if (value->is_array() && q.sort.empty()) {
      for (const json& key : *value) {
        if (!key.is_string()) continue;
        std::string path = key.get<std::string>();
        const bool descending = path.starts_with('-');
        if (descending) path.erase(0, 1);
        q.sort.push_back(
            {path, descending ? es::sort_order::descending : es::sort_order::ascending});
      }
    }
  }

  // The translation on its own, both forms: it must not fail for a filter parse accepted, and an
  // invalid sort path is the one error it may raise.
  try {
    es::sqlite_detail::translate_find(kCollection, q);
    es::sqlite_detail::translate_find(kCollection, q, es::sqlite_detail::text_check::json_valid);
  } catch (const es::invalid_argument_error&) {
    return 0;
  }

  if (std::any_of(docs.begin(), docs.end(), [](const input_document& d) {
        return has_unsigned_beyond_int64(d.body) || has_string_with_nul(d.body);
      })) {
    return 0;
  }
  const bool compare_order = std::none_of(docs.begin(), docs.end(), [&](const input_document& d) {
    return sorts_integer_beyond_2_53(q, d.body);
  });
  const std::vector<std::string> expected = expected_ids(q, docs);
  const std::string filter_text = spec->dump();
  check_engine(*all->memory, "memory", q, docs, expected, compare_order, filter_text);
  check_engine(*all->sqlite, "sqlite", q, docs, expected, compare_order, filter_text);
  return 0;
}
