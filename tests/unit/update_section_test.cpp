// update_section (document_collection.hpp): edits one sub-tree; a concurrent write elsewhere in the
// document is never a conflict, a concurrent write to the same sub-tree is.
//
// The interleavings are forced deterministically: the edit function itself performs the "other"
// write the first time it runs, i.e. after update_section read the document and before it commits.
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "unit/storage_test_support.hpp"

namespace eventsourced_test {
namespace {

using eventsourced::conflict_error;
using eventsourced::invalid_argument_error;

struct Settings {
  std::string theme = "light";
  int volume = 5;
  friend bool operator==(const Settings&, const Settings&) = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Settings, theme, volume)

class update_section : public storage_test {
 protected:
  void SetUp() override {
    storage_test::SetUp();
    store_ = open_store();
    other_ = open_store();  // another writer on the same data, as another process would be
    profiles().find_one_and_upsert(initial());
  }

  static json initial() {
    return {{"id", "p1"},
            {"name", "Ann"},
            {"settings", {{"theme", "dark"}, {"volume", 3}}},
            {"stats", {{"wins", 2}}}};
  }

  eventsourced::collection<json> profiles() { return store_->collection<json>("profiles"); }
  eventsourced::document_collection others_view() { return other_->documents("profiles"); }

  std::shared_ptr<eventsourced::store> store_;
  std::shared_ptr<eventsourced::store> other_;
};
EVENTSOURCED_STORAGE_TEST_ENGINES(update_section);

TEST_P(update_section, edits_only_its_sub_tree_through_a_typed_section) {
  const auto r = profiles().update_section<Settings>("p1", "settings", [](Settings s) {
    EXPECT_EQ(s, (Settings{.theme = "dark", .volume = 3}));
    s.volume = 7;
    return s;
  });
  json expected = initial();
  expected["settings"]["volume"] = 7;
  expected["version"] = 2;
  EXPECT_EQ(r.document, expected);
  EXPECT_EQ(profiles().find_one("p1"), expected);
  EXPECT_EQ(r.diff.version, 2);
  EXPECT_EQ(r.diff.json_patch, json::parse(R"([
    {"op": "replace", "path": "/settings/volume", "value": 7},
    {"op": "replace", "path": "/version", "value": 2}])"));
}

TEST_P(update_section, a_missing_section_is_passed_as_a_default_constructed_S) {
  profiles().find_one_and_upsert({{"id", "p2"}, {"name", "Bob"}});
  Settings seen{.theme = "unset", .volume = -1};
  const auto r = profiles().update_section<Settings>("p2", "settings", [&](Settings s) {
    seen = s;
    s.volume = 9;
    return s;
  });
  EXPECT_EQ(seen, Settings{});
  const json expected = {{"id", "p2"},
                         {"name", "Bob"},
                         {"settings", {{"theme", "light"}, {"volume", 9}}},
                         {"version", 2}};
  EXPECT_EQ(r.document, expected);
  EXPECT_EQ(profiles().find_one("p2"), expected);
}

TEST_P(update_section, a_missing_section_is_null_for_json_and_leaving_it_null_writes_nothing) {
  json seen = "not called";
  const auto r = profiles().update_section("p1", "inventory", [&](json s) {
    seen = s;
    return s;
  });
  EXPECT_TRUE(seen.is_null());
  EXPECT_FALSE(r.diff.has_changes);
  EXPECT_EQ(profiles().find_one("p1")->at("version"), 1);
  EXPECT_FALSE(profiles().find_one("p1")->contains("inventory"));
}

TEST_P(update_section, returning_the_section_unchanged_writes_nothing) {
  const auto r = profiles().update_section("p1", "settings", [](json s) { return s; });
  EXPECT_FALSE(r.diff.has_changes);
  EXPECT_EQ(r.diff.version, 1);
  EXPECT_EQ(profiles().find_one("p1")->at("version"), 1);
}

TEST_P(update_section, a_dotted_path_edits_a_nested_value) {
  profiles().update_section("p1", "stats.wins", [](json wins) { return wins.get<int>() + 1; });
  const json stored = *profiles().find_one("p1");
  EXPECT_EQ(stored["stats"], (json{{"wins", 3}}));
  EXPECT_EQ(stored["settings"], initial()["settings"]);
  EXPECT_EQ(stored["version"], 2);
}

TEST_P(update_section, the_id_and_version_fields_are_not_sections) {
  EXPECT_THROW(profiles().update_section("p1", "id", [](json) { return json("p9"); }),
               invalid_argument_error);
  EXPECT_THROW(profiles().update_section("p1", "version", [](json) { return json(9); }),
               invalid_argument_error);
  EXPECT_EQ(profiles().find_one("p1")->at("version"), 1);
  EXPECT_EQ(profiles().find_one("p9"), std::nullopt);
}

TEST_P(update_section,
       a_write_to_another_section_meanwhile_is_not_a_conflict_even_without_retries) {
  int runs = 0;
  const auto r = profiles().update_section<Settings>(
      "p1", "settings",
      [&](Settings s) {
        if (++runs == 1) {
          others_view().update_one("p1", {{"$inc", {{"stats.wins", 10}}}});  // now version 2
        }
        s.theme = "solarized";
        return s;
      },
      no_retries());
  EXPECT_EQ(runs, 1);  // the edited sub-tree is spliced into the fresh document, not re-edited
  json expected = initial();
  expected["settings"]["theme"] = "solarized";
  expected["stats"]["wins"] = 12;
  expected["version"] = 3;
  EXPECT_EQ(r.document, expected);
  EXPECT_EQ(r.diff.version, 3);
  EXPECT_EQ(profiles().find_one("p1"), expected);
  // The diff describes this write alone, against the document it was spliced into.
  json before = initial();
  before["stats"]["wins"] = 12;
  before["version"] = 2;
  EXPECT_EQ(before.patch(r.diff.json_patch), expected);
}

TEST_P(update_section, a_write_to_the_same_section_meanwhile_is_a_conflict_without_retries) {
  int runs = 0;
  try {
    profiles().update_section<Settings>(
        "p1", "settings",
        [&](Settings s) {
          if (++runs == 1) {
            others_view().update_one("p1", {{"$set", {{"settings.volume", 11}}}});  // version 2
          }
          s.theme = "solarized";
          return s;
        },
        no_retries());
    FAIL() << "expected conflict_error";
  } catch (const conflict_error& e) {
    EXPECT_EQ(e.collection(), "profiles");
    EXPECT_EQ(e.id(), "p1");
    EXPECT_EQ(e.expected_version(), 1);
    EXPECT_EQ(e.actual_version(), 2);
    EXPECT_TRUE(e.retryable());
  }
  EXPECT_EQ(runs, 1);
  json expected = initial();  // only the other write
  expected["settings"]["volume"] = 11;
  expected["version"] = 2;
  EXPECT_EQ(profiles().find_one("p1"), expected);
}

TEST_P(update_section, a_write_to_the_same_section_meanwhile_re_runs_the_edit_with_retries) {
  std::vector<Settings> seen;
  const auto r = profiles().update_section<Settings>("p1", "settings", [&](Settings s) {
    seen.push_back(s);
    if (seen.size() == 1) {
      others_view().update_one("p1", {{"$set", {{"settings.volume", 11}}}});
    }
    s.theme = "solarized";
    return s;
  });
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1], (Settings{.theme = "dark", .volume = 11}));  // re-run on fresh state
  json expected = initial();
  expected["settings"] = {{"theme", "solarized"}, {"volume", 11}};
  expected["version"] = 3;
  EXPECT_EQ(r.document, expected);
  EXPECT_EQ(profiles().find_one("p1"), expected);
}

