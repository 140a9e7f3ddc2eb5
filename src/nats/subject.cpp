#include <eventsourced/nats/subject.hpp>

#include <eventsourced/error.hpp>

namespace eventsourced {
namespace {

constexpr std::size_t kMaxNamespace = 64;
constexpr char kHex[] = "0123456789ABCDEF";

bool kept(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;  // lower case is never produced, so never accepted: one spelling per type
}

}  // namespace

std::string encode_subject_token(std::string_view type) {
  if (type.empty()) throw invalid_argument_error("eventsourced: an event type must not be empty");
  std::string out;
  out.reserve(type.size());
  for (const char ch : type) {
    const auto c = static_cast<unsigned char>(ch);
    if (kept(c)) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
  return out;
}

std::string decode_subject_token(std::string_view token) {
  if (token.empty()) throw invalid_argument_error("eventsourced: an empty subject token");
  std::string out;
  out.reserve(token.size());
  for (std::size_t i = 0; i < token.size(); ++i) {
    const auto c = static_cast<unsigned char>(token[i]);
    if (kept(c)) {
      out.push_back(token[i]);
      continue;
    }
    const bool escape = c == '%' && i + 2 < token.size();
    const int hi = escape ? hex_value(token[i + 1]) : -1;
    const int lo = escape ? hex_value(token[i + 2]) : -1;
    const auto decoded = static_cast<unsigned char>(hi * 16 + lo);
    if (hi < 0 || lo < 0 || kept(decoded)) {
      throw invalid_argument_error("eventsourced: subject token '" + std::string(token) +
                                   "' is not an encoded event type (at byte " + std::to_string(i) +
                                   ")");
    }
    out.push_back(static_cast<char>(decoded));
    i += 2;
  }
  return out;
}

void check_nats_namespace(std::string_view ns) {
  bool ok = !ns.empty() && ns.size() <= kMaxNamespace;
  for (const char ch : ns) ok = ok && kept(static_cast<unsigned char>(ch));
  if (!ok) {
    throw invalid_argument_error("eventsourced: NATS namespace '" + std::string(ns) +
                                 "' must be 1 to 64 characters from [A-Za-z0-9_-]");
  }
}

std::string event_subject(std::string_view ns, std::string_view type) {
  check_nats_namespace(ns);
  std::string subject(ns);
  subject.push_back('.');
  subject += encode_subject_token(type);
  return subject;
}

}  // namespace eventsourced
