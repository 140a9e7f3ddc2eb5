// Shared by the sync tests: an event_sync_storage on the memory or SQLite engine, and a
// simulated client that applies what get_missing_events returns.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include <eventsourced/engine/memory.hpp>
#include <eventsourced/engine/open.hpp>
#include <eventsourced/sync/event_sync_storage.hpp>

#include "storage_test_support.hpp"

namespace eventsourced_test {

class sync_test : public ::testing::TestWithParam<engine_kind> {
 protected:
  void SetUp() override {
    if (GetParam() == engine_kind::sqlite) directory_ = std::make_unique<scratch_directory>();
  }
  void TearDown() override {
    if (sync_) sync_->close();
    sync_.reset();
    directory_.reset();
  }

  // Opens (once per test) the storage under test.
  eventsourced::event_sync_storage& open_sync(eventsourced::sync_options options = {}) {
    if (GetParam() == engine_kind::sqlite) {
      sync_ = eventsourced::event_sync_storage::open(
          "sqlite:" + (directory_->path() / "sync.db").string(), std::move(options));
    } else {
      sync_ = eventsourced::event_sync_storage::wrap(eventsourced::make_memory_engine(),
                                                     std::move(options));
    }
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
    std::shared_ptr<eventsourced::engine> engine =
        GetParam() == engine_kind::sqlite
            ? eventsourced::open_engine("sqlite:" + (directory_->path() / "sync.db").string())
            : eventsourced::make_memory_engine();
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

#define EVENTSOURCED_SYNC_TEST_ENGINES(suite)                                           \
  INSTANTIATE_TEST_SUITE_P(engines, suite,                                              \
                           ::testing::Values(::eventsourced_test::engine_kind::memory,  \
                                             ::eventsourced_test::engine_kind::sqlite), \
                           ::eventsourced_test::engine_kind_name)
