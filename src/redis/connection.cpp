#include "connection.hpp"

#include <poll.h>
#include <pthread.h>
#include <signal.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <utility>

#include <eventsourced/error.hpp>

namespace eventsourced {
namespace {

[[noreturn]] void bad_uri(const std::string& why) {
  throw invalid_argument_error("eventsourced: invalid Redis URI: " + why);
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// %-decoding of the user info. The message never quotes the text: it may be a password.
std::string percent_decode(std::string_view s, const char* what) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) bad_uri(std::string("bad %-escape in the ") + what);
    const int hi = hex_digit(s[i + 1]);
    const int lo = hex_digit(s[i + 2]);
    if (hi < 0 || lo < 0) bad_uri(std::string("bad %-escape in the ") + what);
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

int parse_number(std::string_view s, int min, int max, const char* what) {
  int value = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || value < min || value > max) {
    bad_uri(std::string(what) + " '" + std::string(s) + "' is not a number from " +
            std::to_string(min) + " to " + std::to_string(max));
  }
  return value;
}

}  // namespace

std::string redis_endpoint::describe() const {
  const bool v6 = host.find(':') != std::string::npos;
  return "redis " + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port) + "/" +
         std::to_string(db);
}

redis_endpoint parse_redis_uri(std::string_view uri) {
  constexpr std::string_view kScheme = "redis://";
  if (uri.starts_with("rediss://")) {
    bad_uri(
        "rediss:// (TLS) is not supported: this build's hiredis (0.14) has no TLS; use redis:// "
        "(through a TLS tunnel if the network needs one)");
  }
  if (!uri.starts_with(kScheme)) bad_uri("it must start with redis://");
  std::string_view rest = uri.substr(kScheme.size());
  if (rest.find_first_of("?#") != std::string_view::npos) {
    bad_uri("query strings and fragments are not supported");
  }
  redis_endpoint ep;
  // The user info ends at the last '@' before the path (a password may hold '@' unescaped).
  const std::size_t slash = rest.find('/');
  const std::string_view authority = rest.substr(0, slash);
  const std::string_view path =
      slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
  std::string_view hostport = authority;
  if (const std::size_t at = authority.rfind('@'); at != std::string_view::npos) {
    const std::string_view info = authority.substr(0, at);
    hostport = authority.substr(at + 1);
    const std::size_t colon = info.find(':');
    ep.user = percent_decode(info.substr(0, colon), "user name");
    if (colon != std::string_view::npos) {
      ep.password = percent_decode(info.substr(colon + 1), "password");
    }
    if (!ep.user.empty() && ep.password.empty()) {
      bad_uri("a user name needs a password (redis://user:password@host)");
    }
  }
  std::string_view port;
  if (hostport.starts_with('[')) {
    const std::size_t close = hostport.find(']');
    if (close == std::string_view::npos) bad_uri("unclosed '[' in the host");
    ep.host = std::string(hostport.substr(1, close - 1));
    const std::string_view after = hostport.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') bad_uri("unexpected text after the IPv6 address");
      port = after.substr(1);
      if (port.empty()) bad_uri("empty port");
    }
  } else {
    const std::size_t colon = hostport.find(':');
    ep.host = std::string(hostport.substr(0, colon));
    if (colon != std::string_view::npos) {
      port = hostport.substr(colon + 1);
      if (port.empty()) bad_uri("empty port");
    }
  }
  if (ep.host.empty()) bad_uri("no host");
  if (ep.host.find_first_of(" /@[]") != std::string::npos) bad_uri("invalid host name");
  if (!port.empty()) ep.port = parse_number(port, 1, 65535, "port");
  if (!path.empty()) ep.db = parse_number(path, 0, 1 << 20, "database index");
  return ep;
}

namespace redis_internal {
namespace {

timeval to_timeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<decltype(tv.tv_sec)>(ms.count() / 1000);
  tv.tv_usec = static_cast<decltype(tv.tv_usec)>((ms.count() % 1000) * 1000);
  return tv;
}

// Writing to a connection the server closed raises SIGPIPE, whose default action ends the
// process. The library must not change the application's signal handling, so (as libpq does)
// SIGPIPE is blocked in the calling thread while hiredis writes, and a SIGPIPE the write raised is
// consumed before it is unblocked.
class sigpipe_guard {
 public:
  sigpipe_guard() noexcept {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_, &previous_);
  }
  ~sigpipe_guard() {
    if (!was_pending_) {
      sigset_t pending;
      sigemptyset(&pending);
      sigpending(&pending);
      if (sigismember(&pending, SIGPIPE) == 1) {
        const timespec zero{0, 0};
        sigtimedwait(&pipe_, nullptr, &zero);
      }
    }
    pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
  }
  sigpipe_guard(const sigpipe_guard&) = delete;
  sigpipe_guard& operator=(const sigpipe_guard&) = delete;

