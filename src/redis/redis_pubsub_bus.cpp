// redis_pubsub_bus: PUBLISH from pooled connections; one subscriber connection per bus
// (PSUBSCRIBE <ns>:e:*), read by the dispatcher's thread.
#include <eventsourced/redis/redis_pubsub_bus.hpp>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <utility>

#include <eventsourced/error.hpp>
#include <eventsourced/event/serializer.hpp>

#include "connection.hpp"
#include "dispatcher.hpp"
#include "names.hpp"

namespace eventsourced {

using redis_internal::reply;

struct redis_pubsub_bus::state {
  explicit state(redis_pubsub_bus_options o)
      : options(std::move(o)),
        pool(options.connection),
        pattern(options.ns + ":e:*"),
        flush_channel(options.ns + ":flush:" + redis_internal::random_hex(16)) {}
  ~state() { dispatcher.stop(); }

  const redis_pubsub_bus_options options;
  redis_internal::pool pool;
  const std::string pattern;
  const std::string flush_channel;
  redis_internal::dispatcher dispatcher;
  std::atomic<bool> closed{false};
  std::atomic<std::uint64_t> malformed{0};

  std::mutex flush_mutex;
  std::condition_variable flushed_changed;
  std::int64_t flushed = 0;              // GUARDED_BY(flush_mutex): the last marker handled
  std::atomic<std::int64_t> markers{0};  // markers sent

  void require_open() const {
    if (closed.load()) throw store_closed_error("eventsourced: the event bus is closed");
  }

  std::string channel(std::string_view type) const {
    return options.ns + ":e:" + redis_internal::encode_token(type);
  }

  // A subscriber connection, subscribed: both confirmations read.
  std::unique_ptr<redis_internal::connection> connect_subscriber() {
    auto c = pool.connect_dedicated();
    const std::string doing = "subscribing to " + pattern;
    c->send({"PSUBSCRIBE", pattern}, doing);
    c->send({"SUBSCRIBE", flush_channel}, doing);
    for (int confirmed = 0; confirmed < 2; ++confirmed) {
      const reply r = c->next_reply(options.connection.command_timeout, doing);
      if (!r) {
        throw engine_unavailable_error("eventsourced: " + doing + " on " + c->where() +
                                       ": no confirmation within the timeout (retryable)");
      }
      if (r->type == REDIS_REPLY_ERROR)
        redis_internal::throw_reply_error(r.get(), doing, c->where());
    }
    return c;
  }

  void on_message(const redisReply* r) noexcept {
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3) return;
    const std::string kind = redis_internal::text_of(r->element[0]);
    std::string channel_name;
    const redisReply* payload = nullptr;
    if (kind == "pmessage" && r->elements >= 4) {
      channel_name = redis_internal::text_of(r->element[2]);
      payload = r->element[3];
    } else if (kind == "message") {
      channel_name = redis_internal::text_of(r->element[1]);
      payload = r->element[2];
    } else {
      return;  // (p)subscribe confirmations after a reconnection
    }
    const std::string text = redis_internal::text_of(payload);
    if (channel_name == flush_channel) {
      {
        std::lock_guard lock(flush_mutex);
        flushed =
            std::max(flushed, static_cast<std::int64_t>(std::strtoll(text.c_str(), nullptr, 10)));
      }
      flushed_changed.notify_all();
      return;
    }
    std::optional<event> e;
    try {
      e = deserialize_event(text);
    } catch (const error&) {
    }
    if (!e) {
      malformed.fetch_add(1);
      return;
    }
    dispatcher.deliver(*e, options.max_attempts, options.on_handler_failure);
  }

  redis_internal::dispatcher::reader_function start() {
    std::shared_ptr<redis_internal::connection> first = connect_subscriber();
    return [this, first]() mutable {
      std::shared_ptr<redis_internal::connection> c = std::move(first);
      while (!dispatcher.stopping()) {
        try {
          if (!c || c->broken()) c = connect_subscriber();
          const reply r = c->next_reply(options.poll_interval, "reading " + pattern);
          if (r) on_message(r.get());
        } catch (...) {
          // Lost or unreachable server, or closed: drop the connection, pause, try again.
          c.reset();
          redis_internal::pause_unless([this] { return dispatcher.stopping(); },
                                       options.poll_interval);
        }
      }
    };
  }
};

redis_pubsub_bus::redis_pubsub_bus(redis_pubsub_bus_options options) {
  redis_internal::check_key_part(options.ns, "redis_pubsub_bus_options.ns");
  if (options.max_attempts < 1) {
    throw invalid_argument_error(
        "eventsourced: redis_pubsub_bus_options.max_attempts must be >= 1");
  }
  if (options.poll_interval.count() <= 0) {
    throw invalid_argument_error(
        "eventsourced: redis_pubsub_bus_options.poll_interval must be positive");
  }
  state_ = std::make_shared<state>(std::move(options));
}

redis_pubsub_bus::~redis_pubsub_bus() {
  close();
}

void redis_pubsub_bus::publish(const event& e) {
  state_->require_open();
  const std::string ch = state_->channel(e.type);
  const std::string body = serialize_event(e);
  auto c = state_->pool.acquire();
  c->command({"PUBLISH", ch, body}, "publishing event " + e.id + " on " + ch);
}

subscription redis_pubsub_bus::subscribe(std::string_view type,
                                         std::shared_ptr<event_handler> handler) {
  if (type.empty()) {
    throw invalid_argument_error("eventsourced: subscribe needs an event type, got an empty one");
  }
  if (!handler) throw invalid_argument_error("eventsourced: subscribe needs a handler, got null");
  state_->require_open();
  state* st = state_.get();
  std::weak_ptr<state> weak = state_;
  auto r = st->dispatcher.add(std::string(type), std::move(handler), [st] { return st->start(); });
  return subscription([weak, r]() noexcept {
    if (const auto s = weak.lock()) {
      s->dispatcher.end(r);
    } else {
      r->active.store(false);
    }
  });
}

bool redis_pubsub_bus::flush(std::chrono::milliseconds timeout) {
  state_->require_open();
  if (state_->dispatcher.on_reader_thread()) {
    throw invalid_argument_error(
        "eventsourced: redis_pubsub_bus::flush() called from a handler would wait for itself");
  }
  if (!state_->dispatcher.started()) return true;
  const std::int64_t token = ++state_->markers;
  {
    auto c = state_->pool.acquire();
    c->command({"PUBLISH", state_->flush_channel, std::to_string(token)}, "flushing");
  }
  std::unique_lock lock(state_->flush_mutex);
  return state_->flushed_changed.wait_for(lock, timeout, [&] {
    return state_->flushed >= token || state_->closed.load();
  }) && state_->flushed >= token;
}

void redis_pubsub_bus::close() noexcept {
  state_->closed.store(true);
  state_->flushed_changed.notify_all();
  state_->dispatcher.stop();
  state_->pool.close();
}

std::string redis_pubsub_bus::channel_of(std::string_view type) const {
  return state_->channel(type);
}

std::uint64_t redis_pubsub_bus::malformed_messages() const {
  return state_->malformed.load();
}

}  // namespace eventsourced
