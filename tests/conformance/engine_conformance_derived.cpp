// Engine conformance: commit_request::derived_appends — appends computed inside the commit from
// the versions the writes get (how the storage layer records each write's events).
#include "conformance/engine_conformance.hpp"

#include <stdexcept>
#include <string>
#include <vector>

namespace eventsourced::conformance {
namespace {

TEST_P(engine_conformance, derived_appends_see_the_versions_the_writes_get) {
  // A document deleted and re-created continues after its tombstone: version 3, not 1.
  commit_write(db(), put_write("docs", "a", 0, {{"n", 1}}));
  commit_write(db(), erase_write("docs", "a", 1));
  commit_write(db(), put_write("docs", "b", 0, {{"n", 1}}));

  commit_request request =
      request_of({put_write("docs", "a", 0, {{"n", 2}}), put_write("docs", "b", 1, {{"n", 2}}),
                  check_write("docs", "c", 0)});
  std::vector<std::int64_t> seen;
  int calls = 0;
  request.derived_appends = [&](std::span<const std::int64_t> versions) {
    ++calls;
    seen.assign(versions.begin(), versions.end());
    std::vector<stream_append> out;
    out.push_back(
        append_to({"doc", "a"}, std::nullopt, {make_event("Written", {{"version", versions[0]}})}));
    out.push_back(
        append_to({"doc", "b"}, std::nullopt, {make_event("Written", {{"version", versions[1]}})}));
    return out;
  };
  const commit_result result = db().commit(request);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(seen, (std::vector<std::int64_t>{3, 2, 0}));
  EXPECT_EQ(result.versions, seen);
  ASSERT_EQ(result.events.size(), 2u);
  EXPECT_EQ(result.events[0].data["version"], 3);
  EXPECT_EQ(result.events[1].data["version"], 2);
  EXPECT_EQ(read_everything(db()).size(), 2u);
}

TEST_P(engine_conformance, derived_appends_come_after_the_requests_own_appends) {
  commit_request request = request_of({put_write("docs", "a", 0, {{"n", 1}})},
                                      {append_to({"cmd", "1"}, std::nullopt, {make_event("A")})});
  request.derived_appends = [](std::span<const std::int64_t>) {
    std::vector<stream_append> out;
    out.push_back(append_to({"doc", "a"}, std::nullopt, {make_event("B"), make_event("C")}));
    return out;
  };
  const auto events = db().commit(request).events;
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].type, "A");
  EXPECT_EQ(events[1].type, "B");
  EXPECT_EQ(events[2].type, "C");
  EXPECT_LT(events[0].position, events[1].position);
  EXPECT_LT(events[1].position, events[2].position);
}

TEST_P(engine_conformance, a_throwing_derived_append_commits_nothing) {
  commit_write(db(), put_write("docs", "a", 0, {{"n", 1}}));
  commit_request request = request_of({put_write("docs", "a", 1, {{"n", 2}})},
                                      {append_to({"cmd", "1"}, std::nullopt, {make_event("A")})});
  request.derived_appends = [](std::span<const std::int64_t>) -> std::vector<stream_append> {
    throw std::runtime_error("mapper failed");
  };
  EXPECT_THROW(
      {
        try {
          db().commit(request);
        } catch (const std::runtime_error& e) {
          EXPECT_STREQ(e.what(), "mapper failed");  // propagated unchanged
          throw;
        }
      },
      std::runtime_error);
  EXPECT_EQ(db().get("docs", "a")->version, 1);
  EXPECT_TRUE(read_everything(db()).empty());
  // The engine is still usable.
  EXPECT_EQ(commit_write(db(), put_write("docs", "a", 1, {{"n", 3}})), 2);
}

TEST_P(engine_conformance, derived_appends_are_not_called_when_a_version_check_fails) {
  commit_write(db(), put_write("docs", "a", 0, {{"n", 1}}));
  commit_request request = request_of({put_write("docs", "a", 0, {{"n", 2}})});
  int calls = 0;
  request.derived_appends = [&](std::span<const std::int64_t>) {
    ++calls;
    return std::vector<stream_append>{};
  };
  EXPECT_TRUE(is_conflict(catch_conflict([&] { db().commit(request); }), conflict_target::document,
                          "docs", "a", 0, 1));
  EXPECT_EQ(calls, 0);
}

TEST_P(engine_conformance, invalid_derived_appends_are_rejected_and_commit_nothing) {
  const auto with_derived = [](std::vector<stream_append> derived) {
    commit_request request = request_of({put_write("docs", "x", 0, {{"n", 1}})},
                                        {append_to({"cmd", "1"}, std::nullopt, {make_event("A")})});
    request.derived_appends = [derived](std::span<const std::int64_t>) { return derived; };
    return request;
  };
  // The same stream as one of the request's appends.
  EXPECT_TRUE(rejected_as_invalid(
      db(), with_derived({append_to({"cmd", "1"}, std::nullopt, {make_event("B")})})));
  // An event without a type, an invalid stream type, a duplicate event id.
  EXPECT_TRUE(rejected_as_invalid(
      db(), with_derived({append_to({"doc", "x"}, std::nullopt, {make_event("")})})));
  EXPECT_TRUE(rejected_as_invalid(
      db(), with_derived({append_to({"bad type!", "x"}, std::nullopt, {make_event("B")})})));
  const new_event twice = make_event("B");
  EXPECT_TRUE(rejected_as_invalid(
      db(), with_derived({append_to({"doc", "x"}, std::nullopt, {twice, twice})})));
  EXPECT_FALSE(db().get("docs", "x"));
  EXPECT_TRUE(read_everything(db()).empty());
}

TEST_P(engine_conformance, a_derived_append_with_a_stale_expected_version_conflicts) {
  commit_append(db(), append_to({"doc", "a"}, std::nullopt, {make_event("A")}));
  commit_request request = request_of({put_write("docs", "a", 0, {{"n", 1}})});
  request.derived_appends = [](std::span<const std::int64_t>) {
    std::vector<stream_append> out;
    out.push_back(append_to({"doc", "a"}, 0, {make_event("B")}));
    return out;
  };
  EXPECT_TRUE(is_conflict(catch_conflict([&] { db().commit(request); }), conflict_target::stream,
                          "doc", "a", 0, 1));
  EXPECT_FALSE(db().get("docs", "a"));
  EXPECT_EQ(read_everything(db()).size(), 1u);
}

}  // namespace
}  // namespace eventsourced::conformance
