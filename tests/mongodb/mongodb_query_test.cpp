// Filters and sorts as MongoDB aggregation pipelines (src/mongodb/mongo_query.hpp).
//
// Without a server, the translation is checked two ways: its shape (literals always wrapped, the
// pipeline's stages), and its meaning — a small interpreter of the aggregation operators the
// translation uses, written from MongoDB's documentation (BSON comparison order, "missing"),
// evaluates the translated expressions on random documents, and the result must equal
// filter::matches(), the reference semantics, every time. The engine conformance suite runs the
// real thing against a server when EVENTSOURCED_TEST_MONGODB_URI is set.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <eventsourced/engine/query.hpp>
#include <eventsourced/error.hpp>

#include "mongodb/mongo_query.hpp"

namespace {

using eventsourced::filter;
using eventsourced::query;
using eventsourced::mongodb_detail::filter_expression;
using eventsourced::mongodb_detail::find_pipeline;
using json = nlohmann::json;

// --- a model of the aggregation operators the translation uses -------------------------------

using value = std::optional<json>;  // nullopt: "missing"

// BSON's order of kinds (the ones JSON has): null < numbers < strings < objects < arrays < bool.
int kind_rank(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return 0;
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float:
      return 1;
    case json::value_t::string:
      return 2;
    case json::value_t::object:
      return 3;
    case json::value_t::array:
      return 4;
    case json::value_t::boolean:
      return 5;
    default:
      return 6;
  }
}

// BSON comparison (as MongoDB compares values): kinds by rank; numbers by value; strings by
// bytes; objects field by field (name, then value), then by size; arrays element by element.
int bson_compare(const json& a, const json& b) {
  const int ra = kind_rank(a), rb = kind_rank(b);
  if (ra != rb) return ra < rb ? -1 : 1;
  switch (ra) {
    case 0:
      return 0;
    case 1: {
      if (a.is_number_float() || b.is_number_float()) {
        const double x = a.get<double>(), y = b.get<double>();
        return x < y ? -1 : x > y ? 1 : 0;
      }
      const auto x = a.get<std::int64_t>(), y = b.get<std::int64_t>();
      return x < y ? -1 : x > y ? 1 : 0;
    }
    case 2: {
      const int c = a.get_ref<const std::string&>().compare(b.get_ref<const std::string&>());
      return c < 0 ? -1 : c > 0 ? 1 : 0;
    }
    case 3: {
      auto i = a.items().begin();
      auto j = b.items().begin();
      for (; i != a.items().end() && j != b.items().end(); ++i, ++j) {
        if (const int c = i.key().compare(j.key()); c != 0) return c < 0 ? -1 : 1;
        if (const int c = bson_compare(i.value(), j.value()); c != 0) return c;
      }
      return a.size() == b.size() ? 0 : a.size() < b.size() ? -1 : 1;
    }
    case 4: {
      for (std::size_t k = 0; k < a.size() && k < b.size(); ++k) {
        if (const int c = bson_compare(a[k], b[k]); c != 0) return c;
      }
      return a.size() == b.size() ? 0 : a.size() < b.size() ? -1 : 1;
    }
    case 5:
      return a.get<bool>() == b.get<bool>() ? 0 : a.get<bool>() ? 1 : -1;
    default:
      return 0;
  }
}

std::string type_name(const value& v) {
  if (!v) return "missing";
  switch (v->type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "bool";
    case json::value_t::number_float:
      return "double";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "long";
    case json::value_t::string:
      return "string";
    case json::value_t::object:
      return "object";
    case json::value_t::array:
      return "array";
    default:
      return "unknown";
  }
}

bool truthy(const value& v) {
  if (!v || v->is_null()) return false;
  if (v->is_boolean()) return v->get<bool>();
  if (v->is_number()) return v->get<double>() != 0;
  return true;
}

// Missing compares below null in aggregation comparisons.
int compare_values(const value& a, const value& b) {
  if (!a || !b) return !a && !b ? 0 : !a ? -1 : 1;
  return bson_compare(*a, *b);
}

class model {
 public:
  explicit model(const json& body) : body_(body) {}

