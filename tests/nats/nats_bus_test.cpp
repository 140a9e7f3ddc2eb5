// nats_bus (core NATS): the bus conformance suite, then what nats_bus.hpp and subject.hpp promise
// beyond it: subjects other clients can use, the failure policy, malformed messages, and the
// connection options' errors (which never show a secret).
#include <eventsourced/nats/nats_bus.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <eventsourced/error.hpp>
#include <eventsourced/event/serializer.hpp>
#include <eventsourced/nats/jetstream_bus.hpp>
#include <eventsourced/nats/subject.hpp>

#include "conformance/event_bus_conformance.hpp"
#include "nats_test_support.hpp"

namespace eventsourced::conformance {
namespace {

constexpr const char* kNatsUrl = "EVENTSOURCED_TEST_NATS_URL";

std::string nats_url() {
  const auto url = eventsourced::testing::server_address(kNatsUrl);
  return url ? *url : std::string();
}

void flush_nats_bus(event_bus& bus) {
  if (!dynamic_cast<nats_bus&>(bus).flush()) ADD_FAILURE() << "nats_bus::flush timed out";
}

INSTANTIATE_TEST_SUITE_P(nats, event_bus_conformance,
                         ::testing::Values(bus_under_test{
                             "core",
                             [] {
                               return std::make_unique<nats_bus>(
                                   nats_bus_options{.connection = {.url = nats_url()},
                                                    .ns = nats_testing::unique_namespace()});
                             },
                             flush_nats_bus, true, kNatsUrl}),
                         bus_under_test_name);

}  // namespace
}  // namespace eventsourced::conformance

namespace eventsourced {
namespace {

using conformance::eventually;
using conformance::make_test_event;
using conformance::received_events;

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no exception)";
}

// ---------------------------------------------------------------------------------------------
// Subjects (no server needed).

TEST(nats_subject, types_made_of_token_characters_are_kept_as_they_are) {
  EXPECT_EQ(encode_subject_token("PlayerCreated"), "PlayerCreated");
  EXPECT_EQ(encode_subject_token("player_created-v2"), "player_created-v2");
  EXPECT_EQ(event_subject("game", "PlayerCreated"), "game.PlayerCreated");
}

TEST(nats_subject, dots_wildcards_spaces_and_percent_are_escaped) {
  EXPECT_EQ(encode_subject_token("player.created"), "player%2Ecreated");
  EXPECT_EQ(encode_subject_token("*"), "%2A");
  EXPECT_EQ(encode_subject_token(">"), "%3E");
  EXPECT_EQ(encode_subject_token("Level Up\t"), "Level%20Up%09");
  EXPECT_EQ(encode_subject_token("50%"), "50%25");
  EXPECT_EQ(encode_subject_token("\xC3\xA9t\xC3\xA9"), "%C3%A9t%C3%A9");  // UTF-8 bytes
}

TEST(nats_subject, decoding_gives_back_every_type_and_refuses_other_spellings) {
  for (const std::string type : {"A", "player.created", "a b.c*d>e%f", "%25", "\xC3\xA9", "x%"}) {
    EXPECT_EQ(decode_subject_token(encode_subject_token(type)), type);
  }
  EXPECT_THROW(decode_subject_token(""), invalid_argument_error);
  EXPECT_THROW(decode_subject_token("a%2"), invalid_argument_error);   // truncated escape
  EXPECT_THROW(decode_subject_token("a%2e"), invalid_argument_error);  // lower case hex
  EXPECT_THROW(decode_subject_token("%41"), invalid_argument_error);   // 'A' is never escaped
  EXPECT_THROW(decode_subject_token("a.b"), invalid_argument_error);   // not a token
}

