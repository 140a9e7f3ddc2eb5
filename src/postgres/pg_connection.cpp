#include "postgres/pg_connection.hpp"

#include <charconv>
#include <utility>

namespace eventsourced::postgres_detail {
namespace {

// SQLSTATEs after which the connection is not worth keeping: connection exceptions (class 08),
// the server shutting down or crashing (57P01-57P03), too many connections (53300).
bool is_connection_state(std::string_view state) {
  return state.starts_with("08") || state == "57P01" || state == "57P02" || state == "57P03" ||
         state == "53300";
}

// Deadlock and serialization failure: the transaction was rolled back, running it again may work.
bool is_transient_state(std::string_view state) {
  return state == "40001" || state == "40P01";
}

std::string trimmed(const char* message) {
  std::string text = message == nullptr ? "" : message;
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text.empty() ? "no message from libpq" : text;
}

}  // namespace

[[noreturn]] void throw_connection_failure(PGconn* conn, std::string_view doing) {
  throw pg_failure(failure_kind::connection, "", "",
                   std::string(doing) + ": " + trimmed(conn ? PQerrorMessage(conn) : nullptr));
}

connection::connection(const std::string& conninfo) {
  conn_ = PQconnectdb(conninfo.c_str());
  if (conn_ == nullptr) {
    throw pg_failure(failure_kind::connection, "", "", "connect: libpq is out of memory");
  }
  if (PQstatus(conn_) != CONNECTION_OK) {
    // libpq's message names host and port and what failed (refused, authentication, ...),
    // never the password.
    std::string message = trimmed(PQerrorMessage(conn_));
    PQfinish(conn_);
    conn_ = nullptr;
    // A refused password or a missing database is not going to change on a retry.
    const bool refused = message.find("authentication failed") != std::string::npos ||
                         message.find("does not exist") != std::string::npos ||
                         message.find("no password supplied") != std::string::npos ||
                         message.find("no pg_hba.conf entry") != std::string::npos;
    throw pg_failure(refused ? failure_kind::other : failure_kind::connection, "", "",
                     "connect: " + message);
  }
  // Notices (e.g. "relation already exists, skipping") are not errors; keep them off stderr.
  PQsetNoticeProcessor(
      conn_, [](void*, const char*) {}, nullptr);
}

connection::~connection() {
  if (conn_ != nullptr) PQfinish(conn_);
}

std::string connection::describe() const {
  const char* host = PQhost(conn_);
  const char* port = PQport(conn_);
  const char* db = PQdb(conn_);
  return std::string(host ? host : "?") + ":" + (port ? port : "?") + "/" + (db ? db : "?");
}

result connection::check(PGresult* raw, std::string_view doing) {
  result r(raw);
  const ExecStatusType status = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return r;
  if (status == PGRES_PIPELINE_ABORTED) {
    throw pg_failure(failure_kind::other, "", "",
                     std::string(doing) + ": skipped after an earlier statement failed");
  }
  const char* state_field = r ? PQresultErrorField(r.get(), PG_DIAG_SQLSTATE) : nullptr;
  const char* constraint_field = r ? PQresultErrorField(r.get(), PG_DIAG_CONSTRAINT_NAME) : nullptr;
  std::string state = state_field ? state_field : "";
  std::string constraint = constraint_field ? constraint_field : "";
  std::string message = trimmed(r ? PQresultErrorMessage(r.get()) : PQerrorMessage(conn_));
  failure_kind kind = failure_kind::other;
  if (PQstatus(conn_) != CONNECTION_OK || is_connection_state(state) || (!r && state.empty())) {
    kind = failure_kind::connection;
  } else if (is_transient_state(state)) {
    kind = failure_kind::transient;
  }
  std::string what = std::string(doing) + ": " + message;
  if (!state.empty()) what += " (SQLSTATE " + state + ")";
  throw pg_failure(kind, std::move(state), std::move(constraint), what);
}

result connection::exec(const std::string& sql, std::string_view doing) {
  return check(PQexec(conn_, sql.c_str()), doing);
}

namespace {

std::vector<const char*> pointers(const params& values) {
  std::vector<const char*> out;
  out.reserve(values.size());
  for (const auto& v : values) out.push_back(v ? v->c_str() : nullptr);
  return out;
}

}  // namespace

void connection::prepare(const statement& s, std::string_view doing) {
  if (prepared_.contains(s.name)) return;
  check(PQprepare(conn_, s.name.c_str(), s.sql.c_str(), s.param_count, nullptr), doing);
  prepared_.insert(s.name);
}

result connection::exec(const statement& s, const params& values, std::string_view doing) {
  prepare(s, doing);
  if (begin_pending_) return pipeline(&s, nullptr, values, false, doing);
  const auto p = pointers(values);
  return check(PQexecPrepared(conn_, s.name.c_str(), static_cast<int>(p.size()), p.data(), nullptr,
                              nullptr, 0),
               doing);
}

result connection::exec_params(const std::string& sql, const params& values,
                               std::string_view doing) {
  if (begin_pending_) return pipeline(nullptr, &sql, values, false, doing);
  const auto p = pointers(values);
  return check(PQexecParams(conn_, sql.c_str(), static_cast<int>(p.size()), nullptr, p.data(),
                            nullptr, nullptr, 0),
               doing);
}

result connection::exec_then_commit(const statement& s, const params& values,
                                    std::string_view doing) {
  prepare(s, doing);
  return pipeline(&s, nullptr, values, true, doing);
}

result connection::pipeline(const statement* s, const std::string* sql, const params& values,
                            bool commit, std::string_view doing) {
  const bool begin = begin_pending_;
  begin_pending_ = false;
  if (PQenterPipelineMode(conn_) != 1) throw_connection_failure(conn_, doing);
  const auto p = pointers(values);
  const int n = static_cast<int>(p.size());
  bool sent = true;
  if (begin)
    sent = sent && PQsendQueryParams(conn_, "BEGIN", 0, nullptr, nullptr, nullptr, nullptr, 0);
  if (s != nullptr) {
    sent = sent && PQsendQueryPrepared(conn_, s->name.c_str(), n, p.data(), nullptr, nullptr, 0);
  } else {
    sent =
        sent && PQsendQueryParams(conn_, sql->c_str(), n, nullptr, p.data(), nullptr, nullptr, 0);
  }
  if (commit)
    sent = sent && PQsendQueryParams(conn_, "COMMIT", 0, nullptr, nullptr, nullptr, nullptr, 0);
  sent = sent && PQpipelineSync(conn_);
  if (!sent) throw_connection_failure(conn_, doing);
  // One result (then NULL) per query, then the sync. A query skipped after an earlier failure
  // gives PGRES_PIPELINE_ABORTED. A lost connection ends the results early.
  const int queries = (begin ? 1 : 0) + 1 + (commit ? 1 : 0);
  std::vector<result> results(static_cast<std::size_t>(queries));
  int index = 0;
  for (int guard = 0; guard < 64; ++guard) {
    PGresult* raw = PQgetResult(conn_);
    if (raw == nullptr) {
      if (PQstatus(conn_) != CONNECTION_OK) break;
      ++index;
      continue;
    }
    if (PQresultStatus(raw) == PGRES_PIPELINE_SYNC) {
      PQclear(raw);
      break;
    }
    if (index < queries && !results[static_cast<std::size_t>(index)]) {
      results[static_cast<std::size_t>(index)].reset(raw);
    } else {
      PQclear(raw);
    }
  }
  if (PQstatus(conn_) == CONNECTION_OK) PQexitPipelineMode(conn_);
  std::size_t i = 0;
  if (begin) check(results[i++].release(), doing);
  result out = check(results[i++].release(), doing);
  if (commit) check(results[i].release(), doing);
  return out;
}

std::int64_t get_int64(const PGresult* r, int row, int column) {
  const char* text = PQgetvalue(r, row, column);
  const int length = PQgetlength(r, row, column);
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text, text + length, value);
  if (ec != std::errc() || end != text + length) {
    throw pg_failure(failure_kind::other, "", "",
                     "unexpected non-integer value from the server: '" +
                         std::string(text, static_cast<std::size_t>(length)) + "'");
  }
  return value;
}

