// The event model (event.hpp): event ids are UUIDv7 in canonical form, unique across threads and
// forked processes, time-ordered; make_event; the metadata accessors.
#include <eventsourced/event/event.hpp>

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace eventsourced {
namespace {

std::int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The 48-bit millisecond timestamp at the front of a UUIDv7.
std::int64_t unix_ms_of(const std::string& id) {
  return std::stoll(id.substr(0, 8) + id.substr(9, 4), nullptr, 16);
}

TEST(event_id, is_a_canonical_lowercase_uuid_version_7_with_the_rfc_variant) {
  const std::regex canonical(
      "^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  for (int i = 0; i < 1000; ++i) {
    const std::string id = make_event_id();
    ASSERT_TRUE(std::regex_match(id, canonical)) << id;
  }
}

TEST(event_id, starts_with_the_current_unix_time_in_milliseconds) {
  const std::int64_t before = unix_ms_now();
  const std::string id = make_event_id();
  const std::int64_t after = unix_ms_now();
  EXPECT_GE(unix_ms_of(id), before);
  EXPECT_LE(unix_ms_of(id), after);
}

TEST(event_id, ids_made_later_never_sort_before_earlier_milliseconds) {
  const std::string first = make_event_id();
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  const std::string second = make_event_id();
  EXPECT_LT(first, second);  // the text sorts like the timestamp across milliseconds
}

TEST(event_id, is_unique_across_many_ids_and_threads) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 50000;
  std::vector<std::vector<std::string>> made(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i)
        made[static_cast<std::size_t>(t)].push_back(make_event_id());
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> all;
  for (const auto& ids : made) all.insert(ids.begin(), ids.end());
  EXPECT_EQ(all.size(), static_cast<std::size_t>(kThreads * kPerThread));
}

TEST(event_id, a_forked_child_does_not_repeat_the_parents_ids) {
  make_event_id();  // the parent's generator exists before the fork
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    std::string ids;
    for (int i = 0; i < 10; ++i) ids += make_event_id();
    const auto written = write(pipe_fds[1], ids.data(), ids.size());
    _exit(written == static_cast<ssize_t>(ids.size()) ? 0 : 1);
  }
  close(pipe_fds[1]);
  std::string parent_ids;
  for (int i = 0; i < 10; ++i) parent_ids += make_event_id();
  std::string child_ids(parent_ids.size(), '\0');
  std::size_t got = 0;
  while (got < child_ids.size()) {
    const auto n = read(pipe_fds[0], child_ids.data() + got, child_ids.size() - got);
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  close(pipe_fds[0]);
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_EQ(got, child_ids.size());
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  // The random parts (after the timestamp) are what a generator state copied by fork() repeats.
  std::set<std::string> parent_random;
  for (std::size_t i = 0; i < 10; ++i) parent_random.insert(parent_ids.substr(i * 36 + 14, 22));
  for (std::size_t i = 0; i < 10; ++i) {
    EXPECT_EQ(parent_random.count(child_ids.substr(i * 36 + 14, 22)), 0u)
        << "the child repeated a parent id: " << child_ids.substr(i * 36, 36);
  }
}

TEST(make_event, gives_a_fresh_id_and_keeps_type_data_and_metadata) {
  const new_event a = make_event("PlayerCreated", {{"name", "ann"}}, {{"correlation_id", "c1"}});
  const new_event b = make_event("PlayerCreated", {{"name", "ann"}});
  EXPECT_NE(a.id, b.id);
  EXPECT_EQ(a.type, "PlayerCreated");
  EXPECT_EQ(a.data, json({{"name", "ann"}}));
  EXPECT_EQ(a.metadata, json({{"correlation_id", "c1"}}));
  EXPECT_TRUE(b.metadata.is_null());
}

event with_metadata(json metadata) {
  event e;
  e.id = "e1";
  e.type = "T";
  e.metadata = std::move(metadata);
  return e;
}

TEST(event_metadata, correlation_and_causation_ids_are_read_when_they_are_strings) {
  const event e = with_metadata({{"correlation_id", "req-1"}, {"causation_id", "cmd-7"}});
  EXPECT_EQ(correlation_id(e), "req-1");
  EXPECT_EQ(causation_id(e), "cmd-7");
}

TEST(event_metadata, absent_or_non_string_ids_are_nullopt) {
  EXPECT_EQ(correlation_id(with_metadata(nullptr)), std::nullopt);
  EXPECT_EQ(correlation_id(with_metadata(json::object())), std::nullopt);
  EXPECT_EQ(correlation_id(with_metadata({{"correlation_id", 5}})), std::nullopt);
  EXPECT_EQ(causation_id(with_metadata(json::array({"causation_id"}))), std::nullopt);
}

TEST(event_metadata, document_of_reads_the_document_write) {
  const event e =
      with_metadata({{"document", {{"collection", "players"}, {"id", "ann"}, {"version", 3}}}});
  EXPECT_EQ(document_of(e), (document_ref{"players", "ann", 3}));
}

TEST(event_metadata, document_of_is_nullopt_when_absent_or_malformed) {
  EXPECT_EQ(document_of(with_metadata(nullptr)), std::nullopt);
  EXPECT_EQ(document_of(with_metadata(json::object())), std::nullopt);
  EXPECT_EQ(document_of(with_metadata({{"document", "players/ann"}})), std::nullopt);
  EXPECT_EQ(document_of(with_metadata({{"document", {{"id", "ann"}, {"version", 3}}}})),
            std::nullopt);
  EXPECT_EQ(document_of(with_metadata(
                {{"document", {{"collection", "players"}, {"id", 7}, {"version", 3}}}})),
            std::nullopt);
  EXPECT_EQ(document_of(with_metadata(
                {{"document", {{"collection", "players"}, {"id", "ann"}, {"version", 3.5}}}})),
            std::nullopt);
  EXPECT_EQ(
      document_of(with_metadata(
          {{"document",
            {{"collection", "players"}, {"id", "ann"}, {"version", 18446744073709551615ull}}}})),
      std::nullopt);
}

}  // namespace
}  // namespace eventsourced
