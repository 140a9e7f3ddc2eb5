#include <eventsourced/storage/retry.hpp>

#include <algorithm>
#include <random>
#include <thread>

namespace eventsourced::detail {

void backoff_sleep(const retry_options& options, int attempt) {
  thread_local std::minstd_rand rng{std::random_device{}()};
  const auto base = std::max<std::int64_t>(options.base_delay.count(), 1);
  const auto cap = std::max<std::int64_t>(options.max_delay.count(), base);
  // base * 2^attempt without overflow: stop doubling once past the cap.
  std::int64_t ceiling = base;
  for (int i = 0; i < attempt && ceiling < cap; ++i) ceiling *= 2;
  ceiling = std::min(ceiling, cap);
  std::uniform_int_distribution<std::int64_t> jitter(0, ceiling);
  std::this_thread::sleep_for(std::chrono::microseconds(jitter(rng)));
}

}  // namespace eventsourced::detail
