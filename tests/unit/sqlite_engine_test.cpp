// What only the SQLite engine promises: its URI, its file (WAL, reopening, corruption, locks held
// by other connections), close(), and that its SQL translation of filters and sort keys agrees
// with filter::matches() and compare_for_sort(). The behaviour every engine shares is in
// tests/conformance.
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <eventsourced/engine/sqlite.hpp>
#include <eventsourced/error.hpp>

#include "engine/sqlite_connection.hpp"

namespace eventsourced {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// A fresh directory per test, removed afterwards.
class sqlite_engine_test : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("eventsourced_sqlite_" + std::string(info->name()) + "_" +
            std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
  std::string db_path() const { return (dir_ / "test.db").string(); }
  std::unique_ptr<engine> open(sqlite_options options = {}) {
    if (options.path.empty()) options.path = db_path();
    return make_sqlite_engine(options);
  }

  fs::path dir_;
};

// A raw connection of the SQLite C API, standing for another process or a corrupting tool.
class raw_connection {
 public:
  explicit raw_connection(const std::string& path) {
    if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) ADD_FAILURE() << sqlite3_errmsg(db_);
  }
  ~raw_connection() { sqlite3_close(db_); }
  void exec(const std::string& sql) {
    char* message = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
      ADD_FAILURE() << sql << ": " << (message ? message : "?");
    }
    sqlite3_free(message);
  }
  std::string text(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    std::string out;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
      out = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    }
    sqlite3_finalize(stmt);
    return out;
  }

 private:
  sqlite3* db_ = nullptr;
};

document_write put(std::string collection, std::string id, std::int64_t expected, json body) {
  return {std::move(collection), std::move(id), expected, write_op::put, std::move(body)};
}

new_event event(std::string id, std::string type) {
  return {std::move(id), std::move(type), json{{"n", 1}}, json::object()};
}

template <typename E>
std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an exception";
  return {};
}

// ---------------------------------------------------------------------------------------------
// URI.

TEST(sqlite_uri, takes_relative_absolute_and_memory_paths) {
  EXPECT_EQ(parse_sqlite_uri("sqlite:app.db").path, "app.db");
  EXPECT_EQ(parse_sqlite_uri("sqlite:data/game.db").path, "data/game.db");
  EXPECT_EQ(parse_sqlite_uri("sqlite:///var/lib/game.db").path, "/var/lib/game.db");
  EXPECT_EQ(parse_sqlite_uri("sqlite::memory:").path, ":memory:");
}

TEST(sqlite_uri, defaults_match_sqlite_options) {
  const sqlite_options defaults;
  const sqlite_options parsed = parse_sqlite_uri("sqlite:app.db");
  EXPECT_EQ(parsed.synchronous, defaults.synchronous);
  EXPECT_EQ(parsed.busy_timeout, defaults.busy_timeout);
  EXPECT_EQ(parsed.max_readers, defaults.max_readers);
  EXPECT_EQ(parsed.poll_interval, defaults.poll_interval);
}

TEST(sqlite_uri, reads_every_parameter) {
  const auto o = parse_sqlite_uri(
      "sqlite:app.db?synchronous=full&busy_timeout_ms=250&max_readers=2&poll_interval_ms=7");
  EXPECT_EQ(o.path, "app.db");
  EXPECT_EQ(o.synchronous, sqlite_synchronous::full);
  EXPECT_EQ(o.busy_timeout, 250ms);
  EXPECT_EQ(o.max_readers, 2u);
  EXPECT_EQ(o.poll_interval, 7ms);
  EXPECT_EQ(parse_sqlite_uri("sqlite::memory:?synchronous=off").synchronous,
            sqlite_synchronous::off);
  EXPECT_EQ(parse_sqlite_uri("sqlite:a.db?synchronous=normal").synchronous,
            sqlite_synchronous::normal);
}

TEST(sqlite_uri, rejects_malformed_uris_with_invalid_argument) {
  for (const char* bad : {"sqlite:", "sqlite:?synchronous=full", "sqlite:///", "sqlite",
                          "memory:", "sqlite3:app.db", "sqlite://host/app.db"}) {
    EXPECT_THROW(parse_sqlite_uri(bad), invalid_argument_error) << bad;
  }
}

