// sync_service fan-out: events/s delivered to 1,000 connected in-process clients.
//
// sync_service_fan_out_1000_clients
//   ours:     1,000 connections of sync_service subscribed to one game document; one writer
//             makes kWrites writes through event_sync_storage (SQLite file, synchronous=NORMAL);
//             the service's log tail picks each sync event up and its delivery threads send it to
//             every connection. Measured from the first write until every client has received
//             every event. Rate = writes x clients / seconds.
//   baseline: the same writes through the same kind of storage; the writer hands each write's
//             sync event (returned by the write) straight to a hand-written fan-out — serialise
//             once, push the shared text into 1,000 mutex-protected per-client queues, the same
//             number of delivery threads draining them. No log tail, no subscription index, no
//             per-document ordering checks: the least a server must do to push one event to
//             1,000 clients.
// The clients count messages and do not parse them (parsing would cost the same on both sides).
//
// Environment: EVENTSOURCED_BENCH_SECONDS (measured seconds per side, default 3).
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <eventsourced/eventsourced.hpp>

#include "harness.hpp"

namespace {

using eventsourced::json;
using namespace eventsourced_bench;
using clock_type = std::chrono::steady_clock;

constexpr int kClients = 1000;
constexpr int kWrites = 200;
constexpr std::size_t kDeliveryThreads = 2;

std::shared_ptr<eventsourced::event_sync_storage> open_storage(scratch_dir& dir) {
  return eventsourced::event_sync_storage::open("sqlite:" + dir.fresh_database() +
                                                "?synchronous=normal");
}

void write_round(eventsourced::event_sync_storage& storage, int round,
                 const std::function<void(const eventsourced::event&)>& on_event) {
  for (int n = 0; n < kWrites; ++n) {
    auto r = storage.find_one_and_update("games", "room", [&](const json& g) {
      json next = g;
      next["gold"] = round * kWrites + n + 1;  // never the value before: every write changes
      return next;
    });
    if (on_event) {
      for (const auto& e : r.events) on_event(e);
    }
  }
}

// ---- ours ----------------------------------------------------------------------------------

struct ours_result {
  double seconds = 0;
  std::uint64_t delivered = 0;
};

ours_result run_ours(eventsourced::event_sync_storage& storage,
                     std::atomic<std::uint64_t>& delivered, int round) {
  const auto before = delivered.load();
  const std::uint64_t expected = static_cast<std::uint64_t>(kWrites) * kClients;
  const auto start = clock_type::now();
  write_round(storage, round, nullptr);
  while (delivered.load() - before < expected) std::this_thread::yield();
  return {std::chrono::duration<double>(clock_type::now() - start).count(),
          delivered.load() - before};
}

// ---- baseline ------------------------------------------------------------------------------

class hand_fan_out {
 public:
  explicit hand_fan_out(std::atomic<std::uint64_t>& delivered)
      : delivered_(delivered), queues_(kClients) {
    for (std::size_t t = 0; t < kDeliveryThreads; ++t) threads_.emplace_back([this] { run(); });
  }
  ~hand_fan_out() {
    {
      std::lock_guard lock(ready_mu_);
      stop_ = true;
    }
    ready_cv_.notify_all();
    for (auto& t : threads_) t.join();
  }

  void publish(const eventsourced::event& e) {
    auto text = std::make_shared<const std::string>(json{
        {"type", "event"},
        {"version", e.stream_version},
        {"json_patch", e.data["json_patch"]}}.dump());
    for (std::size_t c = 0; c < queues_.size(); ++c) {
      bool schedule = false;
      {
        std::lock_guard lock(queues_[c].mu);
        queues_[c].messages.push_back(text);
        if (!queues_[c].scheduled) schedule = queues_[c].scheduled = true;
      }
      if (schedule) {
        {
          std::lock_guard lock(ready_mu_);
          ready_.push_back(c);
        }
        ready_cv_.notify_one();
      }
    }
  }

 private:
  struct client_queue {
    std::mutex mu;
    std::deque<std::shared_ptr<const std::string>> messages;
    bool scheduled = false;
    std::uint64_t received = 0;
    std::size_t bytes = 0;
  };

  void run() {
    for (;;) {
      std::size_t c;
      {
        std::unique_lock lock(ready_mu_);
        ready_cv_.wait(lock, [&] { return stop_ || !ready_.empty(); });
        if (stop_) return;
        c = ready_.front();
        ready_.pop_front();
      }
      auto& q = queues_[c];
      std::deque<std::shared_ptr<const std::string>> batch;
      {
        std::lock_guard lock(q.mu);
        batch.swap(q.messages);
        q.scheduled = false;
      }
      for (const auto& m : batch) {  // the "send": what the in-process clients of ours do
        q.bytes += m->size();
        ++q.received;
        delivered_.fetch_add(1, std::memory_order_relaxed);
      }
    }
  }