  value eval(const json& e) const {
    if (e.is_string()) {
      const auto& s = e.get_ref<const std::string&>();
      if (s == "$$REMOVE") return std::nullopt;
      if (s == "$body") return body_;
      if (!s.empty() && s[0] == '$') throw std::logic_error("unexpected field path " + s);
      return e;
    }
    if (e.is_array()) {  // an array expression: each element evaluated
      json out = json::array();
      for (const json& element : e) {
        const value v = eval(element);
        out.push_back(v ? *v : json(nullptr));
      }
      return out;
    }
    if (!e.is_object()) return e;
    if (!e.empty() && e.begin().key()[0] != '$') {  // an expression object: each field evaluated
      json out = json::object();
      for (const auto& [key, field] : e.items()) {
        if (const value v = eval(field)) out[key] = *v;
      }
      return out;
    }
    if (e.size() != 1) throw std::logic_error("an operator object has one key: " + e.dump());
    const std::string op = e.begin().key();
    const json& args = e.begin().value();
    if (op == "$literal") return args;
    if (op == "$type") return json(type_name(eval(args)));
    if (op == "$isNumber") {
      const value v = eval(args);
      return json(v && v->is_number());
    }
    if (op == "$isArray") {
      const value v = eval(args);
      return json(v && v->is_array());
    }
    if (op == "$and" || op == "$or") {
      const bool is_and = op == "$and";
      for (const json& a : args) {
        if (truthy(eval(a)) != is_and) return json(!is_and);
      }
      return json(is_and);
    }
    if (op == "$not") return json(!truthy(eval(args.at(0))));
    if (op == "$eq" || op == "$ne" || op == "$gt" || op == "$gte" || op == "$lt" || op == "$lte") {
      const int c = compare_values(eval(args.at(0)), eval(args.at(1)));
      if (op == "$eq") return json(c == 0);
      if (op == "$ne") return json(c != 0);
      if (op == "$gt") return json(c > 0);
      if (op == "$gte") return json(c >= 0);
      if (op == "$lt") return json(c < 0);
      return json(c <= 0);
    }
    if (op == "$in") {
      const value needle = eval(args.at(0));
      const value haystack = eval(args.at(1));
      if (!haystack || !haystack->is_array()) throw std::logic_error("$in needs an array");
      for (const json& h : *haystack) {
        if (compare_values(needle, h) == 0) return json(true);
      }
      return json(false);
    }
    if (op == "$cond") return truthy(eval(args.at(0))) ? eval(args.at(1)) : eval(args.at(2));
    // As documented: a missing or null input gives null, anything but an object is an error.
    if (op == "$getField") {
      const value input = eval(args.at("input"));
      const value field = eval(args.at("field"));
      if (!input || input->is_null()) return json(nullptr);
      if (!input->is_object()) throw std::logic_error("$getField of a non-object: an error");
      auto it = input->find(field->get<std::string>());
      if (it == input->end()) return std::nullopt;
      return *it;
    }
    if (op == "$arrayElemAt") {
      // As documented: a missing or null array gives null, a non-array is an error, an index
      // past the end gives nothing (missing).
      const value array = eval(args.at(0));
      const auto index = eval(args.at(1))->get<std::int64_t>();
      if (!array || array->is_null()) return json(nullptr);
      if (!array->is_array()) throw std::logic_error("$arrayElemAt of a non-array: an error");
      if (index < 0 || static_cast<std::size_t>(index) >= array->size()) return std::nullopt;
      return (*array)[static_cast<std::size_t>(index)];
    }
    if (op == "$switch") {
      for (const json& branch : args.at("branches")) {
        if (truthy(eval(branch.at("case")))) return eval(branch.at("then"));
      }
      return eval(args.at("default"));
    }
    throw std::logic_error("the model does not know " + op);
  }

 private:
  json body_;
};

// --- random documents and filters -----------------------------------------------------------

const std::vector<std::string> kPaths = {"a",      "b", "a.b", "a.0",   "tags", "tags.0",
                                         "tags.1", "n", "s",   "a.b.c", "0",    "tags.x"};

