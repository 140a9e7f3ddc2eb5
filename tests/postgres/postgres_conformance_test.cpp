// Runs the engine conformance suite against the PostgreSQL engine, each test in a fresh schema.
#include "conformance/engine_conformance.hpp"

#include <memory>

#include "postgres/pg_test_support.hpp"

namespace eventsourced::conformance {
namespace {

INSTANTIATE_TEST_SUITE_P(postgres, engine_conformance,
                         ::testing::Values(engine_under_test{
                             "postgres",
                             [] { return std::make_unique<testing::engine_in_scratch_schema>(); },
                             "EVENTSOURCED_TEST_POSTGRES_URI"}),
                         engine_under_test_name);

}  // namespace
}  // namespace eventsourced::conformance
