// storage/json_patch.hpp: RFC 6902 as json::patch applies it, checked operation by operation so
// that no patch can nest a document too deep, copy without bound or run without end.
#include <gtest/gtest.h>

#include <string>

#include <eventsourced/error.hpp>
#include <eventsourced/storage/json_patch.hpp>

namespace eventsourced_test {
namespace {

using eventsourced::apply_json_patch;
using eventsourced::invalid_argument_error;
using eventsourced::json;
using eventsourced::json_depth_error;
using eventsourced::json_patch_limits;

TEST(json_patch, ordinary_patches_give_what_json_patch_gives) {
  const json doc = json::parse(R"({"a": {"b": [1, 2]}, "c": "x"})");
  const json patch = json::parse(R"([
      {"op": "add", "path": "/a/b/1", "value": 9},
      {"op": "remove", "path": "/c"},
      {"op": "replace", "path": "/a/b/0", "value": {"k": [true]}},
      {"op": "copy", "from": "/a/b", "path": "/d"},
      {"op": "move", "from": "/d", "path": "/e"},
      {"op": "test", "path": "/e/1", "value": 9}])");
  EXPECT_EQ(apply_json_patch(doc, patch), doc.patch(patch));
  EXPECT_EQ(apply_json_patch(doc, json::array()), doc);
  EXPECT_EQ(apply_json_patch(doc, json::parse(R"([{"op": "add", "path": "", "value": [1]}])")),
            json::parse("[1]"));
}

TEST(json_patch, malformed_or_failing_patches_are_invalid_arguments) {
  const json doc = {{"a", 1}};
  for (const char* patch :
       {R"({"op": "add"})", R"([1])", R"([{"path": "/a"}])",
        R"([{"op": "add", "path": 5, "value": 1}])", R"([{"op": "jump", "path": "/a"}])",
        R"([{"op": "add", "path": "a", "value": 1}])", R"([{"op": "remove", "path": "/nope"}])",
        R"([{"op": "copy", "from": "/nope", "path": "/b"}])", R"([{"op": "copy", "path": "/b"}])",
        R"([{"op": "test", "path": "/a", "value": 2}])",
        // Under or through a scalar (nlohmann 3.11.2 aborts on an assertion for the first, and
        // ignores the removal).
        R"([{"op": "add", "path": "/a/x", "value": 1}])",
        R"([{"op": "copy", "from": "/a", "path": "/a/x"}])",
        R"([{"op": "remove", "path": "/a/x"}])",
        R"([{"op": "replace", "path": "/a/x", "value": 1}])"}) {
    SCOPED_TRACE(patch);
    EXPECT_THROW(apply_json_patch(doc, json::parse(patch)), invalid_argument_error);
  }
}

TEST(json_patch, no_operation_may_nest_the_document_deeper_than_the_limit) {
  json_patch_limits limits;
  limits.max_depth = 4;
  const json doc = {{"a", {{"b", json::object()}}}};  // depth 3
  // /a/b/c holds a value of depth 1: 3 + 1 = 4, the limit.
  EXPECT_NO_THROW(apply_json_patch(
      doc, json::parse(R"([{"op": "add", "path": "/a/b/c", "value": [1]}])"), limits));
  EXPECT_THROW(
      apply_json_patch(doc, json::parse(R"([{"op": "add", "path": "/a/b/c", "value": [[1]]}])"),
                       limits),
      json_depth_error);
  EXPECT_THROW(apply_json_patch(
                   doc, json::parse(R"([{"op": "copy", "from": "/a", "path": "/a/b/c"}])"), limits),
               json_depth_error);
  EXPECT_THROW(
      apply_json_patch(doc, json::parse(R"([{"op": "move", "from": "/a/b", "path": "/a/b/x"}])"),
                       limits),
      invalid_argument_error);  // RFC 6902: no move into its own child
  // Step by step: each add one level deeper than the last.
  json deepening = json::array();
  std::string path;
  for (int i = 0; i < 10; ++i) {
    path += "/d";
    deepening.push_back({{"op", "add"}, {"path", path}, {"value", json::object()}});
  }
  EXPECT_THROW(apply_json_patch(json::object(), deepening, limits), json_depth_error);
}

TEST(json_patch, copies_are_bounded_in_all_and_operations_in_number) {
  json_patch_limits limits;
  limits.max_copied_bytes = 100'000;
  json doc = {{"a", std::string(1000, 'x')}, {"b", json::array()}};
  json doubling = json::array();
  for (int i = 0; i < 40; ++i) {
    doubling.push_back({{"op", "copy"}, {"from", "/a"}, {"path", "/b/-"}});
    doubling.push_back({{"op", "copy"}, {"from", "/b"}, {"path", "/a"}});
  }
  try {
    apply_json_patch(doc, doubling, limits);
    FAIL() << "applied";
  } catch (const invalid_argument_error& e) {
    EXPECT_NE(std::string(e.what()).find("copies more than 100000 bytes"), std::string::npos)
        << e.what();
  }
  json many = json::array();
  for (int i = 0; i < 1001; ++i)
    many.push_back({{"op", "test"}, {"path", "/b"}, {"value", json::array()}});
  EXPECT_THROW(apply_json_patch(doc, many), invalid_argument_error);
  many.erase(many.begin());
  EXPECT_EQ(apply_json_patch(doc, many), doc);
}

TEST(json_patch, a_value_nested_a_hundred_thousand_deep_is_refused_before_it_is_copied) {
  json patch = json::array();
  patch.push_back({{"op", "add"}, {"path", "/x"}});
  patch[0]["value"] = json::parse(std::string(100'000, '[') + std::string(100'000, ']'));
  EXPECT_THROW(apply_json_patch(json::object(), patch), json_depth_error);
  patch[0]["op"] = "test";
  // A test compares without copying, but never against a value over the limit either.
  EXPECT_THROW(apply_json_patch(json::object(), patch), invalid_argument_error);
}

}  // namespace
}  // namespace eventsourced_test
