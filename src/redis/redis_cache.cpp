#include <eventsourced/redis/redis_cache.hpp>

#include <atomic>
#include <cstdio>
#include <mutex>
#include <utility>

#include <eventsourced/engine/json_limits.hpp>
#include <eventsourced/error.hpp>

#include "connection.hpp"
#include "names.hpp"

namespace eventsourced {
namespace {

// KEYS[1] the entry; ARGV: version (20 digits, zero-padded: compares as text), body, tombstone
// flag, ttl in ms (0: none). Writes unless the cached version is higher; returns 1 if it wrote.
constexpr const char* kPutScript = R"lua(
local current = redis.call('HGET', KEYS[1], 'v')
if current and current > ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'b', ARGV[2], 't', ARGV[3])
if ARGV[4] ~= '0' then
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
else
  redis.call('PERSIST', KEYS[1])
end
return 1
)lua";

std::string padded(std::int64_t version) {
  char text[32];
  std::snprintf(text, sizeof text, "%020lld", static_cast<long long>(version));
  return text;
}

}  // namespace

struct redis_cache::state {
  explicit state(redis_cache_options o) : options(std::move(o)), pool(options.connection) {}

  const redis_cache_options options;
  redis_internal::pool pool;
  std::atomic<std::uint64_t> failures{0};
  std::mutex sha_mutex;
  std::string sha;  // GUARDED_BY(sha_mutex): the script's SHA1 once loaded
};

redis_cache::redis_cache(redis_cache_options options) {
  redis_internal::check_key_part(options.prefix, "redis_cache_options.prefix");
  if (options.ttl.count() < 0) {
    throw invalid_argument_error("eventsourced: redis_cache_options.ttl must not be negative");
  }
  if (options.clear_batch < 1) {
    throw invalid_argument_error("eventsourced: redis_cache_options.clear_batch must be >= 1");
  }
  state_ = std::make_unique<state>(std::move(options));
}

redis_cache::~redis_cache() {
  state_->pool.close();
}

std::string redis_cache::key_of(std::string_view collection, std::string_view id) const {
  return state_->options.prefix + ":" + redis_internal::encode_token(collection) + ":" +
         redis_internal::encode_token(id);
}

std::optional<cached_document> redis_cache::get(std::string_view collection, std::string_view id) {
  try {
    auto c = state_->pool.acquire();
    const auto r =
        c->command({"HMGET", key_of(collection, id), "v", "b", "t"}, "reading the cache");
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_STRING) {
      return std::nullopt;
    }
    cached_document doc;
    doc.version = std::stoll(redis_internal::text_of(r->element[0]));
    if (redis_internal::text_of(r->element[2]) != "1") {
      // Checked like an engine's rows: an entry over the limits is treated as a miss.
      doc.body = parse_json(redis_internal::text_of(r->element[1]), kMaxJsonDepth, "cache entry");
    }
    return doc;
  } catch (const store_closed_error&) {
    throw;
  } catch (const serialization_error&) {
    return std::nullopt;  // an entry written by something else: a miss
  } catch (const invalid_argument_error&) {
    return std::nullopt;  // the same, over the depth limit or with a non-finite number
  } catch (const error&) {
    state_->failures.fetch_add(1);
    return std::nullopt;
  } catch (const std::exception&) {
    return std::nullopt;  // an entry written by something else: a miss
  }
}

void redis_cache::put(std::string_view collection, std::string_view id,
                      const cached_document& doc) {
  if (doc.version < 0) {
    throw invalid_argument_error("eventsourced: redis_cache::put needs a version >= 0, got " +
                                 std::to_string(doc.version));
  }
  const std::string key = key_of(collection, id);
  const std::string version = padded(doc.version);
  const std::string body = doc.body ? doc.body->dump() : std::string();
  const std::string tombstone = doc.body ? "0" : "1";
  const std::string ttl = std::to_string(state_->options.ttl.count());
  try {
    auto c = state_->pool.acquire();
    std::string sha;
    {
      std::lock_guard lock(state_->sha_mutex);
      sha = state_->sha;
    }
    if (!sha.empty()) {
      const auto r =
          c->call({"EVALSHA", sha, "1", key, version, body, tombstone, ttl}, "writing the cache");
      if (!redis_internal::is_error(r.get(), "NOSCRIPT")) {
        if (r->type == REDIS_REPLY_ERROR) {
          redis_internal::throw_reply_error(r.get(), "writing the cache", c->where());
        }
        return;
      }
    }
    // Unknown to the server (first use, a restarted server, SCRIPT FLUSH): EVAL runs it and
    // caches it; SCRIPT LOAD gives the SHA for next time.
    c->command({"EVAL", kPutScript, "1", key, version, body, tombstone, ttl}, "writing the cache");
    const auto loaded = c->command({"SCRIPT", "LOAD", kPutScript}, "loading the cache script");
    std::lock_guard lock(state_->sha_mutex);
    state_->sha = redis_internal::text_of(loaded.get());
  } catch (const store_closed_error&) {
    throw;
  } catch (const error&) {
    state_->failures.fetch_add(1);
  }
}

void redis_cache::erase(std::string_view collection, std::string_view id) {
  try {
    auto c = state_->pool.acquire();
    c->command({"DEL", key_of(collection, id)}, "erasing a cache entry");
  } catch (const store_closed_error&) {
    throw;
  } catch (const error&) {
    state_->failures.fetch_add(1);
  }
}

void redis_cache::clear() {
  auto c = state_->pool.acquire();
  const std::string match = state_->options.prefix + ":*";
  std::string cursor = "0";
  do {
    const auto r = c->command(
        {"SCAN", cursor, "MATCH", match, "COUNT", std::to_string(state_->options.clear_batch)},
        "clearing the cache");
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
      throw engine_error("eventsourced: unexpected SCAN reply from " + c->where());
    }
    cursor = redis_internal::text_of(r->element[0]);
    const redisReply* keys = r->element[1];
    if (keys->type == REDIS_REPLY_ARRAY && keys->elements > 0) {
      redis_internal::command_args del = {"UNLINK"};
      for (std::size_t i = 0; i < keys->elements; ++i) {
        del.push_back(redis_internal::text_of(keys->element[i]));
      }
      c->command(del, "clearing the cache");
    }
  } while (cursor != "0");
}

std::uint64_t redis_cache::failures() const {
  return state_->failures.load();
}

}  // namespace eventsourced
