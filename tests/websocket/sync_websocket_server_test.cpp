// sync_websocket_server against real WebSocket clients (Boost.Beast) on loopback: authentication,
// the protocol end to end, resuming after a server-side close, and every kind of bad input
// closing only the client that sent it.
#include <utility>  // Boost 1.74 under C++20 needs it before Asio

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <eventsourced/eventsourced.hpp>
#include <eventsourced/websocket/sync_websocket_server.hpp>

#include "support/temporary_directory.hpp"

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using eventsourced::json;
using namespace std::chrono_literals;

// A WebSocket client whose every operation has a deadline (async operations on a tcp_stream with
// an expiry, run to completion on the client's own io_context).
class ws_client {
 public:
  // Connects and upgrades; throws with the HTTP status when the upgrade is refused.
  ws_client(std::uint16_t port, const std::string& target, int receive_buffer_bytes = 0) {
    auto& tcp_layer = beast::get_lowest_layer(ws_);
    tcp_layer.socket().open(tcp::v4());
    if (receive_buffer_bytes > 0) {
      tcp_layer.socket().set_option(net::socket_base::receive_buffer_size(receive_buffer_bytes));
    }
    tcp_layer.expires_after(10s);
    run([&](auto done) {
      tcp_layer.async_connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port), done);
    });
    tcp_layer.expires_after(10s);
    websocket::response_type response;
    const auto ec =
        run([&](auto done) { ws_.async_handshake(response, "127.0.0.1", target, done); });
    if (ec) {
      status_ = response.result_int();
      throw std::runtime_error("handshake refused: HTTP " + std::to_string(status_) + " (" +
                               ec.message() + ")");
    }
    tcp_layer.expires_never();
  }

  void send(const std::string& text, bool binary = false) {
    beast::get_lowest_layer(ws_).expires_after(10s);
    ws_.binary(binary);
    const auto ec = run([&](auto done) { ws_.async_write(net::buffer(text), done); });
    beast::get_lowest_layer(ws_).expires_never();
    if (ec) throw beast::system_error(ec, "send");
  }
  void send(const json& message) { send(message.dump()); }

  // The next message, or nullopt when the connection was closed (close_code()/close_reason()).
  std::optional<json> read(std::chrono::seconds timeout = 10s) {
    beast::flat_buffer buffer;
    beast::get_lowest_layer(ws_).expires_after(timeout);
    const auto ec = run([&](auto done) { ws_.async_read(buffer, done); });
    beast::get_lowest_layer(ws_).expires_never();
    if (ec == websocket::error::closed) return std::nullopt;
    // The close frame arrived, and the TCP teardown after it failed (the server dropped the
    // socket right after its close frame): closed all the same.
    if (ec && ws_.reason().code != websocket::close_code::none) return std::nullopt;
    if (ec) throw beast::system_error(ec, "read");
    return json::parse(beast::buffers_to_string(buffer.data()));
  }

  // Reads until a message of `type` (with `request_id`, when given) arrives; returns it.
  json read_until(const std::string& type, const json& request_id = nullptr) {
    for (int i = 0; i < 10000; ++i) {
      auto m = read();
      if (!m) throw std::runtime_error("closed while waiting for " + type);
      if ((*m)["type"] == type &&
          (request_id.is_null() || m->value("request_id", json()) == request_id)) {
        return *m;
      }
      seen_.push_back(std::move(*m));
    }
    throw std::runtime_error("no " + type);
  }
  const std::vector<json>& seen() const { return seen_; }

  int close_code() const { return static_cast<int>(ws_.reason().code); }
  std::string close_reason() const {
    return std::string(ws_.reason().reason.data(), ws_.reason().reason.size());
  }

 private:
  template <typename Start>
  beast::error_code run(Start start) {
    beast::error_code result = net::error::would_block;
    start([&result](beast::error_code ec, auto&&...) { result = ec; });
    io_.restart();
    io_.run();
    return result;
  }

  net::io_context io_;
  websocket::stream<beast::tcp_stream> ws_{io_};
  int status_ = 0;
  std::vector<json> seen_;
};

