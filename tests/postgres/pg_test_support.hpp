// Support for the PostgreSQL tests: a scratch schema per engine, dropped afterwards, so tests
// running in parallel (ctest -j) never see each other's tables.
#pragma once

#include <libpq-fe.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>

#include <eventsourced/engine/postgres.hpp>

#include "support/forwarding_engine.hpp"

namespace eventsourced::testing {

// The server address from the environment ("" when unset: the test has skipped or failed by
// then, see support/servers.hpp).
inline std::string postgres_test_uri() {
  const char* uri = std::getenv("EVENTSOURCED_TEST_POSTGRES_URI");
  return uri ? uri : "";
}

// A schema name no other test process or test uses.
inline std::string unique_schema_name(const std::string& prefix = "es_t") {
  static std::atomic<int> counter{0};
  return prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(++counter);
}

// Runs one SQL command on a fresh connection (administration in tests). Throws on failure.
inline void postgres_exec(const std::string& uri, const std::string& sql) {
  PGconn* c = PQconnectdb(uri.c_str());
  std::string error;
  if (PQstatus(c) != CONNECTION_OK) {
    error = PQerrorMessage(c);
  } else {
    PQsetNoticeProcessor(
        c, [](void*, const char*) {}, nullptr);
    PGresult* r = PQexec(c, sql.c_str());
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
      error = PQresultErrorMessage(r);
    }
    PQclear(r);
  }
  PQfinish(c);
  if (!error.empty()) throw std::runtime_error("postgres_exec: " + error);
}

inline void drop_schema(const std::string& uri, const std::string& schema) {
  postgres_exec(uri, "DROP SCHEMA IF EXISTS \"" + schema + "\" CASCADE");
}

// postgres_options for the test server, in schema `schema`.
inline postgres_options postgres_test_options(const std::string& schema) {
  postgres_options o = parse_postgres_uri(postgres_test_uri());
  o.schema = schema;
  return o;
}

// An engine in its own schema; the schema is dropped when the engine is destroyed.
class engine_in_scratch_schema final : public forwarding_engine {
 public:
  explicit engine_in_scratch_schema(postgres_options options)
      : forwarding_engine(make_postgres_engine(options)),
        uri_(postgres_test_uri()),
        schema_(options.schema) {}
  explicit engine_in_scratch_schema(const std::string& schema = unique_schema_name())
      : engine_in_scratch_schema(postgres_test_options(schema)) {}
  ~engine_in_scratch_schema() override {
    inner_->close();
    try {
      drop_schema(uri_, schema_);
    } catch (...) {
    }
  }

  const std::string& schema() const { return schema_; }

 private:
  std::string uri_;
  std::string schema_;
};

}  // namespace eventsourced::testing
