// Private to the SQLite engine: one SQLite connection with its prepared-statement cache, the RAII
// guards that use it (statement, write_transaction), and the mapping of SQLite result codes to the
// eventsourced exception hierarchy.
//
// The definitions are inline below the declarations: only sqlite_engine.cpp (and its unit test)
// include this header, and the build lists no separate source for it.
//
// \par Thread safety
// A connection is used by one thread at a time (the engine's writer mutex or a reader lease
// guarantees it), which is why connections are opened with SQLITE_OPEN_NOMUTEX and nothing here
// locks.
#pragma once

#include <sqlite3.h>

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include <eventsourced/engine/sqlite.hpp>
#include <eventsourced/error.hpp>

namespace eventsourced::sqlite_detail {

// What an operation is called in error messages ("commit", "find in collection 'players'"):
// either text, or a function that builds it, called only when an error is thrown, so hot paths
// build no message strings. Holds a reference: the text or function must outlive it.
class operation_name {
 public:
  operation_name(const char* text) noexcept : text_(text) {}
  operation_name(std::string_view text) noexcept : text_(text) {}
  operation_name(const std::string& text) noexcept : text_(text) {}
  template <typename F>
  requires std::is_invocable_r_v<std::string, const F&> operation_name(const F& make)
  noexcept : make_(&call<F>), function_(&make) {}
  // A temporary function would be gone before the error that needs it.
  template <typename F>
  requires std::is_invocable_r_v<std::string, const F&> operation_name(const F&&)
  = delete;

  std::string str() const { return make_ != nullptr ? make_(function_) : std::string(text_); }

 private:
  template <typename F>
  static std::string call(const void* f) {
    return (*static_cast<const F*>(f))();
  }

  std::string_view text_;
  std::string (*make_)(const void*) = nullptr;
  const void* function_ = nullptr;
};

// Throws the exception that matches an SQLite failure of `operation`. BUSY and LOCKED mean another
// connection held a lock beyond busy_timeout: retryable. "malformed JSON" comes from
// json_extract()/json_type() over a corrupt body: a serialization error. Anything else is an
// engine_error with SQLite's message.
[[noreturn]] inline void throw_sqlite_error(int rc, sqlite3* db, const operation_name& operation);

class connection {
 public:
  // Opens `options.path` (or ":memory:") and applies the per-connection pragmas: busy_timeout,
  // synchronous, and journal_mode=WAL for files. `read_only` connections also set query_only so
  // a bug can never write through a reader. Throws engine_error / engine_unavailable_error.
  connection(const sqlite_options& options, bool read_only);
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  sqlite3* handle() const noexcept { return db_; }
  // Runs SQL that returns no rows the caller needs (pragmas, DDL).
  void exec(const char* sql, const operation_name& operation);

 private:
  friend class statement;
  struct cached_statement {
    sqlite3_stmt* stmt = nullptr;
    bool in_use = false;
  };
  // Statements are kept by SQL text. find() builds its SQL per filter shape, so the cache is
  // bounded: past this size, statements not in use are finalized and re-prepared on demand.
  static constexpr std::size_t kMaxCachedStatements = 128;

  // Sets stmt to a prepared statement for sql and returns its cache entry, now marked in use.
  // Returns nullptr when the cached one is already in use further up the stack: stmt is then a
  // private statement that its user finalizes.
  cached_statement* acquire(const std::string& sql, const operation_name& operation,
                            sqlite3_stmt*& stmt);

  sqlite3* db_ = nullptr;
  std::unordered_map<std::string, cached_statement> statements_;
};

// One use of a prepared statement. The destructor resets it and clears its bindings, so the
// cached statement is ready for the next user and holds no read snapshot open.
class statement {
 public:
  // `operation` names the call in error messages and must outlive the statement.
  statement(connection& conn, const std::string& sql, operation_name operation);
  ~statement();
  statement(const statement&) = delete;
  statement& operator=(const statement&) = delete;

  // Parameter indexes are 1-based, as in SQLite.
  void bind(int index, std::int64_t value);
  void bind(int index, double value);
  void bind(int index, std::string_view text);
  // Binds text without SQLite copying it: it must stay unchanged until *this is destroyed.
  void bind_static(int index, std::string_view text);
  // Kept from binding through the int64 overload by accident.
  void bind(int index, const char* text) = delete;

  // True when a row is available, false when done; throws the mapped error otherwise.
  bool step();
  // The raw result code of sqlite3_step, for callers that handle particular failures
  // themselves (a duplicate event id); fail() then throws for anything else.
  int step_code() noexcept;
  [[noreturn]] void fail(int rc) const;

  std::int64_t column_int64(int column) const noexcept;
  bool column_is_null(int column) const noexcept;
  std::string_view column_text(int column) const noexcept;

