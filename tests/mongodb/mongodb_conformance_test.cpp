// Runs the engine conformance suite against the MongoDB engine, each test in a database of its
// own (dropped afterwards), when EVENTSOURCED_TEST_MONGODB_URI names a replica set; skipped
// otherwise, also in CI (no MongoDB server can be installed on the project's machines).
#include "conformance/engine_conformance.hpp"

#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>

#include <eventsourced/engine/mongodb.hpp>
#include <eventsourced/engine/open.hpp>

#include "mongodb/mongo_client.hpp"
#include "support/forwarding_engine.hpp"

namespace eventsourced::conformance {
namespace {

// An engine in a fresh database of the test server; the database is dropped when the engine is
// destroyed.
class engine_in_scratch_database final : public testing::forwarding_engine {
 public:
  engine_in_scratch_database() {
    static std::atomic<int> counter{0};
    options_ = parse_mongodb_uri(*testing::server_address("EVENTSOURCED_TEST_MONGODB_URI"));
    options_.database = "es_test_" + std::to_string(::getpid()) + "_" + std::to_string(++counter);
    inner_ = make_mongodb_engine(options_);
  }
  ~engine_in_scratch_database() override {
    inner_->close();
    try {
      mongodb_detail::client_pool pool(options_);
      auto client = pool.acquire();
      mongoc_database_t* db = mongoc_client_get_database(client.get(), options_.database.c_str());
      bson_error_t error;
      mongoc_database_drop(db, &error);
      mongoc_database_destroy(db);
    } catch (...) {
    }
  }

 private:
  mongodb_options options_;
};

engine_under_test mongodb_engine_under_test() {
  engine_under_test e;
  e.name = "mongodb";
  e.make = [] { return std::make_unique<engine_in_scratch_database>(); };
  e.server_variable = "EVENTSOURCED_TEST_MONGODB_URI";
  e.optional_server = true;
  e.max_json_depth = kMongodbMaxJsonDepth;
  return e;
}

INSTANTIATE_TEST_SUITE_P(mongodb, engine_conformance,
                         ::testing::Values(mongodb_engine_under_test()), engine_under_test_name);

// Without a server: open_engine knows the scheme, and the engine reports the missing server
// within the selection timeout (the engine checks the server when it opens).
TEST(mongodb_engine, open_engine_without_a_server_is_engine_unavailable) {
  for (const char* uri : {"mongodb://127.0.0.1:1/game?serverSelectionTimeoutMS=300",
                          "mongodb://127.0.0.1:1,127.0.0.1:2/?serverSelectionTimeoutMS=300"}) {
    try {
      (void)open_engine(uri);
      FAIL() << "a server answered for " << uri;
    } catch (const engine_unavailable_error& e) {
      EXPECT_NE(std::string(e.what()).find("127.0.0.1:1"), std::string::npos) << e.what();
    }
  }
}

TEST(mongodb_engine, bad_options_are_refused_before_connecting) {
  auto options = parse_mongodb_uri("mongodb://127.0.0.1:1/");
  options.transaction_timeout = std::chrono::milliseconds(0);
  EXPECT_THROW((void)make_mongodb_engine(options), invalid_argument_error);
  options = parse_mongodb_uri("mongodb://127.0.0.1:1/");
  options.poll_interval = std::chrono::milliseconds(-1);
  EXPECT_THROW((void)make_mongodb_engine(options), invalid_argument_error);
  EXPECT_THROW((void)open_engine("mongodb://127.0.0.1:1/?replSet=rs0"), invalid_argument_error);
}

}  // namespace
}  // namespace eventsourced::conformance