 private:
  sigset_t pipe_;
  sigset_t previous_;
  bool was_pending_ = false;
};

std::vector<const char*> argv_of(const command_args& args, std::vector<std::size_t>& lengths) {
  std::vector<const char*> argv;
  argv.reserve(args.size());
  lengths.clear();
  lengths.reserve(args.size());
  for (const auto& a : args) {
    argv.push_back(a.data());
    lengths.push_back(a.size());
  }
  return argv;
}

}  // namespace

std::string text_of(const redisReply* r) {
  if (r == nullptr) return {};
  if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ||
      r->type == REDIS_REPLY_ERROR) {
    return std::string(r->str, r->len);
  }
  return {};
}

bool is_error(const redisReply* r, std::string_view code) {
  if (r == nullptr || r->type != REDIS_REPLY_ERROR) return false;
  const std::string_view text(r->str, r->len);
  return text.starts_with(code) && (text.size() == code.size() || text[code.size()] == ' ');
}

void throw_reply_error(const redisReply* r, const std::string& doing, const std::string& where) {
  const std::string message = "eventsourced: " + doing + " on " + where +
                              " failed: the server answered '" + text_of(r) + "'";
  for (const char* transient : {"LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN"}) {
    if (is_error(r, transient)) throw engine_unavailable_error(message);
  }
  throw engine_error(message);
}

connection::connection(const redis_endpoint& endpoint, const redis_connection_options& options)
    : where_(endpoint.describe()) {
  context_ = redisConnectWithTimeout(endpoint.host.c_str(), endpoint.port,
                                     to_timeval(options.connect_timeout));
  if (context_ == nullptr) {
    throw engine_unavailable_error("eventsourced: cannot connect to " + where_ + ": out of memory");
  }
  if (context_->err != 0) {
    const std::string why = context_->errstr;
    redisFree(context_);
    context_ = nullptr;
    throw engine_unavailable_error("eventsourced: cannot connect to " + where_ + ": " + why);
  }
  try {
    redisEnableKeepAlive(context_);
    // AUTH and SELECT must not wait longer than the connection timeout either.
    set_timeout(options.connect_timeout);
    if (!endpoint.password.empty()) {
      command_args auth = {"AUTH"};
      if (!endpoint.user.empty()) auth.push_back(endpoint.user);
      auth.push_back(endpoint.password);
      const reply r = call(auth, "authenticating");
      if (r->type == REDIS_REPLY_ERROR) {
        // The reply names no secret (e.g. "WRONGPASS invalid username-password pair").
        throw engine_error(
            "eventsourced: authentication" +
            (endpoint.user.empty() ? std::string() : " as user '" + endpoint.user + "'") + " on " +
            where_ + " was refused: " + text_of(r.get()));
      }
    }
    if (endpoint.db != 0)
      command({"SELECT", std::to_string(endpoint.db)}, "selecting the database");
    set_timeout(options.command_timeout);
  } catch (...) {
    redisFree(context_);
    context_ = nullptr;
    throw;
  }
}

connection::~connection() {
  if (context_ != nullptr) redisFree(context_);
}

void connection::fail_io(const std::string& doing) {
  broken_ = true;
  std::string why =
      context_ != nullptr && context_->err != 0 ? context_->errstr : "connection lost";
  if (context_ != nullptr && context_->err == REDIS_ERR_IO &&
      (errno == EAGAIN || errno == EWOULDBLOCK)) {
    why = "no answer within the timeout";
  }
  if (context_ != nullptr && context_->err == REDIS_ERR_PROTOCOL) {
    throw engine_error("eventsourced: " + doing + " on " + where_ + ": protocol error: " + why);
  }
  throw engine_unavailable_error("eventsourced: " + doing + " on " + where_ + " failed: " + why +
                                 " (retryable)");
}

reply connection::call(const command_args& args, const std::string& doing) {
  if (broken_) fail_io(doing);
  std::vector<std::size_t> lengths;
  auto argv = argv_of(args, lengths);
  const sigpipe_guard guard;
  void* raw =
      redisCommandArgv(context_, static_cast<int>(argv.size()), argv.data(), lengths.data());
  if (raw == nullptr) fail_io(doing);
  return reply(static_cast<redisReply*>(raw));
}

