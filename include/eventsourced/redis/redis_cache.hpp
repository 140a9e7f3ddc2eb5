// A document cache in Redis (storage/cache.hpp), shared by every process that uses the same
// server and prefix.
//
//   auto cache = std::make_shared<eventsourced::redis_cache>(eventsourced::redis_cache_options{
//       .connection = {.uri = "redis://127.0.0.1:6379"}, .prefix = "game-cache",
//       .ttl = std::chrono::minutes(5)});
//   // hand it to the store's options as its cache
//
// Keys. An entry is the hash `<prefix>:<collection>:<id>` with the fields v (the version), b (the
// body as JSON text) and t ("1" for a tombstone: body nullopt). Collection and id are %-encoded
// (every byte outside [A-Za-z0-9_.-]), so a ':' in an id cannot make two entries share a key and
// no name acts as a glob pattern in clear().
//
// Versions never go backwards. put() runs a Lua script (EVALSHA, EVAL when the server does not
// know it yet) that reads the cached version and writes only if it is not higher, atomically on
// the server: of racing puts from any number of threads and processes, the highest version stays.
// An expired entry is gone, so an older version can be stored after it (as memory_cache does).
// Versions must be >= 0.
//
// Failures. A cache must never make a read fail: when the server is unreachable, slow or refuses
// (engine_unavailable_error, engine_error), get() returns nullopt (a miss: the store reads the
// engine), and put() and erase() do nothing; each such failure is counted in failures(). A put or
// erase that failed can leave an older entry in the cache until its TTL passes — the staleness
// cache.hpp already allows, never a lost update. clear() is an explicit administrative call and
// throws instead.
//
// \par Thread safety
// Every member function may be called from any thread at once (a pool of connections).
//
// \par Ownership
// The cache owns its connections; destroying it drops them (entries stay on the server).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <eventsourced/redis/connection_options.hpp>
#include <eventsourced/storage/cache.hpp>

namespace eventsourced {

struct redis_cache_options {
  redis_connection_options connection{};
  // The first part of every key (1 to 64 characters from [A-Za-z0-9_.-]).
  std::string prefix = "eventsourced-cache";
  // How long an entry lives after its last put (PEXPIRE); 0: for ever.
  std::chrono::milliseconds ttl = std::chrono::seconds(60);
  // Keys deleted per round trip by clear() (SCAN COUNT, >= 1).
  std::size_t clear_batch = 500;
};

class redis_cache final : public cache {
 public:
  // Checks the options; connects lazily. Throws invalid_argument_error for bad options or URI.
  explicit redis_cache(redis_cache_options options);
  ~redis_cache() override;
  redis_cache(const redis_cache&) = delete;
  redis_cache& operator=(const redis_cache&) = delete;

  // The entry, or nullopt on a miss, an unreadable entry, or a server failure (counted).
  std::optional<cached_document> get(std::string_view collection, std::string_view id) override;
  // Stores doc unless a higher version is cached; a server failure is counted, not thrown.
  // Throws invalid_argument_error for a negative version.
  void put(std::string_view collection, std::string_view id, const cached_document& doc) override;
  // Forgets one entry; a server failure is counted, not thrown.
  void erase(std::string_view collection, std::string_view id) override;
  // Deletes every key under `<prefix>:` (SCAN MATCH + DEL; other prefixes are untouched). Entries
  // put while it runs may survive. Throws engine_unavailable_error / engine_error.
  void clear() override;

  // Server failures get/put/erase swallowed so far.
  std::uint64_t failures() const;
  // The key of an entry (for inspection with other clients).
  std::string key_of(std::string_view collection, std::string_view id) const;

 private:
  struct state;
  std::unique_ptr<state> state_;
};

}  // namespace eventsourced
