// The engine conformance suite: what every engine promises (engine.hpp, query.hpp), written once
// and run against every engine.
//
// The test bodies (TEST_P(engine_conformance, ...)) live in
// tests/conformance/engine_conformance_*.cpp next to this header; they only run for the engines
// someone instantiates them with. An engine joins the suite from its own test file:
//
//   INSTANTIATE_TEST_SUITE_P(postgres, engine_conformance,
//                            ::testing::Values(engine_under_test{"postgres", [] { return ...; }}),
//                            engine_under_test_name);
//
// and by compiling the body files into the same test binary. (The bodies are not in this header
// because a TEST_P defines symbols: two files including it would not link.)
//
// Every test gets a fresh, empty engine from engine_under_test::make and closes it afterwards.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <eventsourced/engine/engine.hpp>
#include <eventsourced/engine/json_limits.hpp>
#include <eventsourced/error.hpp>

#include "support/servers.hpp"
#include "support/temporary_directory.hpp"

namespace eventsourced {

// Readable failure messages for the engine's value types (found by gtest through ADL).
inline void PrintTo(const stored_document& d, std::ostream* os) {
  *os << "{id: " << d.id << ", version: " << d.version << ", body: " << d.body.dump() << "}";
}
inline void PrintTo(const recorded_event& e, std::ostream* os) {
  *os << "{id: " << e.id << ", type: " << e.type << ", stream: " << e.stream.type << "/"
      << e.stream.id << ", stream_version: " << e.stream_version << ", position: " << e.position
      << ", data: " << e.data.dump() << ", metadata: " << e.metadata.dump() << "}";
}

}  // namespace eventsourced

namespace eventsourced::conformance {

// One engine the suite runs against.
struct engine_under_test {
  std::string name;                               // [A-Za-z0-9_]: it becomes part of test names
  std::function<std::unique_ptr<engine>()> make;  // a fresh, empty engine on every call
  // For an engine on a server: the environment variable holding its address. SetUp() skips the
  // test when it is unset (fails it under CI; see support/servers.hpp) before calling make().
  const char* server_variable = nullptr;
  // True for a server the project's machines cannot run (MongoDB): without server_variable the
  // test is skipped even in CI (EVENTSOURCED_REQUIRE_OPTIONAL_SERVER).
  bool optional_server = false;
  // The deepest body, event data or metadata the engine stores (engine/json_limits.hpp).
  std::size_t max_json_depth = kMaxJsonDepth;
};

inline void PrintTo(const engine_under_test& e, std::ostream* os) {
  *os << e.name;
}

// The name generator for INSTANTIATE_TEST_SUITE_P.
inline std::string engine_under_test_name(const ::testing::TestParamInfo<engine_under_test>& info) {
  return info.param.name;
}

class engine_conformance : public ::testing::TestWithParam<engine_under_test> {
 protected:
  void SetUp() override {
    if (GetParam().server_variable != nullptr) {
      std::string address;
      if (GetParam().optional_server) {
        EVENTSOURCED_REQUIRE_OPTIONAL_SERVER(GetParam().server_variable, address);
      } else {
        EVENTSOURCED_REQUIRE_SERVER(GetParam().server_variable, address);
      }
    }
    engine_ = GetParam().make();
    ASSERT_NE(engine_, nullptr);
  }
  void TearDown() override {
    if (engine_) engine_->close();
  }

  engine& db() { return *engine_; }

