// Engine conformance: document versions, tombstones, checks, atomicity, isolation.
#include "conformance/engine_conformance.hpp"

#include <string>
#include <vector>

namespace eventsourced::conformance {
namespace {

using versions = std::vector<std::int64_t>;

TEST_P(engine_conformance, get_of_missing_document_returns_nullopt) {
  EXPECT_FALSE(db().get("users", "nobody").has_value());
}

TEST_P(engine_conformance, put_with_expected_zero_creates_version_one) {
  const json body = {{"name", "ada"}, {"level", 3}};
  const commit_result result = db().commit(request_of({put_write("users", "u1", 0, body)}));
  EXPECT_EQ(result.versions, versions{1});
  EXPECT_TRUE(result.events.empty());

  const auto doc = db().get("users", "u1");
  ASSERT_TRUE(doc.has_value());
  EXPECT_EQ(doc->id, "u1");
  EXPECT_EQ(doc->version, 1);
  EXPECT_EQ(doc->body, body);
}

TEST_P(engine_conformance, replace_with_current_version_increments_version) {
  ASSERT_EQ(commit_write(db(), put_write("users", "u1", 0, {{"level", 1}})), 1);
  EXPECT_EQ(commit_write(db(), put_write("users", "u1", 1, {{"level", 2}})), 2);
  EXPECT_EQ(commit_write(db(), put_write("users", "u1", 2, {{"level", 3}, {"new", true}})), 3);

  const auto doc = db().get("users", "u1");
  ASSERT_TRUE(doc.has_value());
  EXPECT_EQ(doc->version, 3);
  EXPECT_EQ(doc->body, (json{{"level", 3}, {"new", true}}));
}

TEST_P(engine_conformance, body_round_trips_exactly) {
  const json body = {
      {"text", "héllo wörld — ✓ 𝄞 日本語"},
      {"escapes", std::string("quote\" backslash\\ newline\n tab\t nul\0end", 39)},
      {"int64_max", INT64_MAX},
      {"int64_min", INT64_MIN},
      {"fraction", 0.1},
      {"huge", 1e300},
      {"negative", -42},
      {"flags", {true, false, nullptr}},
      {"nested", {{"deep", {{"deeper", {{"deepest", json::array({1, "two", 3.5})}}}}}}},
      {"empty_object", json::object()},
      {"empty_array", json::array()},
      {"with.dot", 1},
      {"$dollar", 2},
      {"ключ", "значение"},
  };
  ASSERT_EQ(commit_write(db(), put_write("users", "u1", 0, body)), 1);
  const auto doc = db().get("users", "u1");
  ASSERT_TRUE(doc.has_value());
  EXPECT_EQ(doc->body, body) << doc->body.dump();

  const auto found = db().find("users", query{});
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].body, body);
  EXPECT_EQ(found[0].version, 1);
}

TEST_P(engine_conformance, large_body_round_trips) {
  json body = {{"items", json::array()}};
  for (int i = 0; i < 2000; ++i) {
    body["items"].push_back(
        {{"index", i}, {"payload", std::string(40, static_cast<char>('a' + i % 26))}});
  }
  ASSERT_EQ(commit_write(db(), put_write("big", "b1", 0, body)), 1);
  const auto doc = db().get("big", "b1");
  ASSERT_TRUE(doc.has_value());
  EXPECT_EQ(doc->body, body);
}

