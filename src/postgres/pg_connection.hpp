// Private to the PostgreSQL engine: a libpq connection with lazily prepared statements, the
// classification of libpq failures, and a pool of connections.
#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace eventsourced::postgres_detail {

// How a failed libpq call may be handled.
enum class failure_kind {
  connection,  // the connection is unusable (lost, refused, server shutting down): reconnect
  transient,   // deadlock or serialization failure: the transaction was rolled back, retry it
  other,       // an error of this statement (constraint, bad data, permission, ...)
};

// A libpq failure, before the engine turns it into one of the library's errors. The message is
// libpq's (never contains the password) prefixed by what was being done.
class pg_failure : public std::runtime_error {
 public:
  pg_failure(failure_kind kind, std::string sqlstate, std::string constraint,
             const std::string& what)
      : std::runtime_error(what),
        kind_(kind),
        sqlstate_(std::move(sqlstate)),
        constraint_(std::move(constraint)) {}
  failure_kind kind() const noexcept { return kind_; }
  const std::string& sqlstate() const noexcept { return sqlstate_; }
  const std::string& constraint() const noexcept { return constraint_; }

 private:
  failure_kind kind_;
  std::string sqlstate_;
  std::string constraint_;
};

struct result_deleter {
  void operator()(PGresult* r) const noexcept { PQclear(r); }
};
using result = std::unique_ptr<PGresult, result_deleter>;

// A statement prepared on first use on each connection. `name` is unique per engine; `sql` uses
// $1.. placeholders with explicit casts, so no parameter types are passed.
struct statement {
  std::string name;
  std::string sql;
  int param_count = 0;
};

// Text parameters for one execution: nullopt is SQL NULL.
using params = std::vector<std::optional<std::string>>;

class connection {
 public:
  // Connects (blocking, bounded by the conninfo's connect_timeout). Throws pg_failure.
  explicit connection(const std::string& conninfo);
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  bool ok() const noexcept { return PQstatus(conn_) == CONNECTION_OK; }
  // "host:port/dbname" for messages.
  std::string describe() const;
  PGconn* handle() const noexcept { return conn_; }

  // Runs a statement without parameters (BEGIN, COMMIT, DDL). Throws pg_failure.
  result exec(const std::string& sql, std::string_view doing);
  // Runs a prepared statement, preparing it on first use. Throws pg_failure.
  result exec(const statement& s, const params& values, std::string_view doing);
  // Runs SQL with parameters, unprepared (queries whose text varies). Throws pg_failure.
  result exec_params(const std::string& sql, const params& values, std::string_view doing);

  // Makes the next statement run by exec() (either form) or exec_then_commit() open a transaction
  // first, in the same round trip (libpq pipeline mode).
  void begin_with_next_statement() noexcept { begin_pending_ = true; }
  // Whether BEGIN is still pending (no statement ran since begin_with_next_statement()).
  bool begin_pending() const noexcept { return begin_pending_; }
  // Runs a prepared statement and then COMMIT in one round trip (pipeline mode). Returns the
  // statement's result. Throws pg_failure when either fails (when the statement fails, COMMIT is
  // skipped and the transaction stays open and failed: roll it back).
  result exec_then_commit(const statement& s, const params& values, std::string_view doing);

 private:
  // Sends the pipeline [BEGIN if pending] + s [+ COMMIT] and returns s's result (checked), after
  // checking BEGIN's and COMMIT's.
  result pipeline(const statement* s, const std::string* sql, const params& values, bool commit,
                  std::string_view doing);
  void prepare(const statement& s, std::string_view doing);

  // Checks r; throws pg_failure for anything but the expected statuses.
  result check(PGresult* r, std::string_view doing);

  PGconn* conn_ = nullptr;
  std::unordered_set<std::string> prepared_;
  bool begin_pending_ = false;
};

// Throws pg_failure(connection) describing a connection that could not be made.
[[noreturn]] void throw_connection_failure(PGconn* conn, std::string_view doing);

// The value of row `row`, column `column` as int64 (the column must not be NULL).
std::int64_t get_int64(const PGresult* r, int row, int column);
// The text of a column, or nullopt for NULL.
std::optional<std::string_view> get_text(const PGresult* r, int row, int column);

// Up to max_size connections, opened on demand, handed out one caller at a time.
class pool {
 public:
  pool(std::string conninfo, std::size_t max_size, std::chrono::milliseconds wait_timeout);
  ~pool();

  class lease {
   public:
    lease(pool& owner, std::unique_ptr<connection> c) : owner_(&owner), conn_(std::move(c)) {}
    lease(lease&& other) noexcept = default;
    lease& operator=(lease&&) = delete;
    ~lease() {
      if (conn_) owner_->give_back(std::move(conn_), broken_);
    }
    connection& operator*() const { return *conn_; }
    connection* operator->() const { return conn_.get(); }
    // The connection is closed instead of going back to the pool.
    void discard() noexcept { broken_ = true; }

   private:
    pool* owner_;
    std::unique_ptr<connection> conn_;
    bool broken_ = false;
  };

  // A connection: an idle one, a new one while fewer than max_size exist, or the next one given
  // back (waiting at most wait_timeout, then pg_failure(connection)). Throws pg_failure when a
  // new connection cannot be made.
  lease acquire();
  // Closes idle connections; those leased are closed when given back.
  void close();

 private:
  void give_back(std::unique_ptr<connection> c, bool broken) noexcept;

  const std::string conninfo_;
  const std::size_t max_size_;
  const std::chrono::milliseconds wait_timeout_;
  std::mutex mutex_;
  std::condition_variable available_;
  std::vector<std::unique_ptr<connection>> idle_;  // GUARDED_BY(mutex_)
  std::size_t open_ = 0;                           // GUARDED_BY(mutex_): idle + leased
  bool closed_ = false;                            // GUARDED_BY(mutex_)
};

}  // namespace eventsourced::postgres_detail