  std::unique_ptr<engine> engine_;
};

using eventsourced::testing::temporary_directory;

// --- Building requests -------------------------------------------------------------------------

// `levels` arrays nested in each other around `inner` ([[[inner]]]: depth levels), built by the
// iterative parser: no recursion however deep.
inline json nested_arrays(std::size_t levels, const std::string& inner = "") {
  return json::parse(std::string(levels, '[') + inner + std::string(levels, ']'));
}

// A document body nested exactly `depth` levels deep: {"id": id, "deep": [[...]]}.
inline json body_of_depth(const std::string& id, std::size_t depth) {
  json body = json::object();
  body["id"] = id;
  if (depth > 1) body["deep"] = nested_arrays(depth - 1, "7");
  return body;
}

inline document_write put_write(std::string collection, std::string id,
                                std::int64_t expected_version, json body) {
  return document_write{std::move(collection), std::move(id), expected_version, write_op::put,
                        std::move(body)};
}

inline document_write erase_write(std::string collection, std::string id,
                                  std::int64_t expected_version) {
  return document_write{std::move(collection), std::move(id), expected_version, write_op::erase,
                        json()};
}

inline document_write check_write(std::string collection, std::string id,
                                  std::int64_t expected_version) {
  return document_write{std::move(collection), std::move(id), expected_version, write_op::check,
                        json()};
}

// A process-wide unique event id.
inline std::string next_event_id() {
  static std::atomic<std::uint64_t> counter{0};
  return "evt-" + std::to_string(++counter);
}

inline new_event make_event(std::string type, json data = json::object(), json metadata = nullptr) {
  return new_event{next_event_id(), std::move(type), std::move(data), std::move(metadata)};
}

inline stream_append append_to(stream_ref stream, std::optional<std::int64_t> expected_version,
                               std::vector<new_event> events) {
  return stream_append{std::move(stream), expected_version, std::move(events)};
}

inline commit_request request_of(std::vector<document_write> writes,
                                 std::vector<stream_append> appends = {},
                                 std::string version_field = "") {
  return commit_request{std::move(writes), std::move(appends), std::move(version_field)};
}

// Commits one write and returns the version it reports.
inline std::int64_t commit_write(engine& db, document_write write) {
  const commit_result result = db.commit(request_of({std::move(write)}));
  if (result.versions.size() != 1) throw std::logic_error("commit returned no version");
  return result.versions.front();
}

// Commits one append and returns the recorded events.
inline std::vector<recorded_event> commit_append(engine& db, stream_append append) {
  return db.commit(request_of({}, {std::move(append)})).events;
}

// The whole log.
inline std::vector<recorded_event> read_everything(engine& db) {
  return db.read_all(0, 1'000'000);
}

// --- Checking outcomes ---------------------------------------------------------------------------

// Runs f and returns the conflict_error it threw, or nullopt when it threw nothing. Any other
// exception propagates and fails the test with its message.
template <class F>
std::optional<conflict_error> catch_conflict(F&& f) {
  try {
    std::forward<F>(f)();
  } catch (const conflict_error& e) {
    return e;
  }
  return std::nullopt;
}

inline ::testing::AssertionResult is_conflict(const std::optional<conflict_error>& e,
                                              conflict_target target, const std::string& collection,
                                              const std::string& id, std::int64_t expected,
                                              std::int64_t actual) {
  if (!e) return ::testing::AssertionFailure() << "no conflict_error was thrown";
  const auto kind = [](conflict_target t) {
    return t == conflict_target::document ? "document" : "stream";
  };
  if (e->target() != target || e->collection() != collection || e->id() != id ||
      e->expected_version() != expected || e->actual_version() != actual) {
    return ::testing::AssertionFailure()
           << "conflict_error{" << kind(e->target()) << ", " << e->collection() << ", " << e->id()
           << ", expected " << e->expected_version() << ", actual " << e->actual_version()
           << "}, wanted {" << kind(target) << ", " << collection << ", " << id << ", expected "
           << expected << ", actual " << actual << "}";
  }
  if (!e->retryable()) return ::testing::AssertionFailure() << "conflict_error is not retryable";
  return ::testing::AssertionSuccess();
}

// Adds a valid write and a valid append in front of `request`, commits it, and succeeds when the
// commit throws invalid_argument_error and neither the valid parts nor anything else of the request
// became visible.
inline ::testing::AssertionResult rejected_as_invalid(engine& db, commit_request request) {
  static std::atomic<int> probes{0};
  const std::string probe_id = "probe-" + std::to_string(++probes);
  const stream_ref probe_stream{"probe", probe_id};
  request.writes.insert(request.writes.begin(),
                        put_write("probe", probe_id, 0, json{{"written", true}}));
  request.appends.insert(request.appends.begin(),
                         append_to(probe_stream, std::nullopt, {make_event("ProbeWritten")}));
  const std::size_t log_before = read_everything(db).size();
  try {
    db.commit(request);
    return ::testing::AssertionFailure() << "commit succeeded";
  } catch (const invalid_argument_error& e) {
    if (std::string(e.what()).empty()) {
      return ::testing::AssertionFailure() << "invalid_argument_error without a message";
    }
  } catch (const error& e) {
    return ::testing::AssertionFailure() << "threw another error: " << e.what();
  }
  if (db.get("probe", probe_id)) {
    return ::testing::AssertionFailure() << "the valid write of the rejected request is visible";
  }
  if (!db.read_stream(probe_stream, 1, 10).empty()) {
    return ::testing::AssertionFailure() << "the valid append of the rejected request is visible";
  }
  if (read_everything(db).size() != log_before) {
    return ::testing::AssertionFailure() << "the rejected request appended events";
  }
  return ::testing::AssertionSuccess();
}

}  // namespace eventsourced::conformance
