// How eventsourced::nats connects to a NATS server: addresses, credentials, TLS, timeouts and
// reconnection. Shared by nats_bus and jetstream_bus.
//
//   eventsourced::nats_connection_options o{.url =
//   "nats://app:secret@nats1:4222,nats://nats2:4222"}; o.tls = {.ca_file = "/etc/ssl/nats-ca.pem"};
//   // tls:// URLs or secure = true turn TLS on
//
// Credentials come from the URL (nats://user:password@host, nats://token@host) or from the
// fields below; the fields win when both are given. Secrets (password, token, the user info part
// of a URL) never appear in the messages of the exceptions the library throws: they are replaced
// by "***".
//
// Reconnection. After a connection was established, a lost server is reconnected to by the
// client library in the background, for ever by default (max_reconnect_attempts < 0), waiting
// reconnect_wait between rounds over the listed servers. While the connection is down, publish()
// throws engine_unavailable_error (retryable) instead of waiting; subscriptions resume by
// themselves once it is back.
//
// \par Thread safety
// A plain value: copy it freely; concurrent reads are safe.
#pragma once

#include <chrono>
#include <string>

namespace eventsourced {

// TLS settings, passed through to nats.c (which uses OpenSSL). Any non-empty file name, secure,
// or a tls:// URL turns TLS on.
struct nats_tls_options {
  // Require TLS even for nats:// URLs.
  bool secure = false;
  // PEM file with the certificate authorities that sign the server's certificate; empty: the
  // system's default trust store.
  std::string ca_file{};
  // PEM files with this client's certificate chain and private key, for servers that verify
  // clients (both or neither).
  std::string cert_file{};
  std::string key_file{};
  // The host name the server's certificate must be issued for; empty: the one in the URL.
  std::string expected_hostname{};
  // Accept any server certificate. For tests only: it makes TLS open to a man in the middle.
  bool skip_server_verification = false;
};

struct nats_connection_options {
  // One server URL or a comma-separated list: nats://[user:password@|token@]host[:port], or
  // tls://... for TLS. Hosts are tried in random order unless no_randomize.
  std::string url = "nats://127.0.0.1:4222";
  bool no_randomize = false;
  // User and password (both or neither), or a token; override what the URL carries.
  std::string user{};
  std::string password{};
  std::string token{};
  // A NATS credentials file (user JWT and NKey seed, as `nsc` writes it) for decentralised auth.
  std::string credentials_file{};
  // An NKey: the user's public key and the file holding its seed (both or neither).
  std::string nkey_public_key{};
  std::string nkey_seed_file{};
  nats_tls_options tls{};
  // Shown in the server's monitoring as the client's name; empty: none.
  std::string name{};
  // Longest wait for a TCP (and TLS) connection to one server.
  std::chrono::milliseconds connect_timeout{2000};
  // Reconnection after a lost connection: attempts per server (< 0: for ever, 0: never reconnect
  // — the bus then fails for good once the connection is lost), and the pause between rounds.
  int max_reconnect_attempts = -1;
  std::chrono::milliseconds reconnect_wait{250};
  // Longest wait for the server's answer to a request: a JetStream publish acknowledgement, a
  // stream or consumer lookup. A publish that gets no answer in time throws
  // engine_unavailable_error.
  std::chrono::milliseconds request_timeout{5000};
};

}  // namespace eventsourced
