// eventsourced::redis against plain clients doing the same publishing.
//
//   relay_into_redis_streams_vs_raw_xadd
//       Ours: an outbox_relay over a SQLite store holding N events (about 300 bytes of JSON
//       each) publishing them to a redis_streams_bus, from position 0 to the last one: read the
//       log in batches of 256 (relay_options' default), serialize them, publish each batch with
//       redis_streams_bus::publish(span) — XADDs pipelined on one connection, one round trip per
//       batch — and save the checkpoint after each batch.
//       Baseline: hiredis publishing the same N entries — same key, same fields (type, id,
//       event), same payloads serialized beforehand, outside the timing — in the same mode:
//       batches of 256 XADDs appended with redisAppendCommandArgv, then 256 redisGetReply. Both
//       must know a batch is stored before going on (the relay moves its checkpoint past it).
//       Each run writes a fresh stream; the sides alternate, 3 runs each. Rate: events/second.
//   batch_publish_vs_raw_xadd
//       Where the relay's time goes: redis_streams_bus::publish(span) alone — serializing each
//       event, building the XADDs, one pipelined round trip per batch of 256 — against the
//       hiredis baseline above (payloads serialized beforehand), without SQLite or checkpoints.
//   relay_into_redis_streams_vs_redis_benchmark_xadd
//       The same "ours" figure against redis-benchmark (the server's own load generator, C, one
//       connection, -P 256 pipelining) sending N XADDs of the same size to one stream. It needs
//       no serialization and reuses one payload: an upper bound rather than a like-for-like
//       peer. Skipped (no RESULT line) when redis-benchmark is not installed.
//
// Each comparison ends with
//   RESULT name=<name> ours=<per second> baseline=<per second> ratio=<ours/baseline>
//
// Usage: eventsourced_redis_bench [name-substring...]   (no argument: every comparison)
// Environment: EVENTSOURCED_TEST_REDIS_URI (the server; without it the benchmark prints
// "skipped: ..." and exits 0), EVENTSOURCED_REDIS_BENCH_EVENTS (N, default 5000).
#include <hiredis/hiredis.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <eventsourced/event/log.hpp>
#include <eventsourced/event/relay.hpp>
#include <eventsourced/event/serializer.hpp>
#include <eventsourced/eventsourced.hpp>
#include <eventsourced/redis/redis_streams_bus.hpp>

#include "harness.hpp"

namespace {

using namespace std::chrono_literals;
using eventsourced_bench::check;
using eventsourced_bench::print_result;
using eventsourced_bench::scratch_dir;
using steady = std::chrono::steady_clock;

std::string g_uri;
constexpr std::size_t kBatch = 256;

std::string fresh_namespace(const std::string& what) {
  static int counter = 0;
  return "es_bench_" + what + "_" + std::to_string(::getpid()) + "_" + std::to_string(++counter);
}

// Field by field: g++ 12 at -O2 warns (-Wmaybe-uninitialized, a false positive) about nested
// designated initialisers of these options.
eventsourced::redis_streams_bus_options bus_options(const std::string& ns) {
  eventsourced::redis_streams_bus_options options;
  options.connection.uri = g_uri;
  options.ns = ns;
  return options;
}

// A plain hiredis connection: the baseline, and deleting the benchmark's keys.
class raw_client {
 public:
  raw_client() {
    const eventsourced::redis_endpoint ep = eventsourced::parse_redis_uri(g_uri);
    c_ = redisConnectWithTimeout(ep.host.c_str(), ep.port, timeval{5, 0});
    check(c_ != nullptr && c_->err == 0, "raw connect");
    redisSetTimeout(c_, timeval{30, 0});
    if (!ep.password.empty()) {
      if (ep.user.empty()) {
        check(run({"AUTH", ep.password})->type != REDIS_REPLY_ERROR, "raw AUTH");
      } else {
        check(run({"AUTH", ep.user, ep.password})->type != REDIS_REPLY_ERROR, "raw AUTH");
      }
    }
    if (ep.db != 0) run({"SELECT", std::to_string(ep.db)});
  }
  ~raw_client() { redisFree(c_); }
  raw_client(const raw_client&) = delete;
  raw_client& operator=(const raw_client&) = delete;

  struct reply_deleter {
    void operator()(redisReply* r) const { freeReplyObject(r); }
  };
  using reply = std::unique_ptr<redisReply, reply_deleter>;

  reply run(const std::vector<std::string>& args) {
    append(args);
    void* r = nullptr;
    check(redisGetReply(c_, &r) == REDIS_OK && r != nullptr, "raw command");
    return reply(static_cast<redisReply*>(r));
  }
  void append(const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lengths;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lengths.push_back(a.size());
    }
    check(redisAppendCommandArgv(c_, static_cast<int>(argv.size()), argv.data(), lengths.data()) ==
              REDIS_OK,
          "redisAppendCommandArgv");
  }
  void read_replies(std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      void* r = nullptr;
      check(redisGetReply(c_, &r) == REDIS_OK && r != nullptr, "redisGetReply");
      const bool ok = static_cast<redisReply*>(r)->type == REDIS_REPLY_STRING;
      freeReplyObject(r);
      check(ok, "XADD refused");
    }
  }
  long long xlen(const std::string& key) { return run({"XLEN", key})->integer; }
  void del(const std::string& key) { run({"DEL", key}); }

 private:
  redisContext* c_ = nullptr;
};

