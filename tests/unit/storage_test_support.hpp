// Shared by the storage-layer tests: a value-parameterised fixture that runs every test against
// the memory engine and against a fresh SQLite file, plus the document types the tests use.
//
// Every test gets empty storage. open_store() may be called several times in one test: each call
// opens another store object on the SAME data (another engine on the SQLite file, as a second
// process would; a forwarding engine onto the one memory engine), so tests can simulate two
// processes with separate caches. The fixture closes every store it opened and removes the
// SQLite file with its -wal and -shm companions.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

#include <eventsourced/eventsourced.hpp>

#include "support/temporary_directory.hpp"

namespace eventsourced_test {

using eventsourced::json;

// A user type as a game server would write it: converted by the nlohmann macro.
struct Player {
  std::string id;
  std::string name;
  std::int64_t gold = 0;
  int level = 1;
  std::int64_t version = 0;
  friend bool operator==(const Player&, const Player&) = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Player, id, name, gold, level, version)

inline void PrintTo(const Player& p, std::ostream* os) {
  *os << json(p).dump();
}

// postgres: only the sync tests run on it so far (sync_test_support.hpp), in
// eventsourced_postgres_tests.
enum class engine_kind { memory, sqlite, postgres };

inline std::string engine_name(engine_kind kind) {
  switch (kind) {
    case engine_kind::memory:
      return "memory";
    case engine_kind::sqlite:
      return "sqlite";
    case engine_kind::postgres:
      return "postgres";
  }
  return "unknown";
}

inline void PrintTo(engine_kind kind, std::ostream* os) {
  *os << engine_name(kind);
}

inline std::string engine_kind_name(const ::testing::TestParamInfo<engine_kind>& info) {
  return engine_name(info.param);
}

using scratch_directory = eventsourced::testing::temporary_directory;

// Forwards every call to an engine shared with other forwarders, so several store objects can
// work on one memory engine the way several processes work on one SQLite file.
class shared_engine : public eventsourced::engine {
 public:
  explicit shared_engine(std::shared_ptr<eventsourced::engine> target)
      : target_(std::move(target)) {}
  std::optional<eventsourced::stored_document> get(std::string_view collection,
                                                   std::string_view id) override {
    return target_->get(collection, id);
  }
  std::vector<eventsourced::stored_document> find(std::string_view collection,
                                                  const eventsourced::query& q) override {
    return target_->find(collection, q);
  }
  eventsourced::commit_result commit(const eventsourced::commit_request& request) override {
    return target_->commit(request);
  }
  std::vector<eventsourced::recorded_event> read_stream(const eventsourced::stream_ref& stream,
                                                        std::int64_t from_version,
                                                        std::size_t max) override {
    return target_->read_stream(stream, from_version, max);
  }
  std::vector<eventsourced::recorded_event> read_all(std::int64_t after_position,
                                                     std::size_t max) override {
    return target_->read_all(after_position, max);
  }
  std::size_t truncate_stream(const eventsourced::stream_ref& stream,
                              std::int64_t before_version) override {
    return target_->truncate_stream(stream, before_version);
  }
  bool wait_for(std::int64_t position, std::chrono::milliseconds timeout) override {
    return target_->wait_for(position, timeout);
  }
  void close() override { target_->close(); }

 private:
  std::shared_ptr<eventsourced::engine> target_;
};

class storage_test : public ::testing::TestWithParam<engine_kind> {
 protected:
  void SetUp() override {
    if (GetParam() == engine_kind::memory) {
      memory_ = eventsourced::make_memory_engine();
    } else {
      directory_ = std::make_unique<scratch_directory>();
    }
  }

  void TearDown() override {
    for (auto& s : stores_) s->close();
    stores_.clear();
    memory_.reset();
    directory_.reset();  // removes store.db, store.db-wal and store.db-shm
  }

  bool on_sqlite() const { return GetParam() == engine_kind::sqlite; }
  std::filesystem::path sqlite_path() const { return directory_->path() / "store.db"; }
  // The URI of this test's storage (SQLite only: a memory URI always opens new, empty storage).
  std::string sqlite_uri() const { return "sqlite:" + sqlite_path().string(); }

  // Another store object on this test's data.
  std::shared_ptr<eventsourced::store> open_store(eventsourced::store_options options = {}) {
    std::shared_ptr<eventsourced::store> s =
        on_sqlite() ? eventsourced::open(sqlite_uri(), std::move(options))
                    : eventsourced::store::wrap(std::make_unique<shared_engine>(memory_),
                                                std::move(options));
    stores_.push_back(s);
    return s;
  }

  // Write options whose retries survive the extreme contention of the concurrency tests.
  static eventsourced::write_options patient() {
    eventsourced::write_options options;
    options.retry = eventsourced::retry_options{.max_attempts = 1000};
    return options;
  }
  static eventsourced::write_options no_retries() {
    eventsourced::write_options options;
    options.retry = eventsourced::retry_options{.enabled = false};
    return options;
  }

 private:
  std::shared_ptr<eventsourced::engine> memory_;
  std::unique_ptr<scratch_directory> directory_;
  std::vector<std::shared_ptr<eventsourced::store>> stores_;
};

}  // namespace eventsourced_test

// Runs the TEST_P bodies of `suite` (a subclass of storage_test) on both engines.
#define EVENTSOURCED_STORAGE_TEST_ENGINES(suite)                                        \
  INSTANTIATE_TEST_SUITE_P(engines, suite,                                              \
                           ::testing::Values(::eventsourced_test::engine_kind::memory,  \
                                             ::eventsourced_test::engine_kind::sqlite), \
                           ::eventsourced_test::engine_kind_name)
