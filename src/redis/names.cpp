#include "names.hpp"

#include <random>

#include <eventsourced/error.hpp>

namespace eventsourced::redis_internal {
namespace {

bool plain(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.';
}

}  // namespace

void check_key_part(std::string_view name, const char* what) {
  bool ok = !name.empty() && name.size() <= 64;
  for (const char c : name) ok = ok && plain(c);
  if (!ok) {
    throw invalid_argument_error("eventsourced: " + std::string(what) + " '" + std::string(name) +
                                 "' must be 1 to 64 characters from [A-Za-z0-9_.-]");
  }
}

std::string encode_token(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    if (plain(c)) {
      out += c;
    } else {
      const auto byte = static_cast<unsigned char>(c);
      out += '%';
      out += kHex[byte >> 4];
      out += kHex[byte & 0xF];
    }
  }
  return out;
}

std::string random_hex(std::size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string out;
  for (std::size_t i = 0; i < n; ++i) out += kHex[rng() & 0xF];
  return out;
}

}  // namespace eventsourced::redis_internal
