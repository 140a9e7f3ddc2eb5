// Engine conformance: find() agrees with the reference semantics of query.hpp (filter::matches,
// compare_for_sort, id tie-break, skip, limit) on random documents and random queries.
#include "conformance/engine_conformance.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <eventsourced/engine/query.hpp>

namespace eventsourced::conformance {
namespace {

// A fixed-seed generator whose sequence does not depend on the standard library's distributions.
class generator {
 public:
  explicit generator(std::uint64_t seed) : engine_(seed) {}

  std::size_t below(std::size_t n) { return static_cast<std::size_t>(engine_() % n); }
  bool chance(int percent) { return below(100) < static_cast<std::size_t>(percent); }
  template <class T>
  const T& pick(const std::vector<T>& from) {
    return from[below(from.size())];
  }

  json scalar() {
    static const std::vector<json> scalars = {
        -2, -1,  0,   1,   2,    3,   0.5,   1.0,     2.0,  -1.5,
        "", "a", "b", "A", "ab", "é", "a b", nullptr, true, false,
    };
    return pick(scalars);
  }

  json value() {
    switch (below(10)) {
      case 0:
        return pick(std::vector<json>{json::array({1}), json::array({"a"}), json::array({1, 2}),
                                      json::array()});
      case 1:
        return pick(std::vector<json>{json{{"x", 1}}, json{{"x", "a"}}, json::object()});
      default:
        return scalar();
    }
  }

  json range_operand() {
    return pick(std::vector<json>{-1, 0, 1, 1.5, 2, 3, "", "a", "ab", "b", "B"});
  }