reply connection::command(const command_args& args, const std::string& doing) {
  reply r = call(args, doing);
  if (r->type == REDIS_REPLY_ERROR) throw_reply_error(r.get(), doing, where_);
  return r;
}

std::vector<reply> connection::pipeline(std::span<const command_args> commands,
                                        const std::string& doing) {
  if (broken_) fail_io(doing);
  std::vector<std::size_t> lengths;
  const sigpipe_guard guard;
  for (const auto& args : commands) {
    auto argv = argv_of(args, lengths);
    if (redisAppendCommandArgv(context_, static_cast<int>(argv.size()), argv.data(),
                               lengths.data()) != REDIS_OK) {
      fail_io(doing);
    }
  }
  std::vector<reply> replies;
  replies.reserve(commands.size());
  for (std::size_t i = 0; i < commands.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(context_, &raw) != REDIS_OK || raw == nullptr) fail_io(doing);
    replies.emplace_back(static_cast<redisReply*>(raw));
  }
  return replies;
}

void connection::send(const command_args& args, const std::string& doing) {
  if (broken_) fail_io(doing);
  std::vector<std::size_t> lengths;
  auto argv = argv_of(args, lengths);
  if (redisAppendCommandArgv(context_, static_cast<int>(argv.size()), argv.data(),
                             lengths.data()) != REDIS_OK) {
    fail_io(doing);
  }
  const sigpipe_guard guard;
  int done = 0;
  while (done == 0) {
    if (redisBufferWrite(context_, &done) != REDIS_OK) fail_io(doing);
  }
}

reply connection::next_reply(std::chrono::milliseconds timeout, const std::string& doing) {
  if (broken_) fail_io(doing);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    void* raw = nullptr;
    if (redisGetReplyFromReader(context_, &raw) != REDIS_OK) fail_io(doing);
    if (raw != nullptr) return reply(static_cast<redisReply*>(raw));
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return nullptr;
    pollfd p{context_->fd, POLLIN, 0};
    const int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n < 0 && errno != EINTR) fail_io(doing);
    if (n > 0 && redisBufferRead(context_) != REDIS_OK) fail_io(doing);
  }
}

void connection::set_timeout(std::chrono::milliseconds timeout) {
  redisSetTimeout(context_, to_timeval(timeout));
}

bool connection::closed_by_server() const noexcept {
  if (broken_ || context_ == nullptr) return true;
  pollfd p{context_->fd, POLLIN, 0};
  if (::poll(&p, 1, 0) <= 0) return false;
  // Readable while idle: EOF, or bytes nobody asked for; either way not to be reused.
  return true;
}

pool::pool(redis_connection_options options)
    : options_(std::move(options)),
      endpoint_(parse_redis_uri(options_.uri)),
      where_(endpoint_.describe()) {
  if (options_.connect_timeout.count() <= 0 || options_.command_timeout.count() <= 0) {
    throw invalid_argument_error(
        "eventsourced: redis_connection_options timeouts must be positive");
  }
  if (options_.pool_size < 1) {
    throw invalid_argument_error("eventsourced: redis_connection_options.pool_size must be >= 1");
  }
}

pool::lease pool::acquire() {
  {
    std::lock_guard lock(mutex_);
    if (closed_) throw store_closed_error("eventsourced: closed (" + where_ + ")");
    while (!idle_.empty()) {
      std::unique_ptr<connection> c = std::move(idle_.back());
      idle_.pop_back();
      // A connection the server closed meanwhile (a restart) is dropped here rather than failing
      // the caller's command.
      if (!c->closed_by_server()) return lease(*this, std::move(c));
    }
  }
  return lease(*this, connect_dedicated());
}

std::unique_ptr<connection> pool::connect_dedicated() {
  {
    std::lock_guard lock(mutex_);
    if (closed_) throw store_closed_error("eventsourced: closed (" + where_ + ")");
  }
  return std::make_unique<connection>(endpoint_, options_);
}

void pool::give_back(std::unique_ptr<connection> c) noexcept {
  std::unique_ptr<connection> drop;
  std::lock_guard lock(mutex_);
  if (c->broken() || closed_ || idle_.size() >= options_.pool_size) {
    drop = std::move(c);  // destroyed after the lock is released (declared before it)
    return;
  }
  idle_.push_back(std::move(c));
}

void pool::close() noexcept {
  std::vector<std::unique_ptr<connection>> drop;
  std::lock_guard lock(mutex_);
  closed_ = true;
  drop.swap(idle_);
}

}  // namespace redis_internal
}  // namespace eventsourced
