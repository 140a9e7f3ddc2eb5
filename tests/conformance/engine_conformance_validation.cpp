// Engine conformance: malformed requests are refused with invalid_argument_error and change
// nothing (invariant 4). Names and ids are data, never SQL.
#include "conformance/engine_conformance.hpp"

#include <string>
#include <vector>

namespace eventsourced::conformance {
namespace {

// Collection names (and stream types) that validate_collection_name() refuses.
std::vector<std::string> invalid_collection_names() {
  return {
      "",
      "a b",
      "x;DROP TABLE documents",
      "a\"b",
      "a'b",
      std::string("a\0b", 3),
      "c" + std::string(128, 'x'),  // 129 bytes
      "1abc",
      "-abc",
      ".abc",
      "a/b",
      "é",
      "$set",
  };
}

// Document ids (and stream ids) that validate_id() refuses.
std::vector<std::string> invalid_ids() {
  return {
      "",
      std::string("a\0b", 3),
      std::string(1, '\0'),
      std::string(kMaxIdBytes + 1, 'x'),
      std::string(1024 * 1024, 'x'),
      "bad\xff utf8",
      "\xc3",  // a truncated two-byte sequence
      "a\x80"
      "b",  // a lone continuation byte
  };
}

// Byte strings that are well-formed sequences of lead and continuation bytes but still not valid
// UTF-8 (RFC 3629): nlohmann::json refuses to dump them, so such an id would break every layer
// that puts ids into JSON.
std::vector<std::string> malformed_utf8_ids() {
  return {
      "\xed\xa0\x80",      // an encoded UTF-16 surrogate (U+D800)
      "\xc0\xaf",          // an overlong encoding of '/'
      "\xe0\x80\xaf",      // another overlong encoding of '/'
      "\xf4\x90\x80\x80",  // above U+10FFFF
  };
}

std::string printable(const std::string& s) {
  std::string out;
  for (const char c : s.substr(0, 40)) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f) {
      out += "\\x";
      out += "0123456789abcdef"[u >> 4];
      out += "0123456789abcdef"[u & 15];
    } else {
      out += c;
    }
  }
  if (s.size() > 40) out += "... (" + std::to_string(s.size()) + " bytes)";
  return out;
}

TEST_P(engine_conformance, two_writes_to_one_document_are_invalid) {
  EXPECT_TRUE(rejected_as_invalid(
      db(), request_of({put_write("c", "a", 0, {{"v", 1}}), put_write("c", "a", 0, {{"v", 2}})})));
  EXPECT_TRUE(rejected_as_invalid(
      db(), request_of({put_write("c", "a", 0, {{"v", 1}}), check_write("c", "a", 0)})));

  ASSERT_EQ(commit_write(db(), put_write("c", "b", 0, {{"v", 1}})), 1);
  EXPECT_TRUE(rejected_as_invalid(
      db(), request_of({put_write("c", "b", 1, {{"v", 2}}), erase_write("c", "b", 1)})));
  EXPECT_EQ(db().get("c", "b")->version, 1);
  EXPECT_FALSE(db().get("c", "a").has_value());
}

TEST_P(engine_conformance, same_id_in_two_collections_is_two_documents) {
  const commit_result result = db().commit(
      request_of({put_write("c1", "a", 0, {{"v", 1}}), put_write("c2", "a", 0, {{"v", 2}})}));
  EXPECT_EQ(result.versions, (std::vector<std::int64_t>{1, 1}));
}

TEST_P(engine_conformance, non_object_body_is_invalid) {
  for (const json& body :
       {json::array({1, 2}), json("text"), json(nullptr), json(42), json(true)}) {
    SCOPED_TRACE(body.dump());
    EXPECT_TRUE(rejected_as_invalid(db(), request_of({put_write("c", "doc", 0, body)})));
  }
  ASSERT_EQ(commit_write(db(), put_write("c", "existing", 0, {{"v", 1}})), 1);
  EXPECT_TRUE(
      rejected_as_invalid(db(), request_of({put_write("c", "existing", 1, json::array())})));
  EXPECT_FALSE(db().get("c", "doc").has_value());
  EXPECT_EQ(db().get("c", "existing")->body, (json{{"v", 1}}));
}

TEST_P(engine_conformance, invalid_collection_names_are_refused_everywhere) {
  for (const std::string& name : invalid_collection_names()) {
    SCOPED_TRACE(printable(name));
    EXPECT_TRUE(rejected_as_invalid(db(), request_of({put_write(name, "id", 0, {{"v", 1}})})));
    EXPECT_TRUE(rejected_as_invalid(db(), request_of({check_write(name, "id", 0)})));
    EXPECT_THROW(db().get(name, "id"), invalid_argument_error);
    EXPECT_THROW(db().find(name, query{}), invalid_argument_error);
  }
  // The famous one did not run.
  ASSERT_EQ(commit_write(db(), put_write("documents", "still-here", 0, {{"v", 1}})), 1);
  EXPECT_TRUE(db().get("documents", "still-here").has_value());
}

TEST_P(engine_conformance, invalid_stream_types_are_refused) {
  for (const std::string& type : invalid_collection_names()) {
    SCOPED_TRACE(printable(type));
    EXPECT_TRUE(rejected_as_invalid(
        db(), request_of({}, {append_to({type, "s1"}, std::nullopt, {make_event("Happened")})})));
    EXPECT_THROW(db().read_stream({type, "s1"}, 1, 10), invalid_argument_error);
  }
}

