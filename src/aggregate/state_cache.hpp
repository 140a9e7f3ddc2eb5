// The repository's in-memory cache of aggregate states: per stream, the state snapshot() gave at
// a version, least recently used evicted first. Entries only move forward: remembering an older
// version than the cached one changes nothing. Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

#include <eventsourced/engine/engine.hpp>

namespace eventsourced::aggregate_internal {

struct cached_state {
  std::int64_t version = 0;
  std::int64_t schema_version = 0;
  std::shared_ptr<const json> state;
};

class state_cache {
 public:
  explicit state_cache(std::size_t capacity) : capacity_(capacity) {}

  std::optional<cached_state> find(const stream_ref& stream) {
    const std::string k = key(stream);
    std::lock_guard lock(mutex_);
    auto it = entries_.find(k);
    if (it == entries_.end()) return std::nullopt;
    order_.splice(order_.begin(), order_, it->second.second);
    return it->second.first;
  }

  void remember(const stream_ref& stream, cached_state state) {
    std::string k = key(stream);
    std::lock_guard lock(mutex_);
    auto it = entries_.find(k);
    if (it != entries_.end()) {
      if (it->second.first.version >= state.version &&
          it->second.first.schema_version == state.schema_version) {
        return;
      }
      it->second.first = std::move(state);
      order_.splice(order_.begin(), order_, it->second.second);
      return;
    }
    order_.push_front(k);
    entries_.emplace(std::move(k), std::make_pair(std::move(state), order_.begin()));
    if (entries_.size() > capacity_) {
      entries_.erase(order_.back());
      order_.pop_back();
    }
  }

  void forget(const stream_ref& stream) {
    const std::string k = key(stream);
    std::lock_guard lock(mutex_);
    auto it = entries_.find(k);
    if (it == entries_.end()) return;
    order_.erase(it->second.second);
    entries_.erase(it);
  }

 private:
  // A type never contains NUL, so the key is unambiguous.
  static std::string key(const stream_ref& s) {
    std::string k;
    k.reserve(s.type.size() + 1 + s.id.size());
    k.append(s.type).push_back('\0');
    k.append(s.id);
    return k;
  }

  const std::size_t capacity_;
  std::mutex mutex_;
  std::list<std::string> order_;  // most recently used first; guarded by mutex_
  std::unordered_map<std::string, std::pair<cached_state, std::list<std::string>::iterator>>
      entries_;  // guarded by mutex_
};

}  // namespace eventsourced::aggregate_internal
