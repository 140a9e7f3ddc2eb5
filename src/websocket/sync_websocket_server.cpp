// sync_websocket_server (see include/eventsourced/websocket/sync_websocket_server.hpp).
//
// One io_context run by options.threads threads. Every TCP connection gets a strand (its socket's
// executor): all of its handlers run one at a time. A connection starts as an http_session that
// reads one request; an authenticated upgrade becomes a ws_session, anything else is answered
// (a static file, 401, 404) and closed.
//
// Outgoing messages come from the sync service's delivery threads through the send function:
// it counts the message against the connection's limit and posts it to the strand, where a deque
// feeds one async_write at a time. The count only falls when a write completes, so a client that
// does not read reaches max_queued_messages and is closed.
#include <utility>  // Boost 1.74 under C++20 needs it before Asio

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include <eventsourced/error.hpp>
#include <eventsourced/websocket/sync_websocket_server.hpp>

#include "websocket/http_target.hpp"

namespace eventsourced {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using websocket_detail::content_type;
using websocket_detail::path_of;
using websocket_detail::truncate_reason;

constexpr std::size_t kMaxRequestHeaderBytes = 8 * 1024;

}  // namespace

// Sessions point at the impl with a raw pointer: it outlives them (stop() ends the sessions and
// the I/O threads; handlers still pending are destroyed with the io_context, declared after
// everything they touch).
struct sync_websocket_server::impl {
  class ws_session;
  class http_session;

  impl(std::shared_ptr<sync_service> s, sync_websocket_server_options o)
      : service(std::move(s)), options(std::move(o)), acceptor(net::make_strand(io)) {}

  std::shared_ptr<sync_service> service;
  const sync_websocket_server_options options;
  std::uint16_t bound_port = 0;

  std::atomic<bool> stopping{false};
  std::mutex stop_mu;  // serialises stop()
  bool stopped = false;

  // Open WebSocket sessions, for disconnect_client() and stop().
  std::mutex sessions_mu;
  std::condition_variable sessions_cv;  // a session left
  std::uint64_t next_session = 0;
  std::map<std::uint64_t, std::weak_ptr<ws_session>> sessions;  // GUARDED_BY(sessions_mu)

  std::atomic<std::int64_t> accepted{0}, refused{0}, closed_too_big{0}, closed_invalid{0},
      closed_too_slow{0}, files_served{0};

  // Last: destroyed first, with the handlers still pending in it.
  net::io_context io;
  tcp::acceptor acceptor;
  std::vector<std::thread> threads;

  void listen() {
    beast::error_code ec;
    const auto address = net::ip::make_address(options.address, ec);
    if (ec) {
      throw invalid_argument_error("sync_websocket_server: address '" + options.address +
                                   "' does not parse: " + ec.message());
    }
    const tcp::endpoint endpoint(address, options.port);
    const auto fail = [&](const char* what) {
      throw engine_unavailable_error("sync_websocket_server: cannot " + std::string(what) + " " +
                                     options.address + ":" + std::to_string(options.port) + ": " +
                                     ec.message());
    };
    acceptor.open(endpoint.protocol(), ec);
    if (ec) fail("open a socket for");
    acceptor.set_option(net::socket_base::reuse_address(true), ec);
    acceptor.bind(endpoint, ec);
    if (ec) fail("bind");
    acceptor.listen(net::socket_base::max_listen_connections, ec);
    if (ec) fail("listen on");
    bound_port = acceptor.local_endpoint().port();
  }

  void accept() {
    acceptor.async_accept(net::make_strand(io), [this](beast::error_code ec, tcp::socket socket) {
      if (stopping) return;
      if (!ec) start_http(this, std::move(socket));
      accept();
    });
  }

  static void start_http(impl* server, tcp::socket socket);