TEST_P(engine_conformance, version_field_is_written_into_every_put_body) {
  const auto put = [&](std::int64_t expected, json body) {
    return db()
        .commit(request_of({put_write("users", "u1", expected, std::move(body))}, {}, "version"))
        .versions.at(0);
  };
  ASSERT_EQ(put(0, {{"name", "ada"}}), 1);
  EXPECT_EQ(db().get("users", "u1")->body, (json{{"name", "ada"}, {"version", 1}}));

  // A stale value in the body is overwritten with the real one.
  ASSERT_EQ(put(1, {{"name", "ada"}, {"version", 77}}), 2);
  EXPECT_EQ(db().get("users", "u1")->body, (json{{"name", "ada"}, {"version", 2}}));

  // Re-created after a tombstone, the body carries the version that continues after it.
  ASSERT_EQ(db().commit(request_of({erase_write("users", "u1", 2)}, {}, "version")).versions.at(0),
            3);
  ASSERT_EQ(put(0, {{"name", "again"}}), 4);
  const auto doc = db().get("users", "u1");
  ASSERT_TRUE(doc.has_value());
  EXPECT_EQ(doc->version, 4);
  EXPECT_EQ(doc->body, (json{{"name", "again"}, {"version", 4}}));
  const auto found = db().find("users", query{});
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].body, doc->body);

  // Without a version field the body is stored as given.
  ASSERT_EQ(commit_write(db(), put_write("users", "u1", 4, {{"name", "plain"}})), 5);
  EXPECT_EQ(db().get("users", "u1")->body, (json{{"name", "plain"}}));
}

TEST_P(engine_conformance, put_with_stale_or_future_version_conflicts_and_changes_nothing) {
  ASSERT_EQ(commit_write(db(), put_write("users", "u1", 0, {{"level", 1}})), 1);
  ASSERT_EQ(commit_write(db(), put_write("users", "u1", 1, {{"level", 2}})), 2);

  EXPECT_TRUE(is_conflict(catch_conflict([&] {
                            db().commit(request_of({put_write("users", "u1", 1, {{"level", 9}})}));
                          }),
                          conflict_target::document, "users", "u1", 1, 2));
  EXPECT_TRUE(is_conflict(catch_conflict([&] {
                            db().commit(request_of({put_write("users", "u1", 7, {{"level", 9}})}));
                          }),
                          conflict_target::document, "users", "u1", 7, 2));

  const auto doc = db().get("users", "u1");
  ASSERT_TRUE(doc.has_value());
  EXPECT_EQ(doc->version, 2);
  EXPECT_EQ(doc->body, (json{{"level", 2}}));
}

TEST_P(engine_conformance,
       put_with_nonzero_version_on_missing_document_conflicts_with_actual_zero) {
  EXPECT_TRUE(is_conflict(catch_conflict([&] {
                            db().commit(request_of({put_write("users", "ghost", 3, {{"a", 1}})}));
                          }),
                          conflict_target::document, "users", "ghost", 3, 0));
  EXPECT_FALSE(db().get("users", "ghost").has_value());
}

TEST_P(engine_conformance, create_over_existing_document_conflicts_with_current_version) {
  ASSERT_EQ(commit_write(db(), put_write("users", "u1", 0, {{"v", 1}})), 1);
  ASSERT_EQ(commit_write(db(), put_write("users", "u1", 1, {{"v", 2}})), 2);
  EXPECT_TRUE(is_conflict(catch_conflict([&] {
                            db().commit(request_of({put_write("users", "u1", 0, {{"v", 0}})}));
                          }),
                          conflict_target::document, "users", "u1", 0, 2));
  EXPECT_EQ(db().get("users", "u1")->body, (json{{"v", 2}}));
}

TEST_P(engine_conformance, erase_leaves_tombstone_and_recreate_continues_versions) {
  ASSERT_EQ(commit_write(db(), put_write("users", "u1", 0, {{"v", 1}})), 1);
  ASSERT_EQ(commit_write(db(), put_write("users", "u1", 1, {{"v", 2}})), 2);

  const commit_result erased = db().commit(request_of({erase_write("users", "u1", 2)}));
  EXPECT_EQ(erased.versions, versions{3});
  EXPECT_FALSE(db().get("users", "u1").has_value());
  EXPECT_TRUE(db().find("users", query{}).empty());

  // Deleted means "does not exist now": only expected 0 may re-create, and the conflict reports
  // the document as missing.
  EXPECT_TRUE(is_conflict(catch_conflict([&] {
                            db().commit(request_of({put_write("users", "u1", 3, {{"v", 9}})}));
                          }),
                          conflict_target::document, "users", "u1", 3, 0));

  EXPECT_EQ(commit_write(db(), put_write("users", "u1", 0, {{"v", "again"}})), 4);
  const auto doc = db().get("users", "u1");
  ASSERT_TRUE(doc.has_value());
  EXPECT_EQ(doc->version, 4);
  EXPECT_EQ(doc->body, (json{{"v", "again"}}));

  EXPECT_EQ(commit_write(db(), erase_write("users", "u1", 4)), 5);
  EXPECT_EQ(commit_write(db(), put_write("users", "u1", 0, {{"v", "third"}})), 6);
}

