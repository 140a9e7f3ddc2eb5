// Catch-up subscriptions: a handler called for every event of the log, in log order, from a
// stored checkpoint (or a given position), through the history and then live as events commit.
//
//   eventsourced::catch_up_subscription mailer(
//       eventsourced::event_log(store),
//       [](const eventsourced::event& e) { send_mail_for(e); },
//       {.checkpoint_name = "mailer"});
//   mailer.start();   // its own thread; or call mailer.poll(timeout) from yours
//
// Delivery is at least once: the checkpoint (when named) is saved after each batch, and after the
// events a failing handler call had been preceded by, so a restart resumes after the last saved
// checkpoint and hands the handler again only what came after it. Events arrive in global
// position order, each once per run — except after a failed checkpoint save, when the
// subscription resumes from the last saved checkpoint and the handler gets again the events that
// save would have covered; a handler that throws gets the same event again
// (after a backoff on the subscription's thread; on the next poll() in pull form), and is never
// skipped past.
//
// The handler runs on the subscription's thread (start()) or on the thread calling poll(), never
// on two threads at once. It may call stop() or destroy the subscription (thread form only): the
// current call is then the last one.
//
// For an exactly-once effect on documents the handler writes, use a projection (projection.hpp):
// it commits the writes and the checkpoint together.
//
// \par Thread safety
// All methods may be called from any thread. poll() calls are serialised; poll() throws while the
// subscription runs its own thread.
//
// \par Ownership
// The subscription shares the log (engine) and owns the handler; both live until its thread
// ends. Destroying it stops it (waiting for a running handler call to return, unless destroyed
// from inside that call).
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

struct subscription_options {
  // Non-empty: resume after the checkpoint of this name (kCheckpointCollection) and save it after
  // every batch. Empty: no checkpoint; progress is kept in memory only.
  std::string checkpoint_name{};
  // Where to start when there is no saved checkpoint: the first event handled is the first one
  // after this position (0: the whole log).
  std::int64_t from_position = 0;
  // Most events read (and handled before the checkpoint is saved) per batch.
  std::size_t batch_size = 256;
  // Longest single wait for new events (wakes at once on commits of this process's engine); on
  // the subscription's thread this bounds how long stop() waits.
  std::chrono::milliseconds wait_timeout{100};
  // Backoff between retries after a handler or engine failure (thread form): doubles from
  // initial_backoff to max_backoff, with jitter.
  std::chrono::milliseconds initial_backoff{10};
  std::chrono::milliseconds max_backoff{5000};
  // Consecutive failures after which the thread stops (failure() says why); 0: never gives up.
  std::size_t max_attempts = 0;
  // Called on the subscription's thread with every failure before the retry. Must not throw.
  std::function<void(std::exception_ptr)> on_error{};
};

class catch_up_subscription {
 public:
  // Throws invalid_argument_error for a null handler, an invalid checkpoint name (document id
  // rules), a negative from_position, batch_size 0, or non-positive waits/backoffs.
  catch_up_subscription(event_log log, event_handler_function handler,
                        subscription_options options = {});
  catch_up_subscription(event_log log, std::shared_ptr<event_handler> handler,
                        subscription_options options = {});
  catch_up_subscription(const catch_up_subscription&) = delete;
  catch_up_subscription& operator=(const catch_up_subscription&) = delete;
  ~catch_up_subscription();

  // Runs the subscription on its own thread until stop(). Does nothing when already running. A
  // subscription stopped with a failure may be started again (failure cleared, checkpoint
  // reloaded).
  void start();
  // Stops the thread, waiting for the current handler call (unless called from the handler);
  // the checkpoint is saved up to the last event handled. Idempotent; never throws.
  void stop() noexcept;
  bool running() const;

  // Pull form: handles at most one batch on the calling thread, waiting up to `timeout` when no
  // event is there yet. Returns how many events were handled. A handler's exception propagates
  // unchanged after the checkpoint records the events handled before it; the next poll() starts
  // with the event that failed. Throws invalid_argument_error while the subscription runs its
  // own thread or for a negative timeout, and what the engine throws (conflict_error when another
  // consumer saved the same checkpoint).
  std::size_t poll(std::chrono::milliseconds timeout);

  // The position of the last event handled and recorded (in the checkpoint, when named).
  std::int64_t position() const;
  // Waits until position() >= position: true; false on timeout. Rethrows the error that stopped
  // the thread, if it stopped before. Throws invalid_argument_error for negative arguments.
  bool wait_until_handled(std::int64_t position, std::chrono::milliseconds timeout) const;
  // The error that stopped the subscription's thread, or nullptr.
  std::exception_ptr failure() const;

 private:
  struct state;
  std::shared_ptr<state> state_;
  std::unique_ptr<event_internal::background_thread> thread_;
};

}  // namespace eventsourced
