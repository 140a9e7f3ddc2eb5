// redis_streams_bus: XADD to publish; a thread per durable subscription reading its consumer
// group; the plain subscriptions on one ephemeral group read by the dispatcher's thread.
#include <eventsourced/redis/redis_streams_bus.hpp>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include <eventsourced/error.hpp>
#include <eventsourced/event/serializer.hpp>

#include "connection.hpp"
#include "dispatcher.hpp"
#include "names.hpp"
#include "stream_group.hpp"

namespace eventsourced {

using redis_internal::command_args;
using redis_internal::durable_reader;
using redis_internal::entry_of;
using redis_internal::id_of;
using redis_internal::id_parts;
using redis_internal::reply;

namespace {

// Most XADDs per pipelined write of a batch.
constexpr std::size_t kBatchChunk = 1000;

void check_options(const redis_streams_bus_options& o) {
  redis_internal::check_key_part(o.ns, "redis_streams_bus_options.ns");
  const auto bad = [](const std::string& what) {
    throw invalid_argument_error("eventsourced: redis_streams_bus_options." + what);
  };
  if (o.max_deliver < 1) bad("max_deliver must be >= 1");
  if (o.retry_delay.count() < 0) bad("retry_delay must not be negative");
  if (o.reclaim_min_idle.count() <= 0) bad("reclaim_min_idle must be positive");
  if (o.poll_interval.count() <= 0) bad("poll_interval must be positive");
  if (o.read_count < 1) bad("read_count must be >= 1");
}

}  // namespace

struct redis_streams_bus::state {
  explicit state(redis_streams_bus_options o)
      : options(std::move(o)),
        pool(options.connection),
        stream(options.ns + ":events"),
        dead_letters(options.ns + ":dead-letters"),
        groups_key(options.ns + ":groups"),
        ephemeral_group("es-ephemeral-" + redis_internal::random_hex(16)) {}
  ~state() {
    dispatcher.stop();
    join_all();
  }

  const redis_streams_bus_options options;
  redis_internal::pool pool;
  const std::string stream;
  const std::string dead_letters;
  const std::string groups_key;
  const std::string ephemeral_group;
  std::atomic<std::uint64_t> malformed{0};
  redis_internal::durable_consumer consumer{options, pool, stream, dead_letters, malformed};
  redis_internal::dispatcher dispatcher;
  std::atomic<bool> closed{false};

  std::mutex mutex;
  std::vector<std::shared_ptr<durable_reader>> durables;  // GUARDED_BY(mutex): active ones
  std::vector<std::thread> to_join;  // GUARDED_BY(mutex): of readers ended from their handler

  void require_open() const {
    if (closed.load()) throw store_closed_error("eventsourced: the event bus is closed");
  }

  command_args xadd(const event& e, const std::string& body) const {
    command_args args = {"XADD", stream};
    if (options.max_length > 0) {
      args.insert(args.end(), {"MAXLEN", "~", std::to_string(options.max_length)});
    }
    args.insert(args.end(), {"*", "type", e.type, "id", e.id, "event", body});
    return args;
  }

  // Records the group's type, or checks it against the one recorded.
  void bind_group(redis_internal::connection& c, const std::string& group,
                  const std::string& type) {
    const std::string doing = "recording the type of consumer group " + group;
    c.command({"HSETNX", groups_key, group, type}, doing);
    const reply r = c.command({"HGET", groups_key, group}, doing);
    const std::string bound = redis_internal::text_of(r.get());
    if (bound != type) {
      throw invalid_argument_error("eventsourced: consumer group '" + group + "' of " + stream +
                                   " receives '" + bound + "', not '" + type + "'");
    }
  }

  void join_all() noexcept {
    std::vector<std::thread> threads;
    {
      std::lock_guard lock(mutex);
      threads.swap(to_join);
      for (auto& d : durables) {
        d->stopping.store(true);
        if (d->thread.joinable()) threads.push_back(std::move(d->thread));
      }
      durables.clear();
    }
    for (auto& t : threads) {
      if (t.get_id() == std::this_thread::get_id()) {
        // close() from a handler: this thread ends by itself once the handler returns; the
        // destructor (which never runs on a handler's thread) joins it.
        std::lock_guard lock(mutex);
        to_join.push_back(std::move(t));
      } else if (t.joinable()) {
        t.join();
      }
    }
  }

