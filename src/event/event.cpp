#include <eventsourced/event/event.hpp>

#include <pthread.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <random>
#include <utility>

namespace eventsourced {
namespace {

// Bumped in a child process after fork(): the child inherits its parent's random engine state,
// and without a reseed both would hand out the same "random" ids.
std::atomic<std::uint64_t> fork_generation{0};

std::uint64_t current_fork_generation() {
  static const bool registered = [] {
    pthread_atfork(nullptr, nullptr, [] { fork_generation.fetch_add(1); });
    return true;
  }();
  (void)registered;
  return fork_generation.load(std::memory_order_relaxed);
}

std::mt19937_64 seeded_engine() {
  std::array<std::uint32_t, 8> seed{};
  try {
    std::random_device device;
    for (auto& word : seed) word = device();
  } catch (...) {
    // No entropy source: fall back to what differs between threads, processes and runs. The
    // ids stay unique in practice (the timestamp is part of them); only their unpredictability
    // suffers, which ids do not promise.
    const auto now = static_cast<std::uint64_t>(
        std::chrono::high_resolution_clock::now().time_since_epoch().count());
    const auto here = reinterpret_cast<std::uintptr_t>(&seed);
    seed = {static_cast<std::uint32_t>(now), static_cast<std::uint32_t>(now >> 32),
            static_cast<std::uint32_t>(here), static_cast<std::uint32_t>(here >> 32),
            static_cast<std::uint32_t>(::getpid())};
  }
  std::seed_seq sequence(seed.begin(), seed.end());
  return std::mt19937_64(sequence);
}

struct id_random_source {
  std::mt19937_64 engine = seeded_engine();
  std::uint64_t generation = current_fork_generation();

  std::uint64_t next() {
    if (const auto now = current_fork_generation(); now != generation) {
      engine = seeded_engine();
      generation = now;
    }
    return engine();
  }
};

std::optional<std::string> string_member(const json& metadata, std::string_view key) {
  if (!metadata.is_object()) return std::nullopt;
  const auto it = metadata.find(key);
  if (it == metadata.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

}  // namespace

std::string make_event_id() {
  thread_local id_random_source random;
  const auto unix_ms =
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
  const std::uint64_t random_a = random.next();
  const std::uint64_t random_b = random.next();

  // RFC 9562 layout: 48-bit unix_ts_ms | ver (4 bits) = 7 | rand_a (12 bits) | var (2 bits) = 10 |
  // rand_b (62 bits).
  const std::uint64_t high = (unix_ms << 16) | (0x7ull << 12) | (random_a & 0x0fffull);
  const std::uint64_t low = (0x2ull << 62) | (random_b & 0x3fffffffffffffffull);

  static constexpr char kHex[] = "0123456789abcdef";
  std::string text(36, '-');
  std::size_t at = 0;
  auto put = [&](std::uint64_t value, int nibble) {
    if (at == 8 || at == 13 || at == 18 || at == 23) ++at;  // the dashes stay
    text[at++] = kHex[(value >> (4 * nibble)) & 0xf];
  };
  for (int nibble = 15; nibble >= 0; --nibble) put(high, nibble);
  for (int nibble = 15; nibble >= 0; --nibble) put(low, nibble);
  return text;
}

new_event make_event(std::string type, json data, json metadata) {
  return new_event{make_event_id(), std::move(type), std::move(data), std::move(metadata)};
}

std::optional<std::string> correlation_id(const event& e) {
  return string_member(e.metadata, kCorrelationIdKey);
}

std::optional<std::string> causation_id(const event& e) {
  return string_member(e.metadata, kCausationIdKey);
}

std::optional<document_ref> document_of(const event& e) {
  if (!e.metadata.is_object()) return std::nullopt;
  const auto it = e.metadata.find(kDocumentKey);
  if (it == e.metadata.end() || !it->is_object()) return std::nullopt;
  const json& document = *it;
  const auto collection = document.find("collection");
  const auto id = document.find("id");
  const auto version = document.find("version");
  if (collection == document.end() || !collection->is_string() || id == document.end() ||
      !id->is_string() || version == document.end() || !version->is_number_integer()) {
    return std::nullopt;
  }
  // A version beyond int64 (stored as unsigned by the parser) is malformed, not a wrapped value.
  if (version->is_number_unsigned() &&
      version->get<std::uint64_t>() >
          static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    return std::nullopt;
  }
  return document_ref{collection->get<std::string>(), id->get<std::string>(),
                      version->get<std::int64_t>()};
}

}  // namespace eventsourced