TEST(nats_subject, empty_types_and_invalid_namespaces_are_refused) {
  EXPECT_THROW(encode_subject_token(""), invalid_argument_error);
  EXPECT_THROW(check_nats_namespace(""), invalid_argument_error);
  EXPECT_THROW(check_nats_namespace("a.b"), invalid_argument_error);
  EXPECT_THROW(check_nats_namespace("a*"), invalid_argument_error);
  EXPECT_THROW(check_nats_namespace("a b"), invalid_argument_error);
  EXPECT_THROW(check_nats_namespace(std::string(65, 'a')), invalid_argument_error);
  EXPECT_NO_THROW(check_nats_namespace(std::string(64, 'a')));
}

// ---------------------------------------------------------------------------------------------
// Options and their errors (no server needed, except where a private one is started).

TEST(nats_options, malformed_urls_and_inconsistent_options_throw_invalid_argument_error) {
  const auto refused = [](nats_connection_options o) {
    EXPECT_THROW(nats_bus({.connection = o}), invalid_argument_error) << o.url;
  };
  refused({.url = ""});
  refused({.url = "127.0.0.1:4222"});          // no scheme
  refused({.url = "http://127.0.0.1:4222"});   // not NATS
  refused({.url = "nats://"});                 // no host
  refused({.url = "nats://127.0.0.1:"});       // empty port
  refused({.url = "nats://127.0.0.1:99999"});  // port out of range
  refused({.url = "nats://127.0.0.1:42x"});    // not a number
  refused({.url = "nats://127.0.0.1:4222,"});  // empty entry
  refused({.user = "u"});                      // user without password
  refused({.user = "u", .password = "p", .token = "t"});
  refused({.tls = {.cert_file = "/c.pem"}});  // certificate without key
  refused({.connect_timeout = std::chrono::milliseconds(0)});
  EXPECT_THROW(nats_bus({.ns = "bad.namespace"}), invalid_argument_error);
  EXPECT_THROW(nats_bus({.max_attempts = 0}), invalid_argument_error);
  EXPECT_THROW(jetstream_bus({.max_deliver = 0}), invalid_argument_error);
  EXPECT_THROW(jetstream_bus({.ns = "x y"}), invalid_argument_error);
}

TEST(nats_options, no_server_listening_is_engine_unavailable_and_retryable) {
  const int port = nats_testing::free_port();
  try {
    nats_bus bus({.connection = {.url = "nats://127.0.0.1:" + std::to_string(port),
                                 .connect_timeout = std::chrono::milliseconds(500)}});
    FAIL() << "connected to a port nobody listens on";
  } catch (const engine_unavailable_error& e) {
    EXPECT_TRUE(e.retryable());
    EXPECT_NE(std::string(e.what()).find(std::to_string(port)), std::string::npos) << e.what();
  }
}

TEST(nats_options, passwords_and_tokens_never_appear_in_error_messages) {
  const std::string password = "Sup3rSecretPw";
  const std::string token = "T0kenSecretValue";
  const std::string port = std::to_string(nats_testing::free_port());
  std::vector<std::string> messages;
  // Invalid options, with the secret in the URL and in the fields.
  messages.push_back(message_of(
      [&] { nats_bus({.connection = {.url = "nats://ann:" + password + "@127.0.0.1:99999"}}); }));
  messages.push_back(message_of(
      [&] { nats_bus({.connection = {.url = "nats://" + token + "@127.0.0.1:4222,bogus://x"}}); }));
  messages.push_back(message_of(
      [&] { nats_bus({.connection = {.url = "http://ann:" + password + "@127.0.0.1:4222"}}); }));
  messages.push_back(
      message_of([&] { nats_bus({.connection = {.url = "nats:/", .password = password}}); }));
  // Nobody listening, the secret in the URL and in the fields.
  messages.push_back(message_of(
      [&] { nats_bus({.connection = {.url = "nats://ann:" + password + "@127.0.0.1:" + port}}); }));
  messages.push_back(message_of(
      [&] { nats_bus({.connection = {.url = "nats://" + token + "@127.0.0.1:" + port}}); }));
  messages.push_back(message_of(
      [&] { jetstream_bus({.connection = {.url = "nats://127.0.0.1:" + port, .token = token}}); }));
  for (const auto& m : messages) {
    EXPECT_EQ(m.find(password), std::string::npos) << m;
    EXPECT_EQ(m.find(token), std::string::npos) << m;
    EXPECT_NE(m, "(no exception)");
  }
}

