// The in-memory event bus against hand-written code doing the same work.
//
//   memory_bus_sync_dispatch    publish() on a synchronous bus with one subscribed handler,
//                               against calling the same handler through a std::function in a
//                               loop: what routing, the subscriber snapshot and the
//                               unsubscribe bookkeeping cost per event.
//   memory_bus_async_dispatch   publish() on an asynchronous bus (1 worker, default queue) with
//                               one handler, against a plain bounded queue (std::deque, one
//                               mutex, two condition variables, one consumer thread that pops one
//                               event at a time) feeding the same handler. Both copy the event
//                               into the queue. A turn publishes for its slice and then waits
//                               until every event published has been handled, so each rate counts
//                               handled events over the time taken to handle them.
//
// The handler does the same tiny work on both sides (it adds the event's position to a sum), and
// the sums must match the events published, or the benchmark fails. Ours and the baseline take
// turns of 100 ms so that machine noise hits both alike. Each comparison ends with
//   RESULT name=<name> ours=<events/s> baseline=<events/s> ratio=<ours/baseline>
//
// Usage: eventsourced_bus_bench [name-substring...]   (no argument: every comparison)
// Environment: EVENTSOURCED_BENCH_SECONDS (measured seconds per side and comparison, default 3).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <eventsourced/eventsourced.hpp>

#include "harness.hpp"

namespace {

using namespace eventsourced;
using namespace eventsourced_bench;
using std::chrono::duration;
using std::chrono::steady_clock;

event sample_event() {
  event e;
  e.id = make_event_id();
  e.type = "GoldAdded";
  e.stream = {"players", "p0"};
  e.stream_version = 1;
  e.position = 1;
  e.timestamp = std::chrono::system_clock::now();
  e.data = {{"gold", 1}};
  e.metadata = {{"correlation_id", "bench"}};
  return e;
}

// The work every handler does. Not atomic: one thread runs it on each side (the publishing
// thread when synchronous, the one consumer when asynchronous).
struct summing_handler {
  std::int64_t sum = 0;
  std::uint64_t count = 0;
  void operator()(const event& e) {
    sum += e.position;
    ++count;
  }
};

void check(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error(what);
}

void print_result(const std::string& name, const std::string& description, const timing& t,
                  double ours, double baseline, const std::vector<double>& ratios) {
  std::printf("== %s: %s; %.1f s each, in turns of %.0f ms\n", name.c_str(), description.c_str(),
              t.measured.count(), t.slice.count() * 1000);
  std::printf("  baseline %.0f events/s\n", baseline);
  std::printf("  ours     %.0f events/s\n", ours);
  std::printf("  ratio per turn: p10 %.3f  median %.3f  p90 %.3f\n", percentile(ratios, 0.1),
              percentile(ratios, 0.5), percentile(ratios, 0.9));
  std::printf("RESULT name=%s ours=%.0f baseline=%.0f ratio=%.3f\n", name.c_str(), ours, baseline,
              ours / baseline);
  std::fflush(stdout);
}

// ---------------------------------------------------------------------------------------------
// Synchronous dispatch: one publishing thread, through run_slice / take_turns.

void sync_dispatch(const timing& t) {
  const event e = sample_event();

  summing_handler ours_handler;
  in_memory_event_bus bus;  // synchronous
  subscription s =
      bus.subscribe("GoldAdded", [&ours_handler](const event& ev) { ours_handler(ev); });
  auto ours = [&](int, thread_counters&) {
    bus.publish(e);
    return true;
  };

  summing_handler baseline_handler;
  const std::function<void(const event&)> direct = [&baseline_handler](const event& ev) {
    baseline_handler(ev);
  };
  auto baseline = [&](int, thread_counters&) {
    direct(e);
    return true;
  };

  const turns result = take_turns(1, t, ours, baseline);
  check(ours_handler.count == result.ours_ops_all, "sync: the handler missed events");
  check(ours_handler.sum == static_cast<std::int64_t>(result.ours_ops_all) * e.position,
        "sync: wrong sum");
  check(baseline_handler.count == result.baseline_ops_all, "sync baseline: missed events");
  print_result("memory_bus_sync_dispatch",
               "1 publishing thread, 1 handler; baseline: a std::function call per event", t,
               result.ours.ops_per_second(), result.baseline.ops_per_second(), result.ratios);
}

// ---------------------------------------------------------------------------------------------
// Asynchronous dispatch: one publishing thread, one consumer thread.

// The hand-written baseline: what one would write without the library.
class plain_bounded_queue {
 public:
  plain_bounded_queue(std::size_t capacity, std::function<void(const event&)> handler)
      : capacity_(capacity), handler_(std::move(handler)), consumer_([this] { consume(); }) {}
  ~plain_bounded_queue() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    not_empty_.notify_all();
    consumer_.join();
  }

  void push(const event& e) {
    std::unique_lock lock(mutex_);
    not_full_.wait(lock, [&] { return items_.size() < capacity_; });
    items_.push_back(e);
    ++pushed_;
    lock.unlock();
    not_empty_.notify_one();
  }

