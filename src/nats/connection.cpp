#include "connection.hpp"

#include <algorithm>
#include <memory>

#include <eventsourced/error.hpp>

namespace eventsourced::nats_internal {
namespace {

std::string percent_decoded(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      try {
        out.push_back(static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16)));
        i += 2;
        continue;
      } catch (...) {
        // not an escape: keep the '%'
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

std::vector<std::string_view> split_urls(std::string_view list) {
  std::vector<std::string_view> out;
  while (true) {
    const auto comma = list.find(',');
    std::string_view one = list.substr(0, comma);
    while (!one.empty() && one.front() == ' ') one.remove_prefix(1);
    while (!one.empty() && one.back() == ' ') one.remove_suffix(1);
    out.push_back(one);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return out;
}

// The URL with its user info hidden, for messages.
std::string shown(std::string_view url) {
  const auto scheme = url.find("://");
  const auto start = scheme == std::string_view::npos ? 0 : scheme + 3;
  const auto at = url.rfind('@');
  if (at == std::string_view::npos || at < start) return std::string(url);
  return std::string(url.substr(0, start)) + "***" + std::string(url.substr(at));
}

[[noreturn]] void bad_option(const std::string& what) {
  throw invalid_argument_error("eventsourced: nats_connection_options: " + what);
}

void check_url(std::string_view url, redactor& redact) {
  const std::string seen = shown(url);
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) {
    bad_option("'" + seen + "' is not a URL (expected nats://host[:port] or tls://host[:port])");
  }
  const std::string_view scheme = url.substr(0, scheme_end);
  if (scheme != "nats" && scheme != "tls") {
    bad_option("'" + seen + "': unsupported scheme '" + std::string(scheme) +
               "' (expected nats or tls)");
  }
  std::string_view rest = url.substr(scheme_end + 3);
  const auto path = rest.find('/');
  if (path != std::string_view::npos) rest = rest.substr(0, path);
  const auto at = rest.rfind('@');
  if (at != std::string_view::npos) {
    const std::string_view info = rest.substr(0, at);
    const auto colon = info.find(':');
    const std::string_view secret = colon == std::string_view::npos ? info : info.substr(colon + 1);
    redact.add(std::string(secret));
    redact.add(percent_decoded(secret));
    redact.add(std::string(info));
    rest.remove_prefix(at + 1);
  }
  std::string_view host = rest;
  std::string_view port;
  if (!rest.empty() && rest.front() == '[') {  // [IPv6]:port
    const auto close = rest.find(']');
    if (close == std::string_view::npos) bad_option("'" + seen + "': unterminated IPv6 address");
    host = rest.substr(0, close + 1);
    if (close + 1 < rest.size()) {
      if (rest[close + 1] != ':') bad_option("'" + seen + "': junk after the IPv6 address");
      port = rest.substr(close + 2);
    }
  } else if (const auto colon = rest.rfind(':'); colon != std::string_view::npos) {
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
    if (port.empty()) bad_option("'" + seen + "': empty port");
  }
  if (host.empty()) bad_option("'" + seen + "' names no host");
  if (!port.empty()) {
    const bool digits = port.size() <= 5 && std::all_of(port.begin(), port.end(), [](char c) {
                          return c >= '0' && c <= '9';
                        });
    if (!digits || std::stoi(std::string(port)) == 0 || std::stoi(std::string(port)) > 65535) {
      bad_option("'" + seen + "': invalid port '" + std::string(port) + "'");
    }
  }
}

bool retryable(natsStatus s) {
  switch (s) {
    case NATS_TIMEOUT:
    case NATS_NO_SERVER:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_NO_RESPONDERS:
    case NATS_IO_ERROR:
    case NATS_STALE_CONNECTION:
    case NATS_NOT_YET_CONNECTED:
    case NATS_INSUFFICIENT_BUFFER:
    case NATS_SLOW_CONSUMER:
      return true;
    default:
      return false;
  }
}

}  // namespace

void redactor::add(std::string secret) {
  if (secret.empty()) return;
  if (std::find(secrets_.begin(), secrets_.end(), secret) != secrets_.end()) return;
  secrets_.push_back(std::move(secret));
  // Longest first, so that a secret containing another is hidden whole.
  std::sort(secrets_.begin(), secrets_.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
}

std::string redactor::operator()(std::string text) const {
  for (const auto& secret : secrets_) {
    for (auto at = text.find(secret); at != std::string::npos; at = text.find(secret, at + 3)) {
      text.replace(at, secret.size(), "***");
    }
  }
  return text;
}

redactor check_options(const nats_connection_options& o) {
  redactor redact;
  redact.add(o.password);
  redact.add(o.token);
  // Every URL's secrets are collected before any message is built, so that one bad URL in a
  // list cannot show another's password.
  const auto urls = split_urls(o.url);
  for (const auto url : urls) {
    const auto scheme = url.find("://");
    const auto start = scheme == std::string_view::npos ? 0 : scheme + 3;
    const auto at = url.rfind('@');
    if (at != std::string_view::npos && at >= start) {
      const std::string_view info = url.substr(start, at - start);
      const auto colon = info.find(':');
      redact.add(std::string(colon == std::string_view::npos ? info : info.substr(colon + 1)));
    }
  }
  try {
    if (o.url.empty()) bad_option("url is empty");
    for (const auto url : urls) {
      if (url.empty()) bad_option("url '" + o.url + "' has an empty entry");
      check_url(url, redact);
    }
    if (o.user.empty() != o.password.empty()) bad_option("user and password go together");
    if (!o.token.empty() && !o.user.empty()) bad_option("give a token or a user, not both");
    if (o.tls.cert_file.empty() != o.tls.key_file.empty()) {
      bad_option("tls.cert_file and tls.key_file go together");
    }
    if (o.nkey_public_key.empty() != o.nkey_seed_file.empty()) {
      bad_option("nkey_public_key and nkey_seed_file go together");
    }
    if (o.connect_timeout.count() <= 0) bad_option("connect_timeout must be positive");
    if (o.reconnect_wait.count() <= 0) bad_option("reconnect_wait must be positive");
    if (o.request_timeout.count() <= 0) bad_option("request_timeout must be positive");
  } catch (const invalid_argument_error& e) {
    throw invalid_argument_error(redact(e.what()));
  }
  return redact;
}

void throw_status(natsStatus status, std::string_view doing, const redactor& redact,
                  jsErrCode js_error) {
  std::string what =
      "eventsourced: NATS: " + std::string(doing) + " failed: " + natsStatus_GetText(status);
  natsStatus ignored;
  const char* detail = nats_GetLastError(&ignored);
  if (detail != nullptr && *detail != '\0') what += std::string(" (") + detail + ")";
  if (js_error != 0)
    what += " [JetStream error " + std::to_string(static_cast<int>(js_error)) + "]";
  what = redact(std::move(what));
  if (status == NATS_INVALID_ARG || status == NATS_ADDRESS_MISSING) {
    throw invalid_argument_error(what);
  }
  if (retryable(status)) throw engine_unavailable_error(what);
  throw engine_error(what);
}

connection::connection(const nats_connection_options& options)
    : options_(options), redact_(check_options(options)) {
  natsOptions* raw = nullptr;
  if (const natsStatus s = natsOptions_Create(&raw); s != NATS_OK) {
    throw_status(s, "creating connection options", redact_);
  }
  const std::unique_ptr<natsOptions, void (*)(natsOptions*)> opts(raw, natsOptions_Destroy);
  const auto set = [this](natsStatus s, std::string_view what) {
    if (s != NATS_OK) throw_status(s, what, redact_);
  };
  set(natsOptions_SetURL(raw, options.url.c_str()), "setting the server URL");
  set(natsOptions_SetNoRandomize(raw, options.no_randomize), "setting no_randomize");
  if (!options.user.empty()) {
    set(natsOptions_SetUserInfo(raw, options.user.c_str(), options.password.c_str()),
        "setting user and password");
  }
  if (!options.token.empty())
    set(natsOptions_SetToken(raw, options.token.c_str()), "setting the token");
  if (!options.credentials_file.empty()) {
    set(natsOptions_SetUserCredentialsFromFiles(raw, options.credentials_file.c_str(), nullptr),
        "loading credentials file '" + options.credentials_file + "'");
  }
  if (!options.nkey_public_key.empty()) {
    set(natsOptions_SetNKeyFromSeed(raw, options.nkey_public_key.c_str(),
                                    options.nkey_seed_file.c_str()),
        "setting the NKey from '" + options.nkey_seed_file + "'");
  }
  const nats_tls_options& tls = options.tls;
  if (tls.secure || !tls.ca_file.empty() || !tls.cert_file.empty() ||
      !tls.expected_hostname.empty() || tls.skip_server_verification) {
    set(natsOptions_SetSecure(raw, true), "enabling TLS");
  }
  if (!tls.ca_file.empty()) {
    set(natsOptions_LoadCATrustedCertificates(raw, tls.ca_file.c_str()),
        "loading TLS CA file '" + tls.ca_file + "'");
  }
  if (!tls.cert_file.empty()) {
    set(natsOptions_LoadCertificatesChain(raw, tls.cert_file.c_str(), tls.key_file.c_str()),
        "loading TLS certificate '" + tls.cert_file + "' and key '" + tls.key_file + "'");
  }
  if (!tls.expected_hostname.empty()) {
    set(natsOptions_SetExpectedHostname(raw, tls.expected_hostname.c_str()),
        "setting the TLS expected host name");
  }
  if (tls.skip_server_verification) {
    set(natsOptions_SkipServerVerification(raw, true), "skipping TLS server verification");
  }
  if (!options.name.empty())
    set(natsOptions_SetName(raw, options.name.c_str()), "setting the name");
  set(natsOptions_SetTimeout(raw, options.connect_timeout.count()), "setting connect_timeout");
  set(natsOptions_SetAllowReconnect(raw, options.max_reconnect_attempts != 0),
      "setting reconnection");
  set(natsOptions_SetMaxReconnect(raw, options.max_reconnect_attempts),
      "setting max_reconnect_attempts");
  set(natsOptions_SetReconnectWait(raw, options.reconnect_wait.count()), "setting reconnect_wait");
  // A request in flight when the connection drops fails at once instead of running out its
  // timeout: publish() reports an outage promptly.
  set(natsOptions_SetFailRequestsOnDisconnect(raw, true), "setting fail-requests-on-disconnect");

  if (const natsStatus s = natsConnection_Connect(&nc_, raw); s != NATS_OK) {
    throw_status(s, "connecting to " + redact_(options.url), redact_);
  }
  jsOptions js_options;
  jsOptions_Init(&js_options);
  js_options.Wait = options.request_timeout.count();
  if (const natsStatus s = natsConnection_JetStream(&js_, nc_, &js_options); s != NATS_OK) {
    natsConnection_Destroy(nc_);
    throw_status(s, "creating a JetStream context", redact_);
  }
}

connection::~connection() {
  close();
  jsCtx_Destroy(js_);
  natsConnection_Destroy(nc_);
}

void connection::require_connected(std::string_view doing) const {
  switch (natsConnection_Status(nc_)) {
    case NATS_CONN_STATUS_CONNECTED:
      return;
    case NATS_CONN_STATUS_CLOSED:
      throw engine_error("eventsourced: NATS: " + std::string(doing) +
                         " failed: the connection to " + redact_(options_.url) +
                         " is closed (reconnect attempts exhausted)");
    default:
      throw engine_unavailable_error("eventsourced: NATS: " + std::string(doing) +
                                     " failed: not connected to " + redact_(options_.url) +
                                     " (reconnecting)");
  }
}

void connection::close() noexcept {
  natsConnection_Close(nc_);
}

}  // namespace eventsourced::nats_internal
