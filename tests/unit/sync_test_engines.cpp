// The engines eventsourced_tests runs the sync tests on (sync_test_support.hpp): memory and
// SQLite. PostgreSQL runs them in eventsourced_postgres_tests.
#include <stdexcept>

#include <eventsourced/engine/memory.hpp>
#include <eventsourced/engine/open.hpp>

#include "sync_test_support.hpp"

namespace eventsourced_test {

std::vector<engine_kind> sync_test_engine_kinds() {
  return {engine_kind::memory, engine_kind::sqlite};
}

std::unique_ptr<eventsourced::engine> open_sync_test_engine(
    engine_kind kind, const std::filesystem::path& directory) {
  switch (kind) {
    case engine_kind::memory:
      return eventsourced::make_memory_engine();
    case engine_kind::sqlite:
      return eventsourced::open_engine("sqlite:" + (directory / "sync.db").string());
    case engine_kind::postgres:
      break;
  }
  throw std::logic_error("eventsourced_tests runs no sync test on " + engine_name(kind));
}

}  // namespace eventsourced_test