TEST(sqlite_uri, rejects_bad_parameters_naming_them) {
  const std::pair<const char*, const char*> cases[] = {
      {"sqlite:a.db?cache=shared", "cache"},
      {"sqlite:a.db?synchronous=sometimes", "synchronous"},
      {"sqlite:a.db?busy_timeout_ms=-1", "busy_timeout_ms"},
      {"sqlite:a.db?busy_timeout_ms=10s", "busy_timeout_ms"},
      {"sqlite:a.db?busy_timeout_ms=", "busy_timeout_ms"},
      {"sqlite:a.db?max_readers=0", "max_readers"},
      {"sqlite:a.db?max_readers=99999999999999999999", "max_readers"},
      {"sqlite:a.db?poll_interval_ms=0", "poll_interval_ms"},
      {"sqlite:a.db?max_readers", "max_readers"},
      {"sqlite:a.db?max_readers=1&max_readers=2", "max_readers"},
  };
  for (const auto& [uri, name] : cases) {
    const std::string message =
        message_of<invalid_argument_error>([uri = uri] { parse_sqlite_uri(uri); });
    EXPECT_NE(message.find(name), std::string::npos) << uri << " -> " << message;
  }
}

TEST(sqlite_uri, make_sqlite_engine_rejects_unusable_options) {
  EXPECT_THROW(make_sqlite_engine({}), invalid_argument_error);
  EXPECT_THROW(make_sqlite_engine({.path = ":memory:", .max_readers = 0}), invalid_argument_error);
  EXPECT_THROW(make_sqlite_engine({.path = ":memory:", .poll_interval = 0ms}),
               invalid_argument_error);
}

// ---------------------------------------------------------------------------------------------
// The file.

TEST_F(sqlite_engine_test, puts_the_file_in_wal_mode) {
  open()->close();
  raw_connection raw(db_path());
  EXPECT_EQ(raw.text("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(raw.text("PRAGMA user_version"), "1");
}

TEST_F(sqlite_engine_test, connections_apply_synchronous_and_busy_timeout_from_options) {
  const std::pair<sqlite_synchronous, const char*> levels[] = {{sqlite_synchronous::off, "0"},
                                                               {sqlite_synchronous::normal, "1"},
                                                               {sqlite_synchronous::full, "2"}};
  for (const auto& [level, expected] : levels) {
    sqlite_detail::connection conn(
        {.path = db_path(), .synchronous = level, .busy_timeout = 1234ms}, false);
    sqlite_detail::statement sync(conn, "PRAGMA synchronous", "test");
    ASSERT_TRUE(sync.step());
    EXPECT_EQ(sync.column_text(0), expected);
    sqlite_detail::statement timeout(conn, "PRAGMA busy_timeout", "test");
    ASSERT_TRUE(timeout.step());
    EXPECT_EQ(timeout.column_int64(0), 1234);
  }
}

TEST_F(sqlite_engine_test, reopening_the_file_keeps_documents_tombstones_and_events) {
  {
    auto db = open();
    db->commit({.writes = {put("players", "p1", 0, {{"gold", 5}}),
                           put("players", "p2", 0, json::object())},
                .appends = {{{"player", "p1"}, 0, {event("e1", "Created")}}}});
    db->commit({.writes = {{"players", "p2", 1, write_op::erase, {}}}});
    db->close();
  }
  auto db = open();
  const auto p1 = db->get("players", "p1");
  ASSERT_TRUE(p1);
  EXPECT_EQ(p1->version, 1);
  EXPECT_EQ(p1->body, (json{{"gold", 5}}));
  EXPECT_FALSE(db->get("players", "p2"));
  // Re-creating after the tombstone continues its versions.
  EXPECT_EQ(db->commit({.writes = {put("players", "p2", 0, json::object())}}).versions,
            std::vector<std::int64_t>{3});
  // The log and its positions survive; new events continue after them.
  const auto log = db->read_all(0, 10);
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0].id, "e1");
  const auto next = db->commit({.appends = {{{"player", "p1"}, 1, {event("e2", "Renamed")}}}});
  EXPECT_EQ(next.events.at(0).position, log[0].position + 1);
  EXPECT_EQ(next.events.at(0).stream_version, 2);
}

