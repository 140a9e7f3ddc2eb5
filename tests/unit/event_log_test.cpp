// event_log (reading the log: streams, pages, waiting) and checkpoints, on the memory engine and
// on a SQLite file.
#include <atomic>
#include <chrono>
#include <thread>

#include <eventsourced/event/checkpoint.hpp>
#include <eventsourced/event/log.hpp>

#include "support/event_workloads.hpp"
#include "unit/storage_test_support.hpp"

namespace eventsourced_test {
namespace {

using namespace std::chrono_literals;
using eventsourced::checkpoint;
using eventsourced::event_log;
using eventsourced::invalid_argument_error;
using eventsourced::testing::append_events;

class event_log_test : public storage_test {};
EVENTSOURCED_STORAGE_TEST_ENGINES(event_log_test);

TEST_P(event_log_test, read_all_pages_through_the_whole_log_in_commit_order) {
  auto store = open_store();
  const auto recorded = append_events(store->engine(), 40, 1);
  event_log log(store);
  std::vector<std::string> seen;
  std::int64_t after = 0;
  while (true) {
    const auto page = log.read_all(after, 7);
    EXPECT_EQ(page.full, page.events.size() == 7);
    if (page.events.empty()) {
      EXPECT_EQ(page.next_position, after) << "an empty page continues where it was asked to";
      break;
    }
    for (const auto& e : page.events) {
      EXPECT_GT(e.position, after);
      seen.push_back(e.id);
      after = e.position;
    }
    EXPECT_EQ(page.next_position, page.events.back().position);
  }
  ASSERT_EQ(seen.size(), recorded.size());
  for (std::size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], recorded[i].id);
}

TEST_P(event_log_test, read_all_after_a_position_returns_only_later_events) {
  auto store = open_store();
  const auto recorded = append_events(store->engine(), 10, 2);
  event_log log(store);
  const auto middle = recorded[recorded.size() / 2].position;
  const auto page = log.read_all(middle, 1000);
  ASSERT_FALSE(page.events.empty());
  EXPECT_EQ(page.events.front().id, recorded[recorded.size() / 2 + 1].id);
  EXPECT_EQ(page.events.back().id, recorded.back().id);
}

TEST_P(event_log_test, read_stream_returns_one_stream_from_a_version) {
  auto store = open_store();
  const auto recorded = append_events(store->engine(), 30, 3);
  event_log log(store);
  const eventsourced::stream_ref stream{"thing", "t1"};
  std::vector<std::string> expected;
  for (const auto& e : recorded) {
    if (e.stream == stream && e.stream_version >= 3) expected.push_back(e.id);
  }
  ASSERT_FALSE(expected.empty());
  const auto events = log.read_stream(stream, 3, 1000);
  ASSERT_EQ(events.size(), expected.size());
  for (std::size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].id, expected[i]);
    EXPECT_EQ(events[i].stream_version, static_cast<std::int64_t>(i) + 3);
  }
  EXPECT_EQ(log.read_stream(stream, 3, 2).size(), 2u);
  EXPECT_TRUE(log.read_stream({"thing", "never"}).empty());
}

TEST_P(event_log_test, wait_for_wakes_when_another_thread_commits) {
  auto store = open_store();
  event_log log(store);
  std::atomic<bool> woke{false};
  std::thread waiter([&] { woke = log.wait_for(0, 30s); });
  append_events(store->engine(), 1, 4);
  waiter.join();
  EXPECT_TRUE(woke);
}

TEST_P(event_log_test, wait_for_returns_false_when_nothing_is_committed) {
  auto store = open_store();
  const auto recorded = append_events(store->engine(), 2, 5);
  event_log log(store);
  EXPECT_FALSE(log.wait_for(recorded.back().position, 10ms));
  EXPECT_TRUE(log.wait_for(recorded.front().position, 0ms)) << "already visible: no wait";
}

TEST_P(event_log_test, read_all_or_wait_returns_an_event_committed_while_it_waits) {
  auto store = open_store();
  auto writer_store = open_store();  // on SQLite: another engine object, seen by polling
  event_log log(store);
  eventsourced::log_page page;
  std::thread reader([&] { page = log.read_all_or_wait(0, 10, 30s); });
  const auto recorded = append_events(writer_store->engine(), 1, 6);
  reader.join();
  ASSERT_FALSE(page.events.empty());
  EXPECT_EQ(page.events.front().id, recorded.front().id);
}

