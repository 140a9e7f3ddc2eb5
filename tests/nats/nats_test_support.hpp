// What the NATS tests share: unique namespaces, raw nats.c helpers to inspect and delete streams,
// and a private nats-server process the fault tests stop and restart.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nats/nats.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <eventsourced/nats/jetstream_bus.hpp>

#include "support/temporary_directory.hpp"

namespace eventsourced::nats_testing {

// A namespace (and stream name) no other test, nor a parallel ctest process, uses.
inline std::string unique_namespace(const std::string& prefix = "es_test") {
  static std::atomic<int> counter{0};
  static const auto salt = std::random_device{}();
  return prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(salt % 100000) + "_" +
         std::to_string(++counter);
}

// A raw nats.c connection with a JetStream context, for looking at what the buses did.
class raw_connection {
 public:
  explicit raw_connection(const std::string& url) {
    if (natsConnection_ConnectTo(&nc_, url.c_str()) != NATS_OK) {
      throw std::runtime_error("raw connection to " + url + " failed");
    }
    if (natsConnection_JetStream(&js_, nc_, nullptr) != NATS_OK) {
      throw std::runtime_error("raw JetStream context failed");
    }
  }
  ~raw_connection() {
    jsCtx_Destroy(js_);
    natsConnection_Destroy(nc_);
  }
  raw_connection(const raw_connection&) = delete;
  raw_connection& operator=(const raw_connection&) = delete;

  natsConnection* get() const { return nc_; }
  jsCtx* js() const { return js_; }

  // Messages the stream holds; -1 when it does not exist.
  std::int64_t stream_messages(const std::string& stream) const {
    jsStreamInfo* info = nullptr;
    if (js_GetStreamInfo(&info, js_, stream.c_str(), nullptr, nullptr) != NATS_OK) return -1;
    const auto n = static_cast<std::int64_t>(info->State.Msgs);
    jsStreamInfo_Destroy(info);
    return n;
  }
  bool consumer_exists(const std::string& stream, const std::string& consumer) const {
    jsConsumerInfo* info = nullptr;
    if (js_GetConsumerInfo(&info, js_, stream.c_str(), consumer.c_str(), nullptr, nullptr) !=
        NATS_OK) {
      return false;
    }
    jsConsumerInfo_Destroy(info);
    return true;
  }
  void delete_stream(const std::string& stream) const {
    js_DeleteStream(js_, stream.c_str(), nullptr, nullptr);
  }

 private:
  natsConnection* nc_ = nullptr;
  jsCtx* js_ = nullptr;
};

// Deletes a test stream when it goes out of scope.
class stream_cleanup {
 public:
  stream_cleanup(std::string url, std::string stream)
      : url_(std::move(url)), stream_(std::move(stream)) {}
  ~stream_cleanup() {
    try {
      raw_connection(url_).delete_stream(stream_);
    } catch (...) {
      // The server is gone: nothing to clean.
    }
  }
  stream_cleanup(const stream_cleanup&) = delete;
  stream_cleanup& operator=(const stream_cleanup&) = delete;

 private:
  std::string url_;
  std::string stream_;
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

// GET http://127.0.0.1:port/path; true for a 200 answer.
inline bool http_ok(int port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  bool ok = false;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string request = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (::write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
      char buffer[64] = {};
      const ssize_t n = ::read(fd, buffer, sizeof buffer - 1);
      ok = n > 12 &&
           std::string(buffer, static_cast<std::size_t>(n)).find(" 200 ") != std::string::npos;
    }
  }
  ::close(fd);
  return ok;
}

// A nats-server with JetStream of the test's own: own ports, own store directory. stop() and
// start() again keep the ports and the store, as a restarted server would.
class private_nats_server {
 public:
  // extra: more command-line arguments (e.g. {"--user", "u", "--pass", "p"}).
  explicit private_nats_server(std::vector<std::string> extra = {})
      : port_(free_port()), monitor_port_(free_port()), extra_(std::move(extra)) {
    // A port found free may be taken by another process before the server binds it (parallel
    // ctest runs): try a few fresh pairs before giving up.
    for (int attempt = 1;; ++attempt) {
      try {
        start();
        return;
      } catch (const std::runtime_error&) {
        if (attempt == 5) throw;
        port_ = free_port();
        monitor_port_ = free_port();
      }
    }
  }
  ~private_nats_server() { stop(); }
  private_nats_server(const private_nats_server&) = delete;
  private_nats_server& operator=(const private_nats_server&) = delete;

  std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }

  // Starts the server and waits (up to 30 s) until JetStream is ready. Throws when it is not.
  void start() {
    std::vector<std::string> args = {"nats-server", "-js",
                                     "-a",          "127.0.0.1",
                                     "-p",          std::to_string(port_),
                                     "-m",          std::to_string(monitor_port_),
                                     "-sd",         store_.path().string()};
    args.insert(args.end(), extra_.begin(), extra_.end());
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
      ::execvp("nats-server", argv.data());
      ::execv("/usr/sbin/nats-server", argv.data());
      ::_exit(127);
    }
    pid_ = pid;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!http_ok(monitor_port_, "/healthz?js-enabled=true")) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("nats-server exited while starting");
      }
      if (std::chrono::steady_clock::now() > deadline) {
        stop();
        throw std::runtime_error("nats-server not ready after 30 s");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  // Stops the server (SIGTERM: a clean shutdown, JetStream flushes its store) and reaps it;
  // SIGKILL after 30 s.
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) != pid_) {
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    pid_ = -1;
  }

 private:
  eventsourced::testing::temporary_directory store_;
  int port_;
  int monitor_port_;
  std::vector<std::string> extra_;
  pid_t pid_ = -1;
};

}  // namespace eventsourced::nats_testing