TEST_F(sqlite_engine_test, a_corrupt_body_is_unreadable_by_id_and_passed_over_by_find) {
  auto db = open();
  db->commit({.writes = {put("players", "p1", 0, {{"level", 1}}),
                         put("players", "p2", 0, {{"level", 2}})}});
  raw_connection(db_path()).exec("UPDATE documents SET body = '{\"level\": 1' WHERE id = 'p1'");

  const std::string message =
      message_of<unreadable_document_error>([&] { db->get("players", "p1"); });
  EXPECT_NE(message.find("players/p1"), std::string::npos) << message;
  EXPECT_EQ(db->get("players", "p2")->body, (json{{"level", 2}}));  // others still readable

  // Without a filter the body is parsed in C++; with one, SQLite's json functions meet it first
  // (the statement fails and runs again with each row checked): either way it is passed over.
  std::vector<std::string> passed_over;
  const auto find = [&](query q) {
    q.on_unreadable = [&](const unreadable_document& u) { passed_over.push_back(u.id); };
    std::vector<std::string> ids;
    for (const auto& d : db->find("players", q)) ids.push_back(d.id);
    return ids;
  };
  EXPECT_EQ(find({}), std::vector<std::string>{"p2"});
  EXPECT_EQ(find({.where = filter::parse({{"level", 2}})}), std::vector<std::string>{"p2"});
  EXPECT_EQ(find({.sort = {{"level"}}}), std::vector<std::string>{"p2"});
  EXPECT_EQ(passed_over, (std::vector<std::string>{"p1", "p1", "p1"}));
  // The engine stays usable, and a version-checked erase removes the row.
  EXPECT_EQ(db->commit({.writes = {put("players", "p3", 0, json::object())}}).versions.at(0), 1);
  EXPECT_EQ(db->commit({.writes = {{"players", "p1", 1, write_op::erase, {}}}}).versions.at(0), 2);
  EXPECT_EQ(db->get("players", "p1"), std::nullopt);
}

TEST_F(sqlite_engine_test, corrupt_event_data_is_a_serialization_error) {
  auto db = open();
  db->commit({.appends = {{{"player", "p1"}, 0, {event("e1", "Created")}}}});
  raw_connection(db_path()).exec("UPDATE events SET data = 'nope' WHERE event_id = 'e1'");
  EXPECT_THROW(db->read_all(0, 10), serialization_error);
  EXPECT_THROW(db->read_stream({"player", "p1"}, 1, 10), serialization_error);
}

TEST_F(sqlite_engine_test, a_file_that_is_not_a_database_is_an_engine_error) {
  std::ofstream(db_path()) << std::string(8192, 'x');
  const std::string message = message_of<engine_error>([&] { open(); });
  EXPECT_NE(message.find("not a database"), std::string::npos) << message;
}

TEST_F(sqlite_engine_test, a_missing_directory_is_an_engine_error) {
  EXPECT_THROW(open({.path = (dir_ / "no" / "such" / "dir.db").string()}), engine_error);
}

TEST_F(sqlite_engine_test, a_lock_held_beyond_busy_timeout_is_retryable_and_changes_nothing) {
  auto db = open({.busy_timeout = 150ms});
  db->commit({.writes = {put("c", "a", 0, {{"v", 1}})}});
  raw_connection other(db_path());
  other.exec("BEGIN IMMEDIATE");

  const auto started = std::chrono::steady_clock::now();
  try {
    db->commit({.writes = {put("c", "a", 1, {{"v", 2}})},
                .appends = {{{"s", "1"}, std::nullopt, {event("e1", "T")}}}});
    FAIL() << "the commit went through a held lock";
  } catch (const engine_unavailable_error& e) {
    EXPECT_TRUE(e.retryable());
    EXPECT_NE(std::string(e.what()).find("locked"), std::string::npos) << e.what();
  }
  EXPECT_GE(std::chrono::steady_clock::now() - started, 140ms);  // it did wait busy_timeout
  // WAL: reads go on while another connection holds the write lock.
  EXPECT_EQ(db->get("c", "a")->version, 1);
  EXPECT_TRUE(db->read_all(0, 10).empty());

  other.exec("ROLLBACK");
  EXPECT_EQ(db->commit({.writes = {put("c", "a", 1, {{"v", 2}})}}).versions.at(0), 2);
}

TEST_F(sqlite_engine_test, wait_for_notices_commits_through_another_connection) {
  auto writer = open();
  auto waiter = open({.poll_interval = 5ms});
  std::thread commit_later([&] {
    std::this_thread::sleep_for(50ms);
    writer->commit({.appends = {{{"s", "1"}, std::nullopt, {event("e1", "T")}}}});
  });
  const bool seen = waiter->wait_for(0, 5s);
  commit_later.join();
  EXPECT_TRUE(seen);
  EXPECT_FALSE(waiter->wait_for(1, 30ms));
}

