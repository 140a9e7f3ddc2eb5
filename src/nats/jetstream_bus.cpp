#include <eventsourced/nats/jetstream_bus.hpp>

#include <atomic>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include <eventsourced/error.hpp>
#include <eventsourced/event/serializer.hpp>
#include <eventsourced/nats/subject.hpp>

#include "connection.hpp"
#include "dispatcher.hpp"
#include "handler_calls.hpp"
#include "subscriber_thread.hpp"

namespace eventsourced {

using nats_internal::subscriber;

namespace {

// Most asynchronous publishes in flight at once; longer batches are sent in chunks of this many.
constexpr int kBatchChunk = 1024;

std::int64_t nanoseconds(std::chrono::milliseconds ms) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(ms).count();
}

void check_options(const jetstream_bus_options& o) {
  check_nats_namespace(o.ns);
  const auto bad = [](const std::string& what) {
    throw invalid_argument_error("eventsourced: jetstream_bus_options." + what);
  };
  if (o.max_deliver < 1) bad("max_deliver must be >= 1");
  if (o.ack_wait.count() <= 0) bad("ack_wait must be positive");
  if (o.redelivery_delay.count() < 0) bad("redelivery_delay must not be negative");
  if (o.max_ack_pending < 1) bad("max_ack_pending must be >= 1");
  if (o.stream.duplicate_window.count() <= 0) bad("stream.duplicate_window must be positive");
  if (o.stream.max_age.count() < 0) bad("stream.max_age must not be negative");
  if (o.stream.replicas < 1 || o.stream.replicas > 5) bad("stream.replicas must be 1 to 5");
}

void check_durable(std::string_view name) {
  bool ok = !name.empty() && name.size() <= 64;
  for (const char c : name) {
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '_' || c == '-');
  }
  if (!ok) {
    throw invalid_argument_error("eventsourced: durable name '" + std::string(name) +
                                 "' must be 1 to 64 characters from [A-Za-z0-9_-]");
  }
}

}  // namespace

struct jetstream_bus::state {
  explicit state(jetstream_bus_options o) : options(std::move(o)), conn(options.connection) {}

  const jetstream_bus_options options;
  nats_internal::connection conn;
  nats_internal::subscriber_set subscribers;  // durable subscriptions: a consumer and thread each
  nats_internal::dispatcher dispatcher;       // ephemeral ones: one consumer, one thread
  std::atomic<bool> closed{false};
  std::atomic<std::uint64_t> malformed{0};

  // Batches (publish(span)) are published asynchronously on a JetStream context of their own,
  // one batch at a time, and awaited together: one round trip's latency per batch instead of
  // per event. The first failure the server or the library reports for a batch is kept here.
  std::mutex batch_mutex;     // held for a whole batch
  jsCtx* batch_js = nullptr;  // created with the bus, destroyed before the connection
  std::mutex failure_mutex;
  natsStatus batch_failure = NATS_OK;  // GUARDED_BY(failure_mutex)
  jsErrCode batch_failure_code{};      // GUARDED_BY(failure_mutex)

  ~state() { jsCtx_Destroy(batch_js); }

  static void on_batch_error(jsCtx*, jsPubAckErr* error, void* closure) {
    auto* self = static_cast<state*>(closure);
    std::lock_guard lock(self->failure_mutex);
    if (self->batch_failure == NATS_OK) {
      self->batch_failure = error->Err == NATS_OK ? NATS_ERR : error->Err;
      self->batch_failure_code = error->ErrCode;
    }
  }

  void open_batch_context() {
    jsOptions o;
    jsOptions_Init(&o);
    o.Wait = options.connection.request_timeout.count();
    o.PublishAsync.MaxPending = kBatchChunk;
    o.PublishAsync.ErrHandler = &state::on_batch_error;
    o.PublishAsync.ErrHandlerClosure = this;
    if (const natsStatus s = natsConnection_JetStream(&batch_js, conn.get(), &o); s != NATS_OK) {
      fail(s, "creating a JetStream context");
    }
  }