// N events of about 300 bytes each, committed to a SQLite file, as a game server's document
// writes would produce them (the same workload as nats_bench).
void fill_store(eventsourced::engine& db, int n) {
  constexpr int kPerCommit = 100;
  for (int c = 0; c * kPerCommit < n; ++c) {
    eventsourced::commit_request request;
    eventsourced::stream_append append{{"players", "p" + std::to_string(c % 50)}};
    for (int i = 0; i < kPerCommit && c * kPerCommit + i < n; ++i) {
      const int k = c * kPerCommit + i;
      append.events.push_back(eventsourced::make_event(
          i % 2 ? "players.updated" : "PlayerScored",
          {{"version", k}, {"merge_patch", {{"gold", k}, {"last_seen", "2026-11-22T01:00:00Z"}}}},
          {{"document", {{"collection", "players"}, {"id", append.stream.id}, {"version", k}}},
           {"correlation_id", "req-" + std::to_string(k)}}));
    }
    request.appends.push_back(std::move(append));
    db.commit(request);
  }
}

// s quoted for /bin/sh.
std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (const char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// redis-benchmark's rate for n pipelined XADDs of a payload of `size` bytes, or a negative value
// when it cannot be run.
double redis_benchmark_xadd(int n, std::size_t size, const std::string& key) {
  const eventsourced::redis_endpoint ep = eventsourced::parse_redis_uri(g_uri);
  std::string command = "redis-benchmark -h " + shell_quote(ep.host) + " -p " +
                        std::to_string(ep.port) + " --dbnum " + std::to_string(ep.db) +
                        " -c 1 -P " + std::to_string(kBatch) + " -n " + std::to_string(n) + " -q";
  if (!ep.password.empty()) {
    // redis-benchmark takes the password only as an argument (visible to ps on this machine for
    // the run's duration; it ignores REDISCLI_AUTH): acceptable for a benchmark server.
    command += " -a " + shell_quote(ep.password);
    if (!ep.user.empty()) command += " --user " + shell_quote(ep.user);
  }
  command += " XADD " + key + " '*' type PlayerScored id 0190aaaa-bench event " +
             std::string(size, 'x') + " 2>/dev/null";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return -1;
  std::string output;
  char buffer[512];
  while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) output += buffer;
  const int status = ::pclose(pipe);
  // -q prints "<command>: <rate> requests per second, p50=..." (the last report on the line).
  const std::size_t at = output.rfind(" requests per second");
  if (status != 0 || at == std::string::npos) return -1;
  const std::size_t colon = output.rfind(": ", at);
  if (colon == std::string::npos) return -1;
  return std::strtod(output.c_str() + colon + 2, nullptr);
}

void relay_into_redis_streams(int n, bool with_redis_benchmark) {
  constexpr int kRounds = 3;
  scratch_dir dir;
  std::shared_ptr<eventsourced::engine> db =
      eventsourced::open_engine("sqlite:" + dir.fresh_database());
  fill_store(*db, n);
  const eventsourced::event_log log(db);
  const auto events = log.read_all(0, static_cast<std::size_t>(n)).events;
  check(static_cast<int>(events.size()) == n, "the store holds N events");
  const std::int64_t last = events.back().position;

  raw_client raw;
  double ours_seconds = 0, baseline_seconds = 0;
  std::size_t payload_bytes = 0;
  for (int round = 0; round < kRounds; ++round) {
    {
      const std::string ns = fresh_namespace("relay");
      auto bus = std::make_shared<eventsourced::redis_streams_bus>(bus_options(ns));
      eventsourced::outbox_relay relay(
          log, bus, {.name = "bench_" + std::to_string(round), .max_attempts = 1});
      const auto start = steady::now();
      relay.start();
      const bool done = relay.wait_until_published(last, 600s);
      ours_seconds += std::chrono::duration<double>(steady::now() - start).count();
      relay.stop();
      check(done && relay.failure() == nullptr, "relay: every event published");
      check(raw.xlen(bus->stream_key()) == n, "relay: N entries stored");
      raw.del(bus->stream_key());
      bus->close();
    }
    {
      const std::string key = fresh_namespace("hiredis") + ":events";
      std::vector<std::vector<std::string>> commands;
      commands.reserve(events.size());
      payload_bytes = 0;
      for (const auto& e : events) {
        commands.push_back({"XADD", key, "*", "type", e.type, "id", e.id, "event",
                            eventsourced::serialize_event(e)});
        payload_bytes += commands.back().back().size();
      }
      const auto start = steady::now();
      for (std::size_t from = 0; from < commands.size(); from += kBatch) {
        const std::size_t to = std::min(commands.size(), from + kBatch);
        for (std::size_t i = from; i < to; ++i) raw.append(commands[i]);
        raw.read_replies(to - from);
      }
      baseline_seconds += std::chrono::duration<double>(steady::now() - start).count();
      check(raw.xlen(key) == n, "hiredis: N entries stored");
      raw.del(key);
    }
  }
  const double ours = kRounds * n / ours_seconds;
  const double baseline = kRounds * n / baseline_seconds;
  std::printf(
      "relay_into_redis_streams: %d events x %d rounds (%zu bytes of JSON on average); "
      "ours %.3f s, hiredis %.3f s\n",
      n, kRounds, payload_bytes / events.size(), ours_seconds, baseline_seconds);
  print_result("relay_into_redis_streams_vs_raw_xadd", ours, baseline);
  if (!with_redis_benchmark) return;
  const std::string key = fresh_namespace("redis_benchmark") + ":events";
  const double peer = redis_benchmark_xadd(n, payload_bytes / events.size(), key);
  raw.del(key);
  if (peer <= 0) {
    std::printf(
        "relay_into_redis_streams_vs_redis_benchmark_xadd: skipped (redis-benchmark "
        "not found or failed)\n");
    return;
  }
  print_result("relay_into_redis_streams_vs_redis_benchmark_xadd", ours, peer);
}

