// sync_service against hostile clients (docs/limits.md): messages nested far deeper than any
// stack could follow, patches built to explode a document or nest it too deep, error messages
// quoting broken text. Each gets an error reply naming its request, nothing is written, and the
// connection and every other client keep working.
#include <gtest/gtest.h>

#include <string>
#include <utility>

#include <eventsourced/eventsourced.hpp>

#include "sync_test_client.hpp"
#include "sync_test_support.hpp"

namespace eventsourced_test {
namespace {

using eventsourced::json;

std::string arrays(std::size_t levels, const std::string& inner = "") {
  return std::string(levels, '[') + inner + std::string(levels, ']');
}

std::string write_message(int request_id, const std::string& mutation_id, const std::string& rest) {
  return R"({"type": "write", "request_id": )" + std::to_string(request_id) +
         R"(, "mutation_id": ")" + mutation_id + R"(", "collection": "games", "id": "g1", )" +
         rest + "}";
}

class sync_hostile_input : public sync_service_fixture {
 protected:
  // The service, over storage holding one document.
  eventsourced::sync_service& start(eventsourced::sync_service_options options = {}) {
    auto& service = sync_service_fixture::start({}, options);
    storage().find_one_and_upsert("games", {{"id", "g1"}, {"gold", 5}});
    return service;
  }

  json g1() { return shared_->find_one("games", "g1").value(); }