TEST_P(engine_conformance, erase_with_wrong_version_conflicts_and_keeps_document) {
  ASSERT_EQ(commit_write(db(), put_write("users", "u1", 0, {{"v", 1}})), 1);
  ASSERT_EQ(commit_write(db(), put_write("users", "u1", 1, {{"v", 2}})), 2);

  EXPECT_TRUE(
      is_conflict(catch_conflict([&] { db().commit(request_of({erase_write("users", "u1", 1)})); }),
                  conflict_target::document, "users", "u1", 1, 2));
  EXPECT_TRUE(is_conflict(
      catch_conflict([&] { db().commit(request_of({erase_write("users", "missing", 4)})); }),
      conflict_target::document, "users", "missing", 4, 0));

  const auto doc = db().get("users", "u1");
  ASSERT_TRUE(doc.has_value());
  EXPECT_EQ(doc->version, 2);
  EXPECT_EQ(doc->body, (json{{"v", 2}}));
}

TEST_P(engine_conformance, erase_of_deleted_document_conflicts_with_actual_zero) {
  ASSERT_EQ(commit_write(db(), put_write("users", "u1", 0, {{"v", 1}})), 1);
  ASSERT_EQ(commit_write(db(), erase_write("users", "u1", 1)), 2);
  EXPECT_TRUE(
      is_conflict(catch_conflict([&] { db().commit(request_of({erase_write("users", "u1", 2)})); }),
                  conflict_target::document, "users", "u1", 2, 0));
  EXPECT_EQ(commit_write(db(), put_write("users", "u1", 0, {{"v", 3}})), 3);
}

TEST_P(engine_conformance, check_with_right_version_succeeds_and_changes_nothing) {
  ASSERT_EQ(commit_write(db(), put_write("users", "u1", 0, {{"v", 1}})), 1);
  ASSERT_EQ(commit_write(db(), put_write("users", "u1", 1, {{"v", 2}})), 2);

  const commit_result checked = db().commit(request_of({check_write("users", "u1", 2)}));
  EXPECT_EQ(checked.versions, versions{2});
  EXPECT_TRUE(checked.events.empty());

  const auto doc = db().get("users", "u1");
  ASSERT_TRUE(doc.has_value());
  EXPECT_EQ(doc->version, 2);
  EXPECT_EQ(doc->body, (json{{"v", 2}}));
  // The next write still expects 2: the check did not bump the version.
  EXPECT_EQ(commit_write(db(), put_write("users", "u1", 2, {{"v", 3}})), 3);
}

TEST_P(engine_conformance, check_with_wrong_version_conflicts) {
  ASSERT_EQ(commit_write(db(), put_write("users", "u1", 0, {{"v", 1}})), 1);
  EXPECT_TRUE(
      is_conflict(catch_conflict([&] { db().commit(request_of({check_write("users", "u1", 2)})); }),
                  conflict_target::document, "users", "u1", 2, 1));
  EXPECT_TRUE(
      is_conflict(catch_conflict([&] { db().commit(request_of({check_write("users", "u1", 0)})); }),
                  conflict_target::document, "users", "u1", 0, 1));
  EXPECT_TRUE(is_conflict(
      catch_conflict([&] { db().commit(request_of({check_write("users", "missing", 1)})); }),
      conflict_target::document, "users", "missing", 1, 0));
}

