// Reading the event log: one stream from a version, everything after a global position in pages,
// and waiting for new events.
//
//   eventsourced::event_log log(store);
//   std::int64_t after = 0;
//   for (auto page = log.read_all(after); !page.events.empty(); page = log.read_all(after)) {
//     for (const auto& e : page.events) handle(e);
//     after = page.next_position;
//   }
//
// An event_log is a thin, validating view on an engine's read_stream / read_all / wait_for; the
// relay, subscriptions, projections and watches are built on it. Positions are the engine's:
// strictly increasing in commit order as readers see it, so a reader that continues from the last
// position it saw never misses a later commit and never sees an event twice. Positions may have
// gaps; never compute one, always continue from next_position.
//
// \par Thread safety
// An event_log is an immutable handle: every method may be called from many threads at once.
// Copies share the engine.
//
// \par Ownership
// An event_log made from a store keeps the store (and so its engine) alive; one made from an
// engine shares that engine.
//
// \par Errors
// Bad arguments throw invalid_argument_error before the engine is touched. Otherwise each call
// throws what the engine throws: store_closed_error after close(), engine_unavailable_error
// (retryable), serialization_error for a corrupt stored event, engine_error.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include <eventsourced/engine/engine.hpp>
#include <eventsourced/event/event.hpp>
#include <eventsourced/event/upcaster.hpp>

namespace eventsourced {

class store;

// How many events a read returns when the caller does not say.
inline constexpr std::size_t kDefaultLogPageSize = 256;

// A page of the log.
struct log_page {
  std::vector<event> events;  // position order
  // Where the next read continues: the position of the last event, or the position asked for
  // when the page is empty.
  std::int64_t next_position = 0;
  // True when the page holds as many events as were asked for: more may follow at once.
  bool full = false;
};

class event_log {
 public:
  // Throws invalid_argument_error for a null store, store_closed_error for a closed one. Events
  // are upcast through the store's options().upcasters when it has one.
  explicit event_log(std::shared_ptr<store> store);
  // Throws invalid_argument_error for a null engine. Events are upcast through `upcasters` when
  // it is not null (event/upcaster.hpp).
  explicit event_log(std::shared_ptr<eventsourced::engine> engine,
                     std::shared_ptr<const upcaster_chain> upcasters = nullptr);

  // Events of `stream` with stream_version >= from_version (versions start at 1), at most max, in
  // stream order. Throws invalid_argument_error for an invalid stream type or id, from_version < 1
  // or max == 0.
  std::vector<event> read_stream(const stream_ref& stream, std::int64_t from_version = 1,
                                 std::size_t max = kDefaultLogPageSize) const;

  // Events with position > after_position (0: from the beginning), at most max. Throws
  // invalid_argument_error for a negative position or max == 0.
  log_page read_all(std::int64_t after_position, std::size_t max = kDefaultLogPageSize) const;

  // Blocks until an event with position > after_position is visible (true) or the timeout
  // passes (false). Commits through this process's engine object wake it at once; other
  // processes' commits are noticed by the engine's polling. Throws invalid_argument_error for a
  // negative position or timeout; store_closed_error when the engine is closed, also while
  // waiting.
  bool wait_for(std::int64_t after_position, std::chrono::milliseconds timeout) const;

  // read_all, and when that finds nothing, waits up to `timeout` for an event and reads again:
  // the building block of live tailing. Same errors as read_all and wait_for.
  log_page read_all_or_wait(std::int64_t after_position, std::size_t max,
                            std::chrono::milliseconds timeout) const;

  // The engine this log reads (for committing checkpoints with it).
  eventsourced::engine& engine() const noexcept { return *engine_; }
  const std::shared_ptr<eventsourced::engine>& shared_engine() const noexcept { return engine_; }
  // The upcasters every read applies (null: none).
  const std::shared_ptr<const upcaster_chain>& upcasters() const noexcept { return upcasters_; }

 private:
  std::shared_ptr<eventsourced::engine> engine_;
  std::shared_ptr<const upcaster_chain> upcasters_;
};

}  // namespace eventsourced