json random_scalar(std::mt19937_64& rng) {
  switch (rng() % 9) {
    case 0:
      return nullptr;
    case 1:
      return rng() % 2 == 0;
    case 2:
      return static_cast<std::int64_t>(rng() % 5) - 2;
    case 3:
      return (static_cast<double>(rng() % 9) - 4) / 2;  // -2 .. 2, halves: 1.0 == 1 included
    case 4:
      return std::string(1, static_cast<char>('a' + rng() % 3));
    case 5:
      return "$x";  // must be compared as a string, never read as a field path
    case 6:
      return json::array({static_cast<std::int64_t>(rng() % 3)});
    case 7:
      return json{{"b", static_cast<std::int64_t>(rng() % 2)}};
    default:
      return json::array();
  }
}

// Inside arrays and objects only integers: MongoDB finds [1] equal to [1.0], the reference (by
// JSON text) does not — a documented difference (mongo_query.hpp), not tested here.
json random_value(std::mt19937_64& rng, int depth) {
  const int kind = static_cast<int>(rng() % (depth > 2 ? 1 : 3));
  if (kind == 0) {
    json v = random_scalar(rng);
    if (depth > 1 && v.is_number_float()) v = static_cast<std::int64_t>(v.get<double>() * 2);
    return v;
  }
  if (kind == 1) {
    json a = json::array();
    for (std::size_t n = rng() % 3; n > 0; --n) a.push_back(random_value(rng, depth + 1));
    return a;
  }
  json o = json::object();
  static const char* keys[] = {"b", "c", "0", "x"};
  for (std::size_t n = rng() % 3; n > 0; --n) o[keys[rng() % 4]] = random_value(rng, depth + 1);
  return o;
}

json random_document(std::mt19937_64& rng) {
  json doc = {{"id", "d"}};
  static const char* fields[] = {"a", "b", "tags", "n", "s", "0"};
  for (const char* f : fields) {
    if (rng() % 3 != 0) doc[f] = random_value(rng, 1);
  }
  return doc;
}

json random_condition(std::mt19937_64& rng, int depth) {
  const std::string path = kPaths[rng() % kPaths.size()];
  switch (rng() % (depth > 1 ? 10 : 12)) {
    case 0:
      return {{path, random_scalar(rng)}};
    case 1:
      return {{path, {{"$eq", random_scalar(rng)}}}};
    case 2:
      return {{path, {{"$ne", random_scalar(rng)}}}};
    case 3:
    case 4: {
      static const char* ops[] = {"$gt", "$gte", "$lt", "$lte"};
      json operand = rng() % 2 == 0 ? json(static_cast<std::int64_t>(rng() % 5) - 2)
                                    : json(std::string(1, static_cast<char>('a' + rng() % 3)));
      if (rng() % 4 == 0) operand = 0.5;
      return {{path, {{ops[rng() % 4], operand}}}};
    }
    case 5:
    case 6: {
      json list = json::array();
      for (std::size_t n = rng() % 3; n > 0; --n) list.push_back(random_scalar(rng));
      return {{path, {{rng() % 2 == 0 ? "$in" : "$nin", list}}}};
    }
    case 7:
      return {{path, {{"$exists", rng() % 2 == 0}}}};
    case 8:
      return {{path, {{"$gte", -1}, {"$lt", 2}}}};  // several operators: implicit AND
    case 9:
      return {{path, nullptr}};
    default: {
      json list = json::array();
      for (std::size_t n = 1 + rng() % 3; n > 0; --n)
        list.push_back(random_condition(rng, depth + 1));
      return {{rng() % 2 == 0 ? "$and" : "$or", list}};
    }
  }
}

bool translated_matches(const filter& f, const json& doc) {
  if (f.matches_all()) return true;
  const auto result = model(doc).eval(filter_expression(*f.root()));
  return truthy(result);
}

TEST(mongodb_query, translated_filters_agree_with_the_reference_semantics_on_random_documents) {
  std::mt19937_64 rng(20261205);
  int matched = 0;
  for (int i = 0; i < 2500; ++i) {
    json spec = random_condition(rng, 0);
    if (rng() % 3 == 0) spec.update(random_condition(rng, 0));  // several fields: implicit AND
    const filter f = filter::parse(spec);
    for (int d = 0; d < 10; ++d) {
      const json doc = random_document(rng);
      const bool expected = f.matches(doc);
      matched += expected ? 1 : 0;
      ASSERT_EQ(translated_matches(f, doc), expected)
          << "filter " << spec.dump() << "\ndocument " << doc.dump() << "\ntranslation "
          << filter_expression(*f.root()).dump();
    }
  }
  EXPECT_GT(matched, 2500) << "the random filters should match often enough to prove something";
  EXPECT_LT(matched, 22500) << "... and fail often enough";
}