TEST_P(engine_conformance, check_expecting_zero_succeeds_on_missing_and_deleted_documents) {
  const commit_result missing = db().commit(request_of({check_write("users", "never", 0)}));
  EXPECT_EQ(missing.versions, versions{0});
  EXPECT_FALSE(db().get("users", "never").has_value());
  // A check creates nothing: the document can still be created at version 1.
  EXPECT_EQ(commit_write(db(), put_write("users", "never", 0, {{"v", 1}})), 1);

  ASSERT_EQ(commit_write(db(), erase_write("users", "never", 1)), 2);
  const commit_result deleted = db().commit(request_of({check_write("users", "never", 0)}));
  EXPECT_EQ(deleted.versions, versions{0});
  EXPECT_FALSE(db().get("users", "never").has_value());
}

TEST_P(engine_conformance, multi_write_commit_returns_versions_in_request_order) {
  ASSERT_EQ(commit_write(db(), put_write("c", "b", 0, {{"v", 1}})), 1);
  ASSERT_EQ(commit_write(db(), put_write("c", "b", 1, {{"v", 2}})), 2);
  ASSERT_EQ(commit_write(db(), put_write("c", "d", 0, {{"v", 1}})), 1);

  const commit_result result = db().commit(request_of({
      put_write("c", "a", 0, {{"v", 1}}),
      put_write("c", "b", 2, {{"v", 3}}),
      erase_write("c", "d", 1),
      check_write("c", "e", 0),
  }));
  EXPECT_EQ(result.versions, (versions{1, 3, 2, 0}));
  EXPECT_EQ(db().get("c", "a")->version, 1);
  EXPECT_EQ(db().get("c", "b")->version, 3);
  EXPECT_FALSE(db().get("c", "d").has_value());
  EXPECT_FALSE(db().get("c", "e").has_value());
}

TEST_P(engine_conformance, commit_whose_last_write_conflicts_makes_nothing_visible) {
  ASSERT_EQ(commit_write(db(), put_write("accounts", "existing", 0, {{"balance", 10}})), 1);
  ASSERT_EQ(commit_write(db(), put_write("accounts", "stale", 0, {{"balance", 5}})), 1);
  const stream_ref stream{"transfer", "t1"};

  EXPECT_TRUE(is_conflict(catch_conflict([&] {
                            db().commit(request_of(
                                {
                                    put_write("accounts", "new", 0, {{"balance", 1}}),
                                    put_write("accounts", "existing", 1, {{"balance", 0}}),
                                    put_write("accounts", "stale", 7, {{"balance", 99}}),
                                },
                                {append_to(stream, 0, {make_event("TransferStarted")})}));
                          }),
                          conflict_target::document, "accounts", "stale", 7, 1));

  EXPECT_FALSE(db().get("accounts", "new").has_value());
  EXPECT_EQ(db().get("accounts", "existing")->version, 1);
  EXPECT_EQ(db().get("accounts", "existing")->body, (json{{"balance", 10}}));
  EXPECT_EQ(db().get("accounts", "stale")->body, (json{{"balance", 5}}));
  EXPECT_TRUE(db().read_stream(stream, 1, 10).empty());
  EXPECT_TRUE(read_everything(db()).empty());

  // Nothing of the failed request was consumed: the stream still starts at version 1.
  const auto events = commit_append(db(), append_to(stream, 0, {make_event("TransferStarted")}));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].stream_version, 1);
}

TEST_P(engine_conformance, conflict_names_the_first_conflicting_write) {
  ASSERT_EQ(commit_write(db(), put_write("c", "x", 0, {{"v", 1}})), 1);
  ASSERT_EQ(commit_write(db(), put_write("c", "y", 0, {{"v", 1}})), 1);
  EXPECT_TRUE(is_conflict(catch_conflict([&] {
                            db().commit(request_of({
                                put_write("c", "fresh", 0, {{"v", 1}}),
                                put_write("c", "x", 5, {{"v", 2}}),
                                put_write("c", "y", 6, {{"v", 2}}),
                            }));
                          }),
                          conflict_target::document, "c", "x", 5, 1));
}

