// Projections: read models built from the log with an exactly-once effect.
//
// A projection names the read-model collections it owns and a handler that, for each event,
// stages writes to them through a read_model (put / erase by collection and id; reads see the
// batch's staged writes). The runner commits a batch's staged writes AND the projection's
// checkpoint in ONE engine commit. So whatever happens (a throw, a crash, kill -9), the read model
// holds the effect of exactly the events up to its checkpoint: a batch is either entirely in it,
// checkpoint included, or not at all and is handled again.
//
//   eventsourced::projection gold_by_player{
//       .name = "gold-by-player",
//       .collections = {"gold_by_player"},
//       .handle = [](const eventsourced::event& e, eventsourced::read_model& rm) {
//         if (e.type != "GoldEarned") return;
//         auto row = rm.get("gold_by_player", e.stream.id).value_or(eventsourced::json::object());
//         row["gold"] = row.value("gold", 0) + e.data["amount"].get<int>();
//         rm.put("gold_by_player", e.stream.id, row);
//       }};
//   eventsourced::projection_runner runner(store, gold_by_player);
//   runner.start();
//   ... store->documents("gold_by_player").find_one(player_id) ...
//
// Read-model documents are ordinary documents: read them through the store's collections. The
// runner stamps the store's id_field and version_field into every body it writes, like the
// store. Projection writes go to the engine directly, not through the store's write path: they
// record no events (no mapper), and the store's cache, if it has one, is refreshed by this
// runner's writes only in this process; another process's cache may serve a read-model document
// older than the committed one until its entry expires. Users must not write to a projection's
// collections themselves (those writes would make the runner's commits conflict and retry, and a
// rebuild deletes them).
//
// Handlers must be deterministic functions of the events and the read model: a rebuild replays
// the whole log and must arrive at the same read model.
//
// Rebuild. rebuild() deletes every document of the owned collections and sets the checkpoint
// back to 0, then the runner replays the log. The deletes are committed in chunks of
// rebuild_batch_size documents, each chunk together with the checkpoint at position 0 marked
// "rebuilding" (the last chunk clears the mark): if the process dies midway, the next runner sees
// the mark and finishes the deletes before handling any event. The reset is one commit when the
// read model fits in one chunk. Until the replay catches up, readers see a partial read model.
//
// \par Thread safety
// All runner methods may be called from any thread; batches, poll() and rebuild() are
// serialised. The handler runs on one thread at a time. A read_model is used by one handler call
// at a time and must not be kept beyond it. Do not call poll() or rebuild() from the handler.
//
// \par Ownership
// The runner shares the store and owns the projection; the runner's thread keeps both alive.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <eventsourced/event/event.hpp>

namespace eventsourced {

class store;
namespace event_internal {
class background_thread;
}

// The read model as one batch of a projection sees it: stored documents overlaid with the
// batch's staged writes. Only the projection's own collections may be named; anything else
// throws invalid_argument_error.
class read_model {
 public:
  virtual ~read_model() = default;
  // The document as the batch left it so far (staged write, else stored), stamped with the
  // store's id and version fields; nullopt when it does not exist or was erased.
  virtual std::optional<json> get(std::string_view collection, std::string_view id) = 0;
  // Stages the document's new body, replacing any earlier staged write. Throws
  // invalid_argument_error when body is not an object, its id field names another id, or the
  // id is invalid.
  virtual void put(std::string_view collection, std::string_view id, json body) = 0;
  // Stages the document's deletion (nothing happens when it does not exist).
  virtual void erase(std::string_view collection, std::string_view id) = 0;
};

struct projection {
  // The checkpoint's name (its id in kCheckpointCollection). One running runner per name.
  std::string name{};
  // The read-model collections this projection owns: the only ones its handler may touch, and
  // the ones a rebuild clears. User collection names (not reserved).
  std::vector<std::string> collections{};
  // Called for each event, in log order. A throw abandons the whole batch (nothing of it is
  // committed); the batch is handled again later, never skipped.
  std::function<void(const event&, read_model&)> handle{};
};

struct projection_options {
  // Most events per batch: per engine commit of read-model writes and checkpoint.
  std::size_t batch_size = 256;
  // Documents deleted per commit during a rebuild.
  std::size_t rebuild_batch_size = 500;
  // Longest single wait for new events; on the runner's thread it bounds how long stop() waits.
  std::chrono::milliseconds wait_timeout{100};
  // Backoff between retries after a failure (thread form), with jitter.
  std::chrono::milliseconds initial_backoff{10};
  std::chrono::milliseconds max_backoff{5000};
  // Consecutive failures after which the thread stops (failure() says why); 0: never gives up.
  std::size_t max_attempts = 0;
  // Called on the runner's thread with every failure before the retry. Must not throw.
  std::function<void(std::exception_ptr)> on_error{};
};

class projection_runner {
 public:
  // Throws invalid_argument_error for a null store, an invalid name, an invalid, reserved or
  // repeated collection, a null handler, batch sizes of 0 or non-positive waits/backoffs;
  // store_closed_error for a closed store.
  projection_runner(std::shared_ptr<store> store, projection definition,
                    projection_options options = {});
  projection_runner(const projection_runner&) = delete;
  projection_runner& operator=(const projection_runner&) = delete;
  ~projection_runner();

  // Runs batches on the runner's own thread until stop(). Does nothing when already running.
  // Failures are retried with backoff except permanent ones: a conflict on the checkpoint
  // (another runner with this name), a closed store, a batch the engine refuses (for instance a
  // document over the size limit) — those stop the thread and failure() holds them.
  void start();
  // Stops the thread after the current batch (its commit included, or abandoned). Idempotent;
  // never throws.
  void stop() noexcept;
  bool running() const;

  // Pull form: one batch on the calling thread, waiting up to `timeout` for events. Returns the
  // number of events handled and committed. Throws what the handler throws (nothing committed),
  // conflict_error (checkpoint or read model changed by someone else; nothing committed),
  // invalid_argument_error while the runner's thread runs or for a negative timeout, and what the
  // engine throws.
  std::size_t poll(std::chrono::milliseconds timeout);

  // Clears the read model and sets the checkpoint to 0 (see the header comment); the runner
  // then replays the log from its beginning. Waits for a batch in progress. Throws
  // conflict_error when someone else changed the checkpoint or the read model meanwhile (the
  // rebuild then finishes on the next batch, if its first chunk was committed), and what the
  // engine throws.
  void rebuild();

  // The checkpoint's position: every event up to it is in the read model.
  std::int64_t position() const;
  // Waits until position() >= position: true; false on timeout. Rethrows the error that stopped
  // the thread, if it stopped before. Throws invalid_argument_error for negative arguments.
  bool wait_until_processed(std::int64_t position, std::chrono::milliseconds timeout) const;
  // The error that stopped the runner's thread, or nullptr.
  std::exception_ptr failure() const;

 private:
  struct state;
  std::shared_ptr<state> state_;
  std::unique_ptr<event_internal::background_thread> thread_;
};

}  // namespace eventsourced