TEST_P(update_section, threads_editing_their_own_sections_never_conflict_even_without_retries) {
  constexpr int kThreads = 4;
  constexpr int kEdits = 200;
  std::mutex mutex;
  std::vector<std::string> failures;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string section = "counters.s" + std::to_string(t);
      try {
        for (int i = 0; i < kEdits; ++i) {
          profiles().update_section(
              "p1", section, [](json n) { return json(n.is_null() ? 1 : n.get<int>() + 1); },
              no_retries());
        }
      } catch (const std::exception& e) {
        std::lock_guard lock(mutex);
        failures.push_back(e.what());
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures, std::vector<std::string>{});
  const json stored = *profiles().find_one("p1");
  EXPECT_EQ(stored["counters"],
            (json{{"s0", kEdits}, {"s1", kEdits}, {"s2", kEdits}, {"s3", kEdits}}));
  EXPECT_EQ(stored["version"], 1 + kThreads * kEdits);
  EXPECT_EQ(stored["settings"], initial()["settings"]);
}

TEST_P(update_section, threads_editing_one_section_with_retries_lose_nothing) {
  constexpr int kThreads = 4;
  constexpr int kEdits = 200;
  std::mutex mutex;
  std::vector<std::string> failures;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      try {
        for (int i = 0; i < kEdits; ++i) {
          profiles().update_section(
              "p1", "stats.wins", [](json n) { return json(n.get<int>() + 1); }, patient());
        }
      } catch (const std::exception& e) {
        std::lock_guard lock(mutex);
        failures.push_back(e.what());
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures, std::vector<std::string>{});
  const json stored = *profiles().find_one("p1");
  EXPECT_EQ(stored["stats"]["wins"], 2 + kThreads * kEdits);
  EXPECT_EQ(stored["version"], 1 + kThreads * kEdits);
}

}  // namespace
}  // namespace eventsourced_test