  // The connection still works: a write through it is applied, and a subscriber sees it.
  void expect_still_serving(eventsourced::sync_service& service,
                            eventsourced::sync_connection_id connection, test_client& client,
                            test_client& watcher) {
    const std::int64_t version = g1()["version"];
    ASSERT_TRUE(service.receive(
        connection, write_message(900, "still-ok", R"("op": "patch", "patch": [{"op": "replace",
                                      "path": "/gold", "value": 6}])")));
    EXPECT_EQ(client.reply(900)["type"], "ok");
    EXPECT_TRUE(watcher.wait_for_version("games", "g1", version + 1));
    EXPECT_EQ(g1()["gold"], 6);
  }
};
EVENTSOURCED_SYNC_TEST_ENGINES(sync_hostile_input);

TEST_P(sync_hostile_input, a_put_or_patch_nested_a_hundred_thousand_deep_gets_too_deep) {
  auto& service = start();
  test_client client, watcher;
  const auto connection = client.connect(service, "ann");
  const auto watching = watcher.connect(service, "bob");
  ASSERT_TRUE(service.receive(watching, R"({"type": "subscribe", "request_id": 1,
      "documents": [{"collection": "games", "id": "g1", "version": 0}]})"));
  ASSERT_EQ(watcher.reply(1)["type"], "ok");

  const std::string put = write_message(
      1, "deep-put", R"("op": "put", "document": {"id": "g1", "x": )" + arrays(100'000) + "}");
  ASSERT_GT(put.size(), 200'000u);
  const std::string patch = write_message(
      2, "deep-patch",
      R"("op": "patch", "patch": [{"op": "add", "path": "/x", "value": )" + arrays(100'000) + "}]");
  for (const auto& [request_id, text] : {std::pair{1, put}, {2, patch}}) {
    EXPECT_TRUE(service.receive(connection, text)) << "well formed, only over a limit";
    const json reply = client.reply(request_id);
    EXPECT_EQ(reply["type"], "error");
    EXPECT_EQ(reply["code"], "too_deep") << reply.dump();
    EXPECT_EQ(reply["max_depth"], eventsourced::kDefaultMaxJsonDepth);
  }
  EXPECT_EQ(g1(), (json{{"id", "g1"}, {"gold", 5}, {"version", 1}}));
  expect_still_serving(service, connection, client, watcher);
  EXPECT_EQ(watcher.violations(), 0);
}

TEST_P(sync_hostile_input, a_document_at_the_depth_limit_is_written_and_one_level_more_is_not) {
  auto& service = start();
  test_client client;
  const auto connection = client.connect(service, "ann");
  const auto limit = eventsourced::kDefaultMaxJsonDepth;
  // {"id": "g1", "x": [[...]]}: the body is one level around the arrays.
  service.receive(connection, write_message(1, "at-limit", R"("op": "put", "document": {"id": "g1",
      "x": )" + arrays(limit - 1) + "}"));
  EXPECT_EQ(client.reply(1)["type"], "ok");
  service.receive(connection, write_message(2, "over", R"("op": "put", "document": {"id": "g1",
      "x": )" + arrays(limit) + "}"));
  EXPECT_EQ(client.reply(2)["code"], "too_deep");
  service.receive(connection, write_message(3, "patch-over", R"("op": "patch", "patch": [
      {"op": "add", "path": "/y", "value": )" + arrays(limit) + "}]"));
  EXPECT_EQ(client.reply(3)["code"], "too_deep");
  EXPECT_EQ(g1()["version"], 2);
  EXPECT_FALSE(g1().contains("y"));
}

TEST_P(sync_hostile_input, patches_that_explode_or_deepen_the_document_are_refused_step_by_step) {
  auto& service = start();
  test_client client, watcher;
  const auto connection = client.connect(service, "ann");
  watcher.connect(service, "bob");
  service.receive(connection, write_message(1, "seed", R"("op": "put", "document": {"id": "g1",
      "gold": 5, "a": ")" + std::string(1000, 'x') + R"("})"));
  ASSERT_EQ(client.reply(1)["type"], "ok");

  // 40 copies, each doubling /a: a trillion times the text if applied blindly.
  json doubling = json::array();
  doubling.push_back({{"op", "add"}, {"path", "/b"}, {"value", json::array()}});
  for (int i = 0; i < 40; ++i) {
    doubling.push_back({{"op", "copy"}, {"from", "/a"}, {"path", "/b/-"}});
    doubling.push_back({{"op", "copy"}, {"from", "/b"}, {"path", "/a"}});
  }
  service.receive(connection,
                  write_message(2, "explode", R"("op": "patch", "patch": )" + doubling.dump()));
  const json exploded = client.reply(2);
  EXPECT_EQ(exploded["code"], "invalid_argument") << exploded.dump();
  EXPECT_NE(exploded.value("message", "").find("copies more than"), std::string::npos);

  // Each add nests one level deeper than the one before, all within the message's own limit.
  json deepening = json::array();
  std::string path;
  for (int i = 0; i < 300; ++i) {
    path += "/d";
    deepening.push_back({{"op", "add"}, {"path", path}, {"value", json::object()}});
  }
  service.receive(connection,
                  write_message(3, "deepen", R"("op": "patch", "patch": )" + deepening.dump()));
  EXPECT_EQ(client.reply(3)["code"], "too_deep");

  json too_many = json::array();
  for (int i = 0; i < 1001; ++i) {
    too_many.push_back({{"op", "test"}, {"path", "/gold"}, {"value", 5}});
  }
  service.receive(connection,
                  write_message(4, "many", R"("op": "patch", "patch": )" + too_many.dump()));
  EXPECT_EQ(client.reply(4)["code"], "invalid_argument");

  EXPECT_EQ(g1()["version"], 2);
  EXPECT_FALSE(g1().contains("b"));
  EXPECT_FALSE(g1().contains("d"));
}

TEST_P(sync_hostile_input, an_error_message_quoting_a_cut_utf8_sequence_is_still_sent) {
  auto& service = start();
  test_client client;
  const auto connection = client.connect(service, "ann");
  // The error names the operation's path, shortened; "é" is two bytes, so the cut may split one.
  std::string path = "/";
  for (int i = 0; i < 400; ++i) path += "\xc3\xa9";
  const std::string text =
      write_message(1, "utf8",
                    R"("op": "patch", "patch": [{"op": "add", "path": ")" + path +
                        R"(", "value": )" + arrays(eventsourced::kDefaultMaxJsonDepth) + "}]");
  EXPECT_TRUE(service.receive(connection, text));
  const json reply = client.reply(1);
  EXPECT_EQ(reply["type"], "error") << "the reply must arrive, as valid JSON";
  EXPECT_EQ(g1()["version"], 1);
}

TEST_P(sync_hostile_input, the_message_depth_limit_is_an_option_within_bounds) {
  auto& service = start({.max_json_depth = 4});
  test_client client;
  const auto connection = client.connect(service, "ann");
  service.receive(connection, write_message(1, "ok", R"("op": "put", "document": {"id": "g1",
      "a": [[1]]})"));
  EXPECT_EQ(client.reply(1)["type"], "ok");
  // Refused while parsing: the patch value is four levels, the message around it three more.
  service.receive(connection, write_message(2, "deep", R"("op": "patch", "patch": [{"op": "add",
      "path": "/b", "value": [[[[[1]]]]]}])"));
  const json reply = client.reply(2);
  EXPECT_EQ(reply["code"], "too_deep");
  EXPECT_EQ(reply["max_depth"], 4);
  service_->stop();
  EXPECT_THROW(eventsourced::sync_service::start(shared_, {.max_json_depth = 0}),
               eventsourced::invalid_argument_error);
  EXPECT_THROW(eventsourced::sync_service::start(
                   shared_, {.max_json_depth = eventsourced::kMaxJsonDepthSetting + 1}),
               eventsourced::invalid_argument_error);
}

}  // namespace
}  // namespace eventsourced_test
