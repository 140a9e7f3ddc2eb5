// The sync contract as a property: whatever the edits, snapshot settings and disconnect points,
// a client that applies what get_missing_events returns (snapshot, then each event's JSON Patch)
// ends with exactly the server's document.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include <eventsourced/eventsourced.hpp>

#include "sync_test_support.hpp"

// g++ 12 at -O2 reports a false -Wmaybe-uninitialized for nested designated initialisers of
// sync_options (its store_options holds shared_ptrs); the options are fully initialised.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace eventsourced_test {
namespace {

using eventsourced::json;

class sync_property_test : public sync_test {};

// A random edit of a game document: set, remove, nest, append, or delete the whole document.
json random_edit(std::mt19937& rng, json doc) {
  static const std::vector<std::string> keys = {"gold", "name", "items", "stats", "flag"};
  const std::string key = keys[rng() % keys.size()];
  switch (rng() % 6) {
    case 0:
      doc[key] = static_cast<int>(rng() % 1000);
      break;
    case 1:
      doc.erase(key);
      break;
    case 2:
      if (!doc["stats"].is_object()) doc["stats"] = json::object();
      doc["stats"][key] = {{"v", static_cast<int>(rng() % 10)}, {"s", std::string(rng() % 4, 'x')}};
      break;
    case 3:
      if (!doc["items"].is_array()) doc["items"] = json::array();
      doc["items"].push_back(static_cast<int>(rng() % 100));
      break;
    case 4:
      if (doc.contains("items") && doc["items"].is_array() && !doc["items"].empty()) {
        doc["items"].erase(doc["items"].begin());
      }
      doc["name"] = std::string(1 + rng() % 5, static_cast<char>('a' + rng() % 26));
      break;
    default:
      doc["flag"] = (rng() % 2) == 0;
      break;
  }
  return doc;
}

TEST_P(sync_property_test, clients_that_apply_missing_events_reproduce_the_server_document) {
  const int seeds = GetParam() == engine_kind::memory ? 25 : 6;
  for (int seed = 1; seed <= seeds; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937 rng(static_cast<std::uint32_t>(seed));
    const auto interval = static_cast<std::int64_t>(1 + rng() % 7);
    const auto kept = static_cast<std::size_t>(1 + rng() % 3);
    const auto max_missing = static_cast<std::size_t>(1 + rng() % 10);
    if (sync_) sync_->close();
    directory_.reset();
    SetUp();
    auto& sync = open_sync(
        {.snapshot_interval = interval, .snapshots_kept = kept, .max_missing_events = max_missing});
    const std::vector<std::string> client_ids = {"ann", "bob", "cat"};
    std::vector<simulated_client> clients(4);
    json server = nullptr;  // what the server should hold (null: deleted / never created)
    const int writes = 40;
    for (int w = 0; w < writes; ++w) {
      const auto& who = client_ids[rng() % client_ids.size()];
      if (server.is_null()) {
        json body = random_edit(rng, json{{"id", "g"}});
        sync.find_one_and_upsert("games", body, as_client(who));
      } else if (rng() % 10 == 0) {
        ASSERT_TRUE(sync.delete_one("games", "g", as_client(who)));
      } else {
        sync.find_one_and_update(
            "games", "g", [&](const json& current) { return random_edit(rng, current); },
            as_client(who));
      }
      server = sync.find_one("games", "g").value_or(json(nullptr));
      // Each client reconnects at random moments.
      for (auto& c : clients) {
        if (rng() % 4 == 0) {
          c.apply(sync.get_missing_events("games", "g", {.version = c.version}));
          ASSERT_FALSE(::testing::Test::HasFatalFailure());
          ASSERT_EQ(c.document, server) << "after write " << w;
        }
      }
    }
    for (auto& c : clients) {
      c.apply(sync.get_missing_events("games", "g", {.version = c.version}));
      ASSERT_FALSE(::testing::Test::HasFatalFailure());
      EXPECT_EQ(c.document, server);
    }
    // A snapshot, when there is one, is the document at its version.
    if (auto s = sync.latest_snapshot("games", "g")) {
      simulated_client replay;
      replay.apply(sync.get_missing_events("games", "g", {}));
      EXPECT_EQ(replay.document, server);
      EXPECT_EQ(s->version % interval, 0);
    }
  }
}

EVENTSOURCED_SYNC_TEST_ENGINES(sync_property_test);

}  // namespace
}  // namespace eventsourced_test
