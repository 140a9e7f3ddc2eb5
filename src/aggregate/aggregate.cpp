#include <eventsourced/aggregate/aggregate.hpp>

#include <chrono>
#include <string>
#include <utility>

namespace eventsourced {

aggregate_root::aggregate_root(std::string type, std::string id)
    : stream_{std::move(type), std::move(id)} {
  validate_collection_name(stream_.type, "aggregate type");
  validate_id(stream_.id, "aggregate id");
}

void aggregate_root::mark_committed() noexcept {
  uncommitted_.clear();
  committed_version_ = version_;
}

bool aggregate_root::handles(std::string_view event_type) const {
  return handlers_.find(event_type) != handlers_.end();
}

void aggregate_root::on(std::string event_type, apply_handler handler) {
  if (event_type.empty()) {
    throw invalid_argument_error("eventsourced: aggregate " + stream_.type +
                                 ": empty event type in on()");
  }
  if (!handler) {
    throw invalid_argument_error("eventsourced: aggregate " + stream_.type +
                                 ": null apply handler for " + event_type);
  }
  auto [it, inserted] = handlers_.try_emplace(std::move(event_type), std::move(handler));
  if (!inserted) {
    throw invalid_argument_error("eventsourced: aggregate " + stream_.type +
                                 ": a second apply handler for event type " + it->first);
  }
}

void aggregate_root::restore(const json&) {
  throw invalid_argument_error("eventsourced: aggregate " + stream_.type +
                               " has no restore(): it cannot load a snapshot");
}

void aggregate_root::restore_snapshot(std::int64_t version, const json& state) {
  if (version_ != 0 || !uncommitted_.empty()) {
    throw invalid_argument_error("eventsourced: aggregate " + stream_.type + "/" + stream_.id +
                                 " is at version " + std::to_string(version_) +
                                 "; a snapshot restores only a fresh aggregate");
  }
  if (version < 1) {
    throw invalid_argument_error("eventsourced: snapshot version must be at least 1, got " +
                                 std::to_string(version));
  }
  restore(state);
  version_ = version;
  committed_version_ = version;
}

void aggregate_root::apply(const event& e) {
  if (!(e.stream == stream_)) {
    throw invalid_argument_error("eventsourced: event of stream " + e.stream.type + "/" +
                                 e.stream.id + " applied to aggregate " + stream_.type + "/" +
                                 stream_.id);
  }
  if (!uncommitted_.empty()) {
    throw invalid_argument_error("eventsourced: aggregate " + stream_.type + "/" + stream_.id +
                                 " has uncommitted events; replay only on a clean aggregate");
  }
  if (e.stream_version != version_ + 1) {
    throw invalid_argument_error("eventsourced: aggregate " + stream_.type + "/" + stream_.id +
                                 " at version " + std::to_string(version_) +
                                 " cannot apply stream version " +
                                 std::to_string(e.stream_version));
  }
  if (auto it = handlers_.find(e.type); it != handlers_.end()) it->second(e);
  version_ = e.stream_version;
  committed_version_ = version_;
}

void aggregate_root::raise(std::string event_type, json data, json metadata) {
  auto it = handlers_.find(event_type);
  if (it == handlers_.end()) {
    throw invalid_argument_error("eventsourced: aggregate " + stream_.type +
                                 " has no apply handler for raised event type " + event_type);
  }
  new_event fresh = make_event(std::move(event_type), std::move(data), std::move(metadata));
  // The handler sees the event as it will be recorded, except for position (0 until saved) and
  // timestamp (now, not the commit time).
  event view;
  view.id = fresh.id;
  view.type = fresh.type;
  view.stream = stream_;
  view.stream_version = version_ + 1;
  view.timestamp =
      std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
  view.data = fresh.data;
  view.metadata = fresh.metadata;
  it->second(view);
  uncommitted_.push_back(std::move(fresh));
  ++version_;
}

void aggregate_registry::add(std::string type, factory make) {
  validate_collection_name(type, "aggregate type");
  if (!make) throw invalid_argument_error("eventsourced: null aggregate factory for " + type);
  std::unique_lock lock(mutex_);
  auto [it, inserted] = factories_.try_emplace(std::move(type), std::move(make));
  if (!inserted) {
    throw invalid_argument_error("eventsourced: aggregate type " + it->first +
                                 " is already registered");
  }
}

bool aggregate_registry::contains(std::string_view type) const {
  std::shared_lock lock(mutex_);
  return factories_.find(type) != factories_.end();
}

std::unique_ptr<aggregate_root> aggregate_registry::create(std::string_view type,
                                                           std::string id) const {
  factory make;
  {
    std::shared_lock lock(mutex_);
    auto it = factories_.find(type);
    if (it == factories_.end()) {
      throw invalid_argument_error("eventsourced: no aggregate type " + std::string(type) +
                                   " is registered");
    }
    make = it->second;
  }
  std::string expected_id = id;
  std::unique_ptr<aggregate_root> made = make(std::move(id));
  if (!made) {
    throw invalid_argument_error("eventsourced: the factory of aggregate type " +
                                 std::string(type) + " returned null");
  }
  if (made->type() != type || made->id() != expected_id) {
    throw invalid_argument_error("eventsourced: the factory of aggregate type " +
                                 std::string(type) + " made " + made->type() + "/" + made->id());
  }
  return made;
}

}  // namespace eventsourced
