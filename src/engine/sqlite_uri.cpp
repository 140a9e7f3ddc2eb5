// parse_sqlite_uri (see engine/sqlite.hpp for the accepted forms).
#include <algorithm>
#include <cctype>
#include <charconv>
#include <set>
#include <string>
#include <string_view>

#include <eventsourced/engine/sqlite.hpp>
#include <eventsourced/error.hpp>

namespace eventsourced {
namespace {

[[noreturn]] void invalid_uri(std::string_view uri, const std::string& why) {
  throw invalid_argument_error("invalid sqlite URI '" + std::string(uri) + "': " + why);
}

std::int64_t parse_integer(std::string_view uri, std::string_view name, std::string_view text,
                           std::int64_t min) {
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty() || value < min) {
    invalid_uri(uri, "parameter '" + std::string(name) + "' must be an integer >= " +
                         std::to_string(min) + ", got '" + std::string(text) + "'");
  }
  return value;
}

bool iequals(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) ==
           std::tolower(static_cast<unsigned char>(y));
  });
}

}  // namespace

sqlite_options parse_sqlite_uri(std::string_view uri) {
  constexpr std::string_view kScheme = "sqlite:";
  if (!uri.starts_with(kScheme)) invalid_uri(uri, "it must start with \"sqlite:\"");
  std::string_view rest = uri.substr(kScheme.size());
  std::string_view parameters;
  if (const auto question = rest.find('?'); question != std::string_view::npos) {
    parameters = rest.substr(question + 1);
    rest = rest.substr(0, question);
  }
  sqlite_options options;
  if (rest.starts_with("///")) {
    options.path = std::string(rest.substr(2));  // keep the path's own leading '/'
  } else if (rest.starts_with("//")) {
    invalid_uri(uri,
                "\"sqlite://\" would name a host; write sqlite:relative/path.db or "
                "sqlite:///absolute/path.db");
  } else {
    options.path = std::string(rest);
  }
  if (options.path.empty() || options.path == "/") {
    invalid_uri(uri, "the database path is empty (use sqlite:app.db or sqlite::memory:)");
  }

  std::set<std::string, std::less<>> seen;
  while (!parameters.empty()) {
    const auto amp = parameters.find('&');
    const std::string_view item = parameters.substr(0, amp);
    parameters = amp == std::string_view::npos ? std::string_view() : parameters.substr(amp + 1);
    if (item.empty()) continue;
    const auto eq = item.find('=');
    if (eq == std::string_view::npos) {
      invalid_uri(uri, "parameter '" + std::string(item) + "' has no value (write name=value)");
    }
    const std::string_view name = item.substr(0, eq);
    const std::string_view value = item.substr(eq + 1);
    if (!seen.emplace(name).second) {
      invalid_uri(uri, "parameter '" + std::string(name) + "' is given twice");
    }
    if (name == "synchronous") {
      if (iequals(value, "off")) {
        options.synchronous = sqlite_synchronous::off;
      } else if (iequals(value, "normal")) {
        options.synchronous = sqlite_synchronous::normal;
      } else if (iequals(value, "full")) {
        options.synchronous = sqlite_synchronous::full;
      } else {
        invalid_uri(uri, "parameter 'synchronous' must be off, normal or full, got '" +
                             std::string(value) + "'");
      }
    } else if (name == "busy_timeout_ms") {
      options.busy_timeout = std::chrono::milliseconds(parse_integer(uri, name, value, 0));
    } else if (name == "max_readers") {
      options.max_readers = static_cast<std::size_t>(parse_integer(uri, name, value, 1));
    } else if (name == "poll_interval_ms") {
      options.poll_interval = std::chrono::milliseconds(parse_integer(uri, name, value, 1));
    } else {
      invalid_uri(uri,
                  "unknown parameter '" + std::string(name) +
                      "' (known: synchronous, busy_timeout_ms, max_readers, poll_interval_ms)");
    }
  }
  return options;
}

}  // namespace eventsourced
