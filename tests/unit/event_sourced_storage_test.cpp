// event_sourced_storage: writes record their events in their commit, and the relay publishes
// them to the bus after commit.
#include <gtest/gtest.h>

#include <mutex>
#include <string>
#include <vector>

#include <eventsourced/eventsourced.hpp>

#include "support/temporary_directory.hpp"

namespace eventsourced {
namespace {

using namespace std::chrono_literals;

struct recorder {
  std::mutex mutex;
  std::vector<event> seen;
  event_handler_function handler() {
    return [this](const event& e) {
      std::lock_guard lock(mutex);
      seen.push_back(e);
    };
  }
  std::vector<std::string> types() {
    std::lock_guard lock(mutex);
    std::vector<std::string> out;
    for (const auto& e : seen) out.push_back(e.type);
    return out;
  }
};

TEST(event_sourced_storage, publishes_every_write_s_events_after_commit_in_log_order) {
  auto es = event_sourced_storage::open("memory:");
  recorder all;
  recorder created;
  auto sub_all = es->subscribe(kAllEvents, all.handler());
  auto sub_created = es->subscribe("players.created", created.handler());
  auto docs = es->documents("players");
  docs.find_one_and_upsert({{"id", "p1"}, {"gold", 1}});
  docs.update_one("p1", {{"$inc", {{"gold", 1}}}});
  docs.delete_one("p1");
  ASSERT_TRUE(es->wait_until_published(10s));
  EXPECT_EQ(all.types(),
            (std::vector<std::string>{"players.created", "players.updated", "players.deleted"}));
  EXPECT_EQ(created.types(), (std::vector<std::string>{"players.created"}));
  const auto log = es->log().read_all(0).events;
  ASSERT_EQ(log.size(), 3u);
  std::lock_guard lock(all.mutex);
  for (std::size_t i = 0; i < log.size(); ++i) EXPECT_EQ(all.seen[i].id, log[i].id);
}

TEST(event_sourced_storage, a_relay_started_later_publishes_what_was_committed_before) {
  testing::temporary_directory dir;
  const std::string uri = "sqlite:" + (dir.path() / "es.db").string();
  {
    auto es = event_sourced_storage::open(uri, {.start_relay = false});
    es->documents("players").find_one_and_upsert({{"id", "p1"}});
    es->documents("players").find_one_and_upsert({{"id", "p2"}});
  }
  auto es = event_sourced_storage::open(uri, {.start_relay = false});
  recorder all;
  auto sub = es->subscribe(kAllEvents, all.handler());
  es->relay().start();
  ASSERT_TRUE(es->wait_until_published(10s));
  EXPECT_EQ(all.types(), (std::vector<std::string>{"players.created", "players.created"}));
}

TEST(event_sourced_storage, needs_a_store_with_a_mapper) {
  EXPECT_THROW(event_sourced_storage::wrap(store::open("memory:")), invalid_argument_error);
  EXPECT_THROW(event_sourced_storage::wrap(nullptr), invalid_argument_error);
}

TEST(event_sourced_storage, close_is_idempotent_and_later_writes_throw) {
  auto es = event_sourced_storage::open("memory:");
  auto docs = es->documents("players");
  es->close();
  es->close();
  EXPECT_THROW(docs.find_one_and_upsert({{"id", "p1"}}), store_closed_error);
}

}  // namespace
}  // namespace eventsourced
