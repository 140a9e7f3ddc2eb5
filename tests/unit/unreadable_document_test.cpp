// Unreadable documents (error.hpp, docs/limits.md): rows of a SQLite file written around the
// library whose body is not JSON, not an object, nested deeper than kMaxJsonDepth (deeper than
// SQLite's own JSON functions take, too) or holding a number beyond a double. One such row must
// not make the rest of its collection unreadable, and the public API finds and removes it.
#include <sqlite3.h>

#include <algorithm>
#include <string>
#include <vector>

#include "unit/storage_test_support.hpp"

namespace eventsourced_test {
namespace {

using eventsourced::find_options;
using eventsourced::sort_order;
using eventsourced::unreadable_document;
using eventsourced::unreadable_document_error;
using ids = std::vector<std::string>;

ids sorted(ids v) {
  std::sort(v.begin(), v.end());
  return v;
}

void exec_sql(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* message = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &message);
  EXPECT_EQ(rc, SQLITE_OK) << (message ? message : "");
  sqlite3_free(message);
  sqlite3_close(db);
}

// The body and version of one row, straight from the file.
std::pair<std::string, std::int64_t> raw_row(const std::string& path, const std::string& id) {
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  sqlite3_stmt* stmt = nullptr;
  sqlite3_prepare_v2(db,
                     "SELECT body, version FROM documents WHERE collection = 'players' AND id = ?1",
                     -1, &stmt, nullptr);
  sqlite3_bind_text(stmt, 1, id.c_str(), -1, SQLITE_TRANSIENT);
  std::pair<std::string, std::int64_t> out{"<no row>", -1};
  if (sqlite3_step(stmt) == SQLITE_ROW) {
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    out = {text ? text : "<null>", sqlite3_column_int64(stmt, 1)};
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return out;
}

std::string nested(std::size_t levels) {
  return std::string(levels, '[') + std::string(levels, ']');
}

// The unreadable rows, by id, and what each holds.
const std::vector<std::pair<std::string, std::string>>& bad_rows() {
  static const std::vector<std::pair<std::string, std::string>> rows = {
      {"notjson", R"({"id": "notjson", "gold": )"},
      {"array", "[1, 2, 3]"},
      {"deep", R"({"id": "deep", "x": )" + nested(1500) + "}"},        // SQLite reads it, we do not
      {"toodeep", R"({"id": "toodeep", "x": )" + nested(2500) + "}"},  // neither does SQLite
      {"huge", R"({"id": "huge", "gold": 1e999})"},
  };
  return rows;
}

class unreadable_documents : public ::testing::Test {
 protected:
  void SetUp() override {
    {
      auto s = open();
      auto players = s->collection<Player>("players");
      for (int i = 1; i <= 5; ++i) {
        players.find_one_and_upsert(
            Player{.id = "good" + std::to_string(i), .name = "G", .gold = i});
      }
      for (const auto& [id, text] : bad_rows())
        players.find_one_and_upsert(Player{.id = id, .name = id});
    }
    for (const auto& [id, text] : bad_rows()) {
      exec_sql(path_, "UPDATE documents SET body = '" + text + "' WHERE id = '" + id + "'");
    }
    store_ = open();
  }

  std::shared_ptr<eventsourced::store> open() {
    auto mapper = std::make_shared<eventsourced::default_event_mapper>();
    return eventsourced::open(
        "sqlite:" + path_, {.on_unreadable_document =
                                [this](const unreadable_document& u) { reported_.push_back(u.id); },
                            .mapper = mapper});
  }

  eventsourced::collection<Player> players() { return store_->collection<Player>("players"); }

  static ids ids_of(const std::vector<Player>& found) {
    ids out;
    for (const Player& p : found) out.push_back(p.id);
    return out;
  }

  scratch_directory dir_;
  std::string path_ = (dir_.path() / "unreadable.db").string();
  std::shared_ptr<eventsourced::store> store_;
  std::vector<std::string> reported_;
};

TEST_F(unreadable_documents, reading_one_by_id_throws_naming_it_and_its_version) {
  for (const auto& [id, text] : bad_rows()) {
    SCOPED_TRACE(id);
    try {
      players().find_one(id);
      ADD_FAILURE() << "read";
    } catch (const unreadable_document_error& e) {
      EXPECT_EQ(e.document().collection, "players");
      EXPECT_EQ(e.document().id, id);
      EXPECT_EQ(e.document().version, 1);
      EXPECT_FALSE(e.document().reason.empty());
      EXPECT_NE(std::string(e.what()).find("players/" + id), std::string::npos);
    }
    EXPECT_THROW(players().update_one(id, {{"$set", {{"gold", 0}}}}), unreadable_document_error);
    EXPECT_THROW(store_->documents("players").find_one_and_update(id, [](json d) { return d; }),
                 unreadable_document_error);
    EXPECT_EQ(raw_row(path_, id), std::make_pair(text, std::int64_t{1}));
  }
}

TEST_F(unreadable_documents, queries_pass_over_them_and_report_each) {
  EXPECT_EQ(ids_of(players().find_many()), (ids{"good1", "good2", "good3", "good4", "good5"}));
  EXPECT_EQ(sorted(reported_), (ids{"array", "deep", "huge", "notjson", "toodeep"}));
  reported_.clear();
  // A filter SQLite's JSON functions cannot evaluate on a row that is not JSON.
  EXPECT_EQ(ids_of(players().find_many({{"id", "good3"}})), ids{"good3"});
  EXPECT_EQ(ids_of(players().find_many({{"gold", {{"$gte", 2}}}},
                                       {.sort = {{"gold", sort_order::descending}}, .limit = 2})),
            (ids{"good5", "good4"}));
  // Unreadable rows never count for limit and skip, wherever they sort.
  EXPECT_EQ(ids_of(players().find_many({}, {.limit = 3})), (ids{"good1", "good2", "good3"}));
  EXPECT_EQ(ids_of(players().find_many(
                {}, {.sort = {{"gold", sort_order::ascending}}, .limit = 2, .skip = 1})),
            (ids{"good2", "good3"}));
  EXPECT_EQ(ids_of(players().find_many({{"name", "G"}}, {.limit = 10, .skip = 4})), ids{"good5"});
  EXPECT_FALSE(reported_.empty());
}

TEST_F(unreadable_documents,
       find_unreadable_lists_them_with_reasons_and_the_default_report_prints) {
  ids found;
  for (const unreadable_document& u : store_->documents("players").find_unreadable()) {
    found.push_back(u.id);
    EXPECT_EQ(u.version, 1);
    EXPECT_FALSE(u.reason.empty());
  }
  EXPECT_EQ(sorted(found), (ids{"array", "deep", "huge", "notjson", "toodeep"}));

  auto defaults = eventsourced::open("sqlite:" + path_);
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(defaults->documents("players").find_many().size(), 5u);
  const std::string printed = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(printed.find("players/notjson"), std::string::npos) << printed;
  EXPECT_NE(printed.find("players/huge"), std::string::npos) << printed;
}

TEST_F(unreadable_documents, delete_one_removes_one_and_records_its_deletion) {
  for (const auto& [id, text] : bad_rows()) {
    SCOPED_TRACE(id);
    EXPECT_TRUE(players().delete_one(id));
    EXPECT_EQ(players().find_one(id), std::nullopt);
    EXPECT_FALSE(players().delete_one(id));
    EXPECT_EQ(raw_row(path_, id), std::make_pair(std::string("<null>"), std::int64_t{2}));
    // The deletion is in the log, as any other.
    const auto last = eventsourced::event_log(store_).read_all(0, 1000).events.back();
    EXPECT_EQ(last.type, "players.deleted");
    EXPECT_EQ(last.stream.id, id);
    // And the id can be used again.
    EXPECT_EQ(
        players().find_one_and_upsert(Player{.id = id, .name = id, .gold = 9}).document.version, 3);
  }
  EXPECT_TRUE(store_->documents("players").find_unreadable().empty());
  EXPECT_EQ(players().find_many().size(), 10u);
}

}  // namespace
}  // namespace eventsourced_test
