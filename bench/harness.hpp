// What every benchmark in bench/ shares: taking turns with a baseline, counting operations
// exactly, and scratch database files.
#pragma once

#include <stdlib.h>  // mkdtemp (POSIX)

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace eventsourced_bench {

// ---------------------------------------------------------------------------------------------
// Timing: ours and the baseline take turns in short slices, so that a burst of load from other
// processes (or a slow fsync) lands on both alike; each side's rate is its operations over its
// own time.

struct timing {
  std::chrono::duration<double> slice{0.1};
  std::chrono::duration<double> measured{3.0};  // per side, after one warm-up slice each
};

// One thread's counters, on its own cache line; read after the thread has joined.
struct alignas(64) thread_counters {
  std::uint64_t ops = 0;       // successful operations
  std::uint64_t attempts = 0;  // edit function runs (ours only: the edit re-runs on a retry)
  std::uint64_t failures = 0;  // operations that gave up (retries ran out)
};

struct run_stats {
  std::chrono::duration<double> elapsed{0};
  std::vector<std::uint64_t> thread_ops;
  std::uint64_t ops = 0;
  std::uint64_t attempts = 0;
  std::uint64_t failures = 0;

  double ops_per_second() const { return static_cast<double>(ops) / elapsed.count(); }
  double retries_per_op() const {
    return static_cast<double>(attempts - ops) /
           static_cast<double>(std::max<std::uint64_t>(ops, 1));
  }
  // The share of the work the least lucky thread got done: starvation shows here.
  double slowest_thread_share() const {
    const auto fewest = *std::min_element(thread_ops.begin(), thread_ops.end());
    return static_cast<double>(fewest) / static_cast<double>(std::max<std::uint64_t>(ops, 1));
  }
  run_stats& operator+=(const run_stats& other) {
    elapsed += other.elapsed;
    if (thread_ops.empty()) thread_ops.assign(other.thread_ops.size(), 0);
    for (std::size_t i = 0; i < thread_ops.size(); ++i) thread_ops[i] += other.thread_ops[i];
    ops += other.ops;
    attempts += other.attempts;
    failures += other.failures;
    return *this;
  }
};

// Runs op(thread, counters) in `threads` threads for about `duration`; op returns true for a
// successful operation. Every operation started is finished and counted, and the time runs until
// the last one is, so the rate is exact. Rethrows the first exception a thread threw.
template <typename Op>
run_stats run_slice(int threads, std::chrono::duration<double> duration, Op& op) {
  std::vector<thread_counters> counters(static_cast<std::size_t>(threads));
  std::atomic<bool> stop{false};
  std::mutex error_mutex;
  std::exception_ptr error;
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  for (int i = 0; i < threads; ++i) {
    workers.emplace_back([&, i] {
      thread_counters& mine = counters[static_cast<std::size_t>(i)];
      try {
        while (!stop.load(std::memory_order_relaxed)) {
          if (op(i, mine)) {
            ++mine.ops;
          } else {
            ++mine.failures;
          }
        }
      } catch (...) {
        std::lock_guard lock(error_mutex);
        if (!error) error = std::current_exception();
        stop = true;
      }
    });
  }
  std::this_thread::sleep_for(duration);
  stop = true;
  for (auto& w : workers) w.join();
  if (error) std::rethrow_exception(error);

  run_stats stats;
  stats.elapsed = std::chrono::steady_clock::now() - start;
  for (const auto& c : counters) {
    stats.thread_ops.push_back(c.ops);
    stats.ops += c.ops;
    stats.attempts += c.attempts;
    stats.failures += c.failures;
  }
  return stats;
}

// What take_turns measured.
struct turns {
  run_stats ours, baseline;  // the measured turns
  // Every turn, warm-up included: what the documents must show afterwards.
  std::uint64_t ours_ops_all = 0, baseline_ops_all = 0;
  std::vector<double> ratios;  // ours/baseline rate of each pair of turns
};

// Runs ours and baseline (each an op for run_slice) in turns of t.slice, `threads` threads each,
// until each has run t.measured, after one warm-up turn each. The order within a pair alternates
// so neither side always follows the other.
template <typename Ours, typename Baseline>
turns take_turns(int threads, const timing& t, Ours& ours, Baseline& baseline) {
  turns out;
  const int pairs = std::max(1, static_cast<int>(t.measured / t.slice + 0.5));
  for (int i = -1; i < pairs; ++i) {  // pair -1 warms both up
    run_stats o, b;
    if (i % 2 == 0) {
      o = run_slice(threads, t.slice, ours);
      b = run_slice(threads, t.slice, baseline);
    } else {
      b = run_slice(threads, t.slice, baseline);
      o = run_slice(threads, t.slice, ours);
    }
    out.ours_ops_all += o.ops;
    out.baseline_ops_all += b.ops;
    if (i < 0) continue;
    out.ours += o;
    out.baseline += b;
    out.ratios.push_back(o.ops_per_second() / b.ops_per_second());
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Scratch files.

class scratch_dir {
 public:
  scratch_dir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "eventsourced_bench.XXXXXX");
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~scratch_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;

  // A database path nobody has used yet.
  std::string fresh_database() { return (path_ / ("run" + std::to_string(++count_) + ".db")); }

  static void remove_database(const std::string& path) {
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
  }

 private:
  std::filesystem::path path_;
  int count_ = 0;
};

// The p-quantile (0..1) of values, nearest rank.
inline double percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  return values[static_cast<std::size_t>(p * static_cast<double>(values.size() - 1) + 0.5)];
}

// A benchmark's own sanity check: throws (the benchmark fails) when ok is false.
inline void check(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error(what);
}

// The comparison's RESULT line (DESIGN.md, "Measuring").
inline void print_result(const std::string& name, double ours, double baseline) {
  std::printf("RESULT name=%s ours=%.0f baseline=%.0f ratio=%.3f\n", name.c_str(), ours, baseline,
              ours / baseline);
  std::fflush(stdout);
}

}  // namespace eventsourced_bench
