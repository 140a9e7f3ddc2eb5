#include <mongoc/mongoc.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <string>

#include <eventsourced/engine/engine.hpp>
#include <eventsourced/engine/json_limits.hpp>
#include <eventsourced/engine/mongodb.hpp>
#include <eventsourced/error.hpp>

#include "mongodb/mongo_client.hpp"

namespace eventsourced {
namespace {

// URI options libmongoc knows that its mongoc_uri_option_is_* predicates do not report
// (options whose values are parsed specially).
constexpr std::array<std::string_view, 9> kSpecialOptions = {"authmechanism",
                                                             "authmechanismproperties",
                                                             "authsource",
                                                             "compressors",
                                                             "gssapiservicename",
                                                             "readconcernlevel",
                                                             "readpreferencetags",
                                                             "slaveok",
                                                             "w"};

bool known_option(const std::string& lower) {
  if (std::find(kSpecialOptions.begin(), kSpecialOptions.end(), lower) != kSpecialOptions.end()) {
    return true;
  }
  const char* k = lower.c_str();
  return mongoc_uri_option_is_int32(k) || mongoc_uri_option_is_int64(k) ||
         mongoc_uri_option_is_bool(k) || mongoc_uri_option_is_utf8(k);
}

// The URI without its user information (user:password@), for messages.
std::string redacted(std::string_view uri) {
  const auto scheme_end = uri.find("://");
  if (scheme_end == std::string_view::npos) return std::string(uri.substr(0, 16)) + "...";
  const auto hosts = scheme_end + 3;
  // The credentials end at the last '@' before the options: a password may hold '/' or '@'
  // that its writer did not escape (libmongoc then refuses the URI, and the message quotes it).
  const auto options = uri.find('?', hosts);
  const auto at = uri.substr(0, options).rfind('@');
  if (at == std::string_view::npos || at < hosts) return std::string(uri);
  return std::string(uri.substr(0, hosts)) + "***@" + std::string(uri.substr(at + 1));
}

void check_database_name(const std::string& name, std::string_view uri) {
  const bool bad_char =
      name.find_first_of(std::string("/\\. \"$*<>:|?\0", 13)) != std::string::npos;
  if (name.empty() || name.size() >= 64 || bad_char) {
    throw invalid_argument_error("MongoDB URI " + redacted(uri) + ": invalid database name '" +
                                 name +
                                 "' (1..63 bytes, none of / \\ . space \" $ * < > : | ? NUL)");
  }
}

}  // namespace

mongodb_options parse_mongodb_uri(std::string_view uri) {
  if (!uri.starts_with("mongodb://") && !uri.starts_with("mongodb+srv://")) {
    throw invalid_argument_error("not a MongoDB URI (mongodb:// or mongodb+srv://): " +
                                 redacted(uri));
  }
  if (uri.find('\0') != std::string_view::npos) {
    throw invalid_argument_error("MongoDB URI holds a NUL character");
  }
  // Options first: libmongoc would only warn about an unknown one.
  const auto query = uri.find('?');
  if (query != std::string_view::npos) {
    std::string_view rest = uri.substr(query + 1);
    while (!rest.empty()) {
      const auto end = rest.find_first_of("&;");
      const std::string_view item = rest.substr(0, end);
      rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
      if (item.empty()) continue;
      std::string key(item.substr(0, item.find('=')));
      std::string lower = key;
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (!known_option(lower)) {
        throw invalid_argument_error("MongoDB URI " + redacted(uri) + ": unknown option '" + key +
                                     "'");
      }
    }
  }
  mongodb_detail::ensure_initialized();
  bson_error_t error;
  const std::string text(uri);
  mongoc_uri_t* parsed = mongoc_uri_new_with_error(text.c_str(), &error);
  if (parsed == nullptr) {
    // libmongoc's message may quote the password ("Password "..." must not have unescaped
    // chars"): it is left out when the URI holds credentials.
    const bool credentials = redacted(uri) != uri;
    throw invalid_argument_error(
        "MongoDB URI " + redacted(uri) + ": " +
        (credentials ? std::string("libmongoc refuses it (its message is left out: it may quote "
                                   "the password; check that the credentials are escaped)")
                     : std::string(error.message)));
  }
  mongodb_options options;
  options.uri = text;
  if (const char* db = mongoc_uri_get_database(parsed); db != nullptr && *db != '\0') {
    options.database = db;
  }
  const std::int32_t timeout =
      mongoc_uri_get_option_as_int32(parsed, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 0);
  mongoc_uri_destroy(parsed);
  check_database_name(options.database, uri);
  if (timeout < 0) {
    throw invalid_argument_error("MongoDB URI " + redacted(uri) +
                                 ": serverSelectionTimeoutMS must not be negative");
  }
  if (timeout > 0) options.server_selection_timeout = std::chrono::milliseconds(timeout);
  return options;
}

void check_mongodb_depth(const commit_request& request, const std::vector<stream_append>& derived) {
  const auto check = [](const json& value, const auto& what) {
    if (auto violation = find_json_violation(value, kMongodbMaxJsonDepth)) {
      violation->raise(what() + " (MongoDB's limit)", kMongodbMaxJsonDepth);
    }
  };
  for (const document_write& w : request.writes) {
    if (w.op != write_op::put) continue;
    check(w.body, [&] { return "the body of '" + w.collection + "/" + w.id + "'"; });
  }
  for (const auto* appends : {&request.appends, &derived}) {
    for (const stream_append& a : *appends) {
      for (const new_event& e : a.events) {
        check(e.data, [&] { return "the data of event '" + e.id + "'"; });
        check(e.metadata, [&] { return "the metadata of event '" + e.id + "'"; });
      }
    }
  }
}

void validate_mongodb_collection_name(std::string_view name) {
  validate_collection_name(name);
  if (name.starts_with("system.")) {
    throw invalid_argument_error("collection '" + std::string(name) +
                                 "': MongoDB reserves names starting with \"system.\"");
  }
}

}  // namespace eventsourced