  std::uint64_t add_session(const std::shared_ptr<ws_session>& s) {
    std::lock_guard lock(sessions_mu);
    const auto id = ++next_session;
    sessions[id] = s;
    return id;
  }
  void remove_session(std::uint64_t id) {
    {
      std::lock_guard lock(sessions_mu);
      sessions.erase(id);
    }
    sessions_cv.notify_all();
  }
  std::vector<std::shared_ptr<ws_session>> open_sessions() {
    std::vector<std::shared_ptr<ws_session>> out;
    std::lock_guard lock(sessions_mu);
    for (const auto& [id, weak] : sessions) {
      if (auto s = weak.lock()) out.push_back(std::move(s));
    }
    return out;
  }

  void stop() noexcept;
};

// --- WebSocket session -------------------------------------------------------------------------

class sync_websocket_server::impl::ws_session
    : public std::enable_shared_from_this<sync_websocket_server::impl::ws_session> {
 public:
  ws_session(impl* server, beast::tcp_stream stream, std::string client_id)
      : server_(server), ws_(std::move(stream)), client_id_(std::move(client_id)) {}
  ws_session(const ws_session&) = delete;
  ws_session& operator=(const ws_session&) = delete;
  // A session destroyed without ending (its handlers dropped by stop()) still leaves the service.
  ~ws_session() {
    if (ended_) return;
    if (connection_ != 0) server_->service->disconnect(connection_);
    if (id_ != 0) server_->remove_session(id_);
  }

  const std::string& client_id() const noexcept { return client_id_; }

  // Runs on the strand: the handshake, then the read loop.
  void run(http::request<http::string_body> request) {
    const auto& o = server_->options;
    websocket::stream_base::timeout timeouts{};
    timeouts.handshake_timeout = o.handshake_timeout;
    timeouts.idle_timeout = o.idle_timeout;
    timeouts.keep_alive_pings = true;
    beast::get_lowest_layer(ws_).expires_never();  // the WebSocket's own timeouts apply
    ws_.set_option(timeouts);
    ws_.read_message_max(o.max_message_bytes);
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(http::field::server, "eventsourced-sync"); }));
    ws_.async_accept(request,
                     [self = shared_from_this()](beast::error_code ec) { self->on_accept(ec); });
  }

  // From the sync service's delivery threads (the send function). Never blocks.
  void send(const std::string& message) {
    if (closed_) return;
    if (queued_.fetch_add(1) + 1 > server_->options.max_queued_messages) {
      queued_.fetch_sub(1);
      if (!too_slow_.exchange(true) && !closed_) {
        ++server_->closed_too_slow;
        net::dispatch(ws_.get_executor(), [self = shared_from_this()] {
          self->close(websocket::close_code::policy_error,
                      "too slow: " + std::to_string(self->server_->options.max_queued_messages) +
                          " messages waiting to be written");
        });
      }
      return;
    }
    net::post(ws_.get_executor(),
              [self = shared_from_this(), m = std::make_shared<const std::string>(message)] {
                self->queue_.push_back(m);
                if (!self->writing_ && !self->closing_) self->write_next();
              });
  }

  // On the strand: sends a close frame once writes in progress are done; a connection that cannot
  // send it within close_timeout is dropped.
  void close(websocket::close_code code, const std::string& reason) {
    if (closing_ || ended_) return;
    closing_ = true;
    closed_ = true;
    queue_.clear();
    // (tcp_stream's own expiry cannot be set while a read and a write are both pending.)
    close_deadline_.expires_after(server_->options.close_timeout);
    close_deadline_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec) return;  // cancelled: the connection ended first
      beast::error_code ignored;
      beast::get_lowest_layer(self->ws_).socket().close(ignored);
    });
    ws_.async_close(websocket::close_reason(code, truncate_reason(reason)),
                    [self = shared_from_this()](beast::error_code) {
                      // The read loop sees the close (or the dropped socket) and ends.
                      beast::error_code ignored;
                      beast::get_lowest_layer(self->ws_).socket().shutdown(
                          tcp::socket::shutdown_both, ignored);
                    });
  }

  // From any thread.
  void close_from_outside(websocket::close_code code, std::string reason) {
    net::dispatch(ws_.get_executor(), [self = shared_from_this(), code, r = std::move(reason)] {
      self->close(code, r);
    });
  }

 private:
  void on_accept(beast::error_code ec) {
    if (ec || server_->stopping) return;  // never opened: nothing registered yet
    ++server_->accepted;
    id_ = server_->add_session(shared_from_this());
    try {
      std::weak_ptr<ws_session> weak = shared_from_this();
      connection_ = server_->service->connect(client_id_, [weak](const std::string& message) {
        if (auto self = weak.lock()) self->send(message);
      });
    } catch (const std::exception& e) {
      close(websocket::close_code::internal_error, std::string("cannot connect: ") + e.what());
      read();  // ends when the close completes
      return;
    }
    read();
  }

  void read() {
    ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->on_read(ec);
    });
  }

  void on_read(beast::error_code ec) {
    if (ec) {
      if (ec == websocket::error::message_too_big) ++server_->closed_too_big;
      end();
      return;
    }
    if (closing_ || close_after_reply_) {
      buffer_.consume(buffer_.size());
      read();  // input after an invalid message is ignored; wait for the close to complete
      return;
    }
    if (!ws_.got_text()) {
      buffer_.consume(buffer_.size());
      ++server_->closed_invalid;
      close(websocket::close_code::unknown_data,
            "binary messages are not part of the protocol: send JSON text");
      read();
      return;
    }
    const std::string text = beast::buffers_to_string(buffer_.data());
    buffer_.consume(buffer_.size());
    bool well_formed = true;
    try {
      well_formed = server_->service->receive(connection_, text);
    } catch (const std::exception& e) {
      close(websocket::close_code::going_away, std::string("the service stopped: ") + e.what());
      read();
      return;
    }
    if (!well_formed) {
      ++server_->closed_invalid;
      // The "error" reply is on its way through the service's delivery thread: close once it
      // has been written, or after a short grace when it does not come.
      close_after_reply_ = true;
      grace_.expires_after(std::chrono::milliseconds(500));
      grace_.async_wait([self = shared_from_this()](beast::error_code) {
        if (self->close_after_reply_) self->close_for_invalid_message();
      });
    }
    read();
  }

  void close_for_invalid_message() {
    close_after_reply_ = false;
    grace_.cancel();
    close(websocket::close_code::policy_error,
          "invalid message (see the error reply): this server speaks docs/sync_protocol.md");
  }

  void write_next() {
    if (queue_.empty() || closing_) return;
    writing_ = true;
    current_ = queue_.front();
    queue_.pop_front();
    ws_.text(true);
    ws_.async_write(
        net::buffer(*current_),
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_write(ec); });
  }

  void on_write(beast::error_code ec) {
    writing_ = false;
    queued_.fetch_sub(1);
    if (ec) return;  // the read loop ends the session
    // The service writes replies with sorted keys: an invalid_message reply starts like this,
    // and no other message does.
    const bool was_error_reply =
        close_after_reply_ && current_ && current_->starts_with(R"({"code":"invalid_message")");
    current_.reset();
    if (was_error_reply) {
      close_for_invalid_message();
      return;
    }
    write_next();
  }

  // The read loop ended: the connection is gone.
  void end() {
    if (ended_) return;
    ended_ = true;
    grace_.cancel();
    close_deadline_.cancel();
    if (connection_ != 0) server_->service->disconnect(connection_);
    if (id_ != 0) server_->remove_session(id_);
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().close(ignored);
  }

  impl* server_;
  websocket::stream<beast::tcp_stream> ws_;
  std::string client_id_;
  beast::flat_buffer buffer_;
  net::steady_timer grace_{ws_.get_executor()};
  net::steady_timer close_deadline_{ws_.get_executor()};
  std::uint64_t id_ = 0;
  sync_connection_id connection_ = 0;
  // Strand only:
  std::deque<std::shared_ptr<const std::string>> queue_;
  std::shared_ptr<const std::string> current_;
  bool writing_ = false;
  bool closing_ = false;
  bool ended_ = false;
  bool close_after_reply_ = false;
  // Any thread:
  std::atomic<std::size_t> queued_{0};  // sent to us and not yet written
  std::atomic<bool> too_slow_{false};
  std::atomic<bool> closed_{false};  // closing: further messages are dropped
};

