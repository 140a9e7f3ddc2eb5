// What sync_websocket_server does with the bytes of a request before any upgrade: Beast's request
// parser with the server's limits (8 KB of header, no body), then the server's own handling of
// the target (src/websocket/http_target.hpp): the endpoint's path, the token, and the file a GET
// names under static_root. No socket is opened.
//
// Promises checked: no input crashes; a static file path is never outside static_root (and never
// holds NUL or ".."); the close reason fits a close frame and is a prefix of the reason given.
#include <utility>  // Boost 1.74 under C++20 needs it before Beast

#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

#include "fuzz_support.hpp"
#include "websocket/http_target.hpp"

namespace beast = boost::beast;
namespace http = beast::http;
namespace fuzz = eventsourced::fuzz;
namespace detail = eventsourced::websocket_detail;

namespace {

constexpr std::size_t kMaxRequestHeaderBytes = 8 * 1024;  // as sync_websocket_server.cpp

void check_static_path(std::string_view target) {
  static const std::filesystem::path root = "/srv/eventsourced/www";
  const auto file = detail::static_file_path(root, target);
  if (!file) return;
  const std::string text = file->string();
  const std::filesystem::path normal = file->lexically_normal();
  if (text.find('\0') != std::string::npos || !normal.native().starts_with(root.native() + "/")) {
    fuzz::fail("target '" + std::string(target) + "' names the file '" + text +
               "' outside the static root " + root.string());
  }
  detail::content_type(*file);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes = fuzz::as_text(data, size);

  // The helpers on the raw bytes as a target, so that they are fuzzed also with what the parser
  // would refuse.
  detail::query_parameter(bytes, "token");
  check_static_path(bytes);
  const std::string reason = detail::truncate_reason(bytes);
  if (reason.size() > 123 || !bytes.starts_with(reason)) fuzz::fail("truncate_reason");

  http::request_parser<http::string_body> parser;
  parser.header_limit(kMaxRequestHeaderBytes);
  parser.body_limit(0);
  parser.eager(true);
  // The bytes arrive in two reads, as from a slow client; what the parser leaves waits for more.
  std::string pending;
  for (const std::string_view part : {bytes.substr(0, size / 2), bytes.substr(size / 2)}) {
    pending.append(part);
    while (!pending.empty() && !parser.is_done()) {
      beast::error_code ec;
      const std::size_t used = parser.put(boost::asio::buffer(pending), ec);
      pending.erase(0, used);
      if (ec == http::error::need_more) break;
      if (ec) return 0;  // the server drops the connection
      if (used == 0) break;
    }
  }
  if (!parser.is_done()) return 0;
  const http::request<http::string_body>& request = parser.get();
  const std::string target(request.target().data(), request.target().size());
  if (beast::websocket::is_upgrade(request)) {
    detail::path_of(target);
    const auto auth = request[http::field::authorization];
    detail::request_token(target, std::string_view(auth.data(), auth.size()));
  } else {
    check_static_path(target);
  }
  return 0;
}
