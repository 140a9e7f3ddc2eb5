// event_sourced_storage: the seeds' EventSourcedStorage — a store whose every write records its
// events in the same commit (an event mapper), and an outbox relay that publishes those events
// to a bus after commit.
//
//   auto es = eventsourced::event_sourced_storage::open("sqlite:game.db");
//   auto sub = es->subscribe("players.created", [](const eventsourced::event& e) { ... });
//   auto players = es->collection<Player>("players");
//   players.find_one_and_upsert(Player{.id = "p1"});   // document + event: one commit;
//                                                      // the relay then publishes the event
//
// Nothing is published from inside a write: the relay reads the log after its durable
// checkpoint (relay.hpp), so publication is at least once, in log order, and survives crashes;
// handlers deduplicate by event id. A write never fails because a bus does.
//
// "Published" means the bus accepted the event. A handler that throws is the bus's to handle:
// the default in_memory_event_bus retries it (in_memory_bus_options::max_attempts, 1 by
// default), then records it in dead_letters() and calls on_handler_failure — the relay does not
// publish the event again. Pass your own bus (options.bus) to choose that policy; a handler that
// must not miss an event it failed on should be a catch_up_subscription (subscription.hpp), which
// retries the failed event until it succeeds.
//
// \par Thread safety
// Safe to use from many threads at once, like the store and the bus it holds.
//
// \par Ownership
// Owns (shares) the store, the bus and the relay. close() — or the destructor — stops the relay,
// then closes the bus and the store.
#pragma once

#include <chrono>
#include <memory>
#include <string_view>

#include <eventsourced/event/bus.hpp>
#include <eventsourced/event/log.hpp>
#include <eventsourced/event/mapper.hpp>
#include <eventsourced/event/relay.hpp>
#include <eventsourced/storage/store.hpp>

namespace eventsourced {

struct event_sourced_options {
  // The store's options. A null mapper becomes a default_event_mapper.
  store_options storage{};
  // Where the relay publishes. nullptr: an in_memory_event_bus with synchronous dispatch (the
  // relay's thread runs the handlers).
  std::shared_ptr<event_bus> bus{};
  // The relay's options (its name is its checkpoint's id).
  relay_options relay{};
  // Start the relay at once. When false, call relay().start() yourself (e.g. after subscribing
  // every handler, so none misses the events already in the log).
  bool start_relay = true;
};

class event_sourced_storage {
 public:
  // Opens the store at uri (see store::open) and starts the relay. Throws what store::open and
  // outbox_relay's constructor throw.
  static std::unique_ptr<event_sourced_storage> open(std::string_view uri,
                                                     event_sourced_options options = {});
  // The same over a store you opened (its options must carry a mapper, or invalid_argument_error).
  static std::unique_ptr<event_sourced_storage> wrap(std::shared_ptr<eventsourced::store> store,
                                                     event_sourced_options options = {});

  event_sourced_storage(const event_sourced_storage&) = delete;
  event_sourced_storage& operator=(const event_sourced_storage&) = delete;
  ~event_sourced_storage();

  template <typename T>
  eventsourced::collection<T> collection(std::string_view name) {
    return store_->collection<T>(name);
  }
  document_collection documents(std::string_view name) { return store_->documents(name); }
  template <typename F>
  auto with_transaction(F&& fn, const write_options& options = {}) {
    return store_->with_transaction(std::forward<F>(fn), options);
  }

  // Subscribes a handler on the bus (a type, or kAllEvents).
  subscription subscribe(std::string_view type, event_handler_function handler) {
    return bus_->subscribe(type, std::move(handler));
  }
  subscription subscribe(std::string_view type, std::shared_ptr<event_handler> handler) {
    return bus_->subscribe(type, std::move(handler));
  }

  // Waits until the relay has published every event committed before the call: true; false on
  // timeout. Rethrows the error the relay stopped with.
  bool wait_until_published(std::chrono::milliseconds timeout);

  const std::shared_ptr<eventsourced::store>& store() const noexcept { return store_; }
  event_bus& bus() const noexcept { return *bus_; }
  const event_log& log() const noexcept { return log_; }
  outbox_relay& relay() noexcept { return *relay_; }

  // Stops the relay, closes the bus and the store. Idempotent; never throws.
  void close() noexcept;

 private:
  event_sourced_storage(std::shared_ptr<eventsourced::store> store, event_sourced_options options);

  std::shared_ptr<eventsourced::store> store_;
  std::shared_ptr<event_bus> bus_;
  event_log log_;
  std::unique_ptr<outbox_relay> relay_;
};

}  // namespace eventsourced