TEST_F(sqlite_engine_test, two_engines_on_one_file_lose_no_update) {
  // Two engine objects stand for two processes: each has its own writer connection, so only
  // BEGIN IMMEDIATE orders their commits.
  auto first = open();
  auto second = open();
  first->commit({.writes = {put("c", "counter", 0, {{"n", 0}})}});
  constexpr int kPerThread = 40;
  auto increment = [&](engine& db, int thread) {
    for (int i = 0; i < kPerThread; ++i) {
      while (true) {
        const auto doc = db.get("c", "counter");
        json body = doc->body;
        body["n"] = body["n"].get<int>() + 1;
        try {
          db.commit(
              {.writes = {put("c", "counter", doc->version, body)},
               .appends = {{{"s", "counter"},
                            std::nullopt,
                            {event(std::to_string(thread) + "-" + std::to_string(i), "Inc")}}}});
          break;
        } catch (const conflict_error&) {
        }
      }
    }
  };
  std::thread a(increment, std::ref(*first), 0), b(increment, std::ref(*second), 1);
  std::thread c(increment, std::ref(*first), 2), d(increment, std::ref(*second), 3);
  a.join(), b.join(), c.join(), d.join();
  EXPECT_EQ(first->get("c", "counter")->body["n"], 4 * kPerThread);
  const auto log = second->read_all(0, 1000);
  ASSERT_EQ(log.size(), 4u * kPerThread);
  for (std::size_t i = 0; i < log.size(); ++i) {
    EXPECT_EQ(log[i].stream_version, static_cast<std::int64_t>(i) + 1);
    if (i > 0) {
      EXPECT_GT(log[i].position, log[i - 1].position);
    }
  }
}

TEST_F(sqlite_engine_test, ids_and_values_with_sql_syntax_are_only_data) {
  auto db = open();
  const std::string id = "x'); DROP TABLE documents; --";
  db->commit({.writes = {put("c", id, 0, {{"name", "' OR 1=1 --"}})}});
  EXPECT_EQ(db->get("c", id)->body["name"], "' OR 1=1 --");
  EXPECT_EQ(db->find("c", {.where = filter::parse({{"name", "' OR 1=1 --"}})}).size(), 1u);
  EXPECT_TRUE(db->find("c", {.where = filter::parse({{"name", "x"}})}).empty());
}

// ---------------------------------------------------------------------------------------------
// close().

TEST_F(sqlite_engine_test, every_call_after_close_throws_store_closed) {
  for (const std::string& path : {db_path(), std::string(":memory:")}) {
    auto db = open({.path = path});
    db->commit({.writes = {put("c", "a", 0, json::object())}});
    db->close();
    db->close();  // idempotent
    EXPECT_THROW(db->get("c", "a"), store_closed_error) << path;
    EXPECT_THROW(db->find("c", {}), store_closed_error);
    EXPECT_THROW(db->commit({.writes = {put("c", "b", 0, json::object())}}), store_closed_error);
    EXPECT_THROW(db->read_stream({"s", "1"}, 1, 10), store_closed_error);
    EXPECT_THROW(db->read_all(0, 10), store_closed_error);
    EXPECT_THROW(db->wait_for(0, 10ms), store_closed_error);
  }
}

TEST_F(sqlite_engine_test, close_wakes_a_waiting_wait_for) {
  auto db = open({.poll_interval = 1000ms});
  std::atomic<bool> threw_closed{false};
  const auto started = std::chrono::steady_clock::now();
  std::thread waiter([&] {
    try {
      db->wait_for(0, 10s);
    } catch (const store_closed_error&) {
      threw_closed = true;
    }
  });
  std::this_thread::sleep_for(50ms);
  db->close();
  waiter.join();
  EXPECT_TRUE(threw_closed);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 900ms);
}

TEST_F(sqlite_engine_test, close_while_other_threads_read_and_write_never_crashes) {
  auto db = open({.max_readers = 2});
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; !stop; ++i) {
        try {
          if (t % 2 == 0) {
            db->commit({.writes = {put("c", std::to_string(t) + "-" + std::to_string(i), 0,
                                       json::object())}});
          } else {
            db->find("c", {.where = filter::parse({{"x", {{"$exists", false}}}}), .limit = 5});
          }
        } catch (const store_closed_error&) {
          return;
        }
      }
    });
  }
  std::this_thread::sleep_for(100ms);
  db->close();
  stop = true;
  for (auto& t : threads) t.join();
  SUCCEED();
}

}  // namespace
}  // namespace eventsourced
