// The engine URI parsers on any text: parse_sqlite_uri, and parse_postgres_uri and
// parse_mongodb_uri when their targets are built (EVENTSOURCED_FUZZ_POSTGRES / _MONGODB). They
// only parse: nothing connects or opens a file.
//
// Promises checked: a URI is parsed or refused with invalid_argument_error; what parses is
// within the documented ranges; and the server parsers' messages never repeat the password.
#include <cstddef>
#include <cstdint>
#include <string>

#include <eventsourced/engine/sqlite.hpp>
#if EVENTSOURCED_FUZZ_POSTGRES
#include <eventsourced/engine/postgres.hpp>
#endif
#if EVENTSOURCED_FUZZ_MONGODB
#include <mongoc/mongoc.h>

#include <eventsourced/engine/mongodb.hpp>
#endif

#include "fuzz_support.hpp"

namespace es = eventsourced;
namespace fuzz = eventsourced::fuzz;

namespace {

// The password of scheme://user:password@host/..., as RFC 3986 delimits the authority (up to the
// first '/', '?' or '#') and as most parsers split it (at the last '@' in it). Empty when there is
// none, or when it is too short or occurs elsewhere in the URI, so that finding it in a message
// means the message repeats it.
std::string_view password_of(std::string_view uri) {
  const auto scheme_end = uri.find("://");
  if (scheme_end == std::string_view::npos) return {};
  const std::string_view authority =
      uri.substr(scheme_end + 3, uri.find_first_of("/?#", scheme_end + 3) - scheme_end - 3);
  const auto at = authority.rfind('@');
  const auto colon = authority.find(':');
  if (at == std::string_view::npos || colon == std::string_view::npos || colon > at) return {};
  const std::string_view password = authority.substr(colon + 1, at - colon - 1);
  if (password.size() < 6 || uri.find(password) != uri.rfind(password)) return {};
  return password;
}

// Runs parse; refusals must be invalid_argument_error and, when `secret`, must not repeat the
// password.
template <typename Parse>
void check_parse(std::string_view uri, bool secret, const Parse& parse) {
  try {
    parse();
  } catch (const es::invalid_argument_error& e) {
    const std::string_view password = secret ? password_of(uri) : std::string_view();
    if (!password.empty() && std::string_view(e.what()).find(password) != std::string_view::npos) {
      fuzz::fail(std::string("the message repeats the password: ") + e.what());
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
#if EVENTSOURCED_FUZZ_MONGODB
  // libmongoc logs every URI it refuses: most inputs.
  mongoc_log_set_handler(nullptr, nullptr);
#endif
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view uri = fuzz::as_text(data, size);
  check_parse(uri, false, [&] {
    const es::sqlite_options o = es::parse_sqlite_uri(uri);
    if (o.path.empty() || o.max_readers < 1 || o.busy_timeout.count() < 0 ||
        o.poll_interval.count() < 1) {
      fuzz::fail("parse_sqlite_uri accepted out-of-range options");
    }
  });
#if EVENTSOURCED_FUZZ_POSTGRES
  check_parse(uri, true, [&] {
    const es::postgres_options o = es::parse_postgres_uri(uri);
    if (o.pool_size < 1 || o.max_attempts < 1) {
      fuzz::fail("parse_postgres_uri accepted out-of-range options");
    }
  });
#endif
#if EVENTSOURCED_FUZZ_MONGODB
  check_parse(uri, true, [&] {
    const es::mongodb_options o = es::parse_mongodb_uri(uri);
    if (o.database.empty() || o.server_selection_timeout.count() < 0) {
      fuzz::fail("parse_mongodb_uri accepted out-of-range options");
    }
  });
#endif
  return 0;
}
