// Runs the engine conformance suite against the built-in engines (memory, SQLite on a file, SQLite
// in memory), and checks opening them by URI.
#include "conformance/engine_conformance.hpp"

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include <eventsourced/engine/memory.hpp>
#include <eventsourced/engine/open.hpp>
#include <eventsourced/engine/sqlite.hpp>

#include "support/forwarding_engine.hpp"

namespace eventsourced::conformance {
namespace {

using namespace std::chrono_literals;

// An engine whose files live in a temporary directory that goes away with the engine.
class engine_in_temporary_directory final : public eventsourced::testing::forwarding_engine {
 public:
  engine_in_temporary_directory(std::unique_ptr<temporary_directory> directory,
                                std::unique_ptr<engine> inner)
      : forwarding_engine(std::move(inner)), directory_(std::move(directory)) {}
  // The engine lets go of its files before the directory goes.
  ~engine_in_temporary_directory() override { inner_.reset(); }

 private:
  std::unique_ptr<temporary_directory> directory_;
};

std::unique_ptr<engine> make_sqlite_file_engine() {
  auto directory = std::make_unique<temporary_directory>();
  auto inner = make_sqlite_engine({.path = (directory->path() / "conformance.db").string()});
  return std::make_unique<engine_in_temporary_directory>(std::move(directory), std::move(inner));
}

INSTANTIATE_TEST_SUITE_P(
    builtin, engine_conformance,
    ::testing::Values(engine_under_test{"memory", [] { return make_memory_engine(); }},
                      engine_under_test{"sqlite_file", make_sqlite_file_engine},
                      engine_under_test{"sqlite_memory",
                                        [] { return make_sqlite_engine({.path = ":memory:"}); }}),
    engine_under_test_name);

// Opening by URI.

void expect_usable(engine& db) {
  ASSERT_EQ(commit_write(db, put_write("c", "a", 0, {{"v", 1}})), 1);
  EXPECT_EQ(db.get("c", "a")->body, (json{{"v", 1}}));
  ASSERT_EQ(commit_append(db, append_to({"order", "o1"}, 0, {make_event("Placed")})).size(), 1u);
  EXPECT_EQ(db.read_all(0, 10).size(), 1u);
}

TEST(engine_conformance_open, memory_uri_opens_an_empty_memory_engine) {
  const auto db = open_engine("memory:");
  ASSERT_NE(db, nullptr);
  EXPECT_TRUE(db->read_all(0, 10).empty());
  expect_usable(*db);
  db->close();
}

TEST(engine_conformance_open, each_memory_uri_opens_a_separate_engine) {
  const auto first = open_engine("memory:");
  const auto second = open_engine("memory:");
  ASSERT_EQ(commit_write(*first, put_write("c", "a", 0, {{"v", 1}})), 1);
  EXPECT_FALSE(second->get("c", "a").has_value());
}

TEST(engine_conformance_open, sqlite_memory_uri_opens_a_private_database) {
  const auto db = open_engine("sqlite::memory:");
  ASSERT_NE(db, nullptr);
  expect_usable(*db);
  const auto other = open_engine("sqlite::memory:");
  EXPECT_FALSE(other->get("c", "a").has_value());
  db->close();
  other->close();
}

TEST(engine_conformance_open, sqlite_file_uri_creates_the_file) {
  const temporary_directory directory;
  const std::filesystem::path file = directory.path() / "opened.db";
  {
    const auto db = open_engine("sqlite:" + file.string());
    ASSERT_NE(db, nullptr);
    expect_usable(*db);
    db->close();
  }
  EXPECT_TRUE(std::filesystem::exists(file));
}

TEST(engine_conformance_open, unknown_scheme_is_invalid_and_named) {
  try {
    open_engine("nosuch://x");
    ADD_FAILURE() << "open_engine(\"nosuch://x\") did not throw";
  } catch (const invalid_argument_error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("nosuch"), std::string::npos) << message;
    // The message lists the schemes that are known.
    EXPECT_NE(message.find("memory"), std::string::npos) << message;
    EXPECT_NE(message.find("sqlite"), std::string::npos) << message;
  }
}

TEST(engine_conformance_open, uri_without_scheme_is_invalid_and_named) {
  try {
    open_engine("no-scheme");
    ADD_FAILURE() << "open_engine(\"no-scheme\") did not throw";
  } catch (const invalid_argument_error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("scheme"), std::string::npos) << message;
    EXPECT_NE(message.find("memory"), std::string::npos) << message;
    EXPECT_NE(message.find("sqlite"), std::string::npos) << message;
  }
  EXPECT_THROW(open_engine(""), invalid_argument_error);
}

TEST(engine_conformance_open, registered_scheme_receives_the_whole_uri) {
  const auto received = std::make_shared<std::string>();
  register_engine_scheme("conformance-test", [received](std::string_view uri) {
    *received = uri;
    return make_memory_engine();
  });
  const auto db = open_engine("conformance-test:anything?x=1");
  ASSERT_NE(db, nullptr);
  EXPECT_EQ(*received, "conformance-test:anything?x=1");
  expect_usable(*db);
}

// Durability of the SQLite file engine across engine objects.
TEST(engine_conformance_sqlite_file, reopened_file_keeps_documents_tombstones_and_events) {
  const temporary_directory directory;
  const sqlite_options options{.path = (directory.path() / "durable.db").string()};
  std::int64_t last_position = 0;
  {
    const auto db = make_sqlite_engine(options);
    ASSERT_EQ(commit_write(*db, put_write("c", "kept", 0, {{"v", "ü"}})), 1);
    ASSERT_EQ(commit_write(*db, put_write("c", "gone", 0, {{"v", 1}})), 1);
    ASSERT_EQ(commit_write(*db, erase_write("c", "gone", 1)), 2);
    const auto events = commit_append(*db, append_to({"order", "o1"}, 0, {make_event("Placed")}));
    ASSERT_EQ(events.size(), 1u);
    last_position = events[0].position;
    db->close();
  }
  const auto db = make_sqlite_engine(options);
  const auto kept = db->get("c", "kept");
  ASSERT_TRUE(kept.has_value());
  EXPECT_EQ(kept->version, 1);
  EXPECT_EQ(kept->body, (json{{"v", "ü"}}));
  EXPECT_FALSE(db->get("c", "gone").has_value());
  EXPECT_EQ(commit_write(*db, put_write("c", "gone", 0, {{"v", 2}})), 3) << "tombstone was lost";

  const auto log = db->read_all(0, 10);
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0].position, last_position);
  const auto next = commit_append(*db, append_to({"order", "o1"}, 1, {make_event("Paid")}));
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].stream_version, 2);
  EXPECT_GT(next[0].position, last_position);
  db->close();
}

}  // namespace
}  // namespace eventsourced::conformance
