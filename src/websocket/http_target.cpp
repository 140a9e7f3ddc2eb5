// The request-target helpers of sync_websocket_server (see http_target.hpp).
#include "websocket/http_target.hpp"

namespace eventsourced::websocket_detail {
namespace {

constexpr std::size_t kMaxCloseReasonBytes = 123;  // RFC 6455: a control frame holds 125 bytes

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%') {
      const int hi = i + 1 < s.size() ? hex_value(s[i + 1]) : -1;
      const int lo = i + 2 < s.size() ? hex_value(s[i + 2]) : -1;
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::optional<std::string> query_parameter(std::string_view target, std::string_view name) {
  const auto q = target.find('?');
  if (q == std::string_view::npos) return std::nullopt;
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    const std::string_view item = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    const auto eq = item.find('=');
    if (item.substr(0, eq) != name) continue;
    return percent_decode(eq == std::string_view::npos ? std::string_view() : item.substr(eq + 1));
  }
  return std::nullopt;
}

std::string_view path_of(std::string_view target) {
  return target.substr(0, target.find('?'));
}

std::optional<std::string> request_token(std::string_view target, std::string_view authorization) {
  std::optional<std::string> token = query_parameter(target, "token");
  if (!token && authorization.starts_with("Bearer ")) token = std::string(authorization.substr(7));
  return token;
}

std::optional<std::filesystem::path> static_file_path(const std::filesystem::path& root,
                                                      std::string_view target) {
  const auto decoded = percent_decode(path_of(target));
  std::string relative = decoded ? *decoded : std::string();
  if (relative.empty() || relative.front() != '/' || relative.find('\0') != std::string::npos) {
    return std::nullopt;
  }
  if (relative.back() == '/') relative += "index.html";
  // Segment by segment: an empty one ("//etc/passwd", "/%2Fetc") would make the rest an absolute
  // path that replaces root, and "." or ".." would walk out of it.
  std::filesystem::path file = root;
  std::string_view rest = std::string_view(relative).substr(1);
  while (true) {
    const auto slash = rest.find('/');
    const std::string_view segment = rest.substr(0, slash);
    if (segment.empty() || segment == "." || segment == "..") return std::nullopt;
    file /= std::filesystem::path(std::string(segment));
    if (slash == std::string_view::npos) break;
    rest = rest.substr(slash + 1);
  }
  return file;
}

const char* content_type(const std::filesystem::path& file) {
  const std::string ext = file.extension().string();
  if (ext == ".html" || ext == ".htm") return "text/html; charset=utf-8";
  if (ext == ".js" || ext == ".mjs") return "text/javascript; charset=utf-8";
  if (ext == ".css") return "text/css; charset=utf-8";
  if (ext == ".json") return "application/json";
  if (ext == ".png") return "image/png";
  if (ext == ".svg") return "image/svg+xml";
  if (ext == ".ico") return "image/x-icon";
  return "application/octet-stream";
}

std::string truncate_reason(std::string_view reason) {
  if (reason.size() <= kMaxCloseReasonBytes) return std::string(reason);
  std::size_t n = kMaxCloseReasonBytes;
  // Never cut a UTF-8 sequence: back up to the start of one.
  while (n > 0 && (static_cast<unsigned char>(reason[n]) & 0xC0) == 0x80) --n;
  return std::string(reason.substr(0, n));
}

}  // namespace eventsourced::websocket_detail
