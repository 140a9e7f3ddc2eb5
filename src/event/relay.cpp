#include <eventsourced/event/relay.hpp>

#include <span>
#include <utility>

#include <eventsourced/error.hpp>
#include <eventsourced/event/checkpoint.hpp>

#include "event/consumer_loop.hpp"

namespace eventsourced {

using event_internal::background_thread;
using event_internal::delivery_failure;
using event_internal::loop_settings;
using event_internal::progress;

struct outbox_relay::state {
  state(event_log l, std::shared_ptr<event_bus> b, relay_options o)
      : log(std::move(l)),
        bus(std::move(b)),
        options(std::move(o)),
        loop{options.wait_timeout, options.initial_backoff, options.max_backoff,
             options.max_attempts, options.on_error} {}

  // One batch: read after the checkpoint (waiting up to wait_timeout when there is nothing),
  // publish, save the checkpoint. Runs on the relay thread only.
  void publish_batch() {
    if (!loaded) {
      cp = load_checkpoint(log.engine(), options.name);
      loaded = true;
      published.advance(cp.position);
    }
    const log_page page =
        log.read_all_or_wait(cp.position, options.batch_size, options.wait_timeout);
    if (page.events.empty()) return;
    try {
      bus->publish(std::span<const event>(page.events));
    } catch (...) {
      throw delivery_failure{std::current_exception()};
    }
    checkpoint next = cp;
    next.position = page.next_position;
    try {
      cp = save_checkpoint(log.engine(), next);
    } catch (...) {
      // The save may have failed with its outcome unknown: reload before trusting cp's version
      // again. The batch is then published again (at least once), never skipped.
      loaded = false;
      throw;
    }
    published.advance(cp.position);
  }

  const event_log log;
  const std::shared_ptr<event_bus> bus;
  const relay_options options;
  const loop_settings loop;
  progress published;
  // The relay thread's own: at most one thread runs publish_batch at a time.
  checkpoint cp{};
  bool loaded = false;
};

outbox_relay::outbox_relay(event_log log, std::shared_ptr<event_bus> bus, relay_options options)
    : thread_(std::make_unique<background_thread>()) {
  if (!bus) throw invalid_argument_error("eventsourced: outbox_relay: the bus is null");
  validate_id(options.name, "relay name");
  if (options.batch_size == 0) {
    throw invalid_argument_error("eventsourced: outbox_relay: batch_size must be at least 1");
  }
  state_ = std::make_shared<state>(std::move(log), std::move(bus), std::move(options));
  event_internal::validate(state_->loop, "outbox_relay");
}

outbox_relay::~outbox_relay() = default;  // thread_'s destructor stops (or detaches) the thread

void outbox_relay::start() {
  // Cleared here, not on the thread, so that a wait right after start() does not see the
  // previous run's failure.
  if (!thread_->running()) state_->published.clear_failure();
  thread_->start([s = state_](std::stop_token stop) {
    s->loaded = false;
    event_internal::run_until_stopped(stop, s->loop, s->published, [&] { s->publish_batch(); });
  });
}

void outbox_relay::stop() noexcept {
  thread_->stop();
}

bool outbox_relay::running() const {
  return thread_->running();
}

std::int64_t outbox_relay::published_position() const {
  return state_->published.position();
}

bool outbox_relay::wait_until_published(std::int64_t position,
                                        std::chrono::milliseconds timeout) const {
  if (position < 0 || timeout.count() < 0) {
    throw invalid_argument_error(
        "eventsourced: outbox_relay: wait_until_published needs a non-negative position and "
        "timeout");
  }
  return state_->published.wait_until(position, timeout);
}

std::exception_ptr outbox_relay::failure() const {
  return state_->published.failure();
}

}  // namespace eventsourced
