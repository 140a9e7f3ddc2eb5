#include <eventsourced/event/watch.hpp>

#include <string>
#include <utility>

#include <eventsourced/error.hpp>

namespace eventsourced {

change_stream::change_stream(event_log log, watch_options options)
    : log_(std::move(log)), options_(std::move(options)), scanned_(options_.after_position) {
  if (!options_.collection.empty()) validate_collection_name(options_.collection);
  if (options_.after_position < 0) {
    throw invalid_argument_error("eventsourced: watch: after_position must not be negative, got " +
                                 std::to_string(options_.after_position));
  }
  if (options_.batch_size == 0) {
    throw invalid_argument_error("eventsourced: watch: batch_size must be at least 1");
  }
}

std::optional<committed_change> change_stream::next(std::chrono::milliseconds timeout) {
  if (timeout.count() < 0) {
    throw invalid_argument_error("eventsourced: watch: the timeout must not be negative");
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (ready_.empty()) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    const bool last_round = left.count() <= 0;
    scan(last_round ? std::chrono::milliseconds::zero() : left);
    // Events that match nothing do not end the wait: keep scanning until the deadline. A change
    // held back is completed whatever the deadline: the rest of its commit is already visible.
    if (ready_.empty() && last_round && !tail_) return std::nullopt;
  }
  committed_change change = std::move(ready_.front().change);
  ready_.pop_front();
  return change;
}

std::int64_t change_stream::position() const noexcept {
  if (!ready_.empty()) return ready_.front().after;
  if (tail_) return tail_->after;
  return scanned_;
}

void change_stream::scan(std::chrono::milliseconds timeout) {
  // With a change held back, what completes it is already visible (a commit becomes visible at
  // once): read without waiting.
  const log_page page = tail_ ? log_.read_all(scanned_, options_.batch_size)
                              : log_.read_all_or_wait(scanned_, options_.batch_size, timeout);
  for (const event& e : page.events) {
    const auto ref = document_of(e);
    if (!ref || (!options_.collection.empty() && ref->collection != options_.collection)) {
      release_tail();
    } else if (tail_ && tail_->change.collection == ref->collection &&
               tail_->change.id == ref->id && tail_->change.version == ref->version) {
      tail_->change.events.push_back(e);
      tail_->change.position = e.position;
    } else {
      release_tail();
      tail_ = pending{committed_change{ref->collection, ref->id, ref->version, e.position, {e}},
                      scanned_};
    }
    scanned_ = e.position;
  }
  // A page that is not full holds every visible event, so every commit in it is complete; a
  // write's events are all in one commit.
  if (!page.full) release_tail();
}

void change_stream::release_tail() {
  if (!tail_) return;
  ready_.push_back(std::move(*tail_));
  tail_.reset();
}

change_stream watch(event_log log, watch_options options) {
  return change_stream(std::move(log), std::move(options));
}

}  // namespace eventsourced