TEST(nats_options, a_refused_login_is_an_error_that_hides_the_password) {
  const std::string good = "RightPassw0rd";
  const std::string wrong = "WrongPassw0rd";
  nats_testing::private_nats_server server({"--user", "ann", "--pass", good});
  const std::string host = "127.0.0.1:" + std::to_string(server.port());
  try {
    nats_bus bus(
        {.connection = {.url = "nats://ann:" + wrong + "@" + host, .max_reconnect_attempts = 0}});
    FAIL() << "a wrong password was accepted";
  } catch (const error& e) {
    EXPECT_EQ(std::string(e.what()).find(wrong), std::string::npos) << e.what();
  }
  try {
    nats_bus bus({.connection = {.url = "nats://" + host, .user = "ann", .password = wrong}});
    FAIL() << "a wrong password was accepted";
  } catch (const error& e) {
    EXPECT_EQ(std::string(e.what()).find(wrong), std::string::npos) << e.what();
  }
  // The right password, in the URL or in the fields, connects and delivers.
  nats_bus in_url({.connection = {.url = "nats://ann:" + good + "@" + host}});
  nats_bus in_fields({.connection = {.url = "nats://" + host, .user = "ann", .password = good}});
  received_events got;
  subscription s = in_fields.subscribe(kAllEvents, got.recorder());
  in_url.publish(make_test_event("A"));
  EXPECT_TRUE(eventually([&] { return got.size() == 1; }));
}

TEST(nats_options, a_token_connects_and_a_wrong_one_is_refused_without_showing_it) {
  const std::string good = "GoodT0ken";
  const std::string wrong = "BadT0kenValue";
  nats_testing::private_nats_server server({"--auth", good});
  const std::string host = "127.0.0.1:" + std::to_string(server.port());
  const std::string m = message_of([&] {
    nats_bus(
        {.connection = {.url = "nats://" + host, .token = wrong, .max_reconnect_attempts = 0}});
  });
  EXPECT_NE(m, "(no exception)");
  EXPECT_EQ(m.find(wrong), std::string::npos) << m;
  EXPECT_NO_THROW(nats_bus({.connection = {.url = "nats://" + good + "@" + host}}));
}

TEST(nats_options, tls_required_by_the_client_fails_against_a_plain_server) {
  nats_testing::private_nats_server server;
  // The options reach nats.c: a client that insists on TLS cannot talk to a server without it.
  EXPECT_THROW(nats_bus({.connection = {.url = server.url(),
                                        .tls = {.secure = true},
                                        .max_reconnect_attempts = 0}}),
               error);
  EXPECT_THROW(
      nats_bus({.connection = {.url = server.url(), .tls = {.ca_file = "/nonexistent/ca.pem"}}}),
      error);
}

// ---------------------------------------------------------------------------------------------
// Core NATS behaviour against the shared test server.

class nats_bus_test : public ::testing::Test {
 protected:
  void SetUp() override { EVENTSOURCED_REQUIRE_SERVER("EVENTSOURCED_TEST_NATS_URL", url_); }
  nats_bus_options options(nats_bus_options o = {}) {
    o.connection.url = url_;
    if (o.ns == "events") o.ns = ns_;
    return o;
  }
  std::string url_;
  std::string ns_ = nats_testing::unique_namespace();
};

TEST_F(nats_bus_test, another_bus_in_the_namespace_receives_what_one_publishes) {
  nats_bus publisher(options());
  nats_bus subscriber(options());
  received_events got;
  subscription s = subscriber.subscribe("PlayerCreated", got.recorder());
  const event e = make_test_event("PlayerCreated");
  publisher.publish(e);
  ASSERT_TRUE(eventually([&] { return got.size() == 1; }));
  EXPECT_EQ(got.ids(), std::vector<std::string>{e.id});
}