// --- HTTP session: one request, then a WebSocket, a file or an error ----------------------------

class sync_websocket_server::impl::http_session
    : public std::enable_shared_from_this<sync_websocket_server::impl::http_session> {
 public:
  http_session(impl* server, tcp::socket socket) : server_(server), stream_(std::move(socket)) {}

  void run() {
    parser_.emplace();
    parser_->header_limit(kMaxRequestHeaderBytes);
    parser_->body_limit(0);
    stream_.expires_after(server_->options.handshake_timeout);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

 private:
  void on_read(beast::error_code ec) {
    if (ec) return;  // timed out, too large, not HTTP: drop the connection
    http::request<http::string_body> request = parser_->release();
    const std::string target(request.target().data(), request.target().size());
    if (websocket::is_upgrade(request)) {
      upgrade(std::move(request), target);
      return;
    }
    if (request.method() != http::verb::get && request.method() != http::verb::head) {
      respond(http::status::method_not_allowed, "only GET\n", request);
      return;
    }
    serve_file(request, target);
  }

  void upgrade(http::request<http::string_body> request, const std::string& target) {
    if (path_of(target) != server_->options.path) {
      ++server_->refused;
      respond(http::status::not_found, "no WebSocket endpoint here\n", request);
      return;
    }
    const auto auth = request[http::field::authorization];
    const std::optional<std::string> token =
        websocket_detail::request_token(target, std::string_view(auth.data(), auth.size()));
    std::optional<std::string> client_id;
    if (token) {
      try {
        client_id = server_->options.authenticate(*token);
      } catch (...) {
        client_id.reset();
      }
    }
    if (!client_id) {
      ++server_->refused;
      respond(http::status::unauthorized,
              token ? "token refused\n" : "a token is required (?token=... or Authorization)\n",
              request);
      return;
    }
    std::make_shared<ws_session>(server_, std::move(stream_), std::move(*client_id))
        ->run(std::move(request));
  }

  void serve_file(const http::request<http::string_body>& request, const std::string& target) {
    const auto& root = server_->options.static_root;
    if (root.empty()) {
      respond(http::status::not_found, "not found\n", request);
      return;
    }
    const std::optional<std::filesystem::path> found =
        websocket_detail::static_file_path(root, target);
    if (!found) {
      respond(http::status::bad_request, "bad path\n", request);
      return;
    }
    const std::filesystem::path& file = *found;
    std::error_code fs_error;
    if (!std::filesystem::is_regular_file(file, fs_error)) {
      respond(http::status::not_found, "not found\n", request);
      return;
    }
    std::ifstream in(file, std::ios::binary);
    std::ostringstream content;
    content << in.rdbuf();
    ++server_->files_served;
    auto response =
        std::make_shared<http::response<http::string_body>>(http::status::ok, request.version());
    response->set(http::field::content_type, content_type(file));
    response->set(http::field::cache_control, "no-store");
    response->keep_alive(false);
    if (request.method() != http::verb::head) response->body() = std::move(content).str();
    response->prepare_payload();
    write(response);
  }

  void respond(http::status status, std::string body,
               const http::request<http::string_body>& request) {
    auto response = std::make_shared<http::response<http::string_body>>(status, request.version());
    response->set(http::field::content_type, "text/plain; charset=utf-8");
    response->keep_alive(false);
    response->body() = std::move(body);
    response->prepare_payload();
    write(response);
  }

  void write(const std::shared_ptr<http::response<http::string_body>>& response) {
    http::async_write(stream_, *response,
                      [self = shared_from_this(), response](beast::error_code, std::size_t) {
                        beast::error_code ignored;
                        self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
                      });
  }

  impl* server_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
};

void sync_websocket_server::impl::start_http(impl* server, tcp::socket socket) {
  std::make_shared<http_session>(server, std::move(socket))->run();
}

void sync_websocket_server::impl::stop() noexcept {
  std::lock_guard stop_lock(stop_mu);
  if (stopped) return;
  stopped = true;
  stopping = true;
  net::dispatch(acceptor.get_executor(), [this] {
    beast::error_code ignored;
    acceptor.close(ignored);
  });
  for (const auto& s : open_sessions()) {
    s->close_from_outside(websocket::close_code::going_away, "the server is stopping");
  }
  {
    std::unique_lock lock(sessions_mu);
    sessions_cv.wait_for(lock, options.close_timeout + std::chrono::milliseconds(500),
                         [&] { return sessions.empty(); });
  }
  io.stop();
  for (auto& t : threads) {
    if (t.joinable()) t.join();
  }
  // Handlers still pending (a connection that is neither done nor timed out) are destroyed with
  // the io_context; a WebSocket session's destructor then leaves the service.
}

// --- Public ------------------------------------------------------------------------------------

std::unique_ptr<sync_websocket_server> sync_websocket_server::start(
    std::shared_ptr<sync_service> service, sync_websocket_server_options options) {
  if (!service) throw invalid_argument_error("sync_websocket_server: no sync_service");
  if (!options.authenticate) {
    throw invalid_argument_error(
        "sync_websocket_server: options.authenticate is required (token -> client id)");
  }
  if (options.max_message_bytes == 0 || options.max_queued_messages == 0 || options.threads == 0) {
    throw invalid_argument_error(
        "sync_websocket_server: max_message_bytes, max_queued_messages and threads must be >= 1");
  }
  if (options.path.empty() || options.path.front() != '/') {
    throw invalid_argument_error("sync_websocket_server: path must start with '/'");
  }
  if (options.handshake_timeout.count() <= 0 || options.idle_timeout.count() <= 0 ||
      options.close_timeout.count() <= 0) {
    throw invalid_argument_error("sync_websocket_server: timeouts must be positive");
  }
  if (!options.static_root.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_directory(options.static_root, ec)) {
      throw invalid_argument_error("sync_websocket_server: static_root '" +
                                   options.static_root.string() + "' is not a directory");
    }
    options.static_root = std::filesystem::canonical(options.static_root);
  }
  auto p = std::make_unique<impl>(std::move(service), std::move(options));
  p->listen();
  p->accept();
  for (std::size_t i = 0; i < p->options.threads; ++i) {
    p->threads.emplace_back([raw = p.get()] { raw->io.run(); });
  }
  return std::unique_ptr<sync_websocket_server>(new sync_websocket_server(std::move(p)));
}

