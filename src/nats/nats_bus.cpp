// nats_bus: one server subscription per bus on `<ns>.>`, made at the first subscribe(), read by
// one thread that routes each event to the bus's handlers (dispatcher.hpp says why).
#include <eventsourced/nats/nats_bus.hpp>

#include <algorithm>
#include <atomic>
#include <thread>

#include <eventsourced/error.hpp>
#include <eventsourced/event/serializer.hpp>
#include <eventsourced/nats/subject.hpp>

#include "connection.hpp"
#include "dispatcher.hpp"
#include "handler_calls.hpp"

namespace eventsourced {

struct nats_bus::state {
  explicit state(nats_bus_options o) : options(std::move(o)), conn(options.connection) {}

  const nats_bus_options options;
  nats_internal::connection conn;
  nats_internal::dispatcher dispatcher;  // after conn: destroyed first, with conn closed
  std::atomic<bool> closed{false};
  std::atomic<std::uint64_t> malformed{0};

  void require_open() const {
    if (closed.load()) throw store_closed_error("eventsourced: the event bus is closed");
  }

  natsSubscription* make_subscription() {
    const std::string subject = options.ns + ".>";
    conn.require_connected("subscribing to " + subject);
    natsSubscription* sub = nullptr;
    if (const natsStatus s = natsConnection_SubscribeSync(&sub, conn.get(), subject.c_str());
        s != NATS_OK) {
      nats_internal::throw_status(s, "subscribing to " + subject, conn.redact());
    }
    natsStatus s = natsSubscription_SetPendingLimits(sub, options.max_pending_messages, -1);
    // The server must know the subscription before subscribe() returns: a publish made after
    // that, from any connection, then reaches it.
    if (s == NATS_OK) {
      s = natsConnection_FlushTimeout(conn.get(), options.connection.request_timeout.count());
    }
    if (s != NATS_OK) {
      // Unsubscribed but not destroyed: nats.c's reader may still hold it (dispatcher.cpp). A
      // small leak on a failure path rather than a use after free.
      natsSubscription_Unsubscribe(sub);
      nats_internal::throw_status(s, "subscribing to " + subject, conn.redact());
    }
    return sub;
  }

  void on_message(natsMsg* msg) noexcept {
    const auto e = nats_internal::event_of(msg);
    if (!e) {
      malformed.fetch_add(1);
      return;
    }
    dispatcher.deliver(*e, options.max_attempts, std::chrono::milliseconds(0),
                       options.on_handler_failure);
  }

  // Back-pressure for this bus's own subscriptions (nats_bus_options::max_pending_messages).
  void wait_for_room() const {
    if (dispatcher.on_reader_thread()) return;  // a handler publishing must not wait for itself
    const int high_water = std::max(1, options.max_pending_messages / 2);
    const auto crowded = [high_water](natsSubscription* sub) {
      int pending = 0;
      return sub != nullptr && natsSubscription_GetPending(sub, &pending, nullptr) == NATS_OK &&
             pending > high_water;
    };
    while (dispatcher.with_subscription(crowded)) {
      require_open();
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }
};

nats_bus::nats_bus(nats_bus_options options) {
  check_nats_namespace(options.ns);
  if (options.max_attempts < 1) {
    throw invalid_argument_error("eventsourced: nats_bus_options.max_attempts must be >= 1");
  }
  if (options.max_pending_messages < 1) {
    throw invalid_argument_error(
        "eventsourced: nats_bus_options.max_pending_messages must be >= 1");
  }
  state_ = std::make_shared<state>(std::move(options));
}

nats_bus::~nats_bus() {
  close();
}

void nats_bus::publish(const event& e) {
  state_->require_open();
  const std::string subject = event_subject(state_->options.ns, e.type);
  const std::string payload = serialize_event(e);
  state_->wait_for_room();
  state_->conn.require_connected("publishing event " + e.id);
  const natsStatus s = natsConnection_Publish(state_->conn.get(), subject.c_str(), payload.data(),
                                              static_cast<int>(payload.size()));
  if (s != NATS_OK) {
    if (s == NATS_CONNECTION_CLOSED) state_->require_open();
    nats_internal::throw_status(s, "publishing event " + e.id + " on " + subject,
                                state_->conn.redact());
  }
}

subscription nats_bus::subscribe(std::string_view type, std::shared_ptr<event_handler> handler) {
  if (type.empty()) {
    throw invalid_argument_error("eventsourced: subscribe needs an event type, got an empty one");
  }
  if (!handler) throw invalid_argument_error("eventsourced: subscribe needs a handler, got null");
  state_->require_open();
  state* st = state_.get();
  std::weak_ptr<state> weak = state_;
  auto r = st->dispatcher.add(
      std::string(type), std::move(handler), [st] { return st->make_subscription(); },
      [weak](natsMsg* msg) {
        if (const auto s = weak.lock()) s->on_message(msg);
      });
  return subscription([weak, r]() noexcept {
    if (const auto s = weak.lock()) {
      s->dispatcher.end(r);
    } else {
      r->active.store(false);  // the bus is gone; nothing can call the handler any more
    }
  });
}

bool nats_bus::flush(std::chrono::milliseconds timeout) {
  state_->require_open();
  if (state_->dispatcher.on_reader_thread()) {
    throw invalid_argument_error(
        "eventsourced: nats_bus::flush() called from a handler would wait for itself");
  }
  state_->conn.require_connected("flushing");
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  if (const natsStatus s = natsConnection_FlushTimeout(state_->conn.get(), timeout.count());
      s != NATS_OK) {
    if (s == NATS_TIMEOUT) return false;
    nats_internal::throw_status(s, "flushing", state_->conn.redact());
  }
  // The server answered our PING after routing everything we sent before it, and the messages it
  // routed to us arrived before its PONG: they are all in the subscription's queue now. Wait
  // until the queue is empty and the last message taken from it has been dispatched.
  const auto idle = [this](natsSubscription* sub) {
    int pending = 0;
    int64_t delivered = 0;
    return sub == nullptr || natsSubscription_GetPending(sub, &pending, nullptr) != NATS_OK ||
           natsSubscription_GetDelivered(sub, &delivered) != NATS_OK ||
           (pending == 0 &&
            state_->dispatcher.completed() >= static_cast<std::uint64_t>(delivered));
  };
  while (!state_->dispatcher.with_subscription(idle)) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

void nats_bus::close() noexcept {
  state_->closed.store(true);
  state_->dispatcher.stop();
  state_->conn.close();
}

std::uint64_t nats_bus::malformed_messages() const {
  return state_->malformed.load();
}

}  // namespace eventsourced