// The HTTP status of a plain GET (and the body).
std::pair<int, std::string> http_get(std::uint16_t port, const std::string& target) {
  net::io_context io;
  beast::tcp_stream stream(io);
  stream.expires_after(10s);
  stream.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  http::request<http::empty_body> request(http::verb::get, target, 11);
  request.set(http::field::host, "127.0.0.1");
  http::write(stream, request);
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  http::read(stream, buffer, response);
  return {response.result_int(), response.body()};
}

class sync_websocket_server_test : public ::testing::Test {
 protected:
  void start(eventsourced::sync_websocket_server_options options = {},
             eventsourced::sync_service_options service_options = {}) {
    storage_ =
        std::shared_ptr(eventsourced::event_sync_storage::open("memory:", {.client_id = "server"}));
    service_ = std::shared_ptr(eventsourced::sync_service::start(storage_, service_options));
    options.authenticate = [](std::string_view token) -> std::optional<std::string> {
      if (token == "t-ann") return "ann";
      if (token == "t-bob") return "bob";
      if (token == "t-throw") throw std::runtime_error("the token service is down");
      return std::nullopt;
    };
    server_ = eventsourced::sync_websocket_server::start(service_, std::move(options));
  }

  std::unique_ptr<ws_client> connect(const std::string& token, int receive_buffer_bytes = 0) {
    return std::make_unique<ws_client>(server_->port(), "/sync?token=" + token,
                                       receive_buffer_bytes);
  }

  void set_gold(const std::string& id, int gold) {
    storage_->find_one_and_update("games", id, [&](const json& g) {
      json next = g;
      next["gold"] = gold;
      return next;
    });
  }

  static json subscribe(const std::string& id, std::int64_t version, int request_id) {
    return {
        {"type", "subscribe"},
        {"request_id", request_id},
        {"documents", json::array({{{"collection", "games"}, {"id", id}, {"version", version}}})}};
  }

  // Waits until the server's stats satisfy `ok` (or 10 s pass).
  template <typename Ok>
  bool eventually(Ok ok) {
    for (int i = 0; i < 1000; ++i) {
      if (ok(server_->stats())) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }

  std::shared_ptr<eventsourced::event_sync_storage> storage_;
  std::shared_ptr<eventsourced::sync_service> service_;
  std::unique_ptr<eventsourced::sync_websocket_server> server_;
};

TEST_F(sync_websocket_server_test, unauthenticated_upgrades_are_refused_with_401) {
  start();
  for (const std::string target :
       {"/sync", "/sync?token=wrong", "/sync?token=t-throw", "/sync?token=%zz"}) {
    try {
      ws_client client(server_->port(), target);
      FAIL() << target << " was accepted";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("HTTP 401"), std::string::npos)
          << target << ": " << e.what();
    }
  }
  try {
    ws_client client(server_->port(), "/elsewhere?token=t-ann");
    FAIL() << "a WebSocket on another path was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("HTTP 404"), std::string::npos) << e.what();
  }
  const auto stats = server_->stats();
  EXPECT_EQ(stats.refused, 5);
  EXPECT_EQ(stats.accepted, 0);
  EXPECT_EQ(service_->stats().connections, 0);
  // The right token, afterwards, works.
  auto ann = connect("t-ann");
  EXPECT_TRUE(eventually([](const auto& s) { return s.connections == 1; }));
}