TEST_P(engine_conformance, commit_with_wrong_expected_stream_version_writes_nothing) {
  const stream_ref orders{"order", "o1"};
  const stream_ref other{"order", "o2"};
  ASSERT_EQ(
      commit_append(db(), append_to(orders, 0, {make_event("Placed"), make_event("Paid")})).size(),
      2u);

  EXPECT_TRUE(is_conflict(catch_conflict([&] {
                            db().commit(
                                request_of({put_write("orders", "o1", 0, {{"state", "shipped"}})},
                                           {append_to(other, std::nullopt, {make_event("Placed")}),
                                            append_to(orders, 1, {make_event("Shipped")})}));
                          }),
                          conflict_target::stream, "order", "o1", 1, 2));

  EXPECT_FALSE(db().get("orders", "o1").has_value());
  EXPECT_TRUE(db().read_stream(other, 1, 10).empty());
  EXPECT_EQ(db().read_stream(orders, 1, 10).size(), 2u);
  EXPECT_EQ(read_everything(db()).size(), 2u);
}

TEST_P(engine_conformance, collections_are_isolated) {
  ASSERT_EQ(commit_write(db(), put_write("users", "same-id", 0, {{"kind", "user"}})), 1);
  ASSERT_EQ(commit_write(db(), put_write("users", "same-id", 1, {{"kind", "user2"}})), 2);
  ASSERT_EQ(commit_write(db(), put_write("teams", "same-id", 0, {{"kind", "team"}})), 1);
  ASSERT_EQ(commit_write(db(), put_write("users.archive", "same-id", 0, {{"kind", "arch"}})), 1);

  EXPECT_EQ(db().get("users", "same-id")->body, (json{{"kind", "user2"}}));
  EXPECT_EQ(db().get("teams", "same-id")->version, 1);
  EXPECT_EQ(db().get("teams", "same-id")->body, (json{{"kind", "team"}}));
  EXPECT_FALSE(db().get("Users", "same-id").has_value()) << "names are case-sensitive";
  EXPECT_FALSE(db().get("user", "same-id").has_value());

  ASSERT_EQ(commit_write(db(), erase_write("teams", "same-id", 1)), 2);
  EXPECT_TRUE(db().get("users", "same-id").has_value());
  EXPECT_TRUE(db().find("teams", query{}).empty());
  EXPECT_EQ(db().find("users", query{}).size(), 1u);
  EXPECT_EQ(db().find("users.archive", query{}).size(), 1u);
  EXPECT_TRUE(db().find("nothing-here", query{}).empty());
}

TEST_P(engine_conformance, ids_are_exact_byte_strings) {
  ASSERT_EQ(commit_write(db(), put_write("c", "Id", 0, {{"v", "upper"}})), 1);
  ASSERT_EQ(commit_write(db(), put_write("c", "id", 0, {{"v", "lower"}})), 1);
  ASSERT_EQ(commit_write(db(), put_write("c", "id ", 0, {{"v", "space"}})), 1);
  ASSERT_EQ(commit_write(db(), put_write("c", "ïd-✓", 0, {{"v", "unicode"}})), 1);
  ASSERT_EQ(commit_write(db(), put_write("c", "'; DROP TABLE documents; --", 0, {{"v", "sql"}})),
            1);
  EXPECT_EQ(db().get("c", "Id")->body, (json{{"v", "upper"}}));
  EXPECT_EQ(db().get("c", "id")->body, (json{{"v", "lower"}}));
  EXPECT_EQ(db().get("c", "id ")->body, (json{{"v", "space"}}));
  EXPECT_EQ(db().get("c", "ïd-✓")->body, (json{{"v", "unicode"}}));
  EXPECT_EQ(db().get("c", "'; DROP TABLE documents; --")->body, (json{{"v", "sql"}}));
  EXPECT_EQ(db().find("c", query{}).size(), 5u);
}

TEST_P(engine_conformance, longest_names_and_ids_are_accepted) {
  const std::string collection = "c" + std::string(127, 'x');
  const std::string id(kMaxIdBytes, 'i');
  ASSERT_EQ(commit_write(db(), put_write(collection, id, 0, {{"v", 1}})), 1);
  const auto doc = db().get(collection, id);
  ASSERT_TRUE(doc.has_value());
  EXPECT_EQ(doc->id, id);
}

