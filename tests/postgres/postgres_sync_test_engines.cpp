// Runs the sync tests (unit/sync_*_test.cpp, compiled into this binary too) against the
// PostgreSQL engine, each test's engine in a fresh schema dropped with it.
#include <stdexcept>

#include "postgres/pg_test_support.hpp"
#include "unit/sync_test_support.hpp"

namespace eventsourced_test {

std::vector<engine_kind> sync_test_engine_kinds() {
  return {engine_kind::postgres};
}

std::unique_ptr<eventsourced::engine> open_sync_test_engine(engine_kind kind,
                                                            const std::filesystem::path&) {
  if (kind != engine_kind::postgres) {
    throw std::logic_error(
        "eventsourced_postgres_tests runs the sync tests on PostgreSQL only, not " +
        engine_name(kind));
  }
  return std::make_unique<eventsourced::testing::engine_in_scratch_schema>();
}

}  // namespace eventsourced_test