TEST_F(sync_websocket_server_test, a_client_catches_up_gets_live_events_and_writes) {
  start();
  storage_->find_one_and_upsert("games", {{"id", "g1"}, {"gold", 5}});
  set_gold("g1", 6);
  auto ann = connect("t-ann");
  ann->send(subscribe("g1", 0, 1));
  const json ok = ann->read_until("ok", 1);
  EXPECT_EQ(ok["subscribed"][0]["version"], 2);
  ASSERT_FALSE(ann->seen().empty()) << "the catch-up comes before the reply";

  set_gold("g1", 7);  // a server-side write, pushed live
  json event = ann->read_until("event");
  EXPECT_EQ(event["version"], 3);
  EXPECT_EQ(event["client_id"], "server");

  ann->send(json{{"type", "write"},
                 {"request_id", 2},
                 {"mutation_id", "ann-1"},
                 {"collection", "games"},
                 {"id", "g1"},
                 {"op", "patch"},
                 {"patch", json::array({{{"op", "replace"}, {"path", "/gold"}, {"value", 90}}})},
                 {"base_version", 3}});
  // The reply and the write's own event, in either order.
  std::optional<json> reply;
  std::optional<json> own_event;
  while (!reply || !own_event) {
    auto m = ann->read();
    ASSERT_TRUE(m) << "closed";
    if ((*m)["type"] == "ok") reply = m;
    if ((*m)["type"] == "event") own_event = m;
  }
  EXPECT_EQ((*own_event)["version"], 4);
  EXPECT_EQ((*own_event)["mutation_id"], "ann-1");
  EXPECT_EQ((*own_event)["client_id"], "ann") << "the client id is the one the token authenticated";
  EXPECT_EQ((*reply)["request_id"], 2);
  EXPECT_EQ((*reply)["version"], 4);
  EXPECT_FALSE(reply->contains("code"));
  EXPECT_EQ((*storage_->find_one("games", "g1"))["gold"], 90);
}

TEST_F(sync_websocket_server_test, a_server_side_close_then_a_resume_misses_nothing) {
  start();
  storage_->find_one_and_upsert("games", {{"id", "g1"}, {"gold", 0}});
  auto ann = connect("t-ann");
  ann->send(subscribe("g1", 0, 1));
  const std::int64_t had = ann->read_until("ok", 1)["subscribed"][0]["version"];

  EXPECT_EQ(server_->disconnect_client("ann", "kicked for the test"), 1u);
  EXPECT_EQ(ann->read(), std::nullopt);
  EXPECT_EQ(ann->close_code(), 1000);
  EXPECT_EQ(ann->close_reason(), "kicked for the test");
  EXPECT_TRUE(eventually([](const auto& s) { return s.connections == 0; }));

  for (int gold = 1; gold <= 3; ++gold) set_gold("g1", gold);  // missed while away
  ann = connect("t-ann");
  ann->send(subscribe("g1", had, 2));
  const json ok = ann->read_until("ok", 2);
  std::vector<std::int64_t> versions;
  for (const json& m : ann->seen()) {
    if (m["type"] == "event") versions.push_back(m["version"]);
  }
  EXPECT_EQ(versions, (std::vector<std::int64_t>{had + 1, had + 2, had + 3}));
  EXPECT_EQ(ok["subscribed"][0]["version"], had + 3);
}

TEST_F(sync_websocket_server_test, an_oversized_message_closes_that_client_with_1009) {
  eventsourced::sync_websocket_server_options options;
  options.max_message_bytes = 1024;
  start(options);
  storage_->find_one_and_upsert("games", {{"id", "g1"}, {"gold", 0}});
  auto bob = connect("t-bob");
  auto ann = connect("t-ann");
  ann->send(json{{"type", "ack"}, {"pad", std::string(2000, 'x')}}.dump());
  EXPECT_EQ(ann->read(), std::nullopt);
  EXPECT_EQ(ann->close_code(), 1009);
  EXPECT_TRUE(
      eventually([](const auto& s) { return s.closed_too_big == 1 && s.connections == 1; }));
  // The other client goes on.
  bob->send(subscribe("g1", 0, 7));
  EXPECT_EQ(bob->read_until("ok", 7)["subscribed"][0]["version"], 1);
}

