// Scale-out (DESIGN.md, "Scale-out"): three OS processes share one PostgreSQL database and one bus
// (NATS JetStream, then Redis Streams). Each runs 1000 find_one_and_update increments on 10
// shared documents and publishes the log through an outbox relay of its own; each has a durable
// subscriber of its own. Afterwards:
//   - the totals are exact (no lost update across processes);
//   - the log holds every write's event exactly once, positions 1..N without a gap, and every
//     stream's versions are 1..n with n its document's version;
//   - every process's subscriber received every event of the log; deduplicated by id, exactly
//     once each (three relays publish every event: JetStream drops the copies by Msg-Id, Redis
//     Streams delivers them and the subscriber must recognise them by id);
//   - each subscriber received each stream's events in stream order (first deliveries).
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <eventsourced/engine/postgres.hpp>
#include <eventsourced/eventsourced.hpp>

#include "postgres/pg_test_support.hpp"
#include "support/servers.hpp"
#include "support/temporary_directory.hpp"
#include "support/worker_process.hpp"

namespace eventsourced {
namespace {

constexpr int kProcesses = 3;
constexpr int kIncrements = 1000;
constexpr int kDocuments = 10;

struct delivery {
  std::string id;
  std::string stream_id;
  std::int64_t stream_version = 0;
};

std::vector<delivery> read_deliveries(const std::filesystem::path& file) {
  std::vector<delivery> out;
  std::ifstream in(file);
  delivery d;
  while (in >> d.id >> d.stream_id >> d.stream_version) out.push_back(d);
  return out;
}

void run_processes(const std::string& bus_kind, const std::string& bus_address) {
  std::string postgres_uri;
  EVENTSOURCED_REQUIRE_SERVER("EVENTSOURCED_TEST_POSTGRES_URI", postgres_uri);
  const std::string schema = testing::unique_schema_name("es_mp");
  testing::engine_in_scratch_schema owner(schema);  // creates the tables; drops them at the end
  const std::string ns = "mp" + std::to_string(::getpid()) + bus_kind;
  {
    store_options options;
    options.mapper = std::make_shared<default_event_mapper>();
    auto setup = store::wrap(make_postgres_engine(testing::postgres_test_options(schema)), options);
    for (int d = 0; d < kDocuments; ++d) {
      setup->documents("counters").find_one_and_upsert({{"id", "c" + std::to_string(d)}, {"n", 0}});
    }
    setup->close();
  }
  const std::size_t expected_events = kProcesses * kIncrements + kDocuments;
  testing::temporary_directory dir;
  std::vector<pid_t> workers;
  for (int p = 0; p < kProcesses; ++p) {
    workers.push_back(
        testing::spawn_worker({postgres_uri, schema, bus_kind, bus_address, ns, std::to_string(p),
                               std::to_string(kIncrements), std::to_string(expected_events),
                               (dir.path() / ("deliveries-" + std::to_string(p))).string()}));
  }
  for (pid_t w : workers) EXPECT_EQ(testing::wait_for_exit(w), 0);

  // Totals and the log.
  std::map<std::string, std::int64_t> document_versions;
  int total = 0;
  for (int d = 0; d < kDocuments; ++d) {
    const std::string id = "c" + std::to_string(d);
    const auto doc = owner.get("counters", id);
    ASSERT_TRUE(doc.has_value());
    total += doc->body["n"].get<int>();
    document_versions[id] = doc->version;
  }
  EXPECT_EQ(total, kProcesses * kIncrements);
  const auto log = owner.read_all(0, expected_events * 2);
  ASSERT_EQ(log.size(), expected_events);
  std::set<std::string> log_ids;
  std::map<std::string, std::int64_t> stream_versions;
  for (std::size_t i = 0; i < log.size(); ++i) {
    EXPECT_EQ(log[i].position, static_cast<std::int64_t>(i + 1));
    EXPECT_TRUE(log_ids.insert(log[i].id).second) << "event twice in the log: " << log[i].id;
    EXPECT_EQ(log[i].stream_version, ++stream_versions[log[i].stream.id]);
  }
  EXPECT_EQ(stream_versions, document_versions);

  // Every process's subscriber.
  for (int p = 0; p < kProcesses; ++p) {
    SCOPED_TRACE("process " + std::to_string(p));
    const auto deliveries = read_deliveries(dir.path() / ("deliveries-" + std::to_string(p)));
    std::set<std::string> seen;
    std::map<std::string, std::int64_t> last_version;
    std::size_t duplicates = 0, out_of_order = 0;
    for (const auto& d : deliveries) {
      if (!seen.insert(d.id).second) {
        ++duplicates;
        continue;
      }
      if (d.stream_version != last_version[d.stream_id] + 1) ++out_of_order;
      last_version[d.stream_id] = d.stream_version;
    }
    EXPECT_EQ(seen, log_ids) << "the subscriber did not receive exactly the log's events";
    EXPECT_EQ(out_of_order, 0u);
    std::cout << bus_kind << " process " << p << ": " << deliveries.size() << " deliveries, "
              << seen.size() << " distinct, " << duplicates << " duplicates\n";
  }
}

TEST(multiprocess, three_processes_on_postgres_and_jetstream_lose_nothing) {
#if !EVENTSOURCED_MULTIPROCESS_NATS
  GTEST_SKIP() << "built without eventsourced::nats (EVENTSOURCED_WITH_NATS=OFF)";
#endif
  std::string nats_url;
  EVENTSOURCED_REQUIRE_SERVER("EVENTSOURCED_TEST_NATS_URL", nats_url);
  run_processes("jetstream", nats_url);
}

TEST(multiprocess, three_processes_on_postgres_and_redis_streams_lose_nothing) {
#if !EVENTSOURCED_MULTIPROCESS_REDIS
  GTEST_SKIP() << "built without eventsourced::redis (EVENTSOURCED_WITH_REDIS=OFF)";
#endif
  std::string redis_uri;
  EVENTSOURCED_REQUIRE_SERVER("EVENTSOURCED_TEST_REDIS_URI", redis_uri);
  run_processes("redis", redis_uri);
}

}  // namespace
}  // namespace eventsourced