sync_websocket_server::sync_websocket_server(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

sync_websocket_server::~sync_websocket_server() {
  stop();
}

std::uint16_t sync_websocket_server::port() const noexcept {
  return impl_->bound_port;
}

std::size_t sync_websocket_server::disconnect_client(std::string_view client_id,
                                                     std::string_view reason) noexcept {
  std::size_t n = 0;
  try {
    for (const auto& s : impl_->open_sessions()) {
      if (s->client_id() != client_id) continue;
      s->close_from_outside(websocket::close_code::normal, std::string(reason));
      ++n;
    }
  } catch (...) {
  }
  return n;
}

sync_websocket_server_stats sync_websocket_server::stats() const noexcept {
  sync_websocket_server_stats s;
  {
    std::lock_guard lock(impl_->sessions_mu);
    s.connections = static_cast<std::int64_t>(impl_->sessions.size());
  }
  s.accepted = impl_->accepted.load();
  s.refused = impl_->refused.load();
  s.closed_too_big = impl_->closed_too_big.load();
  s.closed_invalid = impl_->closed_invalid.load();
  s.closed_too_slow = impl_->closed_too_slow.load();
  s.files_served = impl_->files_served.load();
  return s;
}

void sync_websocket_server::stop() noexcept {
  impl_->stop();
}

}  // namespace eventsourced
