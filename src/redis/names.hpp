// Private: names of Redis keys and channels, and small helpers the Redis components share.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <thread>

namespace eventsourced::redis_internal {

// Throws invalid_argument_error unless name is 1 to 64 characters from [A-Za-z0-9_.-] (safe in
// key names and glob patterns). what names the option in the message.
void check_key_part(std::string_view name, const char* what);
// s with every byte outside [A-Za-z0-9_.-] %-encoded (%3A for ':', %2A for '*', ...): a token
// that cannot hold a key separator or a glob character, and that decodes back unambiguously.
std::string encode_token(std::string_view s);
// n random hexadecimal digits (for unique names).
std::string random_hex(std::size_t n);
// Interruptible pause: returns early once stop() is true (checked every few milliseconds).
template <typename Stop>
void pause_unless(Stop stop, std::chrono::milliseconds duration) {
  const auto deadline = std::chrono::steady_clock::now() + duration;
  while (!stop() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace eventsourced::redis_internal