void batch_publish(int n) {
  constexpr int kRounds = 3;
  std::vector<eventsourced::event> events;
  for (int i = 0; i < n; ++i) {
    eventsourced::event e;
    e.id = eventsourced::make_event_id();
    e.type = i % 2 ? "players.updated" : "PlayerScored";
    e.stream = {"players", "p" + std::to_string(i % 50)};
    e.stream_version = i + 1;
    e.position = i + 1;
    e.timestamp = std::chrono::system_clock::now();
    e.data = {{"version", i}, {"merge_patch", {{"gold", i}, {"last_seen", "2026-11-22T01:00Z"}}}};
    e.metadata = {{"document", {{"collection", "players"}, {"id", e.stream.id}, {"version", i}}},
                  {"correlation_id", "req-" + std::to_string(i)}};
    events.push_back(std::move(e));
  }
  raw_client raw;
  double ours_seconds = 0, baseline_seconds = 0;
  for (int round = 0; round < kRounds; ++round) {
    {
      const std::string ns = fresh_namespace("batch");
      eventsourced::redis_streams_bus bus(bus_options(ns));
      bus.publish(std::span(events).first(1));  // connected before the timing
      raw.del(bus.stream_key());
      const auto start = steady::now();
      for (std::size_t from = 0; from < events.size(); from += kBatch) {
        bus.publish(std::span(events).subspan(from, std::min(kBatch, events.size() - from)));
      }
      ours_seconds += std::chrono::duration<double>(steady::now() - start).count();
      check(raw.xlen(bus.stream_key()) == n, "bus: N entries stored");
      raw.del(bus.stream_key());
    }
    {
      const std::string key = fresh_namespace("hiredis") + ":events";
      std::vector<std::vector<std::string>> commands;
      for (const auto& e : events) {
        commands.push_back({"XADD", key, "*", "type", e.type, "id", e.id, "event",
                            eventsourced::serialize_event(e)});
      }
      const auto start = steady::now();
      for (std::size_t from = 0; from < commands.size(); from += kBatch) {
        const std::size_t to = std::min(commands.size(), from + kBatch);
        for (std::size_t i = from; i < to; ++i) raw.append(commands[i]);
        raw.read_replies(to - from);
      }
      baseline_seconds += std::chrono::duration<double>(steady::now() - start).count();
      check(raw.xlen(key) == n, "hiredis: N entries stored");
      raw.del(key);
    }
  }
  std::printf("batch_publish: %d events x %d rounds; ours %.3f s, hiredis %.3f s\n", n, kRounds,
              ours_seconds, baseline_seconds);
  print_result("batch_publish_vs_raw_xadd", kRounds * n / ours_seconds,
               kRounds * n / baseline_seconds);
}

}  // namespace

int main(int argc, char** argv) {
  const char* uri = std::getenv("EVENTSOURCED_TEST_REDIS_URI");
  if (uri == nullptr || *uri == '\0') {
    std::printf(
        "skipped: EVENTSOURCED_TEST_REDIS_URI is not set (scripts/services.sh start redis)\n");
    return 0;
  }
  g_uri = uri;
  int n = 5000;
  if (const char* events = std::getenv("EVENTSOURCED_REDIS_BENCH_EVENTS")) n = std::stoi(events);
  const auto wanted = [&](std::string_view name) {
    if (argc < 2) return true;
    for (int i = 1; i < argc; ++i) {
      if (name.find(argv[i]) != std::string_view::npos) return true;
    }
    return false;
  };
  try {
    if (wanted("relay_into_redis_streams_vs_raw_xadd") ||
        wanted("relay_into_redis_streams_vs_redis_benchmark_xadd")) {
      relay_into_redis_streams(n, wanted("relay_into_redis_streams_vs_redis_benchmark_xadd"));
    }
    if (wanted("batch_publish_vs_raw_xadd")) batch_publish(n);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "eventsourced_redis_bench: %s\n", e.what());
    return 1;
  }
}
