#include <eventsourced/event/event_sourced_storage.hpp>

#include <eventsourced/event/memory_bus.hpp>

namespace eventsourced {
namespace {

store_options with_default_mapper(store_options options) {
  if (!options.mapper) options.mapper = std::make_shared<default_event_mapper>();
  return options;
}

}  // namespace

std::unique_ptr<event_sourced_storage> event_sourced_storage::open(std::string_view uri,
                                                                   event_sourced_options options) {
  auto opened = eventsourced::store::open(uri, with_default_mapper(std::move(options.storage)));
  return wrap(std::move(opened), std::move(options));
}

std::unique_ptr<event_sourced_storage> event_sourced_storage::wrap(
    std::shared_ptr<eventsourced::store> store, event_sourced_options options) {
  if (!store) throw invalid_argument_error("event_sourced_storage needs a store, got nullptr");
  if (!store->options().mapper) {
    throw invalid_argument_error(
        "event_sourced_storage needs a store with an event mapper (store_options::mapper): "
        "without one its writes record no events");
  }
  return std::unique_ptr<event_sourced_storage>(
      new event_sourced_storage(std::move(store), std::move(options)));
}

event_sourced_storage::event_sourced_storage(std::shared_ptr<eventsourced::store> store,
                                             event_sourced_options options)
    : store_(std::move(store)),
      bus_(options.bus ? std::move(options.bus) : std::make_shared<in_memory_event_bus>()),
      log_(store_),
      relay_(std::make_unique<outbox_relay>(log_, bus_, std::move(options.relay))) {
  if (options.start_relay) relay_->start();
}

event_sourced_storage::~event_sourced_storage() {
  close();
}

bool event_sourced_storage::wait_until_published(std::chrono::milliseconds timeout) {
  // The newest position now: page forward from the relay's progress (usually a short read; the
  // engine API has no "head position" call).
  std::int64_t head = 0;
  for (std::int64_t after = relay_->published_position();;) {
    const log_page page = log_.read_all(after, kDefaultLogPageSize);
    if (page.events.empty()) break;
    head = page.next_position;
    after = page.next_position;
    if (!page.full) break;
  }
  if (head == 0) return true;  // nothing beyond what is already published
  return relay_->wait_until_published(head, timeout);
}

void event_sourced_storage::close() noexcept {
  if (relay_) relay_->stop();
  if (bus_) bus_->close();
  if (store_) {
    try {
      store_->close();
    } catch (...) {  // close() never throws; a store that fails to close has nothing to flush
    }
  }
}

}  // namespace eventsourced
