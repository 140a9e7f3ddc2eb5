// Engine conformance: the event log — stream versions, global positions, reading, waiting.
#include "conformance/engine_conformance.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace eventsourced::conformance {
namespace {

using namespace std::chrono_literals;

::testing::AssertionResult same_event(const recorded_event& a, const recorded_event& b) {
  if (a.id == b.id && a.type == b.type && a.stream == b.stream &&
      a.stream_version == b.stream_version && a.position == b.position &&
      a.timestamp == b.timestamp && a.data == b.data && a.metadata == b.metadata) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure()
         << ::testing::PrintToString(a) << " (timestamp " << a.timestamp.time_since_epoch().count()
         << ") differs from " << ::testing::PrintToString(b) << " (timestamp "
         << b.timestamp.time_since_epoch().count() << ")";
}

std::vector<std::int64_t> stream_versions_of(const std::vector<recorded_event>& events) {
  std::vector<std::int64_t> out;
  for (const auto& e : events) out.push_back(e.stream_version);
  return out;
}

std::vector<std::string> ids_of(const std::vector<recorded_event>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(e.id);
  return out;
}

std::vector<new_event> numbered_events(int count, const std::string& type = "Numbered") {
  std::vector<new_event> out;
  for (int i = 0; i < count; ++i) out.push_back(make_event(type, {{"n", i}}));
  return out;
}

TEST_P(engine_conformance, appends_get_consecutive_stream_versions_from_one) {
  const stream_ref stream{"order", "o1"};
  const auto first = commit_append(db(), append_to(stream, std::nullopt, numbered_events(3)));
  EXPECT_EQ(stream_versions_of(first), (std::vector<std::int64_t>{1, 2, 3}));
  const auto second = commit_append(db(), append_to(stream, std::nullopt, numbered_events(2)));
  EXPECT_EQ(stream_versions_of(second), (std::vector<std::int64_t>{4, 5}));
  EXPECT_EQ(stream_versions_of(db().read_stream(stream, 1, 100)),
            (std::vector<std::int64_t>{1, 2, 3, 4, 5}));

  // Another stream has its own numbering.
  const auto other =
      commit_append(db(), append_to({"order", "o2"}, std::nullopt, numbered_events(1)));
  EXPECT_EQ(stream_versions_of(other), (std::vector<std::int64_t>{1}));
}

TEST_P(engine_conformance, positions_strictly_increase_across_commits) {
  std::vector<recorded_event> committed;
  for (int i = 0; i < 5; ++i) {
    for (auto& e : commit_append(db(), append_to({"order", "o" + std::to_string(i % 2)},
                                                 std::nullopt, numbered_events(1 + i % 3)))) {
      committed.push_back(std::move(e));
    }
  }
  ASSERT_EQ(committed.size(), 9u);  // 1 + 2 + 3 + 1 + 2
  EXPECT_GT(committed.front().position, 0) << "read_all(0, ...) must be able to start the log";
  for (std::size_t i = 1; i < committed.size(); ++i) {
    EXPECT_GT(committed[i].position, committed[i - 1].position) << "event " << i;
  }
  const auto log = read_everything(db());
  ASSERT_EQ(log.size(), committed.size());
  for (std::size_t i = 0; i < log.size(); ++i) EXPECT_TRUE(same_event(log[i], committed[i]));
}

TEST_P(engine_conformance, recorded_event_fields_round_trip) {
  const stream_ref stream{"player", "p-✓-1"};
  const json data = {
      {"name", "Zoë"},
      {"score", 9007199254740993LL},
      {"ratio", 0.25},
      {"items", {{{"id", 1}, {"tags", {"a", "b"}}}, {{"id", 2}, {"tags", json::array()}}}},
      {"escapes", std::string("q\" b\\ n\n nul\0!", 14)}};
  const json metadata = {{"correlation_id", "c-1"},
                         {"causation_id", nullptr},
                         {"clock", {{"node-a", 3}, {"node-b", {1, 2, {{"x", nullptr}}}}}},
                         {"text", "日本語 𝄞 héllo"}};
  const new_event with_metadata{next_event_id(), "PlayerRenamed", data, metadata};
  const new_event without_metadata{next_event_id(), "PlayerPinged", json::array({1, "two"}),
                                   nullptr};
  const new_event null_data{next_event_id(), "PlayerIdle", nullptr, json::object()};

  const auto before = std::chrono::system_clock::now();
  const commit_result result = db().commit(
      request_of({}, {append_to(stream, 0, {with_metadata, without_metadata, null_data})}));
  const auto after = std::chrono::system_clock::now();

  ASSERT_EQ(result.events.size(), 3u);
  const new_event* sent[] = {&with_metadata, &without_metadata, &null_data};
  for (std::size_t i = 0; i < 3; ++i) {
    SCOPED_TRACE(i);
    const recorded_event& e = result.events[i];
    EXPECT_EQ(e.id, sent[i]->id);
    EXPECT_EQ(e.type, sent[i]->type);
    EXPECT_EQ(e.stream, stream);
    EXPECT_EQ(e.stream_version, static_cast<std::int64_t>(i + 1));
    EXPECT_EQ(e.data, sent[i]->data) << e.data.dump();
    EXPECT_EQ(e.metadata, sent[i]->metadata) << e.metadata.dump();
    // Commit time, with a generous window for slow machines and clock granularity.
    EXPECT_GE(e.timestamp, before - 1s);
    EXPECT_LE(e.timestamp, after + 1s);
    EXPECT_EQ(e.timestamp, std::chrono::time_point_cast<std::chrono::microseconds>(e.timestamp))
        << "timestamps have microsecond precision";
  }
  EXPECT_TRUE(result.events[0].metadata.is_object());
  EXPECT_TRUE(result.events[1].metadata.is_null());
  EXPECT_TRUE(result.events[2].data.is_null());

  // Readers see the events exactly as the commit recorded them.
  const auto by_stream = db().read_stream(stream, 1, 10);
  const auto by_log = read_everything(db());
  ASSERT_EQ(by_stream.size(), 3u);
  ASSERT_EQ(by_log.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(same_event(by_stream[i], result.events[i]));
    EXPECT_TRUE(same_event(by_log[i], result.events[i]));
  }
}

TEST_P(engine_conformance, expected_stream_version_zero_requires_an_empty_stream) {
  const stream_ref stream{"order", "o1"};
  ASSERT_EQ(commit_append(db(), append_to(stream, 0, numbered_events(2))).size(), 2u);
  EXPECT_TRUE(is_conflict(
      catch_conflict([&] { commit_append(db(), append_to(stream, 0, numbered_events(1))); }),
      conflict_target::stream, "order", "o1", 0, 2));
  EXPECT_EQ(db().read_stream(stream, 1, 10).size(), 2u);
}

TEST_P(engine_conformance, expected_stream_version_must_match_the_last_version) {
  const stream_ref stream{"order", "o1"};
  ASSERT_EQ(commit_append(db(), append_to(stream, 0, numbered_events(2))).size(), 2u);
  EXPECT_EQ(stream_versions_of(commit_append(db(), append_to(stream, 2, numbered_events(1)))),
            (std::vector<std::int64_t>{3}));

  EXPECT_TRUE(is_conflict(
      catch_conflict([&] { commit_append(db(), append_to(stream, 2, numbered_events(1))); }),
      conflict_target::stream, "order", "o1", 2, 3));
  EXPECT_TRUE(is_conflict(
      catch_conflict([&] { commit_append(db(), append_to(stream, 9, numbered_events(1))); }),
      conflict_target::stream, "order", "o1", 9, 3));
  EXPECT_TRUE(
      is_conflict(catch_conflict([&] {
                    commit_append(db(), append_to({"order", "empty"}, 1, numbered_events(1)));
                  }),
                  conflict_target::stream, "order", "empty", 1, 0));
  EXPECT_EQ(db().read_stream(stream, 1, 10).size(), 3u);
  EXPECT_TRUE(db().read_stream({"order", "empty"}, 1, 10).empty());
  EXPECT_EQ(read_everything(db()).size(), 3u);
}

TEST_P(engine_conformance, any_expected_version_appends_to_new_and_existing_streams) {
  const stream_ref stream{"order", "o1"};
  EXPECT_EQ(
      stream_versions_of(commit_append(db(), append_to(stream, std::nullopt, numbered_events(1)))),
      (std::vector<std::int64_t>{1}));
  EXPECT_EQ(
      stream_versions_of(commit_append(db(), append_to(stream, std::nullopt, numbered_events(2)))),
      (std::vector<std::int64_t>{2, 3}));
}

TEST_P(engine_conformance, read_stream_starts_at_a_version_and_stops_at_max) {
  const stream_ref stream{"order", "o1"};
  const auto committed = commit_append(db(), append_to(stream, 0, numbered_events(10)));
  ASSERT_EQ(committed.size(), 10u);

  EXPECT_EQ(stream_versions_of(db().read_stream(stream, 4, 3)),
            (std::vector<std::int64_t>{4, 5, 6}));
  EXPECT_EQ(stream_versions_of(db().read_stream(stream, 8, 100)),
            (std::vector<std::int64_t>{8, 9, 10}));
  EXPECT_EQ(db().read_stream(stream, 1, 100).size(), 10u);
  EXPECT_EQ(db().read_stream(stream, 0, 100).size(), 10u);
  EXPECT_TRUE(db().read_stream(stream, 11, 100).empty());
  EXPECT_TRUE(db().read_stream(stream, 1, 0).empty());
  EXPECT_TRUE(db().read_stream({"order", "missing"}, 1, 100).empty());

  const auto middle = db().read_stream(stream, 5, 1);
  ASSERT_EQ(middle.size(), 1u);
  EXPECT_TRUE(same_event(middle[0], committed[4]));
}

// Long reads: engines may serve a read in parts (SQLite reads the first events on its writer
// connection and the rest on a reader); the parts must join up exactly, also while the stream
// grows.
TEST_P(engine_conformance, long_stream_reads_are_whole_and_consecutive_while_the_stream_grows) {
  const stream_ref stream{"order", "long"};
  std::vector<recorded_event> committed;
  for (int i = 0; i < 30; ++i) {  // interleaved with another stream, ten events per commit
    const auto part = commit_append(db(), append_to(stream, i * 10, numbered_events(10)));
    committed.insert(committed.end(), part.begin(), part.end());
    commit_append(db(), append_to({"order", "other"}, i, numbered_events(1)));
  }
  for (std::size_t max : {1u, 63u, 64u, 65u, 128u, 300u, 1000u}) {
    for (std::int64_t from : {1, 2, 64, 65, 200, 300}) {
      const auto read = db().read_stream(stream, from, max);
      const std::size_t expected =
          std::min<std::size_t>(max, 300 - static_cast<std::size_t>(from) + 1);
      ASSERT_EQ(read.size(), expected) << "from " << from << " max " << max;
      for (std::size_t k = 0; k < read.size(); ++k) {
        ASSERT_TRUE(same_event(read[k], committed[static_cast<std::size_t>(from - 1) + k]))
            << "from " << from << " max " << max << " event " << k;
      }
    }
  }
  std::atomic<bool> writing{true};
  std::thread writer([&] {
    for (std::int64_t version = 300; writing && version < 1500; version += 5) {
      commit_append(db(), append_to(stream, version, numbered_events(5)));
    }
  });
  for (int i = 0; i < 30; ++i) {
    const auto read = db().read_stream(stream, 1, 100000);
    ASSERT_GE(read.size(), 300u);
    for (std::size_t k = 0; k < read.size(); ++k) {
      ASSERT_EQ(read[k].stream_version, static_cast<std::int64_t>(k + 1)) << "read " << i;
    }
  }
  writing = false;
  writer.join();
}

TEST_P(engine_conformance, read_stream_keeps_streams_apart) {
  commit_append(db(), append_to({"order", "o1"}, std::nullopt, numbered_events(2, "OrderEvent")));
  commit_append(db(),
                append_to({"invoice", "o1"}, std::nullopt, numbered_events(3, "InvoiceEvent")));
  commit_append(db(),
                append_to({"order", "o10"}, std::nullopt, numbered_events(4, "Order10Event")));
  commit_append(db(), append_to({"order", "o1"}, std::nullopt, numbered_events(1, "OrderEvent")));

  const auto order = db().read_stream({"order", "o1"}, 1, 100);
  EXPECT_EQ(stream_versions_of(order), (std::vector<std::int64_t>{1, 2, 3}));
  for (const auto& e : order) EXPECT_EQ(e.type, "OrderEvent");
  EXPECT_EQ(db().read_stream({"invoice", "o1"}, 1, 100).size(), 3u);
  EXPECT_EQ(db().read_stream({"order", "o10"}, 1, 100).size(), 4u);
  EXPECT_TRUE(db().read_stream({"Order", "o1"}, 1, 100).empty());
}

TEST_P(engine_conformance, read_all_returns_events_after_a_position_up_to_max) {
  const auto committed = commit_append(db(), append_to({"order", "o1"}, 0, numbered_events(6)));
  ASSERT_EQ(committed.size(), 6u);

  const auto after_second = db().read_all(committed[1].position, 3);
  EXPECT_EQ(ids_of(after_second),
            (std::vector<std::string>{committed[2].id, committed[3].id, committed[4].id}));
  EXPECT_EQ(ids_of(db().read_all(committed[4].position, 100)),
            (std::vector<std::string>{committed[5].id}));
  EXPECT_TRUE(db().read_all(committed[5].position, 100).empty());
  EXPECT_TRUE(db().read_all(0, 0).empty());
  EXPECT_EQ(db().read_all(0, 100).size(), 6u);
}

TEST_P(engine_conformance, paging_read_all_sees_every_event_once_in_order) {
  std::vector<std::string> committed;
  for (int i = 0; i < 25; ++i) {
    for (const auto& e : commit_append(db(), append_to({"page", "s" + std::to_string(i % 4)},
                                                       std::nullopt, numbered_events(10)))) {
      committed.push_back(e.id);
    }
  }
  ASSERT_EQ(committed.size(), 250u);

  std::vector<std::string> seen;
  std::vector<std::size_t> page_sizes;
  std::int64_t checkpoint = 0;
  for (;;) {
    const auto page = db().read_all(checkpoint, 100);
    if (page.empty()) break;
    page_sizes.push_back(page.size());
    for (const auto& e : page) {
      EXPECT_GT(e.position, checkpoint);
      checkpoint = e.position;
      seen.push_back(e.id);
    }
    ASSERT_LE(page_sizes.size(), 10u) << "paging does not end";
  }
  EXPECT_EQ(page_sizes, (std::vector<std::size_t>{100, 100, 50}));
  EXPECT_EQ(seen, committed);
}

TEST_P(engine_conformance, one_commit_appends_to_several_streams) {
  const stream_ref a{"order", "a"};
  const stream_ref b{"invoice", "b"};
  commit_append(db(), append_to(b, std::nullopt, numbered_events(2)));

  const commit_result result =
      db().commit(request_of({put_write("orders", "a", 0, {{"state", "placed"}})},
                             {append_to(a, 0, {make_event("Placed"), make_event("Priced")}),
                              append_to(b, 2, {make_event("Issued")})}));

  EXPECT_EQ(result.versions, (std::vector<std::int64_t>{1}));
  ASSERT_EQ(result.events.size(), 3u);
  EXPECT_EQ(result.events[0].stream, a);
  EXPECT_EQ(result.events[0].type, "Placed");
  EXPECT_EQ(result.events[0].stream_version, 1);
  EXPECT_EQ(result.events[1].stream, a);
  EXPECT_EQ(result.events[1].stream_version, 2);
  EXPECT_EQ(result.events[2].stream, b);
  EXPECT_EQ(result.events[2].type, "Issued");
  EXPECT_EQ(result.events[2].stream_version, 3);
  EXPECT_LT(result.events[0].position, result.events[1].position);
  EXPECT_LT(result.events[1].position, result.events[2].position);

  EXPECT_EQ(db().read_stream(a, 1, 10).size(), 2u);
  EXPECT_EQ(db().read_stream(b, 1, 10).size(), 3u);
  EXPECT_EQ(db().get("orders", "a")->body, (json{{"state", "placed"}}));
}

TEST_P(engine_conformance, document_write_and_its_events_commit_together) {
  const stream_ref stream{"users", "u1"};
  const commit_result created = db().commit(request_of(
      {put_write("users", "u1", 0, {{"name", "ada"}})},
      {append_to(stream, std::nullopt, {make_event("UserCreated", {{"name", "ada"}})})}));
  EXPECT_EQ(created.versions, (std::vector<std::int64_t>{1}));
  ASSERT_EQ(created.events.size(), 1u);

  const commit_result deleted = db().commit(request_of(
      {erase_write("users", "u1", 1)}, {append_to(stream, 1, {make_event("UserDeleted")})}));
  EXPECT_EQ(deleted.versions, (std::vector<std::int64_t>{2}));
  ASSERT_EQ(deleted.events.size(), 1u);
  EXPECT_EQ(deleted.events[0].stream_version, 2);
  EXPECT_FALSE(db().get("users", "u1").has_value());
  EXPECT_EQ(read_everything(db()).size(), 2u);
}

TEST_P(engine_conformance, wait_for_returns_true_at_once_when_a_later_event_exists) {
  const auto events =
      commit_append(db(), append_to({"order", "o1"}, std::nullopt, numbered_events(2)));
  ASSERT_EQ(events.size(), 2u);
  EXPECT_TRUE(db().wait_for(0, 0ms));
  EXPECT_TRUE(db().wait_for(events[0].position, 0ms));
  EXPECT_TRUE(db().wait_for(events[1].position - 1, 5s));
}

TEST_P(engine_conformance, wait_for_returns_false_after_the_timeout_when_nothing_is_new) {
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(db().wait_for(0, 50ms)) << "the log is empty";
  EXPECT_GE(std::chrono::steady_clock::now() - start, 40ms) << "returned before the timeout";

  const auto events =
      commit_append(db(), append_to({"order", "o1"}, std::nullopt, numbered_events(1)));
  ASSERT_EQ(events.size(), 1u);
  const auto again = std::chrono::steady_clock::now();
  EXPECT_FALSE(db().wait_for(events[0].position, 50ms));
  EXPECT_GE(std::chrono::steady_clock::now() - again, 40ms) << "returned before the timeout";
}

TEST_P(engine_conformance, commit_wakes_a_waiter) {
  const auto first =
      commit_append(db(), append_to({"order", "o1"}, std::nullopt, numbered_events(1)));
  ASSERT_EQ(first.size(), 1u);
  const std::int64_t position = first[0].position;

  std::jthread writer([&] {
    std::this_thread::sleep_for(30ms);
    try {
      commit_append(db(), append_to({"order", "o1"}, std::nullopt, numbered_events(1)));
    } catch (const std::exception& e) {
      ADD_FAILURE() << "writer: " << e.what();
    }
  });
  const bool woke = db().wait_for(position, 5s);
  writer.join();
  EXPECT_TRUE(woke);
  EXPECT_EQ(db().read_all(position, 10).size(), 1u);
}

TEST_P(engine_conformance, document_only_commit_does_not_satisfy_wait_for) {
  ASSERT_EQ(commit_write(db(), put_write("c", "a", 0, {{"v", 1}})), 1);
  EXPECT_FALSE(db().wait_for(0, 20ms));
  EXPECT_TRUE(read_everything(db()).empty());
}

}  // namespace
}  // namespace eventsourced::conformance
