#include <eventsourced/engine/engine.hpp>
#include <eventsourced/engine/json_limits.hpp>
#include <eventsourced/error.hpp>

#include <algorithm>
#include <set>
#include <string>

namespace eventsourced {
namespace {

// Quotes a name for an error message without letting control bytes through.
std::string printable(std::string_view s, std::size_t max = 64) {
  std::string out;
  for (char c : s.substr(0, max)) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    } else {
      out += c;
    }
  }
  if (s.size() > max) out += "...";
  return out;
}

// Well-formed UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF.
// nlohmann::json refuses to dump anything else, so an id that passes here can go into JSON.
bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t len = 0;
    char32_t cp = 0;
    if (c < 0x80) {
      len = 1;
      cp = c;
    } else if ((c >> 5) == 0x6) {
      len = 2;
      cp = c & 0x1f;
    } else if ((c >> 4) == 0xe) {
      len = 3;
      cp = c & 0x0f;
    } else if ((c >> 3) == 0x1e) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (std::size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc >> 6) != 0x2) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    static constexpr char32_t kMinForLength[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMinForLength[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += len;
  }
  return true;
}

}  // namespace

void validate_collection_name(std::string_view name, std::string_view what) {
  auto fail = [&](const char* why) {
    throw invalid_argument_error("invalid " + std::string(what) + " name '" + printable(name) +
                                 "': " + why);
  };
  if (name.empty()) fail("it is empty");
  if (name.size() > 128) fail("it is longer than 128 bytes");
  const char first = name.front();
  if (!((first >= 'A' && first <= 'Z') || (first >= 'a' && first <= 'z') || first == '_')) {
    fail("it must start with a letter or '_'");
  }
  for (char c : name) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '-';
    if (!ok) fail("only letters, digits, '_', '.' and '-' are allowed");
  }
}

void validate_id(std::string_view id, std::string_view what) {
  auto fail = [&](const std::string& why) {
    throw invalid_argument_error("invalid " + std::string(what) + " '" + printable(id) +
                                 "': " + why);
  };
  if (id.empty()) fail("it is empty");
  if (id.size() > kMaxIdBytes) {
    fail("it is " + std::to_string(id.size()) + " bytes, the limit is " +
         std::to_string(kMaxIdBytes));
  }
  if (id.find('\0') != std::string_view::npos) fail("it contains a NUL byte");
  if (!valid_utf8(id)) fail("it is not valid UTF-8");
}

}  // namespace eventsourced

namespace eventsourced {

void validate_truncate_stream(const stream_ref& stream, std::int64_t before_version) {
  validate_collection_name(stream.type, "stream type");
  validate_id(stream.id, "stream id");
  if (before_version < 0) {
    throw invalid_argument_error("negative version " + std::to_string(before_version) +
                                 " to truncate stream '" + stream.type + "/" + stream.id +
                                 "' before");
  }
}

namespace {

// Checks appends, and `more` after them (derived appends) as if they were one list.
void validate_appends(const std::vector<stream_append>& appends,
                      const std::vector<stream_append>* more) {
  std::set<std::pair<std::string_view, std::string_view>> streams;
  std::set<std::string_view> event_ids;
  const auto check = [&](const stream_append& a) {
    validate_collection_name(a.stream.type, "stream type");
    validate_id(a.stream.id, "stream id");
    if (!streams.emplace(a.stream.type, a.stream.id).second) {
      throw invalid_argument_error("commit appends to stream '" + a.stream.type + "/" +
                                   a.stream.id + "' twice; combine the appends into one");
    }
    if (a.expected_version && *a.expected_version < 0) {
      throw invalid_argument_error("negative expected version for stream '" + a.stream.type + "/" +
                                   a.stream.id + "'");
    }
    for (const new_event& e : a.events) {
      validate_id(e.id, "event id");
      if (e.type.empty()) throw invalid_argument_error("event '" + e.id + "' has an empty type");
      if (!e.metadata.is_null() && !e.metadata.is_object()) {
        throw invalid_argument_error("metadata of event '" + e.id + "' must be an object or null");
      }
      for (const auto& [part, value] : {std::pair{"data", &e.data}, {"metadata", &e.metadata}}) {
        if (auto violation = find_json_violation(*value, kMaxJsonDepth)) {
          violation->raise(std::string("the ") + part + " of event '" + e.id + "'", kMaxJsonDepth);
        }
      }
      if (!event_ids.insert(e.id).second) {
        throw invalid_argument_error("event id '" + e.id + "' appears twice in one commit");
      }
    }
  };
  for (const stream_append& a : appends) check(a);
  if (more != nullptr) {
    for (const stream_append& a : *more) check(a);
  }
}

}  // namespace

void validate_commit_request(const commit_request& request) {
  if (!request.version_field.empty() &&
      field_path::parse(request.version_field).segments().size() != 1) {
    throw invalid_argument_error("version field '" + request.version_field +
                                 "' must be a top-level member name");
  }
  const std::size_t max_body_depth =
      request.max_json_depth == 0 ? kMaxJsonDepth : std::min(request.max_json_depth, kMaxJsonDepth);
  std::set<std::pair<std::string_view, std::string_view>> documents;
  for (const document_write& w : request.writes) {
    validate_collection_name(w.collection);
    validate_id(w.id);
    if (!documents.emplace(w.collection, w.id).second) {
      throw invalid_argument_error("commit writes document '" + w.collection + "/" + w.id +
                                   "' twice; combine the writes into one");
    }
    if (w.expected_version < 0) {
      throw invalid_argument_error("negative expected version for '" + w.collection + "/" + w.id +
                                   "'");
    }
    if (w.op == write_op::put) {
      if (!w.body.is_object()) {
        throw invalid_argument_error("document '" + w.collection + "/" + w.id +
                                     "' must be a JSON object, got " + w.body.type_name());
      }
      if (auto violation = find_json_violation(w.body, max_body_depth)) {
        violation->raise("the body of '" + w.collection + "/" + w.id + "'", max_body_depth);
      }
    }
  }
  validate_appends(request.appends, nullptr);
}

void validate_derived_appends(const commit_request& request,
                              const std::vector<stream_append>& derived) {
  validate_appends(request.appends, &derived);
}

}  // namespace eventsourced
