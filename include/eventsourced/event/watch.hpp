// Watch (the seeds' Watch): the document changes of one collection, or of every collection, from
// a position of the log on, as they commit.
//
//   auto changes = eventsourced::watch(eventsourced::event_log(store), {.collection = "players"});
//   while (running) {
//     if (auto change = changes.next(std::chrono::seconds(1))) {
//       refresh(change->collection, change->id, change->version);
//       save_resume_token(changes.position());
//     }
//   }
//
// Built on the log, not on a backend feature: a change is a document write of the store, seen
// through the events the store recorded for it in the same commit (their metadata "document"
// names collection, id and version; see event.hpp). So a watch sees exactly the committed writes,
// in commit order, survives restarts (resume after position()) and works on every engine. Writes
// that record no events (a store without a mapper; projection writes) are not seen. Events
// without "document" metadata (aggregate events) are skipped.
//
// A change groups the consecutive events of one write; a write whose events are not consecutive
// in the log (a custom mapper spreading them over streams that other writes of the same
// transaction also append to) is reported as one change per run of consecutive events, each with
// the same collection, id and version.
//
// Cost: a watch reads every event after its position and filters them, so catching up costs in
// proportion to the log written since, not to the collection's changes. Live, it wakes on each
// commit (at once in this process; by polling for other processes' commits on SQLite).
//
// \par Thread safety
// A change_stream is used by one thread at a time (it is a cursor). Many change streams may read
// one store at once.
//
// \par Ownership
// A change_stream shares its log's engine (and store).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include <eventsourced/event/event.hpp>
#include <eventsourced/event/log.hpp>

namespace eventsourced {

// One committed document write.
struct committed_change {
  std::string collection;
  std::string id;
  // The document's version after the write (for a delete, the tombstone's version).
  std::int64_t version = 0;
  // The position of the change's last event: a watch resumed after it continues with the next
  // change.
  std::int64_t position = 0;
  // The events recorded for the write, in log order; at least one.
  std::vector<event> events;
};

struct watch_options {
  // The collection to watch; empty: every collection.
  std::string collection{};
  // Changes whose events come after this log position (0: from the beginning of the log).
  std::int64_t after_position = 0;
  // Events read from the log per round trip.
  std::size_t batch_size = kDefaultLogPageSize;
};

class change_stream {
 public:
  // Throws invalid_argument_error for an invalid collection name, a negative position or
  // batch_size 0.
  change_stream(event_log log, watch_options options = {});

  // The next change, waiting up to `timeout` for one to commit; nullopt on timeout. Throws
  // invalid_argument_error for a negative timeout, and what the engine throws (store_closed_error
  // once the store is closed).
  std::optional<committed_change> next(std::chrono::milliseconds timeout);

  // The resume token: every change at or below this position has been returned by next(), none
  // after it. A change_stream opened with after_position = position() continues exactly here.
  std::int64_t position() const noexcept;

 private:
  struct pending {
    committed_change change;
    std::int64_t after = 0;  // the scan position before the change's first event
  };
  // Reads one page after scanned_ and turns it into changes; waits up to `timeout` when the log
  // has nothing new and no change is held back.
  void scan(std::chrono::milliseconds timeout);
  void release_tail();

  event_log log_;
  watch_options options_;
  std::int64_t scanned_;         // the last log position examined
  std::deque<pending> ready_;    // complete changes not returned yet, in log order
  std::optional<pending> tail_;  // the last change of a full page: more of its events may follow
};

// A change_stream over log (see watch_options).
change_stream watch(event_log log, watch_options options = {});

}  // namespace eventsourced