TEST_F(nats_bus_test, events_go_to_the_encoded_subject_as_serialized_json) {
  nats_bus bus(options());
  nats_testing::raw_connection raw(url_);
  natsSubscription* sub = nullptr;
  const std::string subject = ns_ + ".player%2Ecreated";
  ASSERT_EQ(natsConnection_SubscribeSync(&sub, raw.get(), subject.c_str()), NATS_OK);
  ASSERT_EQ(natsConnection_Flush(raw.get()), NATS_OK);
  const event e = make_test_event("player.created");
  bus.publish(e);
  natsMsg* msg = nullptr;
  ASSERT_EQ(natsSubscription_NextMsg(&msg, sub, 10000), NATS_OK);
  const event got = deserialize_event(
      std::string_view(natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg))));
  EXPECT_EQ(got.id, e.id);
  EXPECT_EQ(got.type, "player.created");
  natsMsg_Destroy(msg);
  natsSubscription_Destroy(sub);
}

TEST_F(nats_bus_test, a_type_with_wildcards_reaches_only_its_own_subscribers) {
  nats_bus bus(options());
  received_events star, dotted, plain;
  subscription a = bus.subscribe("*", star.recorder());  // kAllEvents: every event
  subscription b = bus.subscribe("a.b", dotted.recorder());
  subscription c = bus.subscribe("a", plain.recorder());
  const event e1 = make_test_event("a.b");
  const event e2 = make_test_event("a");
  const event e3 = make_test_event("a.>");
  bus.publish(e1);
  bus.publish(e2);
  bus.publish(e3);
  ASSERT_TRUE(bus.flush());
  EXPECT_EQ(star.size(), 3u);
  EXPECT_EQ(dotted.ids(), std::vector<std::string>{e1.id});
  EXPECT_EQ(plain.ids(), std::vector<std::string>{e2.id});
}

TEST_F(nats_bus_test, a_failing_handler_is_retried_then_reported) {
  std::atomic<int> calls{0};
  std::vector<handler_failure> failures;
  std::mutex mutex;
  nats_bus bus(options({.max_attempts = 3, .on_handler_failure = [&](const handler_failure& f) {
                          std::lock_guard lock(mutex);
                          failures.push_back(f);
                        }}));
  subscription s = bus.subscribe("A", [&](const event&) {
    ++calls;
    throw std::runtime_error("nope");
  });
  const event e = make_test_event("A");
  bus.publish(e);
  ASSERT_TRUE(bus.flush());
  EXPECT_EQ(calls.load(), 3);
  std::lock_guard lock(mutex);
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_EQ(failures[0].failed_event.id, e.id);
  EXPECT_EQ(failures[0].attempts, 3);
  EXPECT_EQ(failures[0].subscribed_type, "A");
}

TEST_F(nats_bus_test, messages_that_are_not_events_are_counted_and_dropped) {
  nats_bus bus(options());
  received_events got;
  subscription s = bus.subscribe(kAllEvents, got.recorder());
  nats_testing::raw_connection raw(url_);
  const std::string subject = ns_ + ".A";
  ASSERT_EQ(natsConnection_PublishString(raw.get(), subject.c_str(), "not json"), NATS_OK);
  ASSERT_EQ(natsConnection_Flush(raw.get()), NATS_OK);
  const event e = make_test_event("A");
  bus.publish(e);  // after the junk, on another connection: wait for it instead of the junk
  ASSERT_TRUE(eventually([&] { return got.size() == 1 && bus.malformed_messages() == 1; }));
  EXPECT_EQ(got.ids(), std::vector<std::string>{e.id});
}

}  // namespace
}  // namespace eventsourced

