// What the PostgreSQL engine promises beyond the conformance suite: the global order under
// concurrent writers on separate connections (invariant 3), no lost update across engine objects
// (invariant 1, each engine object standing in for a process: its own pool of connections),
// LISTEN/NOTIFY waking waiters of other engines, the URI and its pass-through to libpq, errors
// that never show the password, and jsonb's limits.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <eventsourced/engine/open.hpp>
#include <eventsourced/engine/postgres.hpp>
#include <eventsourced/error.hpp>
#include <eventsourced/event/mapper.hpp>
#include <eventsourced/storage/store.hpp>

#include "postgres/pg_test_support.hpp"
#include "support/servers.hpp"

namespace eventsourced {
namespace {

using namespace std::chrono_literals;
using testing::engine_in_scratch_schema;
using testing::postgres_exec;
using testing::postgres_test_options;
using testing::postgres_test_uri;
using testing::unique_schema_name;

#define REQUIRE_POSTGRES()  \
  std::string postgres_uri; \
  EVENTSOURCED_REQUIRE_SERVER("EVENTSOURCED_TEST_POSTGRES_URI", postgres_uri)

std::string next_id(const char* prefix) {
  static std::atomic<int> counter{0};
  return std::string(prefix) + "-" + std::to_string(++counter);
}

new_event event_of_type(std::string type) {
  return new_event{next_id("evt"), std::move(type), json{{"n", 1}}, nullptr};
}

// --- URI ---------------------------------------------------------------------------------------

TEST(postgres_uri, engine_parameters_are_taken_out_and_the_rest_passes_to_libpq) {
  const auto o = parse_postgres_uri(
      "postgresql://u:secret@db.example:5433/app?sslmode=verify-full&schema=game&pool_size=3&"
      "max_attempts=5&sslrootcert=/etc/ca.pem");
  EXPECT_EQ(o.schema, "game");
  EXPECT_EQ(o.pool_size, 3u);
  EXPECT_EQ(o.max_attempts, 5);
  EXPECT_EQ(o.conninfo,
            "postgresql://u:secret@db.example:5433/"
            "app?sslmode=verify-full&sslrootcert=/etc/ca.pem&connect_timeout=10");
  EXPECT_EQ(parse_postgres_uri("postgres://h/db?connect_timeout=3").conninfo,
            "postgres://h/db?connect_timeout=3");
  EXPECT_EQ(parse_postgres_uri("postgresql://h/db").schema, "eventsourced");
}

TEST(postgres_uri, bad_engine_parameters_are_refused_without_repeating_the_password) {
  for (const char* uri :
       {"postgresql://u:hunter2@h/db?pool_size=0", "postgresql://u:hunter2@h/db?pool_size=x",
        "postgresql://u:hunter2@h/db?max_attempts=0", "postgresql://u:hunter2@h/db?schema=Bad",
        "postgresql://u:hunter2@h/db?schema=a-b",
        "postgresql://u:hunter2@h/db?schema=", "mysql://u:hunter2@h/db"}) {
    SCOPED_TRACE(uri);
    try {
      parse_postgres_uri(uri);
      ADD_FAILURE() << "accepted";
    } catch (const invalid_argument_error& e) {
      EXPECT_EQ(std::string(e.what()).find("hunter2"), std::string::npos) << e.what();
    }
  }
}

TEST(postgres_uri, open_engine_knows_both_schemes_once_the_header_is_included) {
  // Nothing listens on port 1: the factory runs and fails to connect (not "unknown scheme").
  for (const char* uri : {"postgresql://127.0.0.1:1/x?max_attempts=1&connect_timeout=2",
                          "postgres://127.0.0.1:1/x?max_attempts=1&connect_timeout=2"}) {
    EXPECT_THROW(open_engine(uri), engine_unavailable_error) << uri;
  }
}

// --- Connection errors -------------------------------------------------------------------------

TEST(postgres_engine, an_unreachable_server_is_a_retryable_error) {
  try {
    make_postgres_engine(parse_postgres_uri("postgresql://u:pw@127.0.0.1:1/db?max_attempts=2"));
    FAIL() << "connected to port 1";
  } catch (const engine_unavailable_error& e) {
    EXPECT_TRUE(e.retryable());
    EXPECT_NE(std::string(e.what()).find("127.0.0.1"), std::string::npos) << e.what();
  }
}

TEST(postgres_engine, a_wrong_password_is_refused_without_showing_it) {
  REQUIRE_POSTGRES();
  auto o = parse_postgres_uri(postgres_uri);
  const auto at = o.conninfo.find('@');
  const auto colon = o.conninfo.rfind(':', at);
  ASSERT_NE(at, std::string::npos);
  o.conninfo = o.conninfo.substr(0, colon + 1) + "Wr0ngPassw0rd" + o.conninfo.substr(at);
  try {
    make_postgres_engine(o);
    FAIL() << "connected with a wrong password";
  } catch (const engine_error& e) {
    EXPECT_FALSE(e.retryable()) << e.what();  // retrying a refused password cannot help
    EXPECT_NE(std::string(e.what()).find("password authentication failed"), std::string::npos)
        << e.what();
    EXPECT_EQ(std::string(e.what()).find("Wr0ngPassw0rd"), std::string::npos) << e.what();
  }
}

TEST(postgres_engine, tls_parameters_reach_libpq) {
  REQUIRE_POSTGRES();
  // The test server has no TLS: sslmode=require must fail because libpq asked for it.
  auto o = parse_postgres_uri(postgres_uri + "?sslmode=require&max_attempts=1");
  if (postgres_uri.find('?') != std::string::npos) {
    o = parse_postgres_uri(postgres_uri + "&sslmode=require&max_attempts=1");
  }
  try {
    make_postgres_engine(o);
    FAIL() << "connected with sslmode=require to a server without TLS";
  } catch (const error& e) {
    EXPECT_NE(std::string(e.what()).find("SSL"), std::string::npos) << e.what();
  }
}

// --- Invariant 3: one ordered log under concurrent writers --------------------------------------

// Four engine objects (four pools of connections, as four processes would have) commit events
// to their own streams while a catch-up reader follows the log with read_all(after last seen).
// Every event must reach the reader in position order with no position skipped: a position that
// became visible after a higher one had been read would be missing from what the reader saw and
// show up in the final full read.
TEST(postgres_engine, a_catch_up_reader_never_misses_an_event_of_concurrent_writers) {
  REQUIRE_POSTGRES();
  const std::string schema = unique_schema_name();
  engine_in_scratch_schema owner(schema);
  constexpr int kWriters = 4;
  constexpr int kCommits = 150;
  std::vector<std::unique_ptr<engine>> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.push_back(make_postgres_engine(postgres_test_options(schema)));
  }
  std::atomic<int> finished{0};
  std::vector<std::string> failures;
  std::mutex failures_mutex;
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      try {
        for (int i = 0; i < kCommits; ++i) {
          // 1 to 3 events per commit, and a document write in the same commit half the time,
          // so commits take different times.
          std::vector<new_event> events;
          for (int k = 0; k <= i % 3; ++k) events.push_back(event_of_type("Ticked"));
          commit_request request;
          request.appends.push_back(
              stream_append{{"writer", "w" + std::to_string(w)}, std::nullopt, std::move(events)});
          if (i % 2 == 0) {
            request.writes.push_back(document_write{"docs", "w" + std::to_string(w), i / 2,
                                                    write_op::put, json{{"i", i}}});
          }
          writers[static_cast<std::size_t>(w)]->commit(request);
        }
      } catch (const std::exception& e) {
        std::lock_guard lock(failures_mutex);
        failures.push_back(e.what());
      }
      ++finished;
    });
  }
  std::vector<recorded_event> seen;
  std::int64_t last = 0;
  bool order_broken = false;
  while (true) {
    const bool writers_done = finished.load() == kWriters;
    const auto batch = owner.read_all(last, 50);
    for (const auto& e : batch) {
      if (e.position != last + 1) order_broken = true;  // a skipped or repeated position
      last = e.position;
      seen.push_back(e);
    }
    if (writers_done && batch.empty()) break;
  }
  for (auto& t : threads) t.join();
  ASSERT_EQ(failures, std::vector<std::string>{});
  EXPECT_FALSE(order_broken);
  const auto everything = owner.read_all(0, 100000);
  ASSERT_EQ(everything.size(), seen.size());
  for (std::size_t i = 0; i < seen.size(); ++i) {
    EXPECT_EQ(everything[i].id, seen[i].id) << "at " << i;
    EXPECT_EQ(everything[i].position, static_cast<std::int64_t>(i + 1));
  }
  // Per stream: versions 1..n in position order.
  std::map<std::string, std::int64_t> stream_versions;
  for (const auto& e : everything) {
    EXPECT_EQ(e.stream_version, ++stream_versions[e.stream.id]) << e.stream.id;
  }
  EXPECT_EQ(stream_versions.size(), static_cast<std::size_t>(kWriters));
  for (auto& w : writers) w->close();
}