  // Waits until everything pushed so far has been handled.
  void drain() {
    std::unique_lock lock(mutex_);
    const std::uint64_t target = pushed_;
    handled_cv_.wait(lock, [&] { return handled_ >= target; });
  }

 private:
  void consume() {
    std::unique_lock lock(mutex_);
    for (;;) {
      not_empty_.wait(lock, [&] { return !items_.empty() || stop_; });
      if (items_.empty()) return;
      event e = std::move(items_.front());
      items_.pop_front();
      lock.unlock();
      not_full_.notify_one();
      handler_(e);
      lock.lock();
      ++handled_;
      handled_cv_.notify_all();
    }
  }

  const std::size_t capacity_;
  std::function<void(const event&)> handler_;
  std::mutex mutex_;
  std::condition_variable not_empty_, not_full_, handled_cv_;
  std::deque<event> items_;
  std::uint64_t pushed_ = 0, handled_ = 0;
  bool stop_ = false;
  std::thread consumer_;  // last: starts after everything it uses exists
};

// Publishes for one slice, then waits until all of it is handled: (events, time taken).
template <typename Publish, typename Drain>
std::pair<std::uint64_t, duration<double>> async_turn(duration<double> slice, const event& e,
                                                      Publish& publish, Drain& drain) {
  const auto start = steady_clock::now();
  std::uint64_t published = 0;
  while (steady_clock::now() - start < slice) {
    for (int i = 0; i < 64; ++i) publish(e);
    published += 64;
  }
  drain();
  return {published, steady_clock::now() - start};
}

void async_dispatch(const timing& t) {
  const event e = sample_event();
  const std::size_t kCapacity = in_memory_bus_options{}.queue_capacity;

  summing_handler ours_handler;
  in_memory_event_bus bus({.dispatch = bus_dispatch::asynchronous, .workers = 1});
  subscription s =
      bus.subscribe("GoldAdded", [&ours_handler](const event& ev) { ours_handler(ev); });
  auto ours_publish = [&](const event& ev) { bus.publish(ev); };
  auto ours_drain = [&] { bus.flush(); };

  summing_handler baseline_handler;
  plain_bounded_queue queue(kCapacity,
                            [&baseline_handler](const event& ev) { baseline_handler(ev); });
  auto baseline_publish = [&](const event& ev) { queue.push(ev); };
  auto baseline_drain = [&] { queue.drain(); };

  std::uint64_t ours_events = 0, baseline_events = 0, ours_all = 0, baseline_all = 0;
  duration<double> ours_time{0}, baseline_time{0};
  std::vector<double> ratios;
  const int pairs = std::max(1, static_cast<int>(t.measured / t.slice + 0.5));
  for (int i = -1; i < pairs; ++i) {  // pair -1 warms both up
    std::pair<std::uint64_t, duration<double>> o, b;
    if (i % 2 == 0) {
      o = async_turn(t.slice, e, ours_publish, ours_drain);
      b = async_turn(t.slice, e, baseline_publish, baseline_drain);
    } else {
      b = async_turn(t.slice, e, baseline_publish, baseline_drain);
      o = async_turn(t.slice, e, ours_publish, ours_drain);
    }
    ours_all += o.first;
    baseline_all += b.first;
    if (i < 0) continue;
    ours_events += o.first;
    ours_time += o.second;
    baseline_events += b.first;
    baseline_time += b.second;
    ratios.push_back((static_cast<double>(o.first) / o.second.count()) /
                     (static_cast<double>(b.first) / b.second.count()));
  }
  // flush() / drain() returned: the handlers' plain fields are safe to read here.
  check(ours_handler.count == ours_all, "async: the handler missed events");
  check(ours_handler.sum == static_cast<std::int64_t>(ours_all) * e.position, "async: wrong sum");
  check(baseline_handler.count == baseline_all, "async baseline: missed events");
  print_result("memory_bus_async_dispatch",
               "1 publishing thread, 1 worker, queue of " + std::to_string(kCapacity) +
                   " events, 1 handler; baseline: deque + mutex + 2 condition variables, "
                   "1 consumer thread",
               t, static_cast<double>(ours_events) / ours_time.count(),
               static_cast<double>(baseline_events) / baseline_time.count(), ratios);
}

timing timing_from_environment() {
  timing t;
  if (const char* seconds = std::getenv("EVENTSOURCED_BENCH_SECONDS")) {
    t.measured = std::chrono::duration<double>(std::stod(seconds));
  }
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const timing t = timing_from_environment();
    const std::vector<std::string_view> filters(argv + 1, argv + argc);
    auto wanted = [&](std::string_view name) {
      return filters.empty() ||
             std::any_of(filters.begin(), filters.end(), [&](std::string_view f) {
               return name.find(f) != std::string_view::npos;
             });
    };
    if (wanted("memory_bus_sync_dispatch")) sync_dispatch(t);
    if (wanted("memory_bus_async_dispatch")) async_dispatch(t);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bus_bench: %s\n", e.what());
    return 1;
  }
}
