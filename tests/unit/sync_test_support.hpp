// Shared by the sync tests: an event_sync_storage on each engine the test binary runs them on,
// and a simulated client that applies what get_missing_events returns.
//
// The same test files are compiled into two binaries: eventsourced_tests runs them on the memory
// engine and SQLite, eventsourced_postgres_tests on PostgreSQL (each test's engine in a scratch
// schema, dropped afterwards). Each binary says which engines and how to open them by defining
// sync_test_engine_kinds() and open_sync_test_engine() once (unit/sync_test_engines.cpp,
// postgres/postgres_sync_test_engines.cpp); EVENTSOURCED_SYNC_TEST_ENGINES instantiates a suite
// for those. A test on a server engine is skipped when the server's address is not set, and
// fails under CI (support/servers.hpp).
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <eventsourced/engine/engine.hpp>
#include <eventsourced/sync/event_sync_storage.hpp>

#include "storage_test_support.hpp"
#include "support/servers.hpp"

// g++ 12 at -O2 reports a false -Wmaybe-uninitialized for nested designated initialisers of
// sync_options (its store_options holds shared_ptrs), which every sync test writes; the options
// are fully initialised. For the rest of each file that includes this header.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace eventsourced_test {

// The engines this binary runs the sync tests on.
std::vector<engine_kind> sync_test_engine_kinds();
// A fresh engine of `kind` with no data; `directory` is the test's scratch directory (SQLite
// keeps its file there).
std::unique_ptr<eventsourced::engine> open_sync_test_engine(engine_kind kind,
                                                            const std::filesystem::path& directory);

// The environment variable with the address of the server `kind` needs; nullptr: none needed.
inline const char* sync_test_server_variable(engine_kind kind) {
  return kind == engine_kind::postgres ? "EVENTSOURCED_TEST_POSTGRES_URI" : nullptr;
}

class sync_test : public ::testing::TestWithParam<engine_kind> {
 protected:
  void SetUp() override {
    if (const char* variable = sync_test_server_variable(GetParam())) {
      std::string address;
      EVENTSOURCED_REQUIRE_SERVER(variable, address);
    }
    directory_ = std::make_unique<scratch_directory>();
  }
  void TearDown() override {
    if (sync_) sync_->close();
    sync_.reset();
    directory_.reset();
  }

  // A fresh engine of the kind under test (see open_sync_test_engine).
  std::unique_ptr<eventsourced::engine> open_engine() {
    return open_sync_test_engine(GetParam(), directory_->path());
  }

  // Opens (once per test) the storage under test.
  eventsourced::event_sync_storage& open_sync(eventsourced::sync_options options = {}) {
    sync_ = eventsourced::event_sync_storage::wrap(open_engine(), std::move(options));
    return *sync_;
  }

  // Closes the storage, if open, and opens a new, empty one (for several rounds in one test).
  eventsourced::event_sync_storage& reopen_sync(eventsourced::sync_options options) {
    TearDown();
    SetUp();
    return open_sync(std::move(options));
  }

  engine_kind engine() const { return GetParam(); }

  // The same over `wrapper(engine)`: for fault-injecting engines.
  template <typename Wrapper>
  eventsourced::event_sync_storage& open_sync_wrapped(Wrapper wrapper,
                                                      eventsourced::sync_options options = {}) {
    std::shared_ptr<eventsourced::engine> engine = open_engine();
    sync_ = eventsourced::event_sync_storage::wrap(wrapper(std::move(engine)), std::move(options));
    return *sync_;
  }

  static eventsourced::write_options as_client(const std::string& client) {
    return eventsourced::write_options{.event_metadata = {{"client_id", client}}};
  }

  std::unique_ptr<scratch_directory> directory_;
  std::unique_ptr<eventsourced::event_sync_storage> sync_;
};

// A client's copy of one document: the version it has and the body (null: none/deleted).
struct simulated_client {
  std::int64_t version = 0;
  eventsourced::json document = nullptr;

  // Applies a batch the way a real client would: the snapshot replaces the copy, then every
  // event's JSON Patch, in order, each checked to follow the previous version.
  void apply(const eventsourced::sync_batch& batch) {
    if (batch.snapshot) {
      ASSERT_GT(batch.snapshot->version, version);
      document = batch.snapshot->document;
      version = batch.snapshot->version;
    }
    for (const auto& e : batch.events) {
      ASSERT_EQ(e.stream_version, version + 1) << "events must follow the client's version";
      document = document.patch(e.data.at("json_patch"));
      version = e.stream_version;
    }
    ASSERT_EQ(version, batch.version);
  }
};

}  // namespace eventsourced_test

#define EVENTSOURCED_SYNC_TEST_ENGINES(suite)                                                  \
  INSTANTIATE_TEST_SUITE_P(engines, suite,                                                     \
                           ::testing::ValuesIn(::eventsourced_test::sync_test_engine_kinds()), \
                           ::eventsourced_test::engine_kind_name)
