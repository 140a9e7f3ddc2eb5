#include <eventsourced/storage/cache.hpp>

#include <utility>

namespace eventsourced {

memory_cache::memory_cache(memory_cache_options options) : options_(options) {}

// The collection's length goes first so that no (collection, id) pair can spell another pair's
// key, whatever characters either contains.
std::string memory_cache::key_of(std::string_view collection, std::string_view id) {
  std::string key = std::to_string(collection.size());
  key.reserve(key.size() + 1 + collection.size() + id.size());
  key += ':';
  key += collection;
  key += id;
  return key;
}

namespace {

bool expired(std::chrono::milliseconds ttl, std::chrono::steady_clock::time_point stored_at,
             std::chrono::steady_clock::time_point now) {
  return ttl.count() > 0 && now - stored_at >= ttl;
}

}  // namespace

std::optional<cached_document> memory_cache::get(std::string_view collection, std::string_view id) {
  const std::string key = key_of(collection, id);
  std::lock_guard lock(mutex_);
  const auto found = index_.find(key);
  if (found == index_.end()) return std::nullopt;
  const auto it = found->second;
  if (expired(options_.ttl, it->stored_at, clock::now())) {
    index_.erase(found);
    lru_.erase(it);
    return std::nullopt;
  }
  lru_.splice(lru_.begin(), lru_, it);
  return it->doc;
}

void memory_cache::put(std::string_view collection, std::string_view id,
                       const cached_document& doc) {
  if (options_.max_entries == 0) return;
  std::string key = key_of(collection, id);
  const auto now = clock::now();
  std::lock_guard lock(mutex_);
  const auto found = index_.find(key);
  if (found != index_.end()) {
    const auto it = found->second;
    // An expired entry is a miss for get(), so it is treated as absent here too: it no longer
    // vouches for anything, and keeping it as a version floor would pin a key as a permanent miss
    // if the engine ever hands out a lower version for it (a document deleted and re-created).
    if (it->doc.version > doc.version && !expired(options_.ttl, it->stored_at, now)) return;
    it->doc = doc;
    it->stored_at = now;
    lru_.splice(lru_.begin(), lru_, it);
    return;
  }
  lru_.push_front(entry{key, doc, now});
  index_.emplace(std::move(key), lru_.begin());
  while (lru_.size() > options_.max_entries) {
    index_.erase(lru_.back().key);
    lru_.pop_back();
  }
}

void memory_cache::erase(std::string_view collection, std::string_view id) {
  const std::string key = key_of(collection, id);
  std::lock_guard lock(mutex_);
  const auto found = index_.find(key);
  if (found == index_.end()) return;
  lru_.erase(found->second);
  index_.erase(found);
}

void memory_cache::clear() {
  std::lock_guard lock(mutex_);
  index_.clear();
  lru_.clear();
}

std::size_t memory_cache::size() const {
  std::lock_guard lock(mutex_);
  return lru_.size();
}

}  // namespace eventsourced
