// The outbox relay: publishes committed events from the log to an event bus, after commit.
//
// A store commits each write together with its events (one engine commit); nothing is published
// at that moment. The relay is a background thread that reads the log after a durable checkpoint,
// publishes each batch to the bus in log order, then saves the checkpoint. So:
//   - at least once: an event is published before the checkpoint that covers it is saved. After a
//     crash (or a failed checkpoint save, or a publish that threw half-way) the relay resumes
//     from its last saved checkpoint and publishes again what came after it. Duplicates are
//     events after the last saved checkpoint, only; consumers recognise them by event id.
//   - in order: events are published in log (global position) order, which keeps every
//     stream's order. A batch that fails is published again from its first event.
//   - nothing skipped: when the bus throws, the same batch is retried with exponential backoff
//     (and jitter) until it succeeds, max_attempts runs out, or stop(). The relay never moves
//     past an event it could not publish; when it gives up it stops, and failure() says why.
//
// "Published" means the bus's publish() returned. With a bus that dispatches asynchronously in
// memory (in_memory_event_bus in async mode) the handlers may not have run yet when the
// checkpoint is saved, so a crash can lose those deliveries: at least once across crashes needs a
// synchronous bus or a durable one (Redis Streams, NATS JetStream), whose publish returns once the
// broker has the event.
//
// One relay per name. Two relays with the same name at once (two processes) are detected, not
// prevented: both publish, and the second to save the checkpoint gets a conflict_error and stops
// (failure() holds it) instead of overwriting the other's progress.
//
//   eventsourced::outbox_relay relay(eventsourced::event_log(store), bus, {.name = "outbox"});
//   relay.start();
//   ...
//   relay.stop();   // or let the destructor do it
//
// \par Thread safety
// All methods may be called from any thread, concurrently. stop() may be called from a bus
// handler running on the relay's thread (synchronous bus): it returns at once and the relay ends
// after the current publish. The destructor must not run on the relay's thread unless nothing
// else uses the relay.
//
// \par Ownership
// The relay shares the log (engine) and the bus; both stay alive while its thread runs.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string>

#include <eventsourced/event/bus.hpp>
#include <eventsourced/event/log.hpp>

namespace eventsourced {

namespace event_internal {
class background_thread;
}

struct relay_options {
  // The checkpoint's name (its id in kCheckpointCollection). One running relay per name.
  std::string name = "outbox";
  // Most events read and published per batch; the checkpoint is saved after each batch.
  std::size_t batch_size = 256;
  // Longest single wait for new events. The relay wakes at once on commits of this process's
  // engine object; this bounds how long stop() waits for the thread.
  std::chrono::milliseconds wait_timeout{100};
  // Backoff between retries of a failed publish or engine call: doubles from initial_backoff up
  // to max_backoff, with jitter.
  std::chrono::milliseconds initial_backoff{10};
  std::chrono::milliseconds max_backoff{5000};
  // Consecutive failures after which the relay stops (failure() says why); 0: never gives up.
  std::size_t max_attempts = 0;
  // Called on the relay's thread with every failure (a publish that threw, an engine error),
  // before the retry. Must not throw.
  std::function<void(std::exception_ptr)> on_error{};
};

class outbox_relay {
 public:
  // Throws invalid_argument_error for a null bus, an invalid name (document id rules),
  // batch_size 0, or non-positive waits/backoffs.
  outbox_relay(event_log log, std::shared_ptr<event_bus> bus, relay_options options = {});
  outbox_relay(const outbox_relay&) = delete;
  outbox_relay& operator=(const outbox_relay&) = delete;
  // Stops the relay (see stop()).
  ~outbox_relay();

  // Starts the background thread, which loads the checkpoint and publishes from there. Does
  // nothing when the relay is already running. A relay stopped with a failure may be started
  // again: the failure is cleared and the checkpoint reloaded.
  void start();
  // Stops publishing and waits for the thread to end (at most about wait_timeout, or one
  // publish). An event published but not yet checkpointed is published again by the next run.
  // Idempotent; never throws.
  void stop() noexcept;
  bool running() const;

  // The position of the last checkpoint this relay saved (or loaded): every event up to it has
  // been published. 0 before the checkpoint is loaded.
  std::int64_t published_position() const;
  // Waits until published_position() >= position: true; false on timeout. Rethrows the error the
  // relay stopped with, if it stopped before getting there. Throws invalid_argument_error for a
  // negative position or timeout.
  bool wait_until_published(std::int64_t position, std::chrono::milliseconds timeout) const;
  // The error that stopped the relay (a conflict_error: another relay with this name; a closed
  // store or bus; a permanent engine error; max_attempts failures), or nullptr.
  std::exception_ptr failure() const;

 private:
  struct state;
  std::shared_ptr<state> state_;
  std::unique_ptr<event_internal::background_thread> thread_;
};

}  // namespace eventsourced
