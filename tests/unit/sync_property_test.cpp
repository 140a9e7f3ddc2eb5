// The sync contract as a property: whatever the edits, snapshot settings and disconnect points,
// a client that applies what get_missing_events returns (snapshot, then each event's JSON Patch)
// ends with exactly the server's document.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include <eventsourced/eventsourced.hpp>

#include "sync_test_support.hpp"

namespace eventsourced_test {
namespace {

using eventsourced::json;

class sync_property_test : public sync_test {
 protected:
  void check_clients_reproduce_the_server(bool compact);
};

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

// Random edits by random clients, random reconnects; with `compact`, old events are deleted as
// snapshots are written, so lagging clients (and new ones) have versions no longer in the log.
void sync_property_test::check_clients_reproduce_the_server(bool compact) {
  const int seeds = engine() == engine_kind::memory ? 25 : 6;
  for (int seed = 1; seed <= seeds; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937 rng(static_cast<std::uint32_t>(seed));
    const auto interval = static_cast<std::int64_t>(1 + rng() % 7);
    const auto kept = static_cast<std::size_t>(1 + rng() % 3);
    const auto max_missing = static_cast<std::size_t>(1 + rng() % 10);
    eventsourced::sync_options options;
    options.snapshot_interval = interval;
    options.snapshots_kept = kept;
    options.max_missing_events = max_missing;
    options.compact_events = compact;
    auto& sync = reopen_sync(std::move(options));
    const std::vector<std::string> client_ids = {"ann", "bob", "cat"};
    std::vector<simulated_client> clients(4);
    json server = nullptr;  // what the server should hold (null: deleted / never created)
    std::vector<json> history = {nullptr};  // history[v]: the document at version v
    const int writes = 40;
    for (int w = 0; w < writes; ++w) {
      const auto& who = client_ids[rng() % client_ids.size()];
      bool changed = true;
      if (server.is_null()) {
        json body = random_edit(rng, json{{"id", "g"}});
        changed = sync.find_one_and_upsert("games", body, as_client(who)).diff.has_changes;
      } else if (rng() % 10 == 0) {
        ASSERT_TRUE(sync.delete_one("games", "g", as_client(who)));
      } else {
        changed =
            sync.find_one_and_update(
                    "games", "g", [&](const json& current) { return random_edit(rng, current); },
                    as_client(who))
                .diff.has_changes;
      }
      server = sync.find_one("games", "g").value_or(json(nullptr));
      if (changed) history.push_back(server);  // a write that changes nothing has no version
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
    // A client at any version ever written — compacted or not — catches up exactly.
    const auto head = static_cast<std::int64_t>(history.size()) - 1;
    for (std::int64_t v = 0; v <= head; ++v) {
      SCOPED_TRACE("a client at version " + std::to_string(v));
      simulated_client late{.version = v, .document = history[static_cast<std::size_t>(v)]};
      late.apply(sync.get_missing_events("games", "g", {.version = v}));
      ASSERT_FALSE(::testing::Test::HasFatalFailure());
      EXPECT_EQ(late.document, server);
    }
    EXPECT_THROW(sync.get_missing_events("games", "g", {.version = head + 1}),
                 eventsourced::invalid_argument_error);
    if (compact) {
      // Nothing older than the oldest kept snapshot is left, and the head always is.
      const auto left =
          sync.store()->engine().read_stream(eventsourced::sync_stream("games", "g"), 1, 1000);
      ASSERT_FALSE(left.empty());
      EXPECT_EQ(left.back().stream_version, head);
      if (head > interval * static_cast<std::int64_t>(kept)) {
        EXPECT_GT(left.front().stream_version, 1) << "old events were compacted";
      }
      EXPECT_LE(static_cast<std::int64_t>(left.size()), interval * static_cast<std::int64_t>(kept))
          << "at most the events from the oldest kept snapshot on";
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

TEST_P(sync_property_test, clients_that_apply_missing_events_reproduce_the_server_document) {
  check_clients_reproduce_the_server(/*compact=*/false);
}

TEST_P(sync_property_test, with_compaction_clients_at_any_version_reproduce_the_server_document) {
  check_clients_reproduce_the_server(/*compact=*/true);
}

EVENTSOURCED_SYNC_TEST_ENGINES(sync_property_test);

}  // namespace
}  // namespace eventsourced_test
