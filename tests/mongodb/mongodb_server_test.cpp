// The first contact with a MongoDB server: a clear error, in bounded time, when none answers;
// against a real replica set (EVENTSOURCED_TEST_MONGODB_URI), the server is accepted.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include <eventsourced/engine/mongodb.hpp>
#include <eventsourced/error.hpp>

#include "mongodb/mongo_client.hpp"
#include "support/servers.hpp"

namespace {

using eventsourced::mongodb_detail::client_pool;

TEST(mongodb_server, no_server_is_engine_unavailable_within_the_selection_timeout) {
  // Port 1 on loopback: nothing listens there, connections are refused at once.
  const auto options =
      eventsourced::parse_mongodb_uri("mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=700");
  client_pool pool(options);
  const auto start = std::chrono::steady_clock::now();
  try {
    pool.check_server();
    FAIL() << "a server answered on port 1";
  } catch (const eventsourced::engine_unavailable_error& e) {
    EXPECT_NE(std::string(e.what()).find("127.0.0.1:1"), std::string::npos) << e.what();
  }
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_LT(took, std::chrono::seconds(30)) << "bounded by serverSelectionTimeoutMS (0.7 s)";
}

TEST(mongodb_server, the_default_timeout_applies_when_the_uri_sets_none) {
  auto options = eventsourced::parse_mongodb_uri("mongodb://127.0.0.1:1/");
  options.server_selection_timeout = std::chrono::milliseconds(300);
  client_pool pool(options);
  EXPECT_THROW(pool.check_server(), eventsourced::engine_unavailable_error);
}

TEST(mongodb_server, a_replica_set_is_accepted) {
  std::string uri;
  EVENTSOURCED_REQUIRE_OPTIONAL_SERVER("EVENTSOURCED_TEST_MONGODB_URI", uri);
  client_pool pool(eventsourced::parse_mongodb_uri(uri));
  EXPECT_NO_THROW(pool.check_server());
}

}  // namespace
