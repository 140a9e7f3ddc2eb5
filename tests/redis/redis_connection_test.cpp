// Connecting to Redis: the URI format, what each failure throws, and that a password never
// shows in an error message.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <eventsourced/error.hpp>
#include <eventsourced/redis/connection_options.hpp>
#include <eventsourced/redis/redis_cache.hpp>
#include <eventsourced/redis/redis_streams_bus.hpp>

#include "conformance/event_bus_conformance.hpp"
#include "redis_test_support.hpp"
#include "support/servers.hpp"

namespace eventsourced {
namespace {

using redis_testing::kRedisUri;

struct uri_case {
  std::string uri;
  std::string host;
  int port;
  std::string user;
  std::string password;
  int db;
};

TEST(redis_uri, parses_every_documented_form) {
  const std::vector<uri_case> cases = {
      {"redis://localhost", "localhost", 6379, "", "", 0},
      {"redis://10.0.0.5:6380", "10.0.0.5", 6380, "", "", 0},
      {"redis://h:1/3", "h", 1, "", "", 3},
      {"redis://:secret@h", "h", 6379, "", "secret", 0},
      {"redis://app:secret@h:7000/15", "h", 7000, "app", "secret", 15},
      {"redis://app:p%40ss%3Aw@h", "h", 6379, "app", "p@ss:w", 0},
      {"redis://app:p@ss@h", "h", 6379, "app", "p@ss", 0},
      {"redis://[::1]:6390/2", "::1", 6390, "", "", 2},
      {"redis://[::1]", "::1", 6379, "", "", 0},
      {"redis://h/", "h", 6379, "", "", 0},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.uri);
    const redis_endpoint ep = parse_redis_uri(c.uri);
    EXPECT_EQ(ep.host, c.host);
    EXPECT_EQ(ep.port, c.port);
    EXPECT_EQ(ep.user, c.user);
    EXPECT_EQ(ep.password, c.password);
    EXPECT_EQ(ep.db, c.db);
  }
}

TEST(redis_uri, refuses_malformed_uris_with_invalid_argument_error) {
  for (const std::string uri :
       {"", "http://h", "redis:/h", "redis://", "redis://h:0", "redis://h:70000", "redis://h:x",
        "redis://h:", "redis://h/x", "redis://h/-1", "redis://h?db=1", "redis://[::1",
        "redis://user@h", "redis://u:p%4@h", "redis://h#x"}) {
    SCOPED_TRACE(uri);
    EXPECT_THROW(parse_redis_uri(uri), invalid_argument_error);
  }
}

TEST(redis_uri, refuses_rediss_saying_that_tls_is_not_supported) {
  try {
    parse_redis_uri("rediss://u:topsecret@h:6380");
    FAIL() << "rediss:// was accepted";
  } catch (const invalid_argument_error& e) {
    EXPECT_NE(std::string(e.what()).find("TLS"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find("topsecret"), std::string::npos) << e.what();
  }
  EXPECT_THROW(redis_streams_bus({.connection = {.uri = "rediss://h"}}), invalid_argument_error);
}

TEST(redis_uri, a_malformed_uri_message_never_shows_the_password) {
  for (const std::string uri :
       {"redis://u:topsecret@h:port", "redis://u:topsecret@h/db", "redis://u:topsecret@"}) {
    try {
      parse_redis_uri(uri);
      FAIL() << "accepted";
    } catch (const invalid_argument_error& e) {
      EXPECT_EQ(std::string(e.what()).find("topsecret"), std::string::npos) << e.what();
    }
  }
}

TEST(redis_uri, describe_names_host_port_and_db_only) {
  EXPECT_EQ(parse_redis_uri("redis://app:secret@h:7000/2").describe(), "redis h:7000/2");
  EXPECT_EQ(parse_redis_uri("redis://[::1]").describe(), "redis [::1]:6379/0");
}

TEST(redis_connection, no_server_throws_retryable_engine_unavailable_error) {
  const int port = redis_testing::free_port();  // nobody listens there
  redis_streams_bus bus(
      {.connection = {.uri = "redis://:pw_not_shown@127.0.0.1:" + std::to_string(port),
                      .connect_timeout = std::chrono::milliseconds(500)}});
  try {
    bus.publish(conformance::make_test_event("T"));
    FAIL() << "published without a server";
  } catch (const engine_unavailable_error& e) {
    EXPECT_TRUE(e.retryable());
    EXPECT_NE(std::string(e.what()).find("127.0.0.1:" + std::to_string(port)), std::string::npos)
        << e.what();
    EXPECT_EQ(std::string(e.what()).find("pw_not_shown"), std::string::npos) << e.what();
  }
}

TEST(redis_connection, a_wrong_password_throws_engine_error_without_the_password) {
  std::string uri;
  EVENTSOURCED_REQUIRE_SERVER(kRedisUri, uri);
  redis_endpoint ep = parse_redis_uri(uri);
  if (ep.password.empty()) GTEST_SKIP() << "the test server has no password: any is accepted";
  const std::string wrong = "Wr0ngPassw0rdXyz";
  const std::string bad_uri =
      "redis://default:" + wrong + "@" + ep.host + ":" + std::to_string(ep.port);
  redis_streams_bus bus({.connection = {.uri = bad_uri}, .ns = redis_testing::unique_namespace()});
  try {
    bus.publish(conformance::make_test_event("T"));
    FAIL() << "published with a wrong password";
  } catch (const engine_unavailable_error& e) {
    FAIL() << "a refused password is not retryable: " << e.what();
  } catch (const engine_error& e) {
    EXPECT_FALSE(e.retryable());
    const std::string what = e.what();
    EXPECT_EQ(what.find(wrong), std::string::npos) << what;
    EXPECT_NE(what.find(ep.describe()), std::string::npos) << what;
  }
  {
    // No password at all: refused too (NOAUTH), as engine_error.
    redis_streams_bus anonymous(
        {.connection = {.uri = "redis://" + ep.host + ":" + std::to_string(ep.port)},
         .ns = redis_testing::unique_namespace()});
    EXPECT_THROW(anonymous.publish(conformance::make_test_event("T")), engine_error);
  }
}

TEST(redis_connection, the_database_index_selects_the_database) {
  std::string uri;
  EVENTSOURCED_REQUIRE_SERVER(kRedisUri, uri);
  const redis_endpoint ep = parse_redis_uri(uri);
  const std::string ns = redis_testing::unique_namespace();
  std::string db3 = "redis://";
  if (!ep.password.empty()) db3 += (ep.user.empty() ? "" : ep.user) + ":" + ep.password + "@";
  db3 += ep.host + ":" + std::to_string(ep.port) + "/3";
  redis_testing::namespace_cleanup cleanup(db3, ns);
  redis_cache cache({.connection = {.uri = db3}, .prefix = ns});
  cache.put("c", "1", {.version = 1, .body = json{{"a", 1}}});
  EXPECT_EQ(cache.failures(), 0u);
  redis_testing::raw_client in_db0(uri);
  redis_testing::raw_client in_db3(db3);
  EXPECT_EQ(in_db0.integer({"EXISTS", cache.key_of("c", "1")}), 0);
  EXPECT_EQ(in_db3.integer({"EXISTS", cache.key_of("c", "1")}), 1);
}

TEST(redis_connection, an_unknown_database_index_throws_engine_error) {
  std::string uri;
  EVENTSOURCED_REQUIRE_SERVER(kRedisUri, uri);
  const redis_endpoint ep = parse_redis_uri(uri);
  std::string db = "redis://";
  if (!ep.password.empty()) db += (ep.user.empty() ? "" : ep.user) + ":" + ep.password + "@";
  db += ep.host + ":" + std::to_string(ep.port) + "/999";  // beyond the default 16 databases
  redis_streams_bus bus({.connection = {.uri = db}, .ns = redis_testing::unique_namespace()});
  try {
    bus.publish(conformance::make_test_event("T"));
    FAIL() << "published to database 999";
  } catch (const engine_unavailable_error& e) {
    FAIL() << e.what();
  } catch (const engine_error& e) {
    EXPECT_EQ(std::string(e.what()).find(ep.password.empty() ? "\x01" : ep.password),
              std::string::npos);
  }
}

}  // namespace
}  // namespace eventsourced
