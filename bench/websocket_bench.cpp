// sync over WebSocket: events/s delivered to 200 WebSocket clients on loopback, and the p99
// latency from the write to a client's receipt, against the in-process fan-out of sync_service.
//
// websocket_fan_out_200_clients
//   ours:     sync_websocket_server (2 I/O threads) in front of sync_service; 200 WebSocket clients
//             (Boost.Beast, in this process, on one thread of their own) subscribed to one game
//             document; one writer makes kWrites writes through event_sync_storage (SQLite file,
//             synchronous=NORMAL). Measured from the first write until every client has received
//             every event. Rate = writes x clients / seconds.
//   baseline: the same, without the network: 200 in-process connections of sync_service (the
//             send function is the client) — the fan-out of the sync issue's benchmark.
//   The ratio is the share of the in-process rate that survives framing, loopback TCP and the
//   clients' reads.
// websocket_p99_latency_200_clients
//   The 99th percentile, over every (client, event), of the time from the start of the write
//   call to the client's receipt, in both runs above; printed as 1 / seconds (DESIGN.md: higher
//   is better, so the ratio is in_process_p99 / websocket_p99).
// Clients find the version at the end of each event message (its last member) and do not parse
// the rest, on both sides.
//
// Environment: EVENTSOURCED_BENCH_SECONDS (measured seconds per side, default 3).
#include <utility>  // Boost 1.74 under C++20 needs it before Asio

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <eventsourced/eventsourced.hpp>
#include <eventsourced/websocket/sync_websocket_server.hpp>

#include "harness.hpp"

namespace {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using eventsourced::json;
using namespace eventsourced_bench;
using clock_type = std::chrono::steady_clock;

constexpr int kClients = 200;
constexpr int kWrites = 100;
constexpr std::size_t kMaxVersions = 1 << 20;

// When each version's write started (nanoseconds of clock_type), per side.
struct write_times {
  std::vector<std::atomic<std::int64_t>> start =
      std::vector<std::atomic<std::int64_t>>(kMaxVersions);
};

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now().time_since_epoch())
      .count();
}

// A client's view of one message: counts events and their latency; anything else is a reply.
struct receiver {
  write_times* times = nullptr;
  std::atomic<std::uint64_t>* delivered = nullptr;
  std::atomic<int>* replies = nullptr;
  std::vector<double> latencies;  // seconds; touched by one thread at a time

  void on_message(std::string_view m) {
    if (m.find(R"("type":"event")") == std::string_view::npos) {
      replies->fetch_add(1);
      return;
    }
    const auto at = m.rfind(R"("version":)");
    const std::size_t version = std::strtoull(m.data() + at + 10, nullptr, 10);
    check(version < kMaxVersions, "too many versions");
    latencies.push_back(static_cast<double>(now_ns() - times->start[version].load()) / 1e9);
    delivered->fetch_add(1, std::memory_order_relaxed);
  }
};

std::string subscribe_message() {
  return json{{"type", "subscribe"},
              {"request_id", 1},
              {"documents", {{{"collection", "games"}, {"id", "room"}, {"version", 1}}}}}
      .dump();
}

class ws_bench_client : public std::enable_shared_from_this<ws_bench_client> {
 public:
  ws_bench_client(net::io_context& io, receiver& r) : ws_(io), r_(r) {}

  // Synchronous connect, handshake and subscribe (before the client thread runs).
  void open(std::uint16_t port) {
    beast::get_lowest_layer(ws_).connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    ws_.handshake("127.0.0.1", "/sync?token=bench");
    ws_.text(true);
    ws_.write(net::buffer(subscribe_message()));
  }
  void read() {
    ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return;
      const auto data = self->buffer_.cdata();
      self->r_.on_message(std::string_view(static_cast<const char*>(data.data()), data.size()));
      self->buffer_.consume(self->buffer_.size());
      self->read();
    });
  }
  void close() {
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().close(ignored);
  }

 private:
  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buffer_;
  receiver& r_;
};

// One side: storage, service, clients; a round is kWrites writes until every client has them.
struct side {
  scratch_dir& dir;
  std::shared_ptr<eventsourced::event_sync_storage> storage;
  std::shared_ptr<eventsourced::sync_service> service;
  write_times times;
  std::atomic<std::uint64_t> delivered{0};
  std::atomic<int> replies{0};
  std::vector<receiver> receivers = std::vector<receiver>(kClients);
  std::int64_t next_gold = 0;
  double seconds = 0;
  std::uint64_t total = 0;

