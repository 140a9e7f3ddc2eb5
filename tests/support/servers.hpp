// Finding the test servers (PostgreSQL, Redis, NATS, MongoDB) the integration tests run against.
//
// scripts/services.sh starts them and `eval "$(scripts/services.sh env)"` exports their
// addresses; scripts/test.sh does both. A test that needs a server takes its address from the
// environment with EVENTSOURCED_REQUIRE_SERVER:
//
//   std::string uri;
//   EVENTSOURCED_REQUIRE_SERVER("EVENTSOURCED_TEST_POSTGRES_URI", uri);
//
// When the variable is unset the test is reported as skipped (ctest shows it as "Skipped", never
// as passed) — except in CI (the environment variable CI is set and not "false"/"0"), where a
// missing server fails the test loudly: CI must never pass by skipping.
// EVENTSOURCED_TEST_MONGODB_URI is the exception: no MongoDB server can be installed on the
// project's machines, so its tests use EVENTSOURCED_REQUIRE_OPTIONAL_SERVER and are skipped even
// in CI.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

namespace eventsourced::testing {

// True when running under CI (the variable CI set to anything but "", "0" or "false").
inline bool running_in_ci() {
  const char* ci = std::getenv("CI");
  if (ci == nullptr) return false;
  const std::string_view v(ci);
  return !v.empty() && v != "0" && v != "false";
}

// The value of the environment variable, or nullopt when it is unset or empty.
inline std::optional<std::string> server_address(const char* variable) {
  const char* value = std::getenv(variable);
  if (value == nullptr || *value == '\0') return std::nullopt;
  return std::string(value);
}

inline std::string missing_server_message(const char* variable) {
  return std::string(variable) +
         " is not set: start the test servers with `scripts/services.sh start` and "
         "`eval \"$(scripts/services.sh env)\"` (scripts/test.sh does both)";
}

}  // namespace eventsourced::testing

// Sets `out` (a std::string) to the server address in environment variable `variable`, or ends
// the test: skipped outside CI, failed in CI. Use in a test body or SetUp().
#define EVENTSOURCED_REQUIRE_SERVER(variable, out)                               \
  do {                                                                           \
    const auto es_address_ = ::eventsourced::testing::server_address(variable);  \
    if (!es_address_) {                                                          \
      if (::eventsourced::testing::running_in_ci()) {                            \
        FAIL() << ::eventsourced::testing::missing_server_message(variable)      \
               << " (CI is set: a missing server is a failure, not a skip)";     \
      }                                                                          \
      GTEST_SKIP() << ::eventsourced::testing::missing_server_message(variable); \
    }                                                                            \
    (out) = *es_address_;                                                        \
  } while (false)

// As EVENTSOURCED_REQUIRE_SERVER, but skipped also in CI: for servers that cannot be installed on
// the project's machines (MongoDB). The skip message says how to run the test.
#define EVENTSOURCED_REQUIRE_OPTIONAL_SERVER(variable, out)                                   \
  do {                                                                                        \
    const auto es_address_ = ::eventsourced::testing::server_address(variable);               \
    if (!es_address_) {                                                                       \
      GTEST_SKIP() << (variable) << " is not set: no such server here; set it to a server's " \
                   << "URI to run this test";                                                 \
    }                                                                                         \
    (out) = *es_address_;                                                                     \
  } while (false)