TEST_F(sync_websocket_server_test, invalid_messages_get_the_error_reply_then_a_1008_close) {
  start();
  for (const std::string& text :
       {std::string("not json"), std::string(R"({"type": "launch"})"), std::string(R"([1, 2])")}) {
    auto ann = connect("t-ann");
    ann->send(text);
    const auto reply = ann->read();
    ASSERT_TRUE(reply) << text;
    EXPECT_EQ((*reply)["type"], "error") << text;
    EXPECT_EQ((*reply)["code"], "invalid_message") << text;
    EXPECT_EQ(ann->read(), std::nullopt) << text;
    EXPECT_EQ(ann->close_code(), 1008) << text;
  }
  auto ann = connect("t-ann");
  ann->send("{}", /*binary=*/true);
  EXPECT_EQ(ann->read(), std::nullopt);
  EXPECT_EQ(ann->close_code(), 1003);
  EXPECT_TRUE(
      eventually([](const auto& s) { return s.closed_invalid == 4 && s.connections == 0; }));
  EXPECT_EQ(service_->stats().connections, 0);
}

TEST_F(sync_websocket_server_test, a_message_nested_far_too_deep_gets_too_deep_and_all_go_on) {
  start();  // the default max_message_bytes (1 MiB) lets 200 KB through
  storage_->find_one_and_upsert("games", {{"id", "g1"}, {"gold", 0}});
  auto bob = connect("t-bob");
  bob->send(subscribe("g1", 1, 1));
  bob->read_until("ok", 1);
  auto ann = connect("t-ann");
  const std::string deep = std::string(100'000, '[') + std::string(100'000, ']');
  const std::string put = R"({"type": "write", "request_id": 2, "mutation_id": "m2",
      "collection": "games", "id": "g1", "op": "put", "document": {"id": "g1", "x": )" +
                          deep + "}}";
  const std::string patch = R"({"type": "write", "request_id": 3, "mutation_id": "m3",
      "collection": "games", "id": "g1", "op": "patch",
      "patch": [{"op": "add", "path": "/x", "value": )" +
                            deep + "}]}";
  ASSERT_GT(put.size(), 200'000u);
  ann->send(put);
  EXPECT_EQ(ann->read_until("error", 2)["code"], "too_deep");
  ann->send(patch);
  EXPECT_EQ(ann->read_until("error", 3)["code"], "too_deep");
  // The same connection still works, and so does everyone else's.
  ann->send(json{{"type", "write"},
                 {"request_id", 4},
                 {"mutation_id", "m4"},
                 {"collection", "games"},
                 {"id", "g1"},
                 {"op", "patch"},
                 {"patch", {{{"op", "replace"}, {"path", "/gold"}, {"value", 7}}}}});
  EXPECT_EQ(ann->read_until("ok", 4)["version"], 2);
  const json event = bob->read_until("event");
  EXPECT_EQ(event["version"], 2);
  EXPECT_EQ(storage_->find_one("games", "g1")->value("gold", 0), 7);
  EXPECT_EQ(server_->stats().connections, 2);
}

TEST_F(sync_websocket_server_test, a_client_that_never_reads_is_closed_and_others_get_everything) {
  eventsourced::sync_websocket_server_options options;
  options.max_queued_messages = 16;
  options.close_timeout = 300ms;
  start(options);
  storage_->find_one_and_upsert("games", {{"id", "g1"}, {"blob", ""}});
  // A small receive buffer, and it never reads: the server's writes stall.
  auto sleeper = connect("t-ann", 4096);
  sleeper->send(subscribe("g1", 0, 1));
  auto bob = connect("t-bob");
  bob->send(subscribe("g1", 0, 2));
  const std::int64_t start_version = bob->read_until("ok", 2)["subscribed"][0]["version"];
  constexpr int kWrites = 100;
  // bob reads as the writes happen, and the writer waits for him after each write: however
  // loaded the machine, bob is never more than one message behind, while the other client's
  // messages pile up.
  std::vector<std::int64_t> bob_versions;
  std::string bob_error;
  std::atomic<int> bob_count{0};
  std::atomic<bool> bob_done{false};
  std::thread reader([&] {
    try {
      while (bob_versions.size() < static_cast<std::size_t>(kWrites)) {
        bob_versions.push_back(bob->read_until("event")["version"]);
        ++bob_count;
      }
    } catch (const std::exception& e) {
      bob_error = e.what();
    }
    bob_done = true;
  });
  for (int i = 0; i < kWrites; ++i) {
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (bob_count < i && !bob_done && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(1ms);
    }
    storage_->find_one_and_update("games", "g1", [&](const json& g) {
      json next = g;
      next["blob"] = std::string(100000, static_cast<char>('a' + i % 26)) + std::to_string(i);
      return next;
    });
  }
  reader.join();
  EXPECT_EQ(bob_error, "");
  ASSERT_EQ(bob_versions.size(), static_cast<std::size_t>(kWrites));
  for (int i = 0; i < kWrites; ++i) {
    EXPECT_EQ(bob_versions[static_cast<std::size_t>(i)], start_version + 1 + i)
        << "bob misses nothing";
  }
  EXPECT_TRUE(eventually([](const auto& s) {
    return s.closed_too_slow == 1 && s.connections == 1;
  })) << "too slow: "
      << server_->stats().closed_too_slow << ", connections: " << server_->stats().connections;
}

TEST_F(sync_websocket_server_test, stop_closes_clients_with_1001) {
  start();
  auto ann = connect("t-ann");
  EXPECT_TRUE(eventually([](const auto& s) { return s.connections == 1; }));
  const auto begin = std::chrono::steady_clock::now();
  server_->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 5s);
  EXPECT_EQ(ann->read(), std::nullopt);
  EXPECT_EQ(ann->close_code(), 1001);
  EXPECT_EQ(service_->stats().connections, 0);
  server_->stop();  // idempotent
}

TEST_F(sync_websocket_server_test, static_files_are_served_from_the_root_only) {
  const eventsourced::testing::temporary_directory root;
  std::ofstream(root.path() / "index.html") << "<h1>game</h1>";
  std::filesystem::create_directory(root.path() / "js");
  std::ofstream(root.path() / "js" / "client.js") << "export {};";
  eventsourced::sync_websocket_server_options options;
  options.static_root = root.path();
  start(options);
  EXPECT_EQ(http_get(server_->port(), "/"), (std::pair<int, std::string>{200, "<h1>game</h1>"}));
  EXPECT_EQ(http_get(server_->port(), "/js/client.js").second, "export {};");
  EXPECT_EQ(http_get(server_->port(), "/missing.html").first, 404);
  EXPECT_EQ(http_get(server_->port(), "/../etc/passwd").first, 400);
  EXPECT_EQ(http_get(server_->port(), "/js/%2e%2e/%2e%2e/etc/passwd").first, 400);
  // An empty segment would make the rest an absolute path (found by tests/fuzz: it served
  // /etc/passwd).
  EXPECT_EQ(http_get(server_->port(), "//etc/passwd").first, 400);
  EXPECT_EQ(http_get(server_->port(), "/%2Fetc/passwd").first, 400);
  EXPECT_EQ(http_get(server_->port(), "/js//client.js").first, 400);
  EXPECT_EQ(server_->stats().files_served, 2);
}

TEST_F(sync_websocket_server_test, bad_options_are_refused) {
  storage_ = std::shared_ptr(eventsourced::event_sync_storage::open("memory:"));
  service_ = std::shared_ptr(eventsourced::sync_service::start(storage_));
  eventsourced::sync_websocket_server_options options;
  EXPECT_THROW(eventsourced::sync_websocket_server::start(service_, options),
               eventsourced::invalid_argument_error)
      << "no authenticate callback";
  options.authenticate = [](std::string_view) { return std::optional<std::string>("x"); };
  options.address = "not an address";
  EXPECT_THROW(eventsourced::sync_websocket_server::start(service_, options),
               eventsourced::invalid_argument_error);
  options.address = "127.0.0.1";
  options.static_root = "/nonexistent/dir";
  EXPECT_THROW(eventsourced::sync_websocket_server::start(service_, options),
               eventsourced::invalid_argument_error);
  options.static_root.clear();
  auto first = eventsourced::sync_websocket_server::start(service_, options);
  options.port = first->port();
  EXPECT_THROW(eventsourced::sync_websocket_server::start(service_, options),
               eventsourced::engine_unavailable_error)
      << "the port is taken";
}

}  // namespace