TEST_P(engine_conformance, collection_names_that_are_sql_words_work) {
  for (const std::string name :
       {"select", "documents", "events", "table", "where", "sqlite_master", "_", "a.b-c_d", "Z9"}) {
    SCOPED_TRACE(name);
    ASSERT_EQ(commit_write(db(), put_write(name, "id", 0, {{"name", name}})), 1);
    EXPECT_EQ(db().get(name, "id")->body, (json{{"name", name}}));
    EXPECT_EQ(db().find(name, query{}).size(), 1u);
  }
  EXPECT_FALSE(db().get("select", "other").has_value());
}

TEST_P(engine_conformance, reserved_prefix_names_are_accepted_by_engines) {
  const std::string reserved = std::string(kReservedPrefix) + "checkpoints";
  ASSERT_EQ(commit_write(db(), put_write(reserved, "projection-1", 0, {{"position", 42}})), 1);
  EXPECT_EQ(db().get(reserved, "projection-1")->body, (json{{"position", 42}}));
  EXPECT_EQ(db().find(reserved, query{}).size(), 1u);

  const stream_ref stream{std::string(kReservedPrefix) + "snapshots", "s1"};
  const auto events = commit_append(db(), append_to(stream, 0, {make_event("SnapshotTaken")}));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].stream, stream);
}

TEST_P(engine_conformance, get_for_update_sees_what_get_sees) {
  EXPECT_FALSE(db().get_for_update("users", "u1").has_value());
  ASSERT_EQ(commit_write(db(), put_write("users", "u1", 0, {{"level", 1}})), 1);
  ASSERT_EQ(commit_write(db(), put_write("users", "u1", 1, {{"level", 2}})), 2);
  const auto doc = db().get_for_update("users", "u1");
  ASSERT_TRUE(doc.has_value());
  EXPECT_EQ(doc->version, 2);
  EXPECT_EQ(doc->body, (json{{"level", 2}}));
  ASSERT_EQ(commit_write(db(), erase_write("users", "u1", 2)), 3);
  EXPECT_FALSE(db().get_for_update("users", "u1").has_value());
  EXPECT_THROW(db().get_for_update("bad name", "u1"), invalid_argument_error);
}

TEST_P(engine_conformance, body_over_max_body_bytes_fails_the_whole_commit) {
  ASSERT_EQ(commit_write(db(), put_write("users", "small", 0, {{"n", 1}})), 1);
  commit_request request =
      request_of({put_write("users", "small", 1, {{"n", 2}}),
                  put_write("users", "big", 0, {{"blob", std::string(200, 'x')}})},
                 {append_to({"user", "small"}, std::nullopt, {make_event("Changed")})});
  request.max_body_bytes = 100;
  EXPECT_THROW(db().commit(request), invalid_argument_error);
  EXPECT_EQ(db().get("users", "small")->version, 1);
  EXPECT_FALSE(db().get("users", "big").has_value());
  EXPECT_TRUE(read_everything(db()).empty());

  request.max_body_bytes = 1000;  // the same request fits under a larger limit
  EXPECT_EQ(db().commit(request).versions, versions({2, 1}));
}

// A write that is both stale and too big reports the conflict (retryable: the caller re-reads and
// may then produce a body that fits), as an engine that checks the version first would.
TEST_P(engine_conformance, stale_put_over_max_body_bytes_reports_the_conflict) {
  ASSERT_EQ(commit_write(db(), put_write("users", "u1", 0, {{"n", 1}})), 1);
  ASSERT_EQ(commit_write(db(), put_write("users", "u1", 1, {{"n", 2}})), 2);
  commit_request request =
      request_of({put_write("users", "u1", 1, {{"blob", std::string(200, 'x')}})});
  request.max_body_bytes = 100;
  EXPECT_TRUE(is_conflict(catch_conflict([&] { db().commit(request); }), conflict_target::document,
                          "users", "u1", 1, 2));
  request.writes[0].expected_version = 2;  // current, but still too big
  EXPECT_THROW(db().commit(request), invalid_argument_error);
  EXPECT_EQ(db().get("users", "u1")->body, (json{{"n", 2}}));
}

}  // namespace
}  // namespace eventsourced::conformance