// --- Invariant 1 across engine objects -----------------------------------------------------------

TEST(postgres_engine, increments_from_many_threads_and_engines_lose_nothing) {
  REQUIRE_POSTGRES();
  const std::string schema = unique_schema_name();
  engine_in_scratch_schema owner(schema);
  store_options options;
  options.mapper = std::make_shared<default_event_mapper>();
  options.retry.max_attempts = 1000;
  constexpr int kStores = 3;
  constexpr int kThreadsPerStore = 2;
  constexpr int kIncrements = 100;
  const std::vector<std::string> ids = {"a", "b", "c"};
  std::vector<std::shared_ptr<store>> stores;
  for (int s = 0; s < kStores; ++s) {
    stores.push_back(store::wrap(make_postgres_engine(postgres_test_options(schema)), options));
  }
  for (const auto& id : ids)
    stores[0]->documents("counters").find_one_and_upsert({{"id", id}, {"n", 0}});
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int s = 0; s < kStores; ++s) {
    for (int t = 0; t < kThreadsPerStore; ++t) {
      threads.emplace_back([&, s, t] {
        auto counters = stores[static_cast<std::size_t>(s)]->documents("counters");
        for (int i = 0; i < kIncrements; ++i) {
          try {
            counters.find_one_and_update(ids[static_cast<std::size_t>(i + t) % ids.size()],
                                         [](json doc) {
                                           doc["n"] = doc["n"].get<int>() + 1;
                                           return doc;
                                         });
          } catch (const std::exception& e) {
            ++failures;
            ADD_FAILURE() << e.what();
          }
        }
      });
    }
  }
  for (auto& t : threads) t.join();
  ASSERT_EQ(failures.load(), 0);
  int total = 0;
  std::map<std::string, std::int64_t> versions;
  for (const auto& id : ids) {
    const auto doc = owner.get("counters", id);
    ASSERT_TRUE(doc.has_value());
    total += doc->body["n"].get<int>();
    versions[id] = doc->version;
  }
  EXPECT_EQ(total, kStores * kThreadsPerStore * kIncrements);
  // One event per write (the upsert and every increment), stream versions = document versions.
  const auto log = owner.read_all(0, 100000);
  EXPECT_EQ(log.size(), static_cast<std::size_t>(total) + ids.size());
  std::map<std::string, std::int64_t> stream_versions;
  for (const auto& e : log) EXPECT_EQ(e.stream_version, ++stream_versions[e.stream.id]);
  EXPECT_EQ(stream_versions, versions);
  for (auto& s : stores) s->close();
}