  void end(const std::shared_ptr<durable_reader>& d) noexcept {
    d->stopping.store(true);
    std::thread t;
    {
      std::lock_guard lock(mutex);
      const auto it = std::find(durables.begin(), durables.end(), d);
      if (it == durables.end()) return;  // ended already (close())
      durables.erase(it);
      t = std::move(d->thread);
      if (redis_internal::durable_consumer::current() ==
          d.get()) {  // from its own handler: joined by close()
        to_join.push_back(std::move(t));
        return;
      }
    }
    if (t.joinable()) t.join();
  }

  // ---------------------------------------------------------------- plain subscriptions

  redis_internal::dispatcher::reader_function start_ephemeral() {
    {
      auto c = pool.acquire();
      redis_internal::create_group(*c, stream, ephemeral_group, false);
    }
    return [this] { read_ephemeral(); };
  }

  void read_ephemeral() noexcept {
    std::unique_ptr<redis_internal::connection> c;
    const command_args read = {"XREADGROUP",
                               "GROUP",
                               ephemeral_group,
                               "reader",
                               "COUNT",
                               std::to_string(options.read_count),
                               "BLOCK",
                               std::to_string(options.poll_interval.count()),
                               "STREAMS",
                               stream,
                               ">"};
    // Entries delivered to us on a connection that was lost before we acknowledged them (or
    // even received them) stay pending in the group: after every (re)connection they are read
    // again first (id 0: this consumer's pending entries), then new ones (>).
    command_args read_pending = read;
    read_pending.back() = "0";
    read_pending.erase(read_pending.begin() + 6, read_pending.begin() + 8);  // no BLOCK
    bool replay = true;
    while (!dispatcher.stopping()) {
      try {
        if (!c || c->broken()) {
          c = pool.connect_dedicated();
          c->set_timeout(options.poll_interval + options.connection.command_timeout);
          redis_internal::create_group(*c, stream, ephemeral_group, false);
          replay = true;
        }
        const reply r =
            c->call(replay ? read_pending : read, "reading consumer group " + ephemeral_group);
        if (redis_internal::is_error(r.get(), "NOGROUP")) {
          redis_internal::create_group(*c, stream, ephemeral_group, false);
          continue;
        }
        if (r->type == REDIS_REPLY_ERROR) {
          redis_internal::throw_reply_error(r.get(), "reading consumer group " + ephemeral_group,
                                            c->where());
        }
        std::size_t received = 0;
        for (std::size_t s = 0; r->type == REDIS_REPLY_ARRAY && s < r->elements; ++s) {
          const redisReply* per_stream = r->element[s];
          if (per_stream->type != REDIS_REPLY_ARRAY || per_stream->elements < 2) continue;
          const redisReply* entries = per_stream->element[1];
          for (std::size_t i = 0; entries->type == REDIS_REPLY_ARRAY && i < entries->elements;
               ++i) {
            if (dispatcher.stopping()) break;
            ++received;
            const auto en = entry_of(entries->element[i]);
            if (!en) {
              // Pending but deleted from the stream (trimmed): nothing to deliver.
              const std::string id = id_of(entries->element[i]);
              if (!id.empty())
                c->command({"XACK", stream, ephemeral_group, id}, "acknowledging " + id);
              continue;
            }
            std::optional<event> e;
            try {
              if (en->body) e = deserialize_event(*en->body);
            } catch (const error&) {
            }
            if (e) {
              dispatcher.deliver(*e, options.max_deliver, options.on_handler_failure);
            } else {
              malformed.fetch_add(1);
            }
            if (dispatcher.stopping()) break;
            c->command({"XACK", stream, ephemeral_group, en->id}, "acknowledging " + en->id);
          }
        }
        if (received == 0) replay = false;
      } catch (...) {
        c.reset();
        redis_internal::pause_unless([this] { return dispatcher.stopping(); },
                                     options.poll_interval);
      }
    }
  }