std::optional<std::string_view> get_text(const PGresult* r, int row, int column) {
  if (PQgetisnull(r, row, column)) return std::nullopt;
  return std::string_view(PQgetvalue(r, row, column),
                          static_cast<std::size_t>(PQgetlength(r, row, column)));
}

pool::pool(std::string conninfo, std::size_t max_size, std::chrono::milliseconds wait_timeout)
    : conninfo_(std::move(conninfo)), max_size_(max_size), wait_timeout_(wait_timeout) {}

pool::~pool() {
  close();
}

pool::lease pool::acquire() {
  std::unique_lock lock(mutex_);
  const auto deadline = std::chrono::steady_clock::now() + wait_timeout_;
  while (true) {
    if (closed_) throw pg_failure(failure_kind::other, "", "", "the connection pool is closed");
    if (!idle_.empty()) {
      auto c = std::move(idle_.back());
      idle_.pop_back();
      return lease(*this, std::move(c));
    }
    if (open_ < max_size_) {
      ++open_;
      lock.unlock();
      try {
        return lease(*this, std::make_unique<connection>(conninfo_));
      } catch (...) {
        lock.lock();
        --open_;
        available_.notify_one();
        throw;
      }
    }
    if (available_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() &&
        open_ >= max_size_) {
      throw pg_failure(failure_kind::connection, "", "",
                       "no pooled connection became free within " +
                           std::to_string(wait_timeout_.count()) + " ms (pool_size " +
                           std::to_string(max_size_) + ")");
    }
  }
}

void pool::give_back(std::unique_ptr<connection> c, bool broken) noexcept {
  std::unique_ptr<connection> to_close;
  {
    std::lock_guard lock(mutex_);
    // A connection left inside a transaction (an error path that could not roll back) is not
    // reusable either.
    if (broken || closed_ || !c->ok() || PQtransactionStatus(c->handle()) != PQTRANS_IDLE) {
      to_close = std::move(c);
      --open_;
    } else {
      idle_.push_back(std::move(c));
    }
  }
  available_.notify_one();
  // to_close is finished here, outside the lock.
}

void pool::close() {
  std::vector<std::unique_ptr<connection>> to_close;
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
    open_ -= idle_.size();
    to_close.swap(idle_);
  }
  available_.notify_all();
}

}  // namespace eventsourced::postgres_detail
