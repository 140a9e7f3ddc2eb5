// How version conflicts are retried: exponential backoff with full jitter.
//
// Attempt n (0-based) that conflicts sleeps a uniformly random time in
// [0, min(max_delay, base_delay * 2^n)] before re-reading the document and re-running the edit.
// Jitter spreads competing writers apart so they stop colliding; the cap bounds the wait.
#pragma once

#include <chrono>

namespace eventsourced {

struct retry_options {
  // false: the first conflict surfaces as conflict_error.
  bool enabled = true;
  // Total attempts, the first included. The last conflict is rethrown as conflict_error.
  int max_attempts = 20;
  std::chrono::microseconds base_delay{200};
  std::chrono::microseconds max_delay{std::chrono::milliseconds(50)};
};

namespace detail {

// Sleeps for attempt `attempt`'s jittered delay.
void backoff_sleep(const retry_options& options, int attempt);

}  // namespace detail
}  // namespace eventsourced
