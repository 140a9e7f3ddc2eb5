// What the log consumers (outbox_relay, catch_up_subscription, projection_runner) share: the
// background thread, the retry loop with backoff, and progress that other threads wait on.
// Private to the library.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string_view>
#include <thread>

namespace eventsourced::event_internal {

// The loop-related options every consumer has (copied out of its public options struct).
struct loop_settings {
  std::chrono::milliseconds wait_timeout{100};
  std::chrono::milliseconds initial_backoff{10};
  std::chrono::milliseconds max_backoff{5000};
  std::size_t max_attempts = 0;  // 0: unlimited
  std::function<void(std::exception_ptr)> on_error{};
};

// Throws invalid_argument_error naming `who` for a non-positive wait or backoff, or a max_backoff
// below initial_backoff.
void validate(const loop_settings& settings, std::string_view who);

// Thrown by a consumer's batch when the user's part (handler, bus) failed, as opposed to the
// engine: the loop classifies the two differently.
struct delivery_failure {
  std::exception_ptr inner;
};

// Whether a failure ends the loop instead of being retried. Permanent: a failed delivery whose
// inner error is store_closed_error (a closed bus or store never reopens); a conflict_error (a
// consumer only conflicts on its checkpoint: another consumer took the name); any other
// eventsourced::error that is not retryable. Everything else is retried.
bool is_permanent(const std::exception_ptr& failure);

// The delay before retry `attempt` (1-based): initial_backoff doubled per attempt up to
// max_backoff, with full jitter in its upper half so that consumers retrying together spread out.
std::chrono::milliseconds backoff_delay(const loop_settings& settings, std::size_t attempt);

// Sleeps for `delay` unless a stop is requested first. Returns false when stopped.
bool sleep_unless_stopped(const std::stop_token& stop, std::chrono::milliseconds delay);

// A consumer's progress as other threads see it: the position processed so far, and the error
// that stopped the consumer, if any.
class progress {
 public:
  void advance(std::int64_t position);
  void fail(std::exception_ptr failure);
  void clear_failure();
  std::int64_t position() const;
  std::exception_ptr failure() const;
  // True once position() >= position; false on timeout; rethrows the failure if the consumer
  // stopped with one before getting there.
  bool wait_until(std::int64_t position, std::chrono::milliseconds timeout) const;

 private:
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::int64_t position_ = 0;   // GUARDED_BY(mutex_)
  std::exception_ptr failure_;  // GUARDED_BY(mutex_)
};

// Runs batch() until a stop is requested or a failure is permanent (is_permanent, or
// max_attempts consecutive failures). Every failure goes to settings.on_error first (which must
// not throw; if it does, the throw is ignored); a permanent one is recorded in `progress`.
// Between retries it sleeps backoff_delay(). `permanent` decides what ends the loop.
void run_until_stopped(
    const std::stop_token& stop, const loop_settings& settings, progress& progress,
    const std::function<void()>& batch,
    const std::function<bool(const std::exception_ptr&)>& permanent = is_permanent);

// One background thread that can be stopped from any thread, its own included (a handler that
// stops or destroys its consumer). The body must own (share) everything it touches: when the
// owner is destroyed from the thread itself, the thread is detached and runs on to its end.
class background_thread {
 public:
  background_thread() = default;
  background_thread(const background_thread&) = delete;
  background_thread& operator=(const background_thread&) = delete;
  ~background_thread();

  // Starts body on a new thread; returns false (and does nothing) when one is running.
  bool start(std::function<void(std::stop_token)> body);
  // Requests a stop; from another thread also waits for the thread to end. Never throws.
  void stop() noexcept;
  // True between start() and the thread's end.
  bool running() const;
  // True when called on this object's thread.
  bool on_this_thread() const noexcept;

 private:
  std::mutex stop_mutex_;  // held by stop() while joining, and by start()
  mutable std::mutex mutex_;
  std::thread thread_;     // GUARDED_BY(mutex_)
  std::stop_source stop_;  // GUARDED_BY(mutex_); the running thread holds a copy
  // Set by the thread when its body has returned; shared so a detached thread can still set it.
  std::shared_ptr<std::atomic<bool>> finished_ =  // GUARDED_BY(mutex_)
      std::make_shared<std::atomic<bool>>(true);
};

}  // namespace eventsourced::event_internal