 private:
  void check_bind(int rc) const;

  connection& conn_;
  sqlite3_stmt* stmt_ = nullptr;
  connection::cached_statement* entry_ = nullptr;  // nullptr: private, finalized when done
  operation_name operation_;                       // the caller's; outlives *this
};

// BEGIN IMMEDIATE on construction: takes the database's write lock at once (waiting up to
// busy_timeout for another process), so no commit can fail later on a lock upgrade and
// commits are totally ordered. Rolls back on destruction unless commit() succeeded.
class write_transaction {
 public:
  // `operation` names the caller in error messages and must outlive the transaction.
  write_transaction(connection& conn, operation_name operation);
  ~write_transaction();
  write_transaction(const write_transaction&) = delete;
  write_transaction& operator=(const write_transaction&) = delete;

  void commit();

 private:
  connection& conn_;
  operation_name operation_;
  bool done_ = false;
};

// Up to `max_readers` reader connections, opened on first need and kept. A lease returns its
// connection on destruction; acquire() waits when every connection is leased.
class reader_pool {
 public:
  reader_pool(sqlite_options options, std::size_t max_readers)
      : options_(std::move(options)), max_readers_(max_readers) {}

  class lease {
   public:
    lease(reader_pool& pool, std::unique_ptr<connection> conn) noexcept
        : pool_(&pool), conn_(std::move(conn)) {}
    lease(lease&&) noexcept = default;
    lease& operator=(lease&&) = delete;
    ~lease() {
      if (conn_) pool_->give_back(std::move(conn_));
    }
    connection& operator*() const noexcept { return *conn_; }

   private:
    reader_pool* pool_;
    std::unique_ptr<connection> conn_;
  };

  lease acquire();
  // Closes every idle connection. The engine calls it only when no lease is outstanding.
  void close() noexcept;

 private:
  void give_back(std::unique_ptr<connection> conn) noexcept;

  const sqlite_options options_;
  const std::size_t max_readers_;
  std::mutex mutex_;
  std::condition_variable returned_;
  std::vector<std::unique_ptr<connection>> idle_;  // GUARDED_BY(mutex_)
  std::size_t open_count_ = 0;                     // GUARDED_BY(mutex_): idle plus leased
};

// ---------------------------------------------------------------------------------------------
// Definitions.

inline void throw_sqlite_error(int rc, sqlite3* db, const operation_name& operation) {
  const std::string message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  const std::string what = "eventsourced: sqlite: " + operation.str() + ": " + message;
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      throw engine_unavailable_error(
          what + " (the database is locked by another connection or process; try again later)");
    case SQLITE_ERROR:
      if (message == "malformed JSON") {
        throw serialization_error(what + " (a stored document body is not valid JSON)");
      }
      break;
    default:
      break;
  }
  throw engine_error(what);
}

inline connection::connection(const sqlite_options& options, bool read_only) {
  const bool in_memory = options.path == ":memory:";
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
  if (!read_only) flags |= SQLITE_OPEN_CREATE;
  // A build of SQLite with URI filenames enabled would read "file:..." as a URI; the path is a
  // plain file name, so keep it one.
  std::string path = options.path;
  if (path.starts_with("file:")) path = "./" + path;
  const std::string operation = "open '" + options.path + "'";
  const int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    const std::string message = db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close_v2(db_);
    db_ = nullptr;
    throw engine_error("eventsourced: sqlite: " + operation + ": " + message);
  }
  try {
    sqlite3_extended_result_codes(db_, 1);
    const auto timeout_ms =
        std::clamp<std::int64_t>(options.busy_timeout.count(), 0, std::numeric_limits<int>::max());
    sqlite3_busy_timeout(db_, static_cast<int>(timeout_ms));
    if (!in_memory) {
      // The first statement reads the file header: this is where "not a database" shows up.
      statement wal(*this, "PRAGMA journal_mode=WAL", operation);
      if (!wal.step() || wal.column_text(0) != "wal") {
        throw engine_error("eventsourced: sqlite: " + operation +
                           ": the database cannot use write-ahead logging (journal_mode=WAL)");
      }
    }
    switch (options.synchronous) {
      case sqlite_synchronous::off:
        exec("PRAGMA synchronous=OFF", operation);
        break;
      case sqlite_synchronous::normal:
        exec("PRAGMA synchronous=NORMAL", operation);
        break;
      case sqlite_synchronous::full:
        exec("PRAGMA synchronous=FULL", operation);
        break;
    }
    if (read_only) exec("PRAGMA query_only=1", operation);
  } catch (...) {
    for (auto& [sql, entry] : statements_) sqlite3_finalize(entry.stmt);
    statements_.clear();
    sqlite3_close_v2(db_);
    db_ = nullptr;
    throw;
  }
}

