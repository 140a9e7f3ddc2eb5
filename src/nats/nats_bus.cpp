#include <eventsourced/nats/nats_bus.hpp>

#include <algorithm>
#include <atomic>
#include <thread>

#include <eventsourced/error.hpp>
#include <eventsourced/event/serializer.hpp>
#include <eventsourced/nats/subject.hpp>

#include "connection.hpp"
#include "handler_calls.hpp"
#include "subscriber_thread.hpp"

namespace eventsourced {

using nats_internal::subscriber;

struct nats_bus::state {
  explicit state(nats_bus_options o) : options(std::move(o)), conn(options.connection) {}

  const nats_bus_options options;
  nats_internal::connection conn;
  nats_internal::subscriber_set subscribers;
  std::atomic<bool> closed{false};
  std::atomic<std::uint64_t> malformed{0};

  void require_open() const {
    if (closed.load()) throw store_closed_error("eventsourced: the event bus is closed");
  }

  // Back-pressure for this bus's own subscriptions: core NATS has none between processes, but a
  // publisher in the same process as a slower subscriber would otherwise fill its queue until the
  // client drops messages. Not on a subscription thread: a handler publishing follow-up events
  // would wait for itself.
  void wait_for_room() const {
    if (nats_internal::subscriber_set::on_subscriber_thread()) return;
    const int high_water = std::max(1, options.max_pending_messages / 2);
    const auto crowded = [high_water](subscriber& s) {
      std::lock_guard lock(s.mutex);
      int pending = 0;
      return s.sub != nullptr && natsSubscription_GetPending(s.sub, &pending, nullptr) == NATS_OK &&
             pending > high_water;
    };
    while (subscribers.any(crowded)) {
      require_open();
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }

  void on_message(subscriber& s, natsMsg* msg) noexcept {
    const auto e = nats_internal::event_of(msg);
    if (!e) {
      malformed.fetch_add(1);
      return;
    }
    int attempts = 0;
    if (auto error = nats_internal::call_handler(s, *e, options.max_attempts, attempts)) {
      nats_internal::report_failure(options.on_handler_failure, s, *e, std::move(error), attempts);
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
  state_->subscribers.set_connection(state_->conn.get());
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
  const std::string subject =
      type == kAllEvents ? state_->options.ns + ".>" : event_subject(state_->options.ns, type);
  state_->conn.require_connected("subscribing to " + subject);
  auto s = std::make_shared<subscriber>(std::string(type), std::move(handler));
  if (const natsStatus st =
          natsConnection_SubscribeSync(&s->sub, state_->conn.get(), subject.c_str());
      st != NATS_OK) {
    nats_internal::throw_status(st, "subscribing to " + subject, state_->conn.redact());
  }
  if (const natsStatus st =
          natsSubscription_SetPendingLimits(s->sub, state_->options.max_pending_messages, -1);
      st != NATS_OK) {
    state_->subscribers.discard(s->sub);
    nats_internal::throw_status(st, "setting the pending limit of " + subject,
                                state_->conn.redact());
  }
  // The server must know the subscription before we return: a publish made after subscribe()
  // returns (from any connection) then reaches it.
  if (const natsStatus st = natsConnection_FlushTimeout(
          state_->conn.get(), state_->options.connection.request_timeout.count());
      st != NATS_OK) {
    state_->subscribers.discard(s->sub);
    nats_internal::throw_status(st, "subscribing to " + subject, state_->conn.redact());
  }
  std::weak_ptr<state> weak = state_;
  state_->subscribers.start(s, [weak](subscriber& target, natsMsg* msg) {
    if (const auto st = weak.lock()) st->on_message(target, msg);
  });
  return subscription([weak, s]() noexcept {
    if (const auto st = weak.lock()) st->subscribers.end(s);
  });
}

bool nats_bus::flush(std::chrono::milliseconds timeout) {
  state_->require_open();
  if (nats_internal::subscriber_set::on_subscriber_thread()) {
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
  // routed to our subscriptions arrived before its PONG: they are all in the subscriptions' queues
  // now. Wait until each queue is empty and its last message handled.
  for (const auto& s : state_->subscribers.active()) {
    for (;;) {
      bool idle = true;
      {
        std::lock_guard lock(s->mutex);
        int pending = 0;
        int64_t delivered = 0;
        if (s->sub != nullptr &&
            natsSubscription_GetPending(s->sub, &pending, nullptr) == NATS_OK &&
            natsSubscription_GetDelivered(s->sub, &delivered) == NATS_OK) {
          idle = pending == 0 && s->completed.load() >= static_cast<std::uint64_t>(delivered);
        }
      }
      if (idle) break;
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  return true;
}

void nats_bus::close() noexcept {
  state_->closed.store(true);
  state_->subscribers.close();
  state_->conn.close();
}

std::uint64_t nats_bus::malformed_messages() const {
  return state_->malformed.load();
}

}  // namespace eventsourced
