// Private to sync_websocket_server: what it reads from an HTTP request before the upgrade — the
// request target's path and query parameters, the client's token, the file a GET names under
// static_root. Separate so that tests/fuzz can reach them without a server.
//
// Everything here sees raw bytes from unauthenticated clients.
//
// \par Thread safety
// Pure functions.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace eventsourced::websocket_detail {

// Decodes %XX and '+' of a query string value; nullopt for a malformed escape.
std::optional<std::string> percent_decode(std::string_view s);

// The value of query parameter `name` in a request target ("/sync?token=abc&x=1"), decoded;
// nullopt when absent or malformed.
std::optional<std::string> query_parameter(std::string_view target, std::string_view name);

// The target without its query string.
std::string_view path_of(std::string_view target);

// The token of an upgrade request: query parameter "token", else the Authorization header's
// "Bearer " credentials; nullopt when the request carries neither.
std::optional<std::string> request_token(std::string_view target, std::string_view authorization);

// The file under root that a GET of target names (a target ending in '/' names its index.html);
// nullopt for a path that is malformed or tries to leave root (the server answers 400). Does not
// look at the file system.
std::optional<std::filesystem::path> static_file_path(const std::filesystem::path& root,
                                                      std::string_view target);

// The Content-Type header for a file, by its extension.
const char* content_type(const std::filesystem::path& file);

// reason cut to what a WebSocket close frame holds (123 bytes), never inside a UTF-8 sequence.
std::string truncate_reason(std::string_view reason);

}  // namespace eventsourced::websocket_detail
