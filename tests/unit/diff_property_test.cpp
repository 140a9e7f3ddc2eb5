// The diff contract (diff.hpp) as a property over generated documents: for every write, json_patch
// applied to the document before gives the document after, and so does merge_patch unless the
// new document holds a null object member (RFC 7396 reads null as "remove", so such a document
// cannot be reached by a merge patch; diff.hpp documents the exclusion).
//
// First on make_diff directly (500 generated pairs), then end to end through a store: every
// find_one_and_update's diff turns the previously stored document into the newly stored one.
// Fixed seeds: a failure reproduces, and the trace names the case.
#include <random>
#include <string>
#include <vector>

#include "unit/storage_test_support.hpp"

namespace eventsourced_test {
namespace {

using eventsourced::make_diff;

class generator {
 public:
  explicit generator(unsigned seed) : rng_(seed) {}

  int below(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }
  bool chance(int percent) { return below(100) < percent; }

  // Keys include the characters JSON Pointer must escape ('/' and '~') and the empty key.
  std::string key() {
    static const std::vector<std::string> kKeys = {"a",  "b", "name",  "gold",  "x/y", "~t",
                                                   "~1", "",  "stats", "items", "é",   "k k"};
    return kKeys[static_cast<std::size_t>(below(static_cast<int>(kKeys.size())))];
  }

  json scalar() {
    switch (below(7)) {
      case 0:
        return nullptr;
      case 1:
        return chance(50);
      case 2:
        return below(2001) - 1000;
      case 3:
        return std::uniform_real_distribution<double>(-1e6, 1e6)(rng_);
      case 4:
        return std::int64_t{1} << 53;
      case 5: {
        static const std::vector<std::string> kStrings = {
            "", "ann", "quote\"s", "back\\slash", "line\nbreak", "ünï", "🙂", "a/b~c"};
        return kStrings[static_cast<std::size_t>(below(static_cast<int>(kStrings.size())))];
      }
      default:
        return "s" + std::to_string(below(50));
    }
  }

  json value(int depth) {
    if (depth <= 0 || chance(55)) return scalar();
    if (chance(50)) return object(depth - 1);
    json arr = json::array();
    for (int i = below(5); i > 0; --i) arr.push_back(value(depth - 1));
    return arr;
  }

  json object(int depth) {
    json obj = json::object();
    for (int i = below(5); i > 0; --i) obj[key()] = value(depth);
    return obj;
  }

  // Applies one random change somewhere inside doc: replace, add or remove a member, insert or
  // remove an array element, or change a value's kind. `protected_keys` are never touched at the
  // top level (the store owns "id" and "version").
  void mutate(json& doc, const std::vector<std::string>& protected_keys = {}, bool top = true) {
    if (doc.is_object()) {
      std::vector<std::string> keys;
      for (const auto& [k, v] : doc.items()) {
        if (!top ||
            std::find(protected_keys.begin(), protected_keys.end(), k) == protected_keys.end()) {
          keys.push_back(k);
        }
      }
      if (keys.empty() || chance(30)) {
        std::string k = key();
        if (top &&
            std::find(protected_keys.begin(), protected_keys.end(), k) != protected_keys.end()) {
          k += "_";
        }
        doc[k] = value(2);
        return;
      }
      const std::string& k = keys[static_cast<std::size_t>(below(static_cast<int>(keys.size())))];
      if (chance(20)) {
        doc.erase(k);
      } else if (doc[k].is_structured() && chance(70)) {
        mutate(doc[k], protected_keys, false);
      } else {
        doc[k] = value(2);
      }
    } else if (doc.is_array()) {
      if (doc.empty() || chance(25)) {
        doc.insert(doc.begin() + below(static_cast<int>(doc.size()) + 1), value(2));
      } else {
        const auto i = static_cast<std::size_t>(below(static_cast<int>(doc.size())));
        if (chance(25)) {
          doc.erase(i);
        } else if (doc[i].is_structured() && chance(70)) {
          mutate(doc[i], protected_keys, false);
        } else {
          doc[i] = value(2);
        }
      }
    } else {
      doc = value(2);
    }
  }