TEST_P(engine_conformance, invalid_ids_are_refused_everywhere) {
  for (const std::string& id : invalid_ids()) {
    SCOPED_TRACE(printable(id));
    EXPECT_TRUE(rejected_as_invalid(db(), request_of({put_write("c", id, 0, {{"v", 1}})})));
    EXPECT_TRUE(rejected_as_invalid(db(), request_of({check_write("c", id, 0)})));
    EXPECT_THROW(db().get("c", id), invalid_argument_error);
    EXPECT_TRUE(rejected_as_invalid(
        db(), request_of({}, {append_to({"order", id}, std::nullopt, {make_event("Happened")})})));
    EXPECT_THROW(db().read_stream({"order", id}, 1, 10), invalid_argument_error);
  }
  EXPECT_TRUE(db().find("c", query{}).empty());
}

TEST_P(engine_conformance, negative_expected_version_is_invalid) {
  ASSERT_EQ(commit_write(db(), put_write("c", "a", 0, {{"v", 1}})), 1);
  EXPECT_TRUE(rejected_as_invalid(db(), request_of({put_write("c", "a", -1, {{"v", 2}})})));
  EXPECT_TRUE(rejected_as_invalid(db(), request_of({erase_write("c", "a", -1)})));
  EXPECT_TRUE(rejected_as_invalid(db(), request_of({check_write("c", "a", -1)})));
  EXPECT_TRUE(rejected_as_invalid(
      db(), request_of({}, {append_to({"order", "o1"}, -1, {make_event("Happened")})})));
  EXPECT_EQ(db().get("c", "a")->version, 1);
}

TEST_P(engine_conformance, ids_that_are_not_valid_utf8_are_refused) {
  for (const std::string& id : malformed_utf8_ids()) {
    SCOPED_TRACE(printable(id));
    EXPECT_THROW(validate_id(id), invalid_argument_error);
    EXPECT_TRUE(rejected_as_invalid(db(), request_of({put_write("c", id, 0, {{"v", 1}})})));
    EXPECT_THROW(db().get("c", id), invalid_argument_error);
    EXPECT_TRUE(rejected_as_invalid(
        db(), request_of({}, {append_to({"order", id}, std::nullopt, {make_event("Happened")})})));
  }
  EXPECT_TRUE(db().find("c", query{}).empty());
}

TEST_P(engine_conformance, empty_event_type_is_invalid) {
  new_event event = make_event("Typed");
  event.type = "";
  EXPECT_TRUE(rejected_as_invalid(db(), request_of({}, {append_to({"order", "o1"}, std::nullopt,
                                                                  {make_event("Fine"), event})})));
  EXPECT_TRUE(db().read_stream({"order", "o1"}, 1, 10).empty());
}

TEST_P(engine_conformance, empty_event_id_is_invalid) {
  new_event event = make_event("Happened");
  event.id = "";
  EXPECT_TRUE(rejected_as_invalid(db(), request_of({}, {append_to({"order", "o1"}, std::nullopt,
                                                                  {make_event("Fine"), event})})));
}

TEST_P(engine_conformance, non_object_metadata_is_invalid) {
  for (const json& metadata : {json::array({1}), json("text"), json(7)}) {
    SCOPED_TRACE(metadata.dump());
    EXPECT_TRUE(rejected_as_invalid(
        db(), request_of({}, {append_to({"order", "o1"}, std::nullopt,
                                        {make_event("Happened", json::object(), metadata)})})));
  }
}

TEST_P(engine_conformance, duplicate_event_id_within_a_request_is_invalid) {
  const new_event event = make_event("Happened");
  EXPECT_TRUE(rejected_as_invalid(
      db(), request_of({}, {append_to({"order", "o1"}, std::nullopt, {event, event})})));
  EXPECT_TRUE(rejected_as_invalid(
      db(), request_of({}, {append_to({"order", "o1"}, std::nullopt, {event}),
                            append_to({"order", "o2"}, std::nullopt, {event})})));
  EXPECT_TRUE(read_everything(db()).empty());
}

TEST_P(engine_conformance, event_id_already_in_the_log_is_invalid) {
  const new_event event = make_event("Happened");
  ASSERT_EQ(commit_append(db(), append_to({"order", "o1"}, std::nullopt, {event})).size(), 1u);

  new_event again = make_event("HappenedAgain");
  again.id = event.id;
  EXPECT_TRUE(rejected_as_invalid(
      db(), request_of({put_write("orders", "o2", 0, {{"v", 1}})},
                       {append_to({"order", "o2"}, std::nullopt, {make_event("Fresh"), again})})));
  EXPECT_FALSE(db().get("orders", "o2").has_value());
  EXPECT_TRUE(db().read_stream({"order", "o2"}, 1, 10).empty());
  const auto log = read_everything(db());
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0].type, "Happened");
}

TEST_P(engine_conformance, two_appends_to_one_stream_are_invalid) {
  EXPECT_TRUE(rejected_as_invalid(
      db(), request_of({}, {append_to({"order", "o1"}, std::nullopt, {make_event("A")}),
                            append_to({"order", "o1"}, std::nullopt, {make_event("B")})})));
  EXPECT_TRUE(db().read_stream({"order", "o1"}, 1, 10).empty());
}

TEST_P(engine_conformance, one_bad_part_refuses_a_request_that_also_conflicts) {
  // Validation happens before version checks: a malformed request is invalid even when it would
  // also conflict, so retrying it can never help.
  ASSERT_EQ(commit_write(db(), put_write("c", "a", 0, {{"v", 1}})), 1);
  EXPECT_TRUE(
      rejected_as_invalid(db(), request_of({put_write("c", "a", 0, {{"v", 2}}),
                                            put_write("bad name", "b", 0, json::object())})));
}

}  // namespace
}  // namespace eventsourced::conformance
