#include <eventsourced/event/log.hpp>

#include <string>
#include <utility>

#include <eventsourced/error.hpp>
#include <eventsourced/storage/store.hpp>

namespace eventsourced {
namespace {

void check_position(std::int64_t position, const char* what) {
  if (position < 0) {
    throw invalid_argument_error(std::string("eventsourced: event_log: ") + what +
                                 " must not be negative, got " + std::to_string(position));
  }
}

void check_max(std::size_t max) {
  if (max == 0) throw invalid_argument_error("eventsourced: event_log: max must be at least 1");
}

void check_timeout(std::chrono::milliseconds timeout) {
  if (timeout.count() < 0) {
    throw invalid_argument_error("eventsourced: event_log: the timeout must not be negative, got " +
                                 std::to_string(timeout.count()) + " ms");
  }
}

// The store's engine, sharing ownership of the store: the engine lives as long as the store.
std::shared_ptr<engine> engine_of(std::shared_ptr<store> s) {
  if (!s) throw invalid_argument_error("eventsourced: event_log: the store is null");
  engine& e = s->engine();  // throws store_closed_error for a closed store
  return std::shared_ptr<engine>(std::move(s), &e);
}

}  // namespace

event_log::event_log(std::shared_ptr<store> store)
    : engine_(engine_of(store)), upcasters_(store->options().upcasters) {}

event_log::event_log(std::shared_ptr<eventsourced::engine> engine,
                     std::shared_ptr<const upcaster_chain> upcasters)
    : engine_(std::move(engine)), upcasters_(std::move(upcasters)) {
  if (!engine_) throw invalid_argument_error("eventsourced: event_log: the engine is null");
}

std::vector<event> event_log::read_stream(const stream_ref& stream, std::int64_t from_version,
                                          std::size_t max) const {
  validate_collection_name(stream.type, "stream type");
  validate_id(stream.id, "stream id");
  if (from_version < 1) {
    throw invalid_argument_error(
        "eventsourced: event_log: stream versions start at 1, from_version was " +
        std::to_string(from_version));
  }
  check_max(max);
  std::vector<event> events = engine_->read_stream(stream, from_version, max);
  if (upcasters_) {
    for (event& e : events) upcasters_->upcast(e);
  }
  return events;
}

log_page event_log::read_all(std::int64_t after_position, std::size_t max) const {
  check_position(after_position, "the position to read after");
  check_max(max);
  log_page page;
  page.events = engine_->read_all(after_position, max);
  if (upcasters_) {
    for (event& e : page.events) upcasters_->upcast(e);
  }
  page.next_position = page.events.empty() ? after_position : page.events.back().position;
  page.full = page.events.size() >= max;
  return page;
}

bool event_log::wait_for(std::int64_t after_position, std::chrono::milliseconds timeout) const {
  check_position(after_position, "the position to wait after");
  check_timeout(timeout);
  return engine_->wait_for(after_position, timeout);
}

log_page event_log::read_all_or_wait(std::int64_t after_position, std::size_t max,
                                     std::chrono::milliseconds timeout) const {
  check_timeout(timeout);
  log_page page = read_all(after_position, max);
  if (page.events.empty() && timeout.count() > 0 && engine_->wait_for(after_position, timeout)) {
    page = read_all(after_position, max);
  }
  return page;
}

}  // namespace eventsourced
