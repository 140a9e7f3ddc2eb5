#include <eventsourced/event/subscription.hpp>

#include <mutex>
#include <stop_token>
#include <string>
#include <utility>

#include <eventsourced/error.hpp>
#include <eventsourced/event/checkpoint.hpp>

#include "event/consumer_loop.hpp"

namespace eventsourced {

using event_internal::background_thread;
using event_internal::delivery_failure;
using event_internal::loop_settings;
using event_internal::progress;

struct catch_up_subscription::state {
  state(event_log l, event_handler_function h, subscription_options o)
      : log(std::move(l)),
        handler(std::move(h)),
        options(std::move(o)),
        loop{options.wait_timeout, options.initial_backoff, options.max_backoff,
             options.max_attempts, options.on_error},
        cursor(options.from_position) {
    done.advance(cursor);
  }

  // Reads one batch after the cursor (waiting up to `wait` when there is none), hands each event
  // to the handler, and records progress. A stop request ends the batch early, after the current
  // handler call. A handler failure is thrown as delivery_failure after the events before it are
  // recorded.
  std::size_t handle_batch(std::chrono::milliseconds wait, const std::stop_token& stop) {
    std::lock_guard lock(batch_mutex);
    load();
    const log_page page = log.read_all_or_wait(cursor, options.batch_size, wait);
    std::size_t handled = 0;
    for (const event& e : page.events) {
      if (stop.stop_requested()) break;
      try {
        handler(e);
      } catch (...) {
        const auto failure = std::current_exception();
        try {
          record();
        } catch (const conflict_error&) {
          throw;         // another consumer took this checkpoint: that ends the subscription
        } catch (...) {  // the handler's failure is the one to report; record() reloads later
        }
        throw delivery_failure{failure};
      }
      cursor = e.position;
      ++handled;
    }
    record();
    return handled;
  }

  // Loads the checkpoint when there is one and it is not loaded (first batch, or after a failed
  // save whose outcome is unknown).
  void load() {
    if (options.checkpoint_name.empty() || loaded) return;
    cp = load_checkpoint(log.engine(), options.checkpoint_name);
    loaded = true;
    // Resume from what is durable: after a failed save this hands the handler again the events
    // the lost save covered (at least once), never fewer.
    cursor = cp.version != 0 ? cp.position : options.from_position;
    done.advance(cursor);
  }

  // Saves the checkpoint at the cursor when it moved, and publishes progress.
  void record() {
    if (!options.checkpoint_name.empty() && loaded && cursor != cp.position) {
      checkpoint next = cp;
      next.position = cursor;
      try {
        cp = save_checkpoint(log.engine(), next);
      } catch (...) {
        loaded = false;
        throw;
      }
    }
    done.advance(cursor);
  }

  const event_log log;
  const event_handler_function handler;
  const subscription_options options;
  const loop_settings loop;
  progress done;
  std::mutex batch_mutex;  // one batch at a time: poll() callers and the thread
  checkpoint cp{};         // GUARDED_BY(batch_mutex)
  bool loaded = false;     // GUARDED_BY(batch_mutex)
  std::int64_t cursor;     // GUARDED_BY(batch_mutex): the last event handled
};

namespace {

event_handler_function as_function(std::shared_ptr<event_handler> handler) {
  if (!handler) return nullptr;
  return [handler = std::move(handler)](const event& e) { handler->handle_event(e); };
}

}  // namespace

catch_up_subscription::catch_up_subscription(event_log log, event_handler_function handler,
                                             subscription_options options)
    : thread_(std::make_unique<background_thread>()) {
  const std::string who = "catch_up_subscription";
  if (!handler) throw invalid_argument_error("eventsourced: " + who + ": the handler is null");
  if (!options.checkpoint_name.empty()) validate_id(options.checkpoint_name, "checkpoint name");
  if (options.from_position < 0) {
    throw invalid_argument_error("eventsourced: " + who + ": from_position must not be negative");
  }
  if (options.batch_size == 0) {
    throw invalid_argument_error("eventsourced: " + who + ": batch_size must be at least 1");
  }
  state_ = std::make_shared<state>(std::move(log), std::move(handler), std::move(options));
  event_internal::validate(state_->loop, who);
}

catch_up_subscription::catch_up_subscription(event_log log, std::shared_ptr<event_handler> handler,
                                             subscription_options options)
    : catch_up_subscription(std::move(log), as_function(std::move(handler)), std::move(options)) {}

catch_up_subscription::~catch_up_subscription() = default;  // thread_ stops or detaches

void catch_up_subscription::start() {
  if (!thread_->running()) state_->done.clear_failure();
  thread_->start([s = state_](std::stop_token stop) {
    {
      std::lock_guard lock(s->batch_mutex);
      s->loaded = false;  // another consumer may have moved the checkpoint since the last run
    }
    event_internal::run_until_stopped(stop, s->loop, s->done,
                                      [&] { s->handle_batch(s->options.wait_timeout, stop); });
  });
}

void catch_up_subscription::stop() noexcept {
  thread_->stop();
}

bool catch_up_subscription::running() const {
  return thread_->running();
}

std::size_t catch_up_subscription::poll(std::chrono::milliseconds timeout) {
  if (timeout.count() < 0) {
    throw invalid_argument_error("eventsourced: catch_up_subscription: negative poll timeout");
  }
  if (thread_->running()) {
    throw invalid_argument_error(
        "eventsourced: catch_up_subscription: poll() while the subscription runs its own thread");
  }
  try {
    return state_->handle_batch(timeout, std::stop_token{});
  } catch (const delivery_failure& d) {
    std::rethrow_exception(d.inner);
  }
}

std::int64_t catch_up_subscription::position() const {
  return state_->done.position();
}

bool catch_up_subscription::wait_until_handled(std::int64_t position,
                                               std::chrono::milliseconds timeout) const {
  if (position < 0 || timeout.count() < 0) {
    throw invalid_argument_error(
        "eventsourced: catch_up_subscription: wait_until_handled needs a non-negative position "
        "and timeout");
  }
  return state_->done.wait_until(position, timeout);
}

std::exception_ptr catch_up_subscription::failure() const {
  return state_->done.failure();
}

}  // namespace eventsourced
