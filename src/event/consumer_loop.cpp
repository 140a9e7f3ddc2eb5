#include "event/consumer_loop.hpp"

#include <algorithm>
#include <random>
#include <string>
#include <utility>

#include <eventsourced/error.hpp>

namespace eventsourced::event_internal {
namespace {

// Which background_thread the current thread runs for, and how it stops itself: lets stop() and
// the destructor recognise a call from the thread's own handler without reading shared members.
thread_local const background_thread* current_owner = nullptr;
thread_local std::stop_source* current_stop = nullptr;

std::exception_ptr unwrapped(const std::exception_ptr& failure) {
  try {
    std::rethrow_exception(failure);
  } catch (const delivery_failure& d) {
    return d.inner;
  } catch (...) {
    return failure;
  }
}

}  // namespace

void validate(const loop_settings& settings, std::string_view who) {
  auto fail = [&](const std::string& what) {
    throw invalid_argument_error("eventsourced: " + std::string(who) + ": " + what);
  };
  if (settings.wait_timeout.count() <= 0) fail("wait_timeout must be positive");
  if (settings.initial_backoff.count() <= 0) fail("initial_backoff must be positive");
  if (settings.max_backoff < settings.initial_backoff) {
    fail("max_backoff must not be below initial_backoff");
  }
}

bool is_permanent(const std::exception_ptr& failure) {
  try {
    std::rethrow_exception(failure);
  } catch (const delivery_failure& d) {
    try {
      std::rethrow_exception(d.inner);
    } catch (const store_closed_error&) {
      return true;
    } catch (...) {
      return false;
    }
  } catch (const conflict_error&) {
    return true;
  } catch (const error& e) {
    return !e.retryable();
  } catch (...) {
    return false;
  }
}

std::chrono::milliseconds backoff_delay(const loop_settings& settings, std::size_t attempt) {
  auto delay = settings.initial_backoff;
  for (std::size_t i = 1; i < attempt && delay < settings.max_backoff; ++i) delay *= 2;
  delay = std::min(delay, settings.max_backoff);
  thread_local std::minstd_rand random(std::random_device{}());
  std::uniform_int_distribution<std::int64_t> jitter(delay.count() / 2, delay.count());
  return std::chrono::milliseconds(jitter(random));
}

bool sleep_unless_stopped(const std::stop_token& stop, std::chrono::milliseconds delay) {
  std::mutex mutex;
  std::condition_variable_any never_notified;
  std::unique_lock lock(mutex);
  never_notified.wait_for(lock, stop, delay, [] { return false; });
  return !stop.stop_requested();
}

void progress::advance(std::int64_t position) {
  {
    std::lock_guard lock(mutex_);
    position_ = position;
  }
  changed_.notify_all();
}

void progress::fail(std::exception_ptr failure) {
  {
    std::lock_guard lock(mutex_);
    failure_ = std::move(failure);
  }
  changed_.notify_all();
}

void progress::clear_failure() {
  std::lock_guard lock(mutex_);
  failure_ = nullptr;
}

std::int64_t progress::position() const {
  std::lock_guard lock(mutex_);
  return position_;
}

std::exception_ptr progress::failure() const {
  std::lock_guard lock(mutex_);
  return failure_;
}

bool progress::wait_until(std::int64_t position, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, timeout, [&] { return position_ >= position || failure_; });
  if (position_ >= position) return true;
  if (failure_) std::rethrow_exception(failure_);
  return false;
}

void run_until_stopped(const std::stop_token& stop, const loop_settings& settings,
                       progress& progress, const std::function<void()>& batch,
                       const std::function<bool(const std::exception_ptr&)>& permanent) {
  std::size_t failures = 0;
  while (!stop.stop_requested()) {
    std::exception_ptr failure;
    try {
      batch();
      failures = 0;
      continue;
    } catch (...) {
      failure = std::current_exception();
    }
    const std::exception_ptr reported = unwrapped(failure);
    if (settings.on_error) {
      try {
        settings.on_error(reported);
      } catch (...) {  // documented: the callback must not throw; one that does is ignored
      }
    }
    ++failures;
    if (permanent(failure) || (settings.max_attempts != 0 && failures >= settings.max_attempts)) {
      progress.fail(reported);
      return;
    }
    if (!sleep_unless_stopped(stop, backoff_delay(settings, failures))) return;
  }
}

background_thread::~background_thread() {
  if (on_this_thread()) {
    // Destroyed by its own thread's handler: joining would deadlock. The thread sees the stop
    // when the handler returns and ends on its own; its body owns what it still touches.
    current_stop->request_stop();
    current_owner = nullptr;  // this address may soon belong to another consumer
    std::lock_guard lock(mutex_);
    if (thread_.joinable()) thread_.detach();
    return;
  }
  stop();
}

bool background_thread::start(std::function<void(std::stop_token)> body) {
  if (on_this_thread()) return false;  // running, by definition
  // After a stop() in progress on another thread: never two bodies at once.
  std::lock_guard stopping(stop_mutex_);
  std::lock_guard lock(mutex_);
  if (thread_.joinable()) {
    if (!finished_->load()) return false;
    thread_.join();
  }
  stop_ = std::stop_source();
  finished_ = std::make_shared<std::atomic<bool>>(false);
  thread_ = std::thread(
      [owner = this, source = stop_, finished = finished_, body = std::move(body)]() mutable {
        current_owner = owner;  // an identity only, never dereferenced
        current_stop = &source;
        body(source.get_token());
        current_owner = nullptr;
        current_stop = nullptr;
        finished->store(true);
      });
  return true;
}

void background_thread::stop() noexcept {
  if (on_this_thread()) {
    current_stop->request_stop();
    return;
  }
  // stop_mutex_, held while joining, makes a concurrent stop() return after the end too; mutex_
  // is not held while joining, so the thread itself may still call running() or start().
  std::lock_guard stopping(stop_mutex_);
  std::thread thread;
  {
    std::lock_guard lock(mutex_);
    if (!thread_.joinable()) return;
    stop_.request_stop();
    thread = std::move(thread_);
  }
  thread.join();
}

bool background_thread::running() const {
  std::lock_guard lock(mutex_);
  return !finished_->load();  // finished_ starts true and is replaced only by start()
}

bool background_thread::on_this_thread() const noexcept {
  return current_owner == this;
}

}  // namespace eventsourced::event_internal