  std::atomic<std::uint64_t>& delivered_;
  std::vector<client_queue> queues_;
  std::mutex ready_mu_;
  std::condition_variable ready_cv_;
  std::deque<std::size_t> ready_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

double measured_seconds() {
  if (const char* s = std::getenv("EVENTSOURCED_BENCH_SECONDS")) return std::stod(s);
  return 3.0;
}

}  // namespace

int main() {
  try {
    scratch_dir dir;
    // Ours: the service with 1,000 subscribed connections.
    auto ours_storage = open_storage(dir);
    ours_storage->find_one_and_upsert("games", {{"id", "room"}, {"gold", 0}});
    auto service = eventsourced::sync_service::start(
        ours_storage, {.max_queued_messages = 100000, .delivery_threads = kDeliveryThreads});
    std::atomic<std::uint64_t> ours_delivered{0};
    struct client {
      std::uint64_t received = 0;
      std::size_t bytes = 0;
    };
    std::vector<client> clients(kClients);
    std::vector<eventsourced::sync_connection_id> connections;
    std::atomic<int> subscribed{0};
    for (int c = 0; c < kClients; ++c) {
      auto* me = &clients[static_cast<std::size_t>(c)];
      connections.push_back(service->connect(
          "client" + std::to_string(c), [me, &ours_delivered, &subscribed](const std::string& m) {
            if (m.starts_with(R"({"request_id")") ||
                m.find(R"("type":"ok")") != std::string::npos) {
              subscribed.fetch_add(1);
              return;
            }
            me->bytes += m.size();
            ++me->received;
            ours_delivered.fetch_add(1, std::memory_order_relaxed);
          }));
      service->receive(
          connections.back(),
          json{{"type", "subscribe"},
               {"request_id", c},
               {"documents", {{{"collection", "games"}, {"id", "room"}, {"version", 1}}}}}
              .dump());
    }
    while (subscribed.load() < kClients) std::this_thread::yield();

    // Baseline: the same writes, the hand-written fan-out.
    auto baseline_storage = open_storage(dir);
    baseline_storage->find_one_and_upsert("games", {{"id", "room"}, {"gold", 0}});
    std::atomic<std::uint64_t> baseline_delivered{0};
    hand_fan_out fan_out(baseline_delivered);

    const double budget = measured_seconds();
    double ours_seconds = 0, baseline_seconds = 0;
    std::uint64_t ours_total = 0, baseline_total = 0;
    for (int round = 0; ours_seconds < budget || baseline_seconds < budget; ++round) {
      auto baseline_round = [&] {
        const auto before = baseline_delivered.load();
        const auto start = clock_type::now();
        write_round(*baseline_storage, round,
                    [&](const eventsourced::event& e) { fan_out.publish(e); });
        const std::uint64_t expected = static_cast<std::uint64_t>(kWrites) * kClients;
        while (baseline_delivered.load() - before < expected) std::this_thread::yield();
        if (round > 0) {
          baseline_seconds += std::chrono::duration<double>(clock_type::now() - start).count();
          baseline_total += baseline_delivered.load() - before;
        }
      };
      auto ours_round = [&] {
        auto r = run_ours(*ours_storage, ours_delivered, round);
        if (round > 0) {  // round 0 warms both up
          ours_seconds += r.seconds;
          ours_total += r.delivered;
        }
      };
      if (round % 2 == 0) {
        ours_round();
        baseline_round();
      } else {
        baseline_round();
        ours_round();
      }
    }
    // Every client got every event, and nothing else.
    const auto rounds_events = ours_delivered.load() / kClients;
    for (const auto& c : clients) {
      check(c.received == rounds_events, "a client missed or duplicated events");
    }
    check(service->stats().resyncs == 0, "a client was told to resync");
    std::printf(
        "# sync fan-out: %d clients subscribed to one document, %d writes per round, %zu delivery "
        "threads, SQLite synchronous=NORMAL; %.0f writes/s reached every client (ours)\n",
        kClients, kWrites, kDeliveryThreads,
        static_cast<double>(ours_total) / kClients / ours_seconds);
    print_result("sync_service_fan_out_1000_clients",
                 static_cast<double>(ours_total) / ours_seconds,
                 static_cast<double>(baseline_total) / baseline_seconds);
    service->stop();
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sync_service_bench: %s\n", e.what());
    return 1;
  }
}