  explicit side(scratch_dir& d) : dir(d) {
    // Options set one by one: g++ 12 at -O2 sees a false "maybe uninitialized" in the defaulted
    // nested initialisers otherwise.
    const eventsourced::sync_options sync_options;
    storage = eventsourced::event_sync_storage::open(
        "sqlite:" + dir.fresh_database() + "?synchronous=normal", sync_options);
    storage->find_one_and_upsert("games", {{"id", "room"}, {"gold", 0}});
    eventsourced::sync_service_options service_options;
    service_options.max_queued_messages = 100000;
    service_options.delivery_threads = 2;
    service = eventsourced::sync_service::start(storage, service_options);
    for (auto& r : receivers) {
      r.times = &times;
      r.delivered = &delivered;
      r.replies = &replies;
    }
  }

  void wait_subscribed() {
    const auto deadline = clock_type::now() + std::chrono::seconds(60);
    while (replies.load() < kClients) {
      check(clock_type::now() < deadline, "clients did not subscribe");
      std::this_thread::yield();
    }
  }

  void round(bool measured) {
    const auto before = delivered.load();
    const auto start = clock_type::now();
    for (int n = 0; n < kWrites; ++n) {
      const std::int64_t gold = ++next_gold;
      // The version this write will get: the document's only writer is this loop.
      const auto version = static_cast<std::size_t>(gold + 1);
      times.start[version].store(now_ns());
      storage->find_one_and_update("games", "room", [&](const json& g) {
        json next = g;
        next["gold"] = gold;
        return next;
      });
    }
    const std::uint64_t expected = static_cast<std::uint64_t>(kWrites) * kClients;
    const auto deadline = clock_type::now() + std::chrono::seconds(120);
    while (delivered.load() - before < expected) {
      check(clock_type::now() < deadline, "events did not reach every client");
      std::this_thread::yield();
    }
    if (measured) {
      seconds += std::chrono::duration<double>(clock_type::now() - start).count();
      total += delivered.load() - before;
    }
  }

  double p99() const {
    std::vector<double> all;
    for (const auto& r : receivers) all.insert(all.end(), r.latencies.begin(), r.latencies.end());
    return percentile(std::move(all), 0.99);
  }
};

double measured_seconds() {
  if (const char* s = std::getenv("EVENTSOURCED_BENCH_SECONDS")) return std::stod(s);
  return 3.0;
}

}  // namespace

int main() {
  try {
    scratch_dir dir;

    // Ours: over WebSocket.
    side ws(dir);
    eventsourced::sync_websocket_server_options options;
    options.max_queued_messages = 100000;
    options.authenticate = [](std::string_view token) -> std::optional<std::string> {
      return std::string(token);
    };
    auto server = eventsourced::sync_websocket_server::start(ws.service, options);
    net::io_context client_io;
    std::vector<std::shared_ptr<ws_bench_client>> clients;
    for (auto& r : ws.receivers) {
      clients.push_back(std::make_shared<ws_bench_client>(client_io, r));
      clients.back()->open(server->port());
      clients.back()->read();
    }
    auto work = net::make_work_guard(client_io);
    std::thread client_thread([&] { client_io.run(); });

    // Baseline: in process.
    side local(dir);
    for (auto& r : local.receivers) {
      auto* me = &r;
      const auto c =
          local.service->connect("bench", [me](const std::string& m) { me->on_message(m); });
      local.service->receive(c, subscribe_message());
    }
    ws.wait_subscribed();
    local.wait_subscribed();

    const double budget = measured_seconds();
    for (int round = 0; ws.seconds < budget || local.seconds < budget; ++round) {
      const bool measured = round > 0;  // round 0 warms both up
      if (round % 2 == 0) {
        ws.round(measured);
        local.round(measured);
      } else {
        local.round(measured);
        ws.round(measured);
      }
    }
    check(ws.service->stats().resyncs == 0 && local.service->stats().resyncs == 0,
          "a client was told to resync");
    check(server->stats().closed_too_slow == 0, "a WebSocket client was closed as too slow");
    for (const auto& r : ws.receivers) {
      check(r.latencies.size() == ws.receivers.front().latencies.size(),
            "a WebSocket client missed or duplicated events");
    }
    const double ws_p99 = ws.p99();
    const double local_p99 = local.p99();
    std::printf(
        "# sync over WebSocket: %d clients on loopback subscribed to one document, %d writes per "
        "round, SQLite synchronous=NORMAL; p99 write-to-receipt: %.2f ms over WebSocket, %.2f ms "
        "in process\n",
        kClients, kWrites, ws_p99 * 1e3, local_p99 * 1e3);
    print_result("websocket_fan_out_200_clients", static_cast<double>(ws.total) / ws.seconds,
                 static_cast<double>(local.total) / local.seconds);
    print_result("websocket_p99_latency_200_clients", 1.0 / ws_p99, 1.0 / local_p99);

    server->stop();
    work.reset();
    for (auto& c : clients) net::post(client_io, [c] { c->close(); });
    client_thread.join();
    ws.service->stop();
    local.service->stop();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "websocket_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
