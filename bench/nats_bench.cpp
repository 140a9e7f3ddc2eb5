// eventsourced::nats against a plain nats.c client doing the same publishing.
//
//   relay_into_jetstream_vs_natsc_publish
//       Ours: an outbox_relay over a SQLite store holding N events (about 300 bytes of JSON
//       each) publishing them to a jetstream_bus, from position 0 to the last one: read the log
//       in batches of 256 (relay_options' default), serialize them, publish each batch with
//       jetstream_bus::publish(span) — asynchronously, Msg-Id = event id, then wait for the
//       server's acknowledgement of the whole batch — and save the checkpoint after each batch.
//       Baseline: a nats.c program publishing the same N messages — same subjects, same payloads
//       (serialized beforehand, outside the timing), same Msg-Ids — in the same mode: batches of
//       256 js_PublishAsync calls, each batch followed by js_PublishAsyncComplete. Both must know
//       a batch is stored before going on (the relay moves its checkpoint past it), so neither
//       pipelines across batches. Each run publishes into a fresh stream (no deduplication
//       between runs); the sides alternate, 3 runs each. The rate is events per second.
//   core_publish_vs_natsc_publish
//       nats_bus::publish (serialize, check the connection, natsConnection_Publish) against
//       natsConnection_Publish of the same payloads, serialized beforehand, on the same subjects;
//       turns of 0.1 s (harness.hpp), one thread each, no subscriber.
//
// Each comparison ends with
//   RESULT name=<name> ours=<per second> baseline=<per second> ratio=<ours/baseline>
//
// Usage: eventsourced_nats_bench [name-substring...]   (no argument: every comparison)
// Environment: EVENTSOURCED_TEST_NATS_URL (the server; without it the benchmark prints
// "skipped: ..." and exits 0), EVENTSOURCED_BENCH_SECONDS (measured seconds per side for the
// core comparison, default 3), EVENTSOURCED_NATS_BENCH_EVENTS (N, default 5000).
#include <nats/nats.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <eventsourced/event/log.hpp>
#include <eventsourced/event/relay.hpp>
#include <eventsourced/event/serializer.hpp>
#include <eventsourced/eventsourced.hpp>
#include <eventsourced/nats/jetstream_bus.hpp>
#include <eventsourced/nats/nats_bus.hpp>
#include <eventsourced/nats/subject.hpp>

#include "harness.hpp"

namespace {

using namespace std::chrono_literals;
using eventsourced::json;
using eventsourced_bench::check;
using eventsourced_bench::print_result;
using eventsourced_bench::scratch_dir;
using eventsourced_bench::take_turns;
using eventsourced_bench::thread_counters;
using eventsourced_bench::timing;
using eventsourced_bench::turns;
using steady = std::chrono::steady_clock;

std::string g_url;

std::string fresh_namespace(const std::string& what) {
  static int counter = 0;
  return "es_bench_" + what + "_" + std::to_string(::getpid()) + "_" + std::to_string(++counter);
}

// A raw nats.c connection, for the baselines and for deleting the benchmark's streams.
class raw_client {
 public:
  raw_client() {
    check(natsConnection_ConnectTo(&nc_, g_url.c_str()) == NATS_OK, "raw connect");
    check(natsConnection_JetStream(&js_, nc_, nullptr) == NATS_OK, "raw JetStream context");
  }
  ~raw_client() {
    jsCtx_Destroy(js_);
    natsConnection_Destroy(nc_);
  }
  raw_client(const raw_client&) = delete;
  raw_client& operator=(const raw_client&) = delete;

  void create_stream(const std::string& ns) {
    const std::string subjects = ns + ".>";
    const char* list[] = {subjects.c_str()};
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Name = ns.c_str();
    cfg.Subjects = list;
    cfg.SubjectsLen = 1;
    cfg.Duplicates = std::chrono::nanoseconds(2min).count();  // jetstream_bus's default
    jsStreamInfo* info = nullptr;
    check(js_AddStream(&info, js_, &cfg, nullptr, nullptr) == NATS_OK, "raw add stream");
    jsStreamInfo_Destroy(info);
  }
  std::uint64_t stream_messages(const std::string& ns) {
    jsStreamInfo* info = nullptr;
    check(js_GetStreamInfo(&info, js_, ns.c_str(), nullptr, nullptr) == NATS_OK, "stream info");
    const std::uint64_t n = info->State.Msgs;
    jsStreamInfo_Destroy(info);
    return n;
  }
  void delete_stream(const std::string& ns) { js_DeleteStream(js_, ns.c_str(), nullptr, nullptr); }

