// Engine conformance: truncate_stream — deleting a stream's old events (retention).
#include "conformance/engine_conformance.hpp"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace eventsourced::conformance {
namespace {

std::vector<std::int64_t> stream_versions_of(const std::vector<recorded_event>& events) {
  std::vector<std::int64_t> out;
  for (const auto& e : events) out.push_back(e.stream_version);
  return out;
}

std::vector<std::int64_t> positions_of(const std::vector<recorded_event>& events) {
  std::vector<std::int64_t> out;
  for (const auto& e : events) out.push_back(e.position);
  return out;
}

std::vector<new_event> numbered_events(int count) {
  std::vector<new_event> out;
  for (int i = 0; i < count; ++i) out.push_back(make_event("Numbered", {{"n", i}}));
  return out;
}

// Appends `count` events to `stream`, one commit each (so other streams can be interleaved).
std::vector<recorded_event> append_one_by_one(engine& db, const stream_ref& stream, int count) {
  std::vector<recorded_event> out;
  for (int i = 0; i < count; ++i) {
    auto events = commit_append(db, append_to(stream, std::nullopt, numbered_events(1)));
    out.insert(out.end(), events.begin(), events.end());
  }
  return out;
}

TEST_P(engine_conformance, truncate_stream_deletes_only_the_older_events_of_that_stream) {
  const stream_ref stream{"order", "o1"};
  const stream_ref other{"order", "o2"};
  std::vector<recorded_event> kept_of_stream;
  std::vector<recorded_event> all_of_other;
  for (int i = 0; i < 5; ++i) {
    auto mine = append_one_by_one(db(), stream, 1);
    auto theirs = append_one_by_one(db(), other, 1);
    if (i >= 3) kept_of_stream.push_back(mine.front());
    all_of_other.push_back(theirs.front());
  }

  EXPECT_EQ(db().truncate_stream(stream, 4), 3u);

  const auto remaining = db().read_stream(stream, 1, 100);
  EXPECT_EQ(stream_versions_of(remaining), (std::vector<std::int64_t>{4, 5}));
  EXPECT_EQ(positions_of(remaining), positions_of(kept_of_stream)) << "positions are unchanged";
  EXPECT_EQ(stream_versions_of(db().read_stream(stream, 2, 100)), (std::vector<std::int64_t>{4, 5}))
      << "a read from a deleted version starts at the first remaining event";
  EXPECT_EQ(stream_versions_of(db().read_stream(stream, 5, 100)), (std::vector<std::int64_t>{5}));
  EXPECT_EQ(positions_of(db().read_stream(other, 1, 100)), positions_of(all_of_other))
      << "other streams are untouched";
}

TEST_P(engine_conformance, read_all_skips_truncated_events_and_keeps_positions) {
  const stream_ref stream{"order", "o1"};
  const stream_ref other{"order", "o2"};
  const auto mine = append_one_by_one(db(), stream, 3);
  const auto theirs = append_one_by_one(db(), other, 2);
  const auto last = append_one_by_one(db(), stream, 1);
  const auto before = read_everything(db());
  ASSERT_EQ(before.size(), 6u);

  ASSERT_EQ(db().truncate_stream(stream, 3), 2u);

  const auto after = read_everything(db());
  EXPECT_EQ(positions_of(after), (std::vector<std::int64_t>{mine[2].position, theirs[0].position,
                                                            theirs[1].position, last[0].position}));
  // A reader that had read up to a position sees the rest exactly once, never anything below it.
  const auto tail = db().read_all(mine[0].position, 100);
  EXPECT_EQ(positions_of(tail), (std::vector<std::int64_t>{mine[2].position, theirs[0].position,
                                                           theirs[1].position, last[0].position}));
  EXPECT_EQ(positions_of(db().read_all(theirs[0].position, 100)),
            (std::vector<std::int64_t>{theirs[1].position, last[0].position}));
  // Paging over the holes returns every remaining event once.
  std::vector<std::int64_t> paged;
  for (std::int64_t after_position = 0;;) {
    const auto page = db().read_all(after_position, 1);
    if (page.empty()) break;
    paged.push_back(page.front().position);
    after_position = page.front().position;
  }
  EXPECT_EQ(paged, positions_of(after));
}

TEST_P(engine_conformance, truncate_stream_beyond_the_head_keeps_the_latest_event) {
  const stream_ref stream{"order", "o1"};
  const auto events = commit_append(db(), append_to(stream, 0, numbered_events(4)));

  EXPECT_EQ(db().truncate_stream(stream, 1'000), 3u);

  const auto remaining = db().read_stream(stream, 1, 100);
  ASSERT_EQ(remaining.size(), 1u);
  EXPECT_EQ(remaining.front().stream_version, 4);
  EXPECT_EQ(remaining.front().id, events.back().id);
  EXPECT_EQ(remaining.front().position, events.back().position);
  EXPECT_EQ(read_everything(db()).size(), 1u);
}

TEST_P(engine_conformance, appends_with_expected_version_work_after_truncation) {
  const stream_ref stream{"order", "o1"};
  commit_append(db(), append_to(stream, 0, numbered_events(3)));
  const auto last_position = read_everything(db()).back().position;
  ASSERT_EQ(db().truncate_stream(stream, 100), 2u);

  // The stream is still at version 3: a stale expectation conflicts, the right one appends.
  EXPECT_THROW(commit_append(db(), append_to(stream, 0, numbered_events(1))), conflict_error);
  EXPECT_THROW(commit_append(db(), append_to(stream, 2, numbered_events(1))), conflict_error);
  const auto appended = commit_append(db(), append_to(stream, 3, numbered_events(2)));
  EXPECT_EQ(stream_versions_of(appended), (std::vector<std::int64_t>{4, 5}));
  EXPECT_GT(appended.front().position, last_position) << "positions are never reused";
  EXPECT_EQ(stream_versions_of(db().read_stream(stream, 1, 100)),
            (std::vector<std::int64_t>{3, 4, 5}));
  // Unchecked appends continue the numbering too.
  EXPECT_EQ(
      stream_versions_of(commit_append(db(), append_to(stream, std::nullopt, numbered_events(1)))),
      (std::vector<std::int64_t>{6}));
}

TEST_P(engine_conformance, truncate_stream_is_idempotent) {
  const stream_ref stream{"order", "o1"};
  commit_append(db(), append_to(stream, 0, numbered_events(5)));

  EXPECT_EQ(db().truncate_stream(stream, 3), 2u);
  EXPECT_EQ(db().truncate_stream(stream, 3), 0u);
  EXPECT_EQ(db().truncate_stream(stream, 2), 0u) << "an older bound deletes nothing more";
  EXPECT_EQ(stream_versions_of(db().read_stream(stream, 1, 100)),
            (std::vector<std::int64_t>{3, 4, 5}));
}

TEST_P(engine_conformance, truncate_stream_of_nothing_deletes_nothing) {
  const stream_ref stream{"order", "o1"};
  EXPECT_EQ(db().truncate_stream({"order", "unknown"}, 10), 0u);
  commit_append(db(), append_to(stream, 0, numbered_events(3)));
  EXPECT_EQ(db().truncate_stream(stream, 0), 0u);
  EXPECT_EQ(db().truncate_stream(stream, 1), 0u);
  EXPECT_EQ(db().read_stream(stream, 1, 100).size(), 3u);
}

TEST_P(engine_conformance, truncate_stream_rejects_bad_arguments_and_changes_nothing) {
  const stream_ref stream{"order", "o1"};
  commit_append(db(), append_to(stream, 0, numbered_events(3)));
  EXPECT_THROW(db().truncate_stream(stream, -1), invalid_argument_error);
  EXPECT_THROW(db().truncate_stream({"bad name!", "o1"}, 2), invalid_argument_error);
  EXPECT_THROW(db().truncate_stream({"", "o1"}, 2), invalid_argument_error);
  EXPECT_THROW(db().truncate_stream({"order", ""}, 2), invalid_argument_error);
  EXPECT_THROW(db().truncate_stream({"order'; DROP TABLE events; --", "o1"}, 2),
               invalid_argument_error);
  EXPECT_EQ(db().read_stream(stream, 1, 100).size(), 3u);
}

TEST_P(engine_conformance, truncate_stream_after_close_throws_store_closed_error) {
  const stream_ref stream{"order", "o1"};
  commit_append(db(), append_to(stream, 0, numbered_events(2)));
  db().close();
  EXPECT_THROW(db().truncate_stream(stream, 2), store_closed_error);
}

TEST_P(engine_conformance, reads_during_truncation_return_consecutive_events) {
  const stream_ref stream{"order", "o1"};
  constexpr int kEvents = 300;
  commit_append(db(), append_to(stream, 0, numbered_events(kEvents)));
  std::atomic<bool> done{false};
  std::thread truncating([&] {
    for (std::int64_t before = 2; before < kEvents; before += 7) {
      db().truncate_stream(stream, before);
    }
    db().truncate_stream(stream, kEvents - 1);
    done = true;
  });
  int reads = 0;
  std::string hole;  // no ASSERT while the thread runs
  while ((!done || reads == 0) && hole.empty()) {
    // Long enough to span several internal read steps of an engine (SQLite reads in two parts).
    const auto events = db().read_stream(stream, 1, 200);
    ++reads;
    if (events.empty()) hole = "read " + std::to_string(reads) + " is empty";
    for (std::size_t i = 1; i < events.size() && hole.empty(); ++i) {
      if (events[i].stream_version != events[i - 1].stream_version + 1) {
        hole = "read " + std::to_string(reads) + " has a hole after version " +
               std::to_string(events[i - 1].stream_version);
      }
    }
  }
  truncating.join();
  EXPECT_EQ(hole, "");
  EXPECT_EQ(stream_versions_of(db().read_stream(stream, 1, 100)),
            (std::vector<std::int64_t>{kEvents - 1, kEvents}));
}

}  // namespace
}  // namespace eventsourced::conformance
