// Private: hiredis connections and the pool every eventsourced::redis component borrows from.
//
// Every command goes out in argv form (binary safe: user strings are never formatted into a
// command). Failures become the library's errors: a lost or unreachable server
// engine_unavailable_error (retryable), an error reply engine_error (or engine_unavailable_error
// for the server's transient states: LOADING, BUSY, MASTERDOWN, TRYAGAIN), a refused AUTH
// engine_error. Messages name the server by endpoint.describe(), never with the password.
#pragma once

#include <hiredis/hiredis.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <eventsourced/redis/connection_options.hpp>

namespace eventsourced::redis_internal {

struct reply_deleter {
  void operator()(redisReply* r) const noexcept {
    if (r != nullptr) freeReplyObject(r);
  }
};
using reply = std::unique_ptr<redisReply, reply_deleter>;

using command_args = std::vector<std::string>;

// The reply's text (string, status or error), empty for other types.
std::string text_of(const redisReply* r);
// True for an error reply starting with code (e.g. "BUSYGROUP", "NOGROUP", "NOSCRIPT").
bool is_error(const redisReply* r, std::string_view code);
// Throws the error an error reply stands for.
[[noreturn]] void throw_reply_error(const redisReply* r, const std::string& doing,
                                    const std::string& where);

// One hiredis connection, authenticated and on the right database. Not thread safe: one user
// at a time (the pool hands it out).
class connection {
 public:
  // Connects, AUTHs, SELECTs. Throws engine_unavailable_error when the server cannot be reached
  // or does not answer in time, engine_error when it refuses the credentials or the database.
  connection(const redis_endpoint& endpoint, const redis_connection_options& options);
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  // Sends one command and returns its reply, an error reply included. Throws
  // engine_unavailable_error on an I/O failure or a timeout (the connection is then broken()).
  reply call(const command_args& args, const std::string& doing);
  // call(), throwing for an error reply.
  reply command(const command_args& args, const std::string& doing);
  // Sends every command, then reads every reply: one round trip. Replies may be error replies.
  // Throws like call().
  std::vector<reply> pipeline(std::span<const command_args> commands, const std::string& doing);
  // Sends a command without waiting for its reply (Pub/Sub subscription commands).
  void send(const command_args& args, const std::string& doing);
  // The next reply (a Pub/Sub message), or nullptr when none arrived within timeout. Throws like
  // call().
  reply next_reply(std::chrono::milliseconds timeout, const std::string& doing);

  // The read/write timeout of later commands.
  void set_timeout(std::chrono::milliseconds timeout);
  // True once an I/O failure made the connection unusable.
  bool broken() const noexcept { return broken_; }
  // True when the server closed the connection while it sat idle (checked without blocking).
  bool closed_by_server() const noexcept;
  const std::string& where() const noexcept { return where_; }

 private:
  [[noreturn]] void fail_io(const std::string& doing);

  redisContext* context_ = nullptr;
  std::string where_;
  bool broken_ = false;
};

// Connections to one server, shared by the threads of one bus or cache.
class pool {
 public:
  // Parses options.uri (throws invalid_argument_error) and checks the options; connects lazily.
  explicit pool(redis_connection_options options);
  pool(const pool&) = delete;
  pool& operator=(const pool&) = delete;

  // A connection borrowed from the pool, given back when the lease ends (dropped if broken).
  class lease {
   public:
    lease(pool& owner, std::unique_ptr<connection> c) : owner_(&owner), c_(std::move(c)) {}
    lease(lease&& other) noexcept = default;
    lease& operator=(lease&&) = delete;
    ~lease() {
      if (c_) owner_->give_back(std::move(c_));
    }
    connection* operator->() const noexcept { return c_.get(); }
    connection& operator*() const noexcept { return *c_; }

   private:
    pool* owner_;
    std::unique_ptr<connection> c_;
  };

  // An idle connection, or a new one. Throws store_closed_error after close(), and what
  // connection's constructor throws.
  lease acquire();
  // A new connection owned by the caller (for blocking reads). Throws like acquire().
  std::unique_ptr<connection> connect_dedicated();
  // Drops the idle connections; later acquire() calls throw store_closed_error. Idempotent.
  void close() noexcept;

  const redis_endpoint& endpoint() const noexcept { return endpoint_; }
  const redis_connection_options& options() const noexcept { return options_; }
  const std::string& where() const noexcept { return where_; }

 private:
  void give_back(std::unique_ptr<connection> c) noexcept;

  const redis_connection_options options_;
  const redis_endpoint endpoint_;
  const std::string where_;
  std::mutex mutex_;
  bool closed_ = false;                            // GUARDED_BY(mutex_)
  std::vector<std::unique_ptr<connection>> idle_;  // GUARDED_BY(mutex_)
};

}  // namespace eventsourced::redis_internal