  natsConnection* nc() const { return nc_; }
  jsCtx* js() const { return js_; }

 private:
  natsConnection* nc_ = nullptr;
  jsCtx* js_ = nullptr;
};

// Deletes a benchmark stream when it goes out of scope, also when the benchmark fails.
class stream_guard {
 public:
  stream_guard(raw_client& raw, std::string ns) : raw_(raw), ns_(std::move(ns)) {}
  ~stream_guard() { raw_.delete_stream(ns_); }
  stream_guard(const stream_guard&) = delete;
  stream_guard& operator=(const stream_guard&) = delete;

 private:
  raw_client& raw_;
  std::string ns_;
};

// N events of about 300 bytes each, committed to a SQLite file, as a game server's document
// writes would produce them.
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

struct prepared_message {
  std::string subject;
  std::string payload;
  std::string id;
};

// ---------------------------------------------------------------------------------------------
// relay_into_jetstream_vs_natsc_publish

void relay_into_jetstream(int n) {
  constexpr int kRounds = 3;
  scratch_dir dir;
  const std::string path = dir.fresh_database();
  std::shared_ptr<eventsourced::engine> db = eventsourced::open_engine("sqlite:" + path);
  fill_store(*db, n);
  const eventsourced::event_log log(db);
  const auto events = log.read_all(0, static_cast<std::size_t>(n)).events;
  check(static_cast<int>(events.size()) == n, "the store holds N events");
  const std::int64_t last = events.back().position;

  raw_client raw;
  double ours_seconds = 0, baseline_seconds = 0;
  for (int round = 0; round < kRounds; ++round) {
    // Ours: a relay with a fresh checkpoint publishes everything into a fresh stream.
    {
      const std::string ns = fresh_namespace("relay");
      const stream_guard cleanup(raw, ns);
      auto bus = std::make_shared<eventsourced::jetstream_bus>(
          eventsourced::jetstream_bus_options{.connection = {.url = g_url}, .ns = ns});
      eventsourced::outbox_relay relay(
          log, bus, {.name = "bench_" + std::to_string(round), .max_attempts = 1});
      const auto start = steady::now();
      relay.start();
      const bool done = relay.wait_until_published(last, 600s);
      ours_seconds += std::chrono::duration<double>(steady::now() - start).count();
      relay.stop();
      check(done && relay.failure() == nullptr, "relay: every event published");
      check(raw.stream_messages(ns) == static_cast<std::uint64_t>(n), "relay: N messages stored");
      bus->close();
      raw.delete_stream(ns);
    }
    // Baseline: the same messages, serialized beforehand, published in batches of 256 with
    // js_PublishAsync, each batch awaited with js_PublishAsyncComplete.
    {
      const std::string ns = fresh_namespace("natsc");
      const stream_guard cleanup(raw, ns);
      raw.create_stream(ns);
      std::vector<prepared_message> messages;
      messages.reserve(events.size());
      for (const auto& e : events) {
        messages.push_back(
            {eventsourced::event_subject(ns, e.type), eventsourced::serialize_event(e), e.id});
      }
      constexpr std::size_t kBatch = 256;
      const auto start = steady::now();
      for (std::size_t i = 0; i < messages.size(); ++i) {
        const auto& m = messages[i];
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MsgId = m.id.c_str();
        po.ExpectStream = ns.c_str();
        check(js_PublishAsync(raw.js(), m.subject.c_str(), m.payload.data(),
                              static_cast<int>(m.payload.size()), &po) == NATS_OK,
              "js_PublishAsync");
        if ((i + 1) % kBatch == 0 || i + 1 == messages.size()) {
          check(js_PublishAsyncComplete(raw.js(), nullptr) == NATS_OK, "js_PublishAsyncComplete");
        }
      }
      baseline_seconds += std::chrono::duration<double>(steady::now() - start).count();
      check(raw.stream_messages(ns) == static_cast<std::uint64_t>(n), "nats.c: N messages stored");
      raw.delete_stream(ns);
    }
  }
  const double ours = kRounds * n / ours_seconds;
  const double baseline = kRounds * n / baseline_seconds;
  std::printf("relay_into_jetstream: %d events x %d rounds; ours %.3f s, nats.c %.3f s\n", n,
              kRounds, ours_seconds, baseline_seconds);
  print_result("relay_into_jetstream_vs_natsc_publish", ours, baseline);
}

// ---------------------------------------------------------------------------------------------
// core_publish_vs_natsc_publish

void core_publish(const timing& t) {
  const std::string ns = fresh_namespace("core");
  std::vector<eventsourced::event> events;
  std::vector<prepared_message> messages;
  for (int i = 0; i < 1000; ++i) {
    eventsourced::event e;
    e.id = eventsourced::make_event_id();
    e.type = i % 2 ? "players.updated" : "PlayerScored";
    e.stream = {"players", "p" + std::to_string(i % 50)};
    e.stream_version = i + 1;
    e.position = i + 1;
    e.timestamp = std::chrono::system_clock::now();
    e.data = {{"version", i}, {"merge_patch", {{"gold", i}, {"last_seen", "2026-11-22T01:00Z"}}}};
    e.metadata = {{"correlation_id", "req-" + std::to_string(i)}};
    messages.push_back(
        {eventsourced::event_subject(ns, e.type), eventsourced::serialize_event(e), e.id});
    events.push_back(std::move(e));
  }
  eventsourced::nats_bus bus({.connection = {.url = g_url}, .ns = ns});
  raw_client raw;
  std::size_t next_ours = 0, next_baseline = 0;
  auto ours = [&](int, thread_counters&) {
    bus.publish(events[next_ours++ % events.size()]);
    return true;
  };
  auto baseline = [&](int, thread_counters&) {
    const auto& m = messages[next_baseline++ % messages.size()];
    return natsConnection_Publish(raw.nc(), m.subject.c_str(), m.payload.data(),
                                  static_cast<int>(m.payload.size())) == NATS_OK;
  };
  const turns result = take_turns(1, t, ours, baseline);
  check(result.baseline.failures == 0, "natsConnection_Publish failed");
  // What serializing the events alone costs (ours does it inside publish, the baseline before
  // the timing): most of the difference.
  const auto start = steady::now();
  std::size_t bytes = 0;
  for (int round = 0; round < 50; ++round) {
    for (const auto& e : events) bytes += eventsourced::serialize_event(e).size();
  }
  const double serialize_rate = 50.0 * static_cast<double>(events.size()) /
                                std::chrono::duration<double>(steady::now() - start).count();
  check(bytes > 0, "serialized something");
  std::printf("core_publish: serialize_event alone %.0f events/s\n", serialize_rate);
  print_result("core_publish_vs_natsc_publish", result.ours.ops_per_second(),
               result.baseline.ops_per_second());
}

}  // namespace

int main(int argc, char** argv) {
  const char* url = std::getenv("EVENTSOURCED_TEST_NATS_URL");
  if (url == nullptr || *url == '\0') {
    std::printf(
        "skipped: EVENTSOURCED_TEST_NATS_URL is not set (scripts/services.sh start nats)\n");
    return 0;
  }
  g_url = url;
  timing t;
  if (const char* seconds = std::getenv("EVENTSOURCED_BENCH_SECONDS")) {
    t.measured = std::chrono::duration<double>(std::stod(seconds));
  }
  int n = 5000;
  if (const char* events = std::getenv("EVENTSOURCED_NATS_BENCH_EVENTS")) n = std::stoi(events);
  const auto wanted = [&](std::string_view name) {
    if (argc < 2) return true;
    for (int i = 1; i < argc; ++i) {
      if (name.find(argv[i]) != std::string_view::npos) return true;
    }
    return false;
  };
  try {
    if (wanted("relay_into_jetstream_vs_natsc_publish")) relay_into_jetstream(n);
    if (wanted("core_publish_vs_natsc_publish")) core_publish(t);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "eventsourced_nats_bench: %s\n", e.what());
    return 1;
  }
}