TEST(mongodb_query, implicit_array_traversal_does_not_happen) {
  const json doc = {{"id", "d"}, {"tags", {"a", "b"}}, {"items", {{{"name", "x"}}}}};
  for (const json& spec : {json{{"tags", "a"}}, json{{"items.name", "x"}},
                           json{{"tags", {{"$in", {"a"}}}}}, json{{"tags", {{"$gt", "0"}}}}}) {
    const filter f = filter::parse(spec);
    EXPECT_FALSE(f.matches(doc)) << spec.dump();
    EXPECT_FALSE(translated_matches(f, doc)) << spec.dump();
  }
  EXPECT_TRUE(translated_matches(filter::parse({{"tags", {"a", "b"}}}), doc));
  EXPECT_TRUE(translated_matches(filter::parse({{"items.0.name", "x"}}), doc));
  EXPECT_TRUE(translated_matches(filter::parse({{"tags.1", "b"}}), doc));
}

// Every operand reaches MongoDB as {$literal: ...}: none can be read as a field path or an
// operator.
void expect_operands_literal(const json& e, const json& spec) {
  if (e.is_object()) {
    for (const auto& [key, child] : e.items()) {
      if (key == "$literal") continue;
      expect_operands_literal(child, spec);
    }
  } else if (e.is_array()) {
    for (const json& child : e) expect_operands_literal(child, spec);
  } else if (e.is_string()) {
    const auto& s = e.get_ref<const std::string&>();
    const bool allowed = s == "$body" || s == "$$REMOVE" || s == "missing" || s == "null" ||
                         s == "object" || s == "string" || s == "bool";
    EXPECT_TRUE(allowed) << "a bare string '" << s << "' in the translation of " << spec.dump();
  }
}

TEST(mongodb_query, operands_are_always_literals) {
  for (const json& spec :
       {json{{"a", "$where"}}, json{{"a", {{"$gt", "$b"}}}}, json{{"a", {{"$in", {"$$ROOT", 1}}}}},
        json{{"a", {{"$eq", {{"$ne", 1}}}}}}, json{{"a.b", {{"$nin", {"x"}}}}}}) {
    const filter f = filter::parse(spec);
    expect_operands_literal(filter_expression(*f.root()), spec);
  }
  // And they are compared as values: "$b" is the string "$b".
  const json doc = {{"a", "$where"}, {"b", "zzz"}};
  EXPECT_TRUE(translated_matches(filter::parse({{"a", "$where"}}), doc));
  EXPECT_FALSE(translated_matches(filter::parse({{"a", {{"$gt", "$z"}}}}), doc));
}

TEST(mongodb_query, the_pipeline_keeps_live_documents_sorts_by_id_and_pages) {
  query q;
  q.skip = 5;
  q.limit = 10;
  const json p = find_pipeline(q);
  ASSERT_EQ(p.size(), 4u) << p.dump();
  EXPECT_EQ(p[0], (json{{"$match", {{"body", {{"$type", "object"}}}}}}));
  EXPECT_EQ(p[1], (json{{"$sort", {{"_id", 1}}}}));
  EXPECT_EQ(p[2], (json{{"$skip", 5}}));
  EXPECT_EQ(p[3], (json{{"$limit", 10}}));

  q.where = filter::parse({{"n", {{"$gt", 1}}}});
  q.skip = 0;
  q.limit.reset();
  const json with_filter = find_pipeline(q);
  ASSERT_EQ(with_filter.size(), 3u);
  EXPECT_TRUE(with_filter[1]["$match"].contains("$expr"));
}