  void require_open() const {
    if (closed.load()) throw store_closed_error("eventsourced: the event bus is closed");
  }

  [[noreturn]] void fail(natsStatus s, const std::string& doing, jsErrCode code = {}) const {
    if (s == NATS_CONNECTION_CLOSED) require_open();
    nats_internal::throw_status(s, doing, conn.redact(), code);
  }

  void create_stream() {
    const std::string subjects = options.ns + ".>";
    const char* subject_list[] = {subjects.c_str()};
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Name = options.ns.c_str();
    cfg.Subjects = subject_list;
    cfg.SubjectsLen = 1;
    cfg.Storage =
        options.stream.storage == jetstream_storage::memory ? js_MemoryStorage : js_FileStorage;
    cfg.Retention = options.stream.retention == jetstream_retention::interest ? js_InterestPolicy
                                                                              : js_LimitsPolicy;
    cfg.Duplicates = nanoseconds(options.stream.duplicate_window);
    cfg.MaxAge = nanoseconds(options.stream.max_age);
    cfg.MaxMsgs = options.stream.max_messages;
    cfg.MaxBytes = options.stream.max_bytes;
    cfg.Replicas = options.stream.replicas;
    jsStreamInfo* info = nullptr;
    jsErrCode code{};
    natsStatus s = js_AddStream(&info, conn.jetstream(), &cfg, nullptr, &code);
    if (s != NATS_OK && code == JSStreamNameExistErr) {
      // It exists with another configuration: bring it to ours (the server refuses what it
      // cannot change, such as the storage type).
      code = {};
      s = js_UpdateStream(&info, conn.jetstream(), &cfg, nullptr, &code);
    }
    jsStreamInfo_Destroy(info);
    if (s != NATS_OK) fail(s, "creating or updating JetStream stream " + options.ns, code);
  }

  // The bus's one ephemeral consumer: every event published from now on (dispatcher.hpp).
  natsSubscription* make_ephemeral() {
    const std::string filter = options.ns + ".>";
    conn.require_connected("subscribing to " + filter);
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = options.ns.c_str();
    so.ManualAck = true;
    so.Config.AckPolicy = js_AckExplicit;
    so.Config.AckWait = nanoseconds(options.ack_wait);
    so.Config.MaxAckPending = options.max_ack_pending;
    so.Config.DeliverPolicy = js_DeliverNew;
    natsSubscription* sub = nullptr;
    jsErrCode code{};
    const natsStatus s =
        js_SubscribeSync(&sub, conn.jetstream(), filter.c_str(), nullptr, &so, &code);
    if (s != NATS_OK) fail(s, "subscribing to " + filter, code);
    return sub;
  }

  // An event for the ephemeral subscriptions: each handler is called (retried in this process:
  // the consumer lives and dies with it), then the event is acknowledged.
  void on_ephemeral_message(natsMsg* msg) noexcept {
    const auto e = nats_internal::event_of(msg);
    if (!e) {
      malformed.fetch_add(1);
      natsMsg_Term(msg, nullptr);
      return;
    }
    dispatcher.deliver(*e, options.max_deliver, options.redelivery_delay,
                       options.on_handler_failure);
    natsMsg_Ack(msg, nullptr);
  }

  void on_message(subscriber& s, natsMsg* msg) noexcept {
    const auto e = nats_internal::event_of(msg);
    if (!e) {
      malformed.fetch_add(1);
      natsMsg_Term(msg, nullptr);
      return;
    }
    int attempts = 0;
    auto error = nats_internal::call_handler(s, *e, 1, attempts);
    if (!error) {
      // Fire-and-forget: an acknowledgement lost with the connection makes the server deliver
      // the event again after ack_wait, which at-least-once allows.
      natsMsg_Ack(msg, nullptr);
      return;
    }
    std::uint64_t delivered = 1;
    jsMsgMetaData* meta = nullptr;
    if (natsMsg_GetMetaData(&meta, msg) == NATS_OK) {
      delivered = meta->NumDelivered;
      jsMsgMetaData_Destroy(meta);
    }
    if (delivered >= static_cast<std::uint64_t>(options.max_deliver)) {
      nats_internal::report_failure(options.on_handler_failure, s, *e, std::move(error),
                                    static_cast<int>(delivered));
      natsMsg_Term(msg, nullptr);
    } else if (options.redelivery_delay.count() > 0) {
      natsMsg_NakWithDelay(msg, options.redelivery_delay.count(), nullptr);
    } else {
      natsMsg_Nak(msg, nullptr);
    }
  }
};