  // ---------------------------------------------------------------- idleness

  bool groups_idle(const std::vector<std::string>& groups) {
    auto c = pool.acquire();
    const std::vector<command_args> commands = {{"XREVRANGE", stream, "+", "-", "COUNT", "1"},
                                                {"XINFO", "GROUPS", stream}};
    const std::vector<reply> replies = c->pipeline(commands, "reading the state of " + stream);
    for (const reply& r : replies) {
      if (r->type == REDIS_REPLY_ERROR) {
        redis_internal::throw_reply_error(r.get(), "reading the state of " + stream, c->where());
      }
    }
    std::string last = "0-0";
    if (replies[0]->type == REDIS_REPLY_ARRAY && replies[0]->elements > 0) {
      if (const auto en = entry_of(replies[0]->element[0])) last = en->id;
    }
    std::size_t idle = 0;
    const redisReply* info = replies[1].get();
    for (std::size_t g = 0; info->type == REDIS_REPLY_ARRAY && g < info->elements; ++g) {
      const redisReply* fields = info->element[g];
      std::string name, delivered;
      long long pending = -1;
      for (std::size_t i = 0; fields->type == REDIS_REPLY_ARRAY && i + 1 < fields->elements;
           i += 2) {
        const std::string key = redis_internal::text_of(fields->element[i]);
        const redisReply* value = fields->element[i + 1];
        if (key == "name") name = redis_internal::text_of(value);
        if (key == "pending") pending = value->integer;
        if (key == "last-delivered-id") delivered = redis_internal::text_of(value);
      }
      if (std::find(groups.begin(), groups.end(), name) == groups.end()) continue;
      if (pending != 0 || id_parts(delivered) < id_parts(last)) return false;
      ++idle;
    }
    return idle == groups.size();
  }
};

redis_streams_bus::redis_streams_bus(redis_streams_bus_options options) {
  check_options(options);
  state_ = std::make_shared<state>(std::move(options));
}

redis_streams_bus::~redis_streams_bus() {
  close();
}

void redis_streams_bus::publish(const event& e) {
  state_->require_open();
  const std::string body = serialize_event(e);
  auto c = state_->pool.acquire();
  c->command(state_->xadd(e, body), "publishing event " + e.id + " to " + state_->stream);
}

void redis_streams_bus::publish(std::span<const event> events) {
  state_->require_open();
  // Serialized first: an event that cannot be serialized fails the batch before anything is sent.
  std::vector<command_args> commands;
  commands.reserve(events.size());
  for (const event& e : events) commands.push_back(state_->xadd(e, serialize_event(e)));
  if (commands.empty()) return;
  auto c = state_->pool.acquire();
  for (std::size_t from = 0; from < commands.size(); from += kBatchChunk) {
    const std::size_t to = std::min(commands.size(), from + kBatchChunk);
    const std::span<const command_args> chunk(commands.data() + from, to - from);
    const std::string doing = "publishing " + std::to_string(events.size()) + " events (from " +
                              events.front().id + ") to " + state_->stream;
    const std::vector<reply> replies = c->pipeline(chunk, doing);
    for (const reply& r : replies) {
      if (r->type == REDIS_REPLY_ERROR)
        redis_internal::throw_reply_error(r.get(), doing, c->where());
    }
  }
}

subscription redis_streams_bus::subscribe(std::string_view type,
                                          std::shared_ptr<event_handler> handler) {
  if (type.empty()) {
    throw invalid_argument_error("eventsourced: subscribe needs an event type, got an empty one");
  }
  if (!handler) throw invalid_argument_error("eventsourced: subscribe needs a handler, got null");
  state_->require_open();
  state* st = state_.get();
  std::weak_ptr<state> weak = state_;
  auto r = st->dispatcher.add(std::string(type), std::move(handler),
                              [st] { return st->start_ephemeral(); });
  return subscription([weak, r]() noexcept {
    if (const auto s = weak.lock()) {
      s->dispatcher.end(r);
    } else {
      r->active.store(false);
    }
  });
}

subscription redis_streams_bus::subscribe(std::string_view type, event_handler_function handler,
                                          const durable_subscription& durable) {
  if (!handler) throw invalid_argument_error("eventsourced: subscribe needs a handler, got null");
  struct function_handler final : event_handler {
    explicit function_handler(event_handler_function f) : function(std::move(f)) {}
    void handle_event(const event& e) override { function(e); }
    event_handler_function function;
  };
  return subscribe(type, std::make_shared<function_handler>(std::move(handler)), durable);
}

subscription redis_streams_bus::subscribe(std::string_view type,
                                          std::shared_ptr<event_handler> handler,
                                          const durable_subscription& durable) {
  if (type.empty()) {
    throw invalid_argument_error("eventsourced: subscribe needs an event type, got an empty one");
  }
  if (!handler) throw invalid_argument_error("eventsourced: subscribe needs a handler, got null");
  redis_internal::check_key_part(durable.group, "durable_subscription.group");
  durable_subscription d = durable;
  const bool made_up = d.consumer.empty();
  if (made_up) d.consumer = "consumer-" + redis_internal::random_hex(16);
  redis_internal::check_key_part(d.consumer, "durable_subscription.consumer");
  state_->require_open();
  {
    auto c = state_->pool.acquire();
    state_->bind_group(*c, d.group, std::string(type));
    redis_internal::create_group(*c, state_->stream, d.group, d.from_beginning);
  }
  auto reader = std::make_shared<durable_reader>(std::string(type), std::move(handler), d, made_up);
  {
    std::lock_guard lock(state_->mutex);
    state_->require_open();
    state* st = state_.get();
    // The thread holds the reader: a handler ending its own subscription drops the handle's.
    reader->thread = std::thread([st, reader] { st->consumer.run(*reader); });
    state_->durables.push_back(reader);
  }
  std::weak_ptr<state> weak = state_;
  return subscription([weak, reader]() noexcept {
    if (const auto s = weak.lock()) {
      s->end(reader);
    } else {
      reader->stopping.store(true);
    }
  });
}

bool redis_streams_bus::wait_idle(std::chrono::milliseconds timeout) {
  state_->require_open();
  if (state_->dispatcher.on_reader_thread() ||
      redis_internal::durable_consumer::current() != nullptr) {
    throw invalid_argument_error(
        "eventsourced: redis_streams_bus::wait_idle() called from a handler would wait for itself");
  }
  // Collected again on every round: a subscription that ended meanwhile (its handler
  // unsubscribed) no longer reads, and no longer counts.
  const auto current_groups = [this] {
    std::vector<std::string> groups;
    {
      std::lock_guard lock(state_->mutex);
      for (const auto& d : state_->durables) groups.push_back(d->durable.group);
    }
    if (state_->dispatcher.started()) groups.push_back(state_->ephemeral_group);
    std::sort(groups.begin(), groups.end());
    groups.erase(std::unique(groups.begin(), groups.end()), groups.end());
    return groups;
  };
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (auto groups = current_groups(); !groups.empty() && !state_->groups_idle(groups);
       groups = current_groups()) {
    state_->require_open();
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

void redis_streams_bus::close() noexcept {
  if (state_->closed.exchange(true)) return;
  const bool had_ephemeral = state_->dispatcher.started();
  state_->dispatcher.stop();
  state_->join_all();
  if (had_ephemeral) {
    try {
      auto c = state_->pool.acquire();
      c->call({"XGROUP", "DESTROY", state_->stream, state_->ephemeral_group},
              "destroying the ephemeral group");
    } catch (...) {
      // Best effort (documented): an unreachable server keeps the group.
    }
  }
  state_->pool.close();
}

const std::string& redis_streams_bus::stream_key() const {
  return state_->stream;
}

const std::string& redis_streams_bus::dead_letter_key() const {
  return state_->dead_letters;
}

std::uint64_t redis_streams_bus::malformed_messages() const {
  return state_->malformed.load();
}

}  // namespace eventsourced