TEST_P(event_log_test, bad_arguments_are_refused_with_a_clear_error) {
  auto store = open_store();
  event_log log(store);
  EXPECT_THROW(log.read_all(-1), invalid_argument_error);
  EXPECT_THROW(log.read_all(0, 0), invalid_argument_error);
  EXPECT_THROW(log.read_stream({"thing", "t0"}, 0), invalid_argument_error);
  EXPECT_THROW(log.read_stream({"thing", "t0"}, 1, 0), invalid_argument_error);
  EXPECT_THROW(log.read_stream({"bad type!", "t0"}), invalid_argument_error);
  EXPECT_THROW(log.read_stream({"thing", ""}), invalid_argument_error);
  EXPECT_THROW(log.wait_for(-5, 1ms), invalid_argument_error);
  EXPECT_THROW(log.wait_for(0, -1ms), invalid_argument_error);
  EXPECT_THROW(log.read_all_or_wait(0, 10, -1ms), invalid_argument_error);
  EXPECT_THROW(event_log(std::shared_ptr<eventsourced::store>()), invalid_argument_error);
  EXPECT_THROW(event_log(std::shared_ptr<eventsourced::engine>()), invalid_argument_error);
  try {
    log.read_all(-1);
  } catch (const invalid_argument_error& e) {
    EXPECT_NE(std::string(e.what()).find("negative"), std::string::npos) << e.what();
  }
}

TEST_P(event_log_test, a_closed_store_makes_reads_throw_store_closed) {
  auto store = open_store();
  event_log log(store);
  store->close();
  EXPECT_THROW(log.read_all(0), eventsourced::store_closed_error);
  EXPECT_THROW(log.wait_for(0, 1ms), eventsourced::store_closed_error);
  EXPECT_THROW(event_log{store}, eventsourced::store_closed_error);
}

TEST_P(event_log_test, an_unsaved_checkpoint_loads_at_position_and_version_zero) {
  auto store = open_store();
  const auto cp = eventsourced::load_checkpoint(store->engine(), "mailer");
  EXPECT_EQ(cp, (checkpoint{"mailer", 0, 0, false}));
}

TEST_P(event_log_test, a_saved_checkpoint_is_loaded_by_another_store_object) {
  auto store = open_store();
  auto cp = eventsourced::load_checkpoint(store->engine(), "mailer");
  cp.position = 42;
  cp = eventsourced::save_checkpoint(store->engine(), cp);
  EXPECT_EQ(cp.version, 1);
  cp.position = 50;
  cp = eventsourced::save_checkpoint(store->engine(), cp);
  EXPECT_EQ(cp.version, 2);
  auto other = open_store();
  EXPECT_EQ(eventsourced::load_checkpoint(other->engine(), "mailer"),
            (checkpoint{"mailer", 50, 2, false}));
}

TEST_P(event_log_test, two_savers_of_one_checkpoint_do_not_overwrite_each_other) {
  auto store = open_store();
  auto first = eventsourced::load_checkpoint(store->engine(), "relay");
  auto second = eventsourced::load_checkpoint(store->engine(), "relay");
  first.position = 10;
  first = eventsourced::save_checkpoint(store->engine(), first);
  second.position = 3;
  try {
    eventsourced::save_checkpoint(store->engine(), second);
    FAIL() << "the second save overwrote the first";
  } catch (const eventsourced::conflict_error& e) {
    EXPECT_EQ(e.collection(), eventsourced::kCheckpointCollection);
    EXPECT_EQ(e.id(), "relay");
    EXPECT_EQ(e.expected_version(), 0);
    EXPECT_EQ(e.actual_version(), 1);
  }
  EXPECT_EQ(eventsourced::load_checkpoint(store->engine(), "relay").position, 10);
}

TEST_P(event_log_test, a_checkpoint_commits_atomically_with_other_writes) {
  auto store = open_store();
  auto cp = eventsourced::load_checkpoint(store->engine(), "projection");
  cp.position = 7;
  eventsourced::commit_request request;
  request.writes.push_back({"read_model", "r1", 5, eventsourced::write_op::put, {{"x", 1}}});
  request.writes.push_back(eventsourced::checkpoint_write(cp));
  EXPECT_THROW(store->engine().commit(request), eventsourced::conflict_error);
  EXPECT_EQ(eventsourced::load_checkpoint(store->engine(), "projection").version, 0)
      << "the checkpoint was saved without the write it belongs to";
}

TEST_P(event_log_test, checkpoint_bad_input_is_refused) {
  auto store = open_store();
  auto& engine = store->engine();
  EXPECT_THROW(eventsourced::load_checkpoint(engine, ""), invalid_argument_error);
  EXPECT_THROW(eventsourced::checkpoint_write({"", 1, 0}), invalid_argument_error);
  EXPECT_THROW(eventsourced::checkpoint_write({"x", -1, 0}), invalid_argument_error);
  EXPECT_THROW(eventsourced::checkpoint_write({"x", 1, -1}), invalid_argument_error);
  // Users cannot reach the reserved collection through the store.
  EXPECT_THROW(store->documents(eventsourced::kCheckpointCollection), invalid_argument_error);
}

TEST_P(event_log_test, a_malformed_stored_checkpoint_is_a_serialization_error) {
  auto store = open_store();
  eventsourced::commit_request request;
  request.writes.push_back({std::string(eventsourced::kCheckpointCollection),
                            "broken",
                            0,
                            eventsourced::write_op::put,
                            {{"position", "seven"}}});
  store->engine().commit(request);
  EXPECT_THROW(eventsourced::load_checkpoint(store->engine(), "broken"),
               eventsourced::serialization_error);
}

}  // namespace
}  // namespace eventsourced_test