jetstream_bus::jetstream_bus(jetstream_bus_options options) {
  check_options(options);
  state_ = std::make_shared<state>(std::move(options));
  state_->subscribers.set_connection(state_->conn.get());
  state_->create_stream();
  state_->open_batch_context();
}

jetstream_bus::~jetstream_bus() {
  close();
}

void jetstream_bus::publish(const event& e) {
  state_->require_open();
  const std::string subject = event_subject(state_->options.ns, e.type);
  const std::string payload = serialize_event(e);
  const std::string doing = "publishing event " + e.id + " to stream " + state_->options.ns;
  state_->conn.require_connected(doing);
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MsgId = e.id.c_str();
  po.ExpectStream = state_->options.ns.c_str();
  po.MaxWait = state_->options.connection.request_timeout.count();
  jsPubAck* ack = nullptr;
  jsErrCode code{};
  const natsStatus s = js_Publish(&ack, state_->conn.jetstream(), subject.c_str(), payload.data(),
                                  static_cast<int>(payload.size()), &po, &code);
  jsPubAck_Destroy(ack);
  if (s != NATS_OK) {
    state_->fail(s,
                 doing +
                     " (if the outcome is unknown, publishing again is safe: the event id "
                     "is deduplicated)",
                 code);
  }
}

void jetstream_bus::publish(std::span<const event> events) {
  if (events.size() <= 1) {
    for (const event& e : events) publish(e);
    return;
  }
  state& st = *state_;
  st.require_open();
  // Serialized first: an event that cannot be serialized fails the batch before anything is sent.
  std::vector<std::pair<std::string, std::string>> messages;  // subject, payload
  messages.reserve(events.size());
  for (const event& e : events) {
    messages.emplace_back(event_subject(st.options.ns, e.type), serialize_event(e));
  }
  const std::string doing = "publishing " + std::to_string(events.size()) + " events (from " +
                            events.front().id + ") to stream " + st.options.ns;
  std::lock_guard batch(st.batch_mutex);
  {
    std::lock_guard lock(st.failure_mutex);
    st.batch_failure = NATS_OK;
    st.batch_failure_code = {};
  }
  natsStatus s = NATS_OK;
  const char* step = "sending";
  for (std::size_t i = 0; i < events.size() && s == NATS_OK; ++i) {
    if (i % kBatchChunk == 0) {
      st.require_open();
      st.conn.require_connected(doing);
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MsgId = events[i].id.c_str();
    s = js_PublishAsync(st.batch_js, messages[i].first.c_str(), messages[i].second.data(),
                        static_cast<int>(messages[i].second.size()), &po);
    if (s == NATS_OK && (i + 1) % kBatchChunk == 0) {
      step = "waiting for the acknowledgements";
      jsPubOptions wait;
      jsPubOptions_Init(&wait);
      wait.MaxWait = st.options.connection.request_timeout.count();
      s = js_PublishAsyncComplete(st.batch_js, &wait);
    }
  }
  if (s == NATS_OK) {
    step = "waiting for the acknowledgements";
    jsPubOptions wait;
    jsPubOptions_Init(&wait);
    wait.MaxWait = st.options.connection.request_timeout.count();
    s = js_PublishAsyncComplete(st.batch_js, &wait);
  }
  if (s != NATS_OK) {
    // Forget what is still unacknowledged, so that the next batch starts clean; those events
    // may or may not be stored, and publishing them again is safe.
    natsMsgList pending;
    if (js_PublishAsyncGetPendingList(&pending, st.batch_js) == NATS_OK) {
      natsMsgList_Destroy(&pending);
    }
  }
  jsErrCode code{};
  {
    std::lock_guard lock(st.failure_mutex);
    if (s == NATS_OK && st.batch_failure != NATS_OK) {
      s = st.batch_failure;
      code = st.batch_failure_code;
      step = "storing (the server refused an event)";
    }
  }
  if (s != NATS_OK) {
    st.fail(s,
            doing + ", " + step +
                " (some may be stored; publishing the batch again is safe: event ids are "
                "deduplicated)",
            code);
  }
}

subscription jetstream_bus::subscribe(std::string_view type,
                                      std::shared_ptr<event_handler> handler) {
  return subscribe(type, std::move(handler), jetstream_subscribe_options{});
}

subscription jetstream_bus::subscribe(std::string_view type, event_handler_function handler,
                                      const jetstream_subscribe_options& options) {
  if (!handler) throw invalid_argument_error("eventsourced: subscribe needs a handler, got null");
  struct function_handler final : event_handler {
    explicit function_handler(event_handler_function f) : function(std::move(f)) {}
    void handle_event(const event& e) override { function(e); }
    event_handler_function function;
  };
  return subscribe(type, std::make_shared<function_handler>(std::move(handler)), options);
}

subscription jetstream_bus::subscribe(std::string_view type, std::shared_ptr<event_handler> handler,
                                      const jetstream_subscribe_options& options) {
  if (type.empty()) {
    throw invalid_argument_error("eventsourced: subscribe needs an event type, got an empty one");
  }
  if (!handler) throw invalid_argument_error("eventsourced: subscribe needs a handler, got null");
  const bool durable = !options.durable.empty();
  if (durable) check_durable(options.durable);
  state_->require_open();
  if (!durable) {
    state* st = state_.get();
    std::weak_ptr<state> weak = state_;
    auto r = st->dispatcher.add(
        std::string(type), std::move(handler), [st] { return st->make_ephemeral(); },
        [weak](natsMsg* msg) {
          if (const auto s = weak.lock()) s->on_ephemeral_message(msg);
        });
    return subscription([weak, r]() noexcept {
      if (const auto s = weak.lock()) {
        s->dispatcher.end(r);
      } else {
        r->active.store(false);
      }
    });
  }
  const jetstream_bus_options& o = state_->options;
  const std::string filter = type == kAllEvents ? o.ns + ".>" : event_subject(o.ns, type);
  const std::string doing = durable ? "subscribing durable " + options.durable + " to " + filter
                                    : "subscribing to " + filter;
  state_->conn.require_connected(doing);

  jsConsumerConfig cfg;
  jsConsumerConfig_Init(&cfg);
  cfg.AckPolicy = js_AckExplicit;
  cfg.AckWait = nanoseconds(o.ack_wait);
  cfg.MaxDeliver = o.max_deliver;
  cfg.MaxAckPending = o.max_ack_pending;
  cfg.FilterSubject = filter.c_str();
  const std::string deliver_subject = "_es_deliver." + o.ns + "." + options.durable;
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = o.ns.c_str();
  so.ManualAck = true;
  if (durable) {
    // Created here, then bound to: a consumer nats.c did not create is not deleted when the
    // subscription ends. The queue group (deliver group) makes subscriptions of one durable
    // compete; the deliver subject lies outside the stream's subjects.
    cfg.Durable = options.durable.c_str();
    cfg.DeliverPolicy = options.start_at_new ? js_DeliverNew : js_DeliverAll;
    cfg.DeliverSubject = deliver_subject.c_str();
    cfg.DeliverGroup = options.durable.c_str();
    jsConsumerInfo* existing = nullptr;
    jsErrCode code{};
    natsStatus s = js_GetConsumerInfo(&existing, state_->conn.jetstream(), o.ns.c_str(),
                                      options.durable.c_str(), nullptr, &code);
    if (s == NATS_OK) {
      // Bound to one type for good: subscribing with another would silently change what every
      // subscriber of the durable receives.
      const std::string bound = existing->Config != nullptr && existing->Config->FilterSubject
                                    ? existing->Config->FilterSubject
                                    : "";
      jsConsumerInfo_Destroy(existing);
      if (bound != filter) {
        throw invalid_argument_error("eventsourced: durable '" + options.durable + "' of stream " +
                                     o.ns + " receives " + bound + ", not " + filter);
      }
    } else if (s == NATS_NOT_FOUND || code == JSConsumerNotFoundErr) {
      jsConsumerInfo* info = nullptr;
      code = {};
      s = js_AddConsumer(&info, state_->conn.jetstream(), o.ns.c_str(), &cfg, nullptr, &code);
      jsConsumerInfo_Destroy(info);
      if (s != NATS_OK) state_->fail(s, doing, code);
    } else {
      state_->fail(s, doing, code);
    }
    so.Consumer = options.durable.c_str();
    so.Queue = options.durable.c_str();
  }
  auto s = std::make_shared<subscriber>(std::string(type), std::move(handler));
  s->durable = options.durable;
  jsErrCode code{};
  const natsStatus status =
      js_SubscribeSync(&s->sub, state_->conn.jetstream(), filter.c_str(), nullptr, &so, &code);
  if (status != NATS_OK) state_->fail(status, doing, code);
  std::weak_ptr<state> weak = state_;
  state_->subscribers.start(s, [weak](subscriber& target, natsMsg* msg) {
    if (const auto st = weak.lock()) st->on_message(target, msg);
  });
  return subscription([weak, s]() noexcept {
    if (const auto st = weak.lock()) st->subscribers.end(s);
  });
}

bool jetstream_bus::wait_idle(std::chrono::milliseconds timeout) {
  state_->require_open();
  if (nats_internal::subscriber_set::on_subscriber_thread() ||
      state_->dispatcher.on_reader_thread()) {
    throw invalid_argument_error(
        "eventsourced: jetstream_bus::wait_idle() called from a handler would wait for itself");
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const auto idle_consumer = [](const jsConsumerInfo& info) {
    return info.NumPending == 0 && info.NumAckPending == 0;
  };
  // The ephemeral consumer of the bus's non-durable subscriptions, if there is one.
  const auto ephemeral_idle = [&](natsSubscription* sub) {
    if (sub == nullptr) return true;
    jsConsumerInfo* info = nullptr;
    jsErrCode code{};
    const natsStatus st = natsSubscription_GetConsumerInfo(&info, sub, nullptr, &code);
    if (st != NATS_OK) {
      state_->require_open();
      state_->fail(st, "reading consumer state", code);
    }
    const bool idle = idle_consumer(*info);
    jsConsumerInfo_Destroy(info);
    return idle;
  };
  while (!state_->dispatcher.with_subscription(ephemeral_idle)) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  for (const auto& s : state_->subscribers.active()) {
    for (;;) {
      bool idle = true;
      {
        std::lock_guard lock(s->mutex);
        if (s->sub != nullptr && !s->stopping.load()) {
          state_->conn.require_connected("waiting for the consumers");
          jsConsumerInfo* info = nullptr;
          jsErrCode code{};
          // By name: nats.c refuses GetConsumerInfo on a subscription bound to a queue group.
          const natsStatus st =
              js_GetConsumerInfo(&info, state_->conn.jetstream(), state_->options.ns.c_str(),
                                 s->durable.c_str(), nullptr, &code);
          if (st == NATS_OK) {
            idle = idle_consumer(*info);
            jsConsumerInfo_Destroy(info);
          } else if (!s->stopping.load()) {
            state_->fail(st, "reading consumer state", code);
          }
        }
      }
      if (idle) break;
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  return true;
}

void jetstream_bus::close() noexcept {
  state_->closed.store(true);
  state_->dispatcher.stop();
  state_->subscribers.close();
  state_->conn.close();
}

const std::string& jetstream_bus::stream_name() const {
  return state_->options.ns;
}

std::uint64_t jetstream_bus::malformed_messages() const {
  return state_->malformed.load();
}

}  // namespace eventsourced