inline connection::~connection() {
  for (auto& [sql, entry] : statements_) sqlite3_finalize(entry.stmt);
  // close_v2 never fails on busy statements: every one was finalized above anyway.
  sqlite3_close_v2(db_);
}

inline void connection::exec(const char* sql, const operation_name& operation) {
  const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) throw_sqlite_error(rc, db_, operation);
}

inline connection::cached_statement* connection::acquire(const std::string& sql,
                                                         const operation_name& operation,
                                                         sqlite3_stmt*& stmt) {
  const auto found = statements_.find(sql);
  if (found != statements_.end() && !found->second.in_use) {
    found->second.in_use = true;
    stmt = found->second.stmt;
    return &found->second;
  }
  stmt = nullptr;
  const int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size() + 1),
                                    SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    throw_sqlite_error(rc, db_, operation);
  }
  // Already in use further up this thread's stack: this use gets a private statement.
  if (found != statements_.end()) return nullptr;
  if (statements_.size() >= kMaxCachedStatements) {
    std::erase_if(statements_, [](auto& item) {
      if (item.second.in_use) return false;
      sqlite3_finalize(item.second.stmt);
      return true;
    });
  }
  // References to unordered_map elements survive rehashing; only the erase above (of entries
  // not in use) removes them.
  auto& entry = statements_[sql];
  entry = cached_statement{stmt, true};
  return &entry;
}

inline statement::statement(connection& conn, const std::string& sql, operation_name operation)
    : conn_(conn), operation_(operation) {
  entry_ = conn.acquire(sql, operation, stmt_);
}

inline statement::~statement() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  if (entry_ != nullptr) {
    entry_->in_use = false;
  } else {
    sqlite3_finalize(stmt_);
  }
}

inline void statement::check_bind(int rc) const {
  if (rc != SQLITE_OK) fail(rc);
}

inline void statement::bind(int index, std::int64_t value) {
  check_bind(sqlite3_bind_int64(stmt_, index, value));
}

inline void statement::bind(int index, double value) {
  check_bind(sqlite3_bind_double(stmt_, index, value));
}

inline void statement::bind(int index, std::string_view text) {
  // SQLITE_TRANSIENT: SQLite copies, so the caller's buffer may die before step().
  check_bind(
      sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
}

inline void statement::bind_static(int index, std::string_view text) {
  check_bind(
      sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_STATIC, SQLITE_UTF8));
}

inline bool statement::step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  fail(rc);
}

inline int statement::step_code() noexcept {
  return sqlite3_step(stmt_);
}

inline void statement::fail(int rc) const {
  throw_sqlite_error(rc, conn_.handle(), operation_);
}

inline std::int64_t statement::column_int64(int column) const noexcept {
  return sqlite3_column_int64(stmt_, column);
}

inline bool statement::column_is_null(int column) const noexcept {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

inline std::string_view statement::column_text(int column) const noexcept {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
  if (text == nullptr) return {};
  return {text, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column))};
}

inline write_transaction::write_transaction(connection& conn, operation_name operation)
    : conn_(conn), operation_(operation) {
  statement begin(conn_, "BEGIN IMMEDIATE", operation_);
  begin.step();
}

inline write_transaction::~write_transaction() {
  // After some errors (disk full, I/O) SQLite has already rolled back: then autocommit is on.
  if (!done_ && sqlite3_get_autocommit(conn_.handle()) == 0) {
    sqlite3_exec(conn_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
  }
}

inline void write_transaction::commit() {
  statement end(conn_, "COMMIT", operation_);
  end.step();
  done_ = true;
}

inline reader_pool::lease reader_pool::acquire() {
  std::unique_lock lock(mutex_);
  returned_.wait(lock, [&] { return !idle_.empty() || open_count_ < max_readers_; });
  if (!idle_.empty()) {
    auto conn = std::move(idle_.back());
    idle_.pop_back();
    return lease(*this, std::move(conn));
  }
  ++open_count_;
  lock.unlock();
  try {
    return lease(*this, std::make_unique<connection>(options_, /*read_only=*/true));
  } catch (...) {
    lock.lock();
    --open_count_;
    returned_.notify_one();
    throw;
  }
}

inline void reader_pool::give_back(std::unique_ptr<connection> conn) noexcept {
  {
    std::lock_guard lock(mutex_);
    idle_.push_back(std::move(conn));
  }
  returned_.notify_one();
}

inline void reader_pool::close() noexcept {
  std::lock_guard lock(mutex_);
  open_count_ -= idle_.size();
  idle_.clear();
}

}  // namespace eventsourced::sqlite_detail