 private:
  std::mt19937 rng_;
};

// True when some object member, reached through objects only, is null: the one shape a merge
// patch cannot produce. (Inside arrays nulls are fine: a merge patch replaces arrays whole.)
bool has_null_member(const json& doc) {
  if (!doc.is_object()) return false;
  for (const auto& [k, v] : doc.items()) {
    if (v.is_null() || has_null_member(v)) return true;
  }
  return false;
}

json merged(json target, const json& patch) {
  target.merge_patch(patch);
  return target;
}

TEST(diff_property, json_patch_and_merge_patch_turn_the_old_document_into_the_new_one) {
  generator gen(20240611);
  int merge_checked = 0;
  int changed = 0;
  for (int n = 0; n < 500; ++n) {
    const json before = gen.object(3);
    json after = before;
    for (int m = gen.below(5); m > 0; --m) gen.mutate(after);
    SCOPED_TRACE("case " + std::to_string(n) + "\nbefore: " + before.dump() +
                 "\nafter:  " + after.dump());
    const auto d = make_diff(before, after, n + 2);
    EXPECT_EQ(d.version, n + 2);
    EXPECT_FALSE(d.is_new);
    EXPECT_FALSE(d.is_deleted);
    EXPECT_EQ(d.has_changes, before != after);
    if (d.has_changes) ++changed;
    ASSERT_EQ(before.patch(d.json_patch), after) << "json_patch: " << d.json_patch.dump();
    if (!has_null_member(after)) {
      ++merge_checked;
      ASSERT_EQ(merged(before, d.merge_patch), after) << "merge_patch: " << d.merge_patch.dump();
    }
  }
  // The generator must exercise both properties, not skip its way to a pass.
  EXPECT_GT(changed, 300);
  EXPECT_GT(merge_checked, 150);
}

// make_diff walks both documents once instead of calling json::diff and create_merge_patch; its
// patches must be exactly theirs (same operations in the same order), and has_changes exactly
// before != after, including for values that compare equal across number types.
TEST(diff_property, patches_are_exactly_those_of_json_diff_and_create_merge_patch) {
  generator gen(4242);
  auto check = [](const json& before, const json& after) {
    SCOPED_TRACE("before: " + before.dump() + "\nafter:  " + after.dump());
    const auto d = make_diff(before, after, 2);
    ASSERT_EQ(d.has_changes, before != after);
    if (d.has_changes) {
      ASSERT_EQ(d.json_patch, json::diff(before, after));
      ASSERT_EQ(d.merge_patch, eventsourced::create_merge_patch(before, after));
    } else {
      ASSERT_EQ(d.json_patch, json::array());
      ASSERT_EQ(d.merge_patch, json::object());
    }
  };
  for (int n = 0; n < 500; ++n) {
    const json before = gen.object(3);
    json after = before;
    for (int m = gen.below(5); m > 0; --m) gen.mutate(after);
    check(before, after);
    check(after, before);
    check(nullptr, after);
    check(before, nullptr);
  }
  // Arrays shrinking by several elements (removals in reverse order), and growing.
  check({{"a", {1, 2, 3, 4, 5}}}, {{"a", {1, 9}}});
  check({{"a", {1, 9}}}, {{"a", {1, 2, 3, 4, 5}}});
  check(json::array({1, 2, 3}), json::array());
  // Equal across number types: no change; a changed type: a replace.
  check({{"n", 1}, {"u", 2u}, {"f", 3.0}}, {{"n", 1.0}, {"u", 2}, {"f", 3u}});
  check({{"n", 1}}, {{"n", "1"}});
  check({{"o", json::object()}}, {{"o", json::array()}});
}

TEST(diff_property, creation_and_deletion_patch_from_and_to_null) {
  generator gen(77);
  for (int n = 0; n < 100; ++n) {
    const json doc = gen.object(3);
    SCOPED_TRACE(doc.dump());
    const auto created = make_diff(nullptr, doc, 1);
    EXPECT_TRUE(created.is_new);
    EXPECT_FALSE(created.is_deleted);
    EXPECT_TRUE(created.has_changes);
    EXPECT_EQ(json().patch(created.json_patch), doc);
    if (!has_null_member(doc)) {
      EXPECT_EQ(merged(json(), created.merge_patch), doc);
    }

    const auto deleted = make_diff(doc, nullptr, 5);
    EXPECT_FALSE(deleted.is_new);
    EXPECT_TRUE(deleted.is_deleted);
    EXPECT_TRUE(deleted.has_changes);
    EXPECT_EQ(deleted.version, 5);
    EXPECT_EQ(doc.patch(deleted.json_patch), json());
    EXPECT_EQ(merged(doc, deleted.merge_patch), json());
  }
}

TEST(diff_property, an_unchanged_document_has_empty_patches) {
  const json doc = {{"a", 1}, {"b", {{"c", nullptr}}}};
  const auto d = make_diff(doc, doc, 3);
  EXPECT_FALSE(d.has_changes);
  EXPECT_FALSE(d.is_new);
  EXPECT_FALSE(d.is_deleted);
  EXPECT_EQ(d.json_patch, json::array());
  EXPECT_EQ(d.merge_patch, json::object());
}

// --- End to end through a store ----------------------------------------------------------------

class diff_through_store : public storage_test {};
EVENTSOURCED_STORAGE_TEST_ENGINES(diff_through_store);

TEST_P(diff_through_store, every_writes_patches_turn_the_stored_document_into_the_next_one) {
  auto docs = open_store()->documents("docs");
  generator gen(424242);
  json initial = gen.object(3);
  initial["id"] = "d";
  const auto created = docs.find_one_and_upsert(initial);
  EXPECT_TRUE(created.diff.is_new);
  EXPECT_EQ(json().patch(created.diff.json_patch), docs.find_one("d").value());

  std::int64_t version = 1;
  int merge_checked = 0;
  for (int n = 0; n < 150; ++n) {
    const json previous = docs.find_one("d").value();
    const auto r = docs.find_one_and_update("d", [&](json doc) {
      for (int m = 1 + gen.below(3); m > 0; --m) gen.mutate(doc, {"id", "version"});
      return doc;
    });
    const json stored = docs.find_one("d").value();
    SCOPED_TRACE("write " + std::to_string(n) + "\nprevious: " + previous.dump() +
                 "\nstored:   " + stored.dump());
    EXPECT_EQ(r.document, stored);
    if (r.diff.has_changes) ++version;
    EXPECT_EQ(r.diff.version, version);
    EXPECT_EQ(stored["version"], version);
    ASSERT_EQ(previous.patch(r.diff.json_patch), stored) << r.diff.json_patch.dump();
    if (!has_null_member(stored)) {
      ++merge_checked;
      ASSERT_EQ(merged(previous, r.diff.merge_patch), stored) << r.diff.merge_patch.dump();
    }
  }
  EXPECT_GT(version, 100);
  EXPECT_GT(merge_checked, 30);

  const json last = docs.find_one("d").value();
  const auto deleted = docs.find_one_and_update(
      "d", [](json) -> eventsourced::edit_result<json> { return eventsourced::delete_document; });
  EXPECT_TRUE(deleted.diff.is_deleted);
  EXPECT_EQ(last.patch(deleted.diff.json_patch), json());
}

}  // namespace
}  // namespace eventsourced_test