namespace eventsourced {
namespace {

using conformance::make_test_event;
using conformance::received_events;

// Runs a shell command quietly; true when it succeeded.
bool run_quietly(const std::string& command) {
  return std::system((command + " >/dev/null 2>&1").c_str()) == 0;
}

// A test CA, a server certificate for the host name "nats.test" (not for 127.0.0.1) and a client
// certificate, made with the openssl command line tool.
struct test_certificates {
  eventsourced::testing::temporary_directory dir;
  std::string file(const std::string& name) const { return (dir.path() / name).string(); }
  bool make() const {
    const std::string d = dir.path().string();
    const auto sign = [&](const std::string& name, const std::string& cn, const std::string& ext) {
      return run_quietly("openssl req -newkey rsa:2048 -nodes -keyout " + d + "/" + name +
                         ".key -out " + d + "/" + name + ".csr -subj /CN=" + cn) &&
             run_quietly("printf '" + ext + "' > " + d + "/" + name + ".ext") &&
             run_quietly("openssl x509 -req -in " + d + "/" + name + ".csr -CA " + d +
                         "/ca.pem -CAkey " + d + "/ca.key -CAcreateserial -out " + d + "/" + name +
                         ".pem -days 2 -extfile " + d + "/" + name + ".ext");
    };
    return run_quietly("openssl req -x509 -newkey rsa:2048 -nodes -keyout " + d + "/ca.key -out " +
                       d + "/ca.pem -days 2 -subj /CN=es-test-ca") &&
           sign("server", "nats.test", "subjectAltName=DNS:nats.test") &&
           sign("client", "es-client", "extendedKeyUsage=clientAuth");
  }
};

TEST(nats_tls, tls_options_reach_the_client_library) {
  if (!run_quietly("command -v openssl")) GTEST_SKIP() << "no openssl command to make certificates";
  test_certificates certs;
  ASSERT_TRUE(certs.make());
  // The server requires TLS and a client certificate signed by the test CA.
  nats_testing::private_nats_server server({"--tlsverify", "--tlscert", certs.file("server.pem"),
                                            "--tlskey", certs.file("server.key"), "--tlscacert",
                                            certs.file("ca.pem")});
  const std::string url = "tls://127.0.0.1:" + std::to_string(server.port());
  const nats_tls_options good{.ca_file = certs.file("ca.pem"),
                              .cert_file = certs.file("client.pem"),
                              .key_file = certs.file("client.key"),
                              .expected_hostname = "nats.test"};
  // Generous: a TLS handshake on a loaded machine under a sanitizer can be slow.
  constexpr auto kConnectTimeout = std::chrono::seconds(10);
  {
    nats_bus bus({.connection = {.url = url, .tls = good, .connect_timeout = kConnectTimeout}});
    received_events got;
    subscription s = bus.subscribe(kAllEvents, got.recorder());
    bus.publish(make_test_event("A"));
    ASSERT_TRUE(bus.flush());
    EXPECT_EQ(got.size(), 1u);
  }
  const auto refused = [&](nats_tls_options tls) {
    EXPECT_THROW(nats_bus({.connection = {.url = url,
                                          .tls = tls,
                                          .connect_timeout = kConnectTimeout,
                                          .max_reconnect_attempts = 0}}),
                 error);
  };
  // The control: the same call with the good options connects.
  EXPECT_NO_THROW(nats_bus({.connection = {.url = url,
                                           .tls = good,
                                           .connect_timeout = kConnectTimeout,
                                           .max_reconnect_attempts = 0}}));
  nats_tls_options no_client_certificate = good;
  no_client_certificate.cert_file.clear();
  no_client_certificate.key_file.clear();
  refused(no_client_certificate);  // the server verifies clients
  nats_tls_options unknown_ca = good;
  unknown_ca.ca_file.clear();  // the system's trust store does not know the test CA
  refused(unknown_ca);
  nats_tls_options wrong_host = good;
  wrong_host.expected_hostname = "other.test";  // the certificate is for nats.test
  refused(wrong_host);
}

}  // namespace
}  // namespace eventsourced
