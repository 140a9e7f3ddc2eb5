// Private: one nats.c connection (and JetStream context) built from nats_connection_options, and
// the mapping of nats.c statuses to eventsourced exceptions with every secret redacted.
#pragma once

#include <nats/nats.h>

#include <string>
#include <string_view>
#include <vector>

#include <eventsourced/nats/connection_options.hpp>

namespace eventsourced::nats_internal {

// Replaces every secret (password, token, URL user info) in a text by "***".
class redactor {
 public:
  void add(std::string secret);
  std::string operator()(std::string text) const;

 private:
  std::vector<std::string> secrets_;
};

// Checks the options (URL syntax, pairs given together, positive timeouts) and collects their
// secrets. Throws invalid_argument_error (with secrets redacted).
redactor check_options(const nats_connection_options& options);

// Throws the exception for a failed nats.c call: engine_unavailable_error (retryable) for an
// unreachable server, a timeout, a lost connection, no responders; invalid_argument_error for a
// bad argument; engine_error otherwise. `doing` says what failed; the text nats.c recorded for
// this thread is appended, redacted.
[[noreturn]] void throw_status(natsStatus status, std::string_view doing, const redactor& redact,
                               jsErrCode js_error = static_cast<jsErrCode>(0));

// A connected natsConnection with a JetStream context. Thread-safe as nats.c is: publish and
// subscribe from any thread.
class connection {
 public:
  // Connects (one attempt over the listed servers). Throws invalid_argument_error for bad
  // options, engine_unavailable_error when no server answers, engine_error for a refused login.
  explicit connection(const nats_connection_options& options);
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  natsConnection* get() const { return nc_; }
  jsCtx* jetstream() const { return js_; }
  const redactor& redact() const { return redact_; }
  const nats_connection_options& options() const { return options_; }

  // Throws engine_unavailable_error unless the connection is up now (it may be reconnecting),
  // engine_error when it is closed for good.
  void require_connected(std::string_view doing) const;
  // Closes the connection (idempotent); subscriptions end, later calls fail.
  void close() noexcept;

 private:
  nats_connection_options options_;
  redactor redact_;
  natsConnection* nc_ = nullptr;
  jsCtx* js_ = nullptr;
};

}  // namespace eventsourced::nats_internal