 private:
  std::mt19937_64 engine_;
};

const std::vector<std::string> kPaths = {"a",   "b",   "c",     "o",     "o.x",
                                         "o.y", "arr", "arr.0", "arr.1", "missing"};

json random_document(generator& g) {
  json doc = json::object();
  for (const char* field : {"a", "b", "c"}) {
    if (g.chance(80)) doc[field] = g.value();
  }
  if (g.chance(60)) {
    json o = json::object();
    if (g.chance(70)) o["x"] = g.scalar();
    if (g.chance(50)) o["y"] = g.value();
    doc["o"] = o;
  } else if (g.chance(20)) {
    doc["o"] = g.scalar();
  }
  if (g.chance(50)) {
    json arr = json::array();
    const std::size_t n = g.below(4);
    for (std::size_t i = 0; i < n; ++i) arr.push_back(g.scalar());
    doc["arr"] = arr;
  }
  return doc;
}

json random_condition(generator& g) {
  switch (g.below(10)) {
    case 0:
    case 1: {
      json v = g.value();  // implicit $eq; {} would read as an empty operator object
      return v.is_object() && v.empty() ? json{{"$eq", v}} : v;
    }
    case 2:
      return {{"$eq", g.value()}};
    case 3:
      return {{"$ne", g.value()}};
    case 4: {
      static const std::vector<std::string> ops = {"$gt", "$gte", "$lt", "$lte"};
      json c = {{g.pick(ops), g.range_operand()}};
      if (g.chance(30)) c[g.pick(ops)] = g.range_operand();
      return c;
    }
    case 5:
    case 6: {
      json values = json::array();
      const std::size_t n = g.below(4);
      for (std::size_t i = 0; i < n; ++i) values.push_back(g.value());
      return {{g.chance(60) ? "$in" : "$nin", values}};
    }
    case 7:
      return {{"$exists", g.chance(50)}};
    default:
      return {{"$gte", g.range_operand()}, {"$ne", g.value()}};
  }
}

json random_filter(generator& g, int depth) {
  const std::size_t kind = depth >= 2 ? g.below(3) : g.below(5);
  if (kind == 0) return json::object();
  if (kind <= 2) {
    json spec = json::object();
    const std::size_t fields = 1 + g.below(2);
    for (std::size_t i = 0; i < fields; ++i) spec[g.pick(kPaths)] = random_condition(g);
    return spec;
  }
  json children = json::array();
  const std::size_t n = 1 + g.below(3);
  for (std::size_t i = 0; i < n; ++i) {
    json child = random_filter(g, depth + 1);
    if (child.empty()) child = {{g.pick(kPaths), random_condition(g)}};
    children.push_back(child);
  }
  return {{kind == 3 ? "$and" : "$or", children}};
}

query random_query(generator& g, json& spec_out) {
  spec_out = random_filter(g, 0);
  query q;
  q.where = filter::parse(spec_out);
  const std::size_t keys = g.below(3);
  for (std::size_t i = 0; i < keys; ++i) {
    q.sort.push_back(
        sort_key{g.pick(kPaths), g.chance(50) ? sort_order::ascending : sort_order::descending});
  }
  if (g.chance(40)) q.limit = g.below(30);
  if (g.chance(30)) q.skip = g.below(40);
  return q;
}

// What find() must return, computed from the reference semantics.
std::vector<stored_document> reference_find(const std::vector<stored_document>& live,
                                            const query& q) {
  std::vector<stored_document> out;
  for (const auto& doc : live) {
    if (q.where.matches(doc.body)) out.push_back(doc);
  }
  std::vector<field_path> paths;
  for (const auto& key : q.sort) paths.push_back(field_path::parse(key.path));
  std::sort(out.begin(), out.end(), [&](const stored_document& x, const stored_document& y) {
    for (std::size_t i = 0; i < paths.size(); ++i) {
      int c = compare_for_sort(paths[i].resolve(x.body), paths[i].resolve(y.body));
      if (q.sort[i].order == sort_order::descending) c = -c;
      if (c != 0) return c < 0;
    }
    return x.id < y.id;
  });
  const std::size_t skip = std::min(q.skip, out.size());
  out.erase(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(skip));
  if (q.limit && *q.limit < out.size()) out.resize(*q.limit);
  return out;
}

std::string describe(const query& q, const json& spec) {
  std::string s = "filter " + spec.dump() + " sort [";
  for (const auto& key : q.sort) {
    s += key.path + (key.order == sort_order::ascending ? " asc " : " desc ");
  }
  s += "] limit " + (q.limit ? std::to_string(*q.limit) : std::string("none")) + " skip " +
       std::to_string(q.skip);
  return s;
}

std::string ids_text(const std::vector<stored_document>& docs) {
  std::string s;
  for (const auto& d : docs) s += d.id + " ";
  return s;
}

TEST_P(engine_conformance, find_agrees_with_the_reference_semantics_on_random_queries) {
  constexpr int kDocuments = 200;
  constexpr int kQueries = 300;
  generator g(0x5eed'2024);

  // Documents with a history: some replaced, some deleted, some deleted and re-created.
  std::vector<std::optional<stored_document>> docs(kDocuments);
  for (int i = 0; i < kDocuments; ++i) {
    char id[16];
    std::snprintf(id, sizeof id, "doc-%03d", i);
    const json body = random_document(g);
    ASSERT_EQ(commit_write(db(), put_write("random", id, 0, body)), 1);
    docs[i] = stored_document{id, 1, body};
  }
  for (int round = 0; round < 60; ++round) {
    auto& doc = docs[g.below(kDocuments)];
    if (!doc) continue;
    if (round % 3 == 0) {
      ASSERT_EQ(commit_write(db(), erase_write("random", doc->id, doc->version)), doc->version + 1);
      doc.reset();
    } else {
      const json body = random_document(g);
      doc->version = commit_write(db(), put_write("random", doc->id, doc->version, body));
      doc->body = body;
    }
  }
  std::vector<stored_document> live;
  for (const auto& doc : docs) {
    if (doc) live.push_back(*doc);
  }
  ASSERT_EQ(db().find("random", query{}).size(), live.size());

  int mismatches = 0;
  std::size_t non_empty = 0;
  for (int i = 0; i < kQueries; ++i) {
    json spec;
    const query q = random_query(g, spec);
    const auto expected = reference_find(live, q);
    const auto actual = db().find("random", q);
    if (!expected.empty()) ++non_empty;

    bool same = expected.size() == actual.size();
    for (std::size_t k = 0; same && k < expected.size(); ++k) {
      same = expected[k].id == actual[k].id && expected[k].version == actual[k].version &&
             expected[k].body == actual[k].body;
    }
    if (!same && ++mismatches <= 10) {
      ADD_FAILURE() << "query " << i << ": " << describe(q, spec)
                    << "\n  expected: " << ids_text(expected)
                    << "\n  actual:   " << ids_text(actual);
    }
  }
  EXPECT_EQ(mismatches, 0) << "of " << kQueries << " queries";
  // The generator is useful only if many queries select something.
  EXPECT_GT(non_empty, static_cast<std::size_t>(kQueries / 3));
}

}  // namespace
}  // namespace eventsourced::conformance
