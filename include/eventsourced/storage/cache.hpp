// A read-through document cache, and its in-memory LRU implementation.
//
// The store consults the cache in find_one and before an update, and refreshes it after every
// write. Entries carry the document's version, and put() never replaces an entry with an older
// version, so a racing writer cannot move the cache backwards. A stale entry can never cause a
// lost update: updates are version-checked by the engine, and after a conflict the store re-reads
// from the engine, not the cache. A stale entry can make a read return an older document: across
// processes until its TTL passes (each process has its own memory cache).
//
// A Redis cache (eventsourced::redis) implements the same interface.
//
// \par Thread safety
// Implementations must be safe to call from many threads at once; memory_cache is.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include <nlohmann/json.hpp>

namespace eventsourced {

using json = nlohmann::json;

struct cached_document {
  std::int64_t version = 0;
  // nullopt: the document is known to be deleted at `version` (a tombstone).
  std::optional<json> body;
};

class cache {
 public:
  virtual ~cache() = default;
  // The cached entry, or nullopt on a miss (absent or expired).
  virtual std::optional<cached_document> get(std::string_view collection, std::string_view id) = 0;
  // Stores doc unless an entry with a higher version is already cached.
  virtual void put(std::string_view collection, std::string_view id,
                   const cached_document& doc) = 0;
  // Forgets one entry.
  virtual void erase(std::string_view collection, std::string_view id) = 0;
  // Forgets everything.
  virtual void clear() = 0;
};

struct memory_cache_options {
  std::size_t max_entries = 10000;  // least recently used entries are evicted beyond this
  std::chrono::milliseconds ttl{std::chrono::seconds(60)};  // 0: entries never expire
};

// An LRU cache with a TTL, guarded by one mutex.
class memory_cache final : public cache {
 public:
  explicit memory_cache(memory_cache_options options = {});
  std::optional<cached_document> get(std::string_view collection, std::string_view id) override;
  void put(std::string_view collection, std::string_view id, const cached_document& doc) override;
  void erase(std::string_view collection, std::string_view id) override;
  void clear() override;
  // Number of entries held now (expired ones included until touched or evicted).
  std::size_t size() const;

 private:
  using clock = std::chrono::steady_clock;
  struct entry {
    std::string key;
    cached_document doc;
    clock::time_point stored_at;
  };
  static std::string key_of(std::string_view collection, std::string_view id);

  const memory_cache_options options_;
  mutable std::mutex mutex_;
  std::list<entry> lru_;  // GUARDED_BY(mutex_); most recently used first
  std::unordered_map<std::string, std::list<entry>::iterator> index_;  // GUARDED_BY(mutex_)
};

}  // namespace eventsourced