// The order of the $sort keys is the order of the sort; rank first, then value; id last.
TEST(mongodb_query, sort_keys_come_in_order_and_ties_go_by_id) {
  query q;
  for (int i = 0; i < 12; ++i) {
    q.sort.push_back({.path = "f" + std::to_string(i),
                      .order = i % 2 == 0 ? eventsourced::sort_order::ascending
                                          : eventsourced::sort_order::descending});
  }
  const json p = find_pipeline(q);
  const json& sort = p.at(2).at("$sort");
  std::vector<std::string> keys;
  for (const auto& [key, direction] : sort.items()) keys.push_back(key);
  ASSERT_EQ(keys.size(), 25u);
  EXPECT_EQ(keys.front(), "_es_k000r");
  EXPECT_EQ(keys[1], "_es_k000v");
  EXPECT_EQ(keys[22], "_es_k011r");
  EXPECT_EQ(keys.back(), "_id");
  EXPECT_EQ(sort["_es_k001v"], -1);
  EXPECT_EQ(sort["_id"], 1) << "ties by id ascending, also when descending";
  query bad;
  bad.sort.push_back({.path = "a..b"});
  EXPECT_THROW(find_pipeline(bad), eventsourced::invalid_argument_error);
}

// The computed sort keys, sorted the way $sort sorts, order documents as compare_for_sort does —
// for every kind; objects and arrays only where MongoDB's element-by-element order and the
// reference's JSON-text order agree (the documented difference).
TEST(mongodb_query, sort_keys_order_documents_as_compare_for_sort) {
  std::mt19937_64 rng(7);
  for (int round = 0; round < 300; ++round) {
    query q;
    q.sort.push_back({.path = rng() % 2 == 0 ? "n" : "a.0",
                      .order = rng() % 2 == 0 ? eventsourced::sort_order::ascending
                                              : eventsourced::sort_order::descending});
    const eventsourced::field_path path = eventsourced::field_path::parse(q.sort[0].path);
    const json stage = find_pipeline(q).at(1).at("$addFields");
    struct row {
      std::string id;
      json body;
      value rank, key;
    };
    std::vector<row> rows;
    for (int d = 0; d < 12; ++d) {
      json body = {{"id", "d" + std::to_string(d)}};
      json v = random_scalar(rng);
      while (v.is_object() || v.is_array()) v = random_scalar(rng);
      // Arrays of two digits: their JSON text orders them as MongoDB orders them element by
      // element, but not as $sort orders a bare array (by its smallest or largest element).
      if (rng() % 4 == 0) v = json::array({rng() % 3, rng() % 3});
      if (rng() % 5 != 0) {
        if (q.sort[0].path == "n") {
          body["n"] = v;
        } else {
          body["a"] = json::array({v});
        }
      }
      model m(body);
      rows.push_back(
          {body["id"], body, m.eval(stage.at("_es_k000r")), m.eval(stage.at("_es_k000v"))});
    }
    const int direction = q.sort[0].order == eventsourced::sort_order::ascending ? 1 : -1;
    // $sort reads an absent field as null.
    for (row& r : rows) {
      if (!r.key) r.key = json(nullptr);
    }
    // $sort orders by a bare array's smallest element (ascending) or largest (descending).
    auto sort_value = [&](const value& v) -> value {
      if (!v || !v->is_array() || v->empty()) return v;
      json best = (*v)[0];
      for (const json& e : *v) {
        if (bson_compare(e, best) * direction < 0) best = e;
      }
      return best;
    };
    auto ours = rows;
    std::stable_sort(ours.begin(), ours.end(), [&](const row& x, const row& y) {
      if (const int c = compare_values(x.rank, y.rank); c != 0) return c * direction < 0;
      const int c = compare_values(sort_value(x.key), sort_value(y.key));
      if (c != 0) return c * direction < 0;
      return x.id < y.id;
    });
    auto reference = rows;
    std::stable_sort(reference.begin(), reference.end(), [&](const row& x, const row& y) {
      const int c = eventsourced::compare_for_sort(path.resolve(x.body), path.resolve(y.body));
      if (c != 0) return c * direction < 0;
      return x.id < y.id;
    });
    for (std::size_t i = 0; i < rows.size(); ++i) {
      ASSERT_EQ(ours[i].id, reference[i].id) << "position " << i << " of round " << round;
    }
  }
}

}  // namespace
