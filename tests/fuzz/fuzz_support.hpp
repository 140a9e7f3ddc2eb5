// Shared by the fuzz targets: how an input is cut into parts, and how a target says it found a
// bug that no sanitizer would see.
//
// Inputs that carry several values hold one per line. JSON text never needs a raw newline (one in
// a string must be escaped), so lines keep the values apart while libFuzzer's mutations of one
// value leave the others readable.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <eventsourced/engine/json_limits.hpp>
#include <eventsourced/error.hpp>

namespace eventsourced::fuzz {

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// The input's lines, at most max_lines of them (the rest is ignored), without their '\n'.
inline std::vector<std::string_view> lines(std::string_view text, std::size_t max_lines) {
  std::vector<std::string_view> out;
  while (!text.empty() && out.size() < max_lines) {
    const auto end = text.find('\n');
    out.push_back(text.substr(0, end));
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
  }
  return out;
}

// The JSON value a line holds within the limits, or nullopt (not JSON, too deep, not finite):
// values as the library takes them in at its doors.
inline std::optional<json> parse_line(std::string_view line, std::size_t max_depth) {
  try {
    return parse_json(line, max_depth);
  } catch (const error&) {
    return std::nullopt;
  }
}

// A broken promise of the library: printed, then the process aborts so that libFuzzer saves the
// input. (A sanitizer reports the other kinds of bug itself.)
[[noreturn]] inline void fail(const std::string& what) {
  std::fprintf(stderr, "\n==== fuzz invariant broken: %s\n", what.c_str());
  std::abort();
}

}  // namespace eventsourced::fuzz