// --- LISTEN/NOTIFY
// ---------------------------------------------------------------------------------

TEST(postgres_engine, wait_for_is_woken_by_a_commit_of_another_engine) {
  REQUIRE_POSTGRES();
  const std::string schema = unique_schema_name();
  engine_in_scratch_schema writer(schema);
  auto options = postgres_test_options(schema);
  // Polling once an hour: only a notification can end the wait before its timeout.
  options.poll_interval = std::chrono::hours(1);
  auto waiter = make_postgres_engine(options);
  EXPECT_FALSE(waiter->wait_for(0, 10ms));  // starts listening; nothing committed yet
  std::atomic<bool> woke{false};
  std::thread t([&] { woke = waiter->wait_for(0, 60s); });
  std::this_thread::sleep_for(100ms);  // let it block (the outcome does not depend on this)
  commit_request request;
  request.appends.push_back(stream_append{{"s", "1"}, std::nullopt, {event_of_type("E")}});
  writer.commit(request);
  t.join();
  EXPECT_TRUE(woke.load());
  waiter->close();
}

TEST(postgres_engine, close_ends_a_wait) {
  REQUIRE_POSTGRES();
  engine_in_scratch_schema db;
  std::thread t([&] { EXPECT_THROW(db.wait_for(100, 60s), store_closed_error); });
  std::this_thread::sleep_for(100ms);
  db.close();
  t.join();
}

// --- jsonb ---------------------------------------------------------------------------------------

