// What the Redis tests share: unique namespaces, a raw hiredis client to look at (and clean up)
// what the library did, and a private redis-server process the fault tests stop and restart.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <eventsourced/redis/connection_options.hpp>

namespace eventsourced::redis_testing {

inline constexpr const char* kRedisUri = "EVENTSOURCED_TEST_REDIS_URI";

// A namespace (key prefix) no other test, nor a parallel ctest process, uses.
inline std::string unique_namespace(const std::string& prefix = "es_test") {
  static std::atomic<int> counter{0};
  static const auto salt = std::random_device{}();
  return prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(salt % 100000) + "_" +
         std::to_string(++counter);
}

struct reply_deleter {
  void operator()(redisReply* r) const noexcept {
    if (r != nullptr) freeReplyObject(r);
  }
};
using reply = std::unique_ptr<redisReply, reply_deleter>;

// A plain hiredis connection, for looking at what the library did and for playing other
// clients (a consumer that dies without acknowledging).
class raw_client {
 public:
  explicit raw_client(const std::string& uri) {
    const redis_endpoint ep = parse_redis_uri(uri);
    timeval tv{5, 0};
    c_ = redisConnectWithTimeout(ep.host.c_str(), ep.port, tv);
    if (c_ == nullptr || c_->err != 0) throw std::runtime_error("raw connection failed");
    redisSetTimeout(c_, tv);
    if (!ep.password.empty()) {
      if (ep.user.empty()) {
        run({"AUTH", ep.password});
      } else {
        run({"AUTH", ep.user, ep.password});
      }
    }
    if (ep.db != 0) run({"SELECT", std::to_string(ep.db)});
  }
  ~raw_client() {
    if (c_ != nullptr) redisFree(c_);
  }
  raw_client(const raw_client&) = delete;
  raw_client& operator=(const raw_client&) = delete;

  reply run(const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lengths;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lengths.push_back(a.size());
    }
    auto* r = static_cast<redisReply*>(
        redisCommandArgv(c_, static_cast<int>(argv.size()), argv.data(), lengths.data()));
    if (r == nullptr) throw std::runtime_error("raw command failed: " + args.front());
    return reply(r);
  }
  long long integer(const std::vector<std::string>& args) { return run(args)->integer; }
  std::string text(const std::vector<std::string>& args) {
    const reply r = run(args);
    return r->str == nullptr ? std::string() : std::string(r->str, r->len);
  }
  // Deletes every key under `<ns>:`.
  void delete_namespace(const std::string& ns) {
    std::string cursor = "0";
    do {
      const reply r = run({"SCAN", cursor, "MATCH", ns + ":*", "COUNT", "1000"});
      cursor = std::string(r->element[0]->str, r->element[0]->len);
      for (std::size_t i = 0; i < r->element[1]->elements; ++i) {
        run({"DEL", std::string(r->element[1]->element[i]->str, r->element[1]->element[i]->len)});
      }
    } while (cursor != "0");
  }

 private:
  redisContext* c_ = nullptr;
};

// Deletes a test namespace's keys when it goes out of scope.
class namespace_cleanup {
 public:
  namespace_cleanup(std::string uri, std::string ns) : uri_(std::move(uri)), ns_(std::move(ns)) {}
  ~namespace_cleanup() {
    try {
      raw_client(uri_).delete_namespace(ns_);
    } catch (...) {
      // The server is gone: nothing to clean.
    }
  }
  namespace_cleanup(const namespace_cleanup&) = delete;
  namespace_cleanup& operator=(const namespace_cleanup&) = delete;

 private:
  std::string uri_;
  std::string ns_;
};

// A TCP port nobody listens on at the moment.
inline int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    if (fd >= 0) ::close(fd);
    throw std::runtime_error("no free port");
  }
  const int port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

// A redis-server of the test's own, without persistence or password: stop() kills it (SIGKILL,
// as a crash would), start() again brings it back, empty, on the same port.
class private_redis_server {
 public:
  private_redis_server() : port_(free_port()) {
    // A port found free may be taken meanwhile (parallel ctest runs): try a few fresh ones.
    for (int attempt = 1;; ++attempt) {
      try {
        start();
        return;
      } catch (const std::runtime_error&) {
        if (attempt == 5) throw;
        port_ = free_port();
      }
    }
  }
  ~private_redis_server() { stop(); }
  private_redis_server(const private_redis_server&) = delete;
  private_redis_server& operator=(const private_redis_server&) = delete;

  std::string uri() const { return "redis://127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }

  // Starts the server and waits (up to 30 s) until it answers PING. Throws when it does not.
  void start() {
    std::vector<std::string> args = {
        "redis-server", "--port", std::to_string(port_), "--bind", "127.0.0.1", "--save", "",
        "--appendonly", "no",     "--daemonize",         "no"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
      const int null = ::open("/dev/null", O_RDWR);
      ::dup2(null, 0);
      ::dup2(null, 1);
      ::dup2(null, 2);
      ::execvp("redis-server", argv.data());
      ::execv("/usr/bin/redis-server", argv.data());
      ::_exit(127);
    }
    pid_ = pid;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!answers_ping()) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("redis-server exited while starting");
      }
      if (std::chrono::steady_clock::now() > deadline) {
        stop();
        throw std::runtime_error("redis-server not ready after 30 s");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  // Kills the server (SIGKILL) and reaps it.
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

 private:
  bool answers_ping() const {
    timeval tv{1, 0};
    redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, tv);
    bool ok = false;
    if (c != nullptr && c->err == 0) {
      auto* r = static_cast<redisReply*>(redisCommand(c, "PING"));
      ok = r != nullptr && r->type == REDIS_REPLY_STATUS;
      if (r != nullptr) freeReplyObject(r);
    }
    if (c != nullptr) redisFree(c);
    return ok;
  }

  int port_;
  pid_t pid_ = -1;
};

}  // namespace eventsourced::redis_testing