TEST(postgres_engine, a_nul_character_round_trips_and_filters_see_it_as_a_replacement_character) {
  REQUIRE_POSTGRES();
  engine_in_scratch_schema db;
  const json body = {{"name", std::string("a\0b", 3)}, {"k", 1}};
  db.commit(commit_request{{document_write{"c", "x", 0, write_op::put, body}}});
  EXPECT_EQ(db.get("c", "x")->body, body);
  const auto found = db.find("c", query{filter::parse({{"name",
                                                        "a\xEF\xBF\xBD"
                                                        "b"}})});
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].body, body);
  // An update back to an ordinary body clears the exact copy.
  db.commit(commit_request{{document_write{"c", "x", 1, write_op::put, json{{"name", "ab"}}}}});
  EXPECT_EQ(db.get("c", "x")->body, (json{{"name", "ab"}}));
  EXPECT_EQ(db.find("c", query{filter::parse({{"name", "ab"}})}).size(), 1u);
}

TEST(postgres_engine, identifiers_are_never_sql) {
  REQUIRE_POSTGRES();
  engine_in_scratch_schema db;
  const std::string nasty = "x'); DROP TABLE documents; --";
  db.commit(commit_request{{document_write{"c", nasty, 0, write_op::put, json{{"v", 1}}}},
                           {stream_append{{"s", nasty}, 0, {event_of_type("E'); --")}}}});
  EXPECT_EQ(db.get("c", nasty)->body, (json{{"v", 1}}));
  EXPECT_EQ(db.read_stream({"s", nasty}, 1, 10).size(), 1u);
  EXPECT_EQ(db.find("c", query{filter::parse({{"v", 1}})}).size(), 1u);
}

// --- Rows written around the library (docs/limits.md, "Unreadable documents") ---------------

TEST(postgres_engine, unreadable_rows_are_passed_over_by_find_and_reported_and_can_be_deleted) {
  REQUIRE_POSTGRES();
  engine_in_scratch_schema db;
  for (const char* id : {"a", "b", "c", "d", "bad_text", "bad_deep", "bad_array", "bad_huge"}) {
    db.commit(
        commit_request{{document_write{"c", id, 0, write_op::put, json{{"id", id}, {"n", 1}}}}});
  }
  const std::string table = "\"" + db.schema() + "\".documents";
  const std::string deep = std::string(1500, '[') + std::string(1500, ']');
  postgres_exec(postgres_test_uri(),
                "UPDATE " + table + " SET body_exact = '{\"n\": ' WHERE id = 'bad_text';" +
                    "UPDATE " + table + " SET body = '{\"n\": 1, \"x\": " + deep +
                    "}' WHERE id = 'bad_deep';" + "UPDATE " + table +
                    " SET body = '[1]' WHERE id = 'bad_array';" + "UPDATE " + table +
                    " SET body = '{\"n\": 1e999}' WHERE id = 'bad_huge';");
  for (const char* id : {"bad_text", "bad_deep", "bad_array", "bad_huge"}) {
    SCOPED_TRACE(id);
    try {
      db.get("c", id);
      ADD_FAILURE() << "read";
    } catch (const unreadable_document_error& e) {
      EXPECT_EQ(e.document().id, id);
      EXPECT_EQ(e.document().version, 1);
    }
  }
  std::vector<std::string> reported;
  query q;
  q.where = filter::parse({{"n", 1}});
  q.limit = 3;
  q.on_unreadable = [&](const unreadable_document& u) { reported.push_back(u.id); };
  std::vector<std::string> ids;
  for (const auto& d : db.find("c", q)) ids.push_back(d.id);
  EXPECT_EQ(ids, (std::vector<std::string>{"a", "b", "c"}));
  q.limit.reset();
  q.skip = 3;
  ids.clear();
  for (const auto& d : db.find("c", q)) ids.push_back(d.id);
  EXPECT_EQ(ids, (std::vector<std::string>{"d"}));
  EXPECT_FALSE(reported.empty());

  // A store on a second engine object over the same schema.
  store_options quiet;
  quiet.on_unreadable_document = nullptr;
  auto store = store::wrap(make_postgres_engine(postgres_test_options(db.schema())), quiet);
  auto docs = store->documents("c");
  EXPECT_EQ(docs.find_unreadable().size(), 4u);
  for (const char* id : {"bad_text", "bad_deep", "bad_array", "bad_huge"}) {
    EXPECT_TRUE(docs.delete_one(id));
    EXPECT_EQ(docs.find_one(id), std::nullopt);
  }
  EXPECT_TRUE(docs.find_unreadable().empty());
  EXPECT_EQ(docs.find_many().size(), 4u);
  store->close();
}

}  // namespace
}  // namespace eventsourced
