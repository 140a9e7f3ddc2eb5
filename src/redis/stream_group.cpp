#include "stream_group.hpp"

#include <chrono>
#include <cstdlib>
#include <exception>
#include <vector>

#include <eventsourced/error.hpp>
#include <eventsourced/event/serializer.hpp>

#include "names.hpp"

namespace eventsourced::redis_internal {
namespace {

std::string what_of(const std::exception_ptr& error) {
  try {
    if (error) std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "an exception that is not a std::exception";
  }
  return {};
}

thread_local const durable_reader* reading_durable = nullptr;

}  // namespace

// An entry of an XRANGE/XREADGROUP/XCLAIM reply: [id, [field, value, ...]]; nullopt for a
// deleted one (nil, or an id with nil fields).
std::optional<entry> entry_of(const redisReply* r) {
  if (r == nullptr || r->type != REDIS_REPLY_ARRAY || r->elements < 2) return std::nullopt;
  entry out;
  out.id = redis_internal::text_of(r->element[0]);
  const redisReply* fields = r->element[1];
  if (fields == nullptr || fields->type != REDIS_REPLY_ARRAY) return std::nullopt;
  for (std::size_t i = 0; i + 1 < fields->elements; i += 2) {
    const std::string name = redis_internal::text_of(fields->element[i]);
    if (name == "type") out.type = redis_internal::text_of(fields->element[i + 1]);
    if (name == "event") out.body = redis_internal::text_of(fields->element[i + 1]);
  }
  return out;
}

// The id of an entry in a reply, also of a deleted one ([id, nil]); empty if there is none.
std::string id_of(const redisReply* r) {
  if (r == nullptr || r->type != REDIS_REPLY_ARRAY || r->elements < 1) return {};
  return redis_internal::text_of(r->element[0]);
}

// Ids of the form ms-seq, compared as numbers.
std::pair<std::uint64_t, std::uint64_t> id_parts(const std::string& id) {
  const std::size_t dash = id.find('-');
  const auto ms = std::strtoull(id.c_str(), nullptr, 10);
  const auto seq =
      dash == std::string::npos ? 0 : std::strtoull(id.c_str() + dash + 1, nullptr, 10);
  return {ms, seq};
}

void create_group(connection& c, const std::string& stream, const std::string& group,
                  bool from_beginning) {
  const std::string doing = "creating consumer group " + group + " of " + stream;
  const reply r =
      c.call({"XGROUP", "CREATE", stream, group, from_beginning ? "0" : "$", "MKSTREAM"}, doing);
  if (r->type == REDIS_REPLY_ERROR && !is_error(r.get(), "BUSYGROUP")) {
    throw_reply_error(r.get(), doing, c.where());
  }
}

const durable_reader* durable_consumer::current() noexcept {
  return reading_durable;
}

// Handles one entry delivered for the `deliveries`-th time: calls the handler, acknowledges,
// or gives the entry up. false when the subscription is stopping (the entry stays pending).
bool durable_consumer::handle(durable_reader& d, redis_internal::connection& c, const entry& en,
                              std::int64_t deliveries, bool& failed) {
  const std::string& group = d.durable.group;
  std::optional<event> e;
  if (en.body) {
    try {
      e = deserialize_event(*en.body);
    } catch (const error&) {
    }
  }
  if (!e) {
    malformed.fetch_add(1);
    c.command({"XACK", stream, group, en.id}, "acknowledging entry " + en.id);
    return true;
  }
  if (d.type != kAllEvents && e->type != d.type) {
    c.command({"XACK", stream, group, en.id}, "acknowledging entry " + en.id);
    return true;
  }
  if (d.stopping.load()) return false;
  std::exception_ptr error;
  try {
    d.handler->handle_event(*e);
  } catch (...) {
    error = std::current_exception();
  }
  if (!error) {
    c.command({"XACK", stream, group, en.id}, "acknowledging event " + e->id);
    return true;
  }
  if (deliveries < options.max_deliver) {
    failed = true;  // stays pending; taken again after retry_delay
    return true;
  }
  give_up(d, c, en, *e, std::move(error), deliveries);
  return true;
}

void durable_consumer::give_up(durable_reader& d, redis_internal::connection& c, const entry& en,
                               const event& e, std::exception_ptr error, std::int64_t deliveries) {
  if (options.on_handler_failure) {
    try {
      options.on_handler_failure(handler_failure{e, d.type, error, static_cast<int>(deliveries)});
    } catch (...) {
      // Documented: the observer's exception is swallowed.
    }
  }
  const std::vector<command_args> commands = {
      {"XADD", dead_letters, "*", "type", e.type, "id", e.id, "event", en.body.value_or(""),
       "group", d.durable.group, "consumer", d.durable.consumer, "deliveries",
       std::to_string(deliveries), "error", what_of(error), "entry", en.id},
      {"XACK", stream, d.durable.group, en.id}};
  for (const reply& r : c.pipeline(commands, "moving event " + e.id + " to " + dead_letters)) {
    if (r->type == REDIS_REPLY_ERROR) {
      redis_internal::throw_reply_error(r.get(), "moving event " + e.id + " to " + dead_letters,
                                        c.where());
    }
  }
}

// The delivery count of a pending entry (0 when it is no longer pending).
std::int64_t durable_consumer::deliveries_of(redis_internal::connection& c,
                                             const std::string& group, const std::string& id) {
  const reply r = c.command({"XPENDING", stream, group, id, id, "1"}, "reading entry " + id);
  if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) return 0;
  const redisReply* row = r->element[0];
  if (row->type != REDIS_REPLY_ARRAY || row->elements < 4) return 0;
  return row->element[3]->integer;
}

// The subscription's own entries pending for retry_delay: handled again, or given up when
// they were delivered max_deliver times already (a process that stopped after the last
// failed delivery). Returns whether entries of this consumer remain pending.
bool durable_consumer::retry_own(durable_reader& d, redis_internal::connection& c) {
  const std::string& group = d.durable.group;
  const std::string& me = d.durable.consumer;
  const reply due =
      c.command({"XPENDING", stream, group, "IDLE", std::to_string(options.retry_delay.count()),
                 "-", "+", std::to_string(options.read_count), me},
                "reading the pending entries of " + me);
  bool failed = false;
  for (std::size_t i = 0; due->type == REDIS_REPLY_ARRAY && i < due->elements; ++i) {
    if (d.stopping.load()) return true;
    const redisReply* row = due->element[i];
    if (row->type != REDIS_REPLY_ARRAY || row->elements < 4) continue;
    const std::string id = redis_internal::text_of(row->element[0]);
    const std::int64_t delivered = row->element[3]->integer;
    const reply claimed =
        c.command({"XCLAIM", stream, group, me, std::to_string(options.retry_delay.count()), id},
                  "taking back entry " + id);
    std::optional<entry> en;
    if (claimed->type == REDIS_REPLY_ARRAY && claimed->elements > 0) {
      en = entry_of(claimed->element[0]);
    }
    if (!en) {  // trimmed or deleted meanwhile
      c.command({"XACK", stream, group, id}, "acknowledging deleted entry " + id);
      continue;
    }
    if (delivered >= options.max_deliver) {
      std::optional<event> e;
      try {
        if (en->body) e = deserialize_event(*en->body);
      } catch (const error&) {
      }
      if (e && (d.type == kAllEvents || e->type == d.type)) {
        give_up(d, c, *en, *e,
                std::make_exception_ptr(engine_error("eventsourced: delivered " +
                                                     std::to_string(delivered) +
                                                     " times without being acknowledged")),
                delivered);
        continue;
      }
    }
    handle(d, c, *en, delivered + 1, failed);
  }
  const reply left = c.command({"XPENDING", stream, group, "-", "+", "1", me},
                               "reading the pending entries of " + me);
  return failed || (left->type == REDIS_REPLY_ARRAY && left->elements > 0);
}

// Entries idle on any consumer of the group for reclaim_min_idle, taken over.
void durable_consumer::reclaim(durable_reader& d, redis_internal::connection& c,
                               std::string& cursor, bool& failed) {
  const std::string& group = d.durable.group;
  const reply r = c.command({"XAUTOCLAIM", stream, group, d.durable.consumer,
                             std::to_string(options.reclaim_min_idle.count()), cursor, "COUNT",
                             std::to_string(options.read_count)},
                            "reclaiming idle entries of group " + group);
  if (r->type != REDIS_REPLY_ARRAY || r->elements < 2) return;
  cursor = redis_internal::text_of(r->element[0]);
  if (cursor.empty()) cursor = "0-0";
  const redisReply* entries = r->element[1];
  for (std::size_t i = 0; entries->type == REDIS_REPLY_ARRAY && i < entries->elements; ++i) {
    if (d.stopping.load()) return;
    const auto en = entry_of(entries->element[i]);
    if (!en) continue;
    const std::int64_t delivered = deliveries_of(c, group, en->id);
    if (delivered == 0) continue;  // acknowledged meanwhile by its former consumer
    handle(d, c, *en, delivered, failed);
  }
}

void durable_consumer::run(durable_reader& d) noexcept {
  reading_durable = &d;
  std::unique_ptr<redis_internal::connection> c;
  bool own_pending = true;  // look at what this consumer left pending before
  std::string cursor = "0-0";
  auto next_reclaim = std::chrono::steady_clock::now();
  const std::string& group = d.durable.group;
  const command_args read = {"XREADGROUP", "GROUP",
                             group,        d.durable.consumer,
                             "COUNT",      std::to_string(options.read_count),
                             "BLOCK",      std::to_string(options.poll_interval.count()),
                             "STREAMS",    stream,
                             ">"};
  while (!d.stopping.load()) {
    try {
      if (!c || c->broken()) {
        c = pool.connect_dedicated();
        c->set_timeout(options.poll_interval + options.connection.command_timeout);
        // The server may have lost the group (restarted without persistence) while we were
        // away: every command below would fail with NOGROUP.
        create_group(*c, stream, group, d.durable.from_beginning);
      }
      bool failed = false;
      if (own_pending) own_pending = retry_own(d, *c);
      if (std::chrono::steady_clock::now() >= next_reclaim) {
        reclaim(d, *c, cursor, failed);
        next_reclaim = std::chrono::steady_clock::now() +
                       std::max(options.poll_interval, options.reclaim_min_idle / 4);
      }
      const reply r = c->call(read, "reading consumer group " + group);
      if (redis_internal::is_error(r.get(), "NOGROUP")) {
        // The server lost the group (restarted without persistence, or deleted it).
        create_group(*c, stream, group, d.durable.from_beginning);
        continue;
      }
      if (r->type == REDIS_REPLY_ERROR) {
        redis_internal::throw_reply_error(r.get(), "reading consumer group " + group, c->where());
      }
      for (std::size_t s = 0; r->type == REDIS_REPLY_ARRAY && s < r->elements; ++s) {
        const redisReply* per_stream = r->element[s];
        if (per_stream->type != REDIS_REPLY_ARRAY || per_stream->elements < 2) continue;
        const redisReply* entries = per_stream->element[1];
        for (std::size_t i = 0; entries->type == REDIS_REPLY_ARRAY && i < entries->elements; ++i) {
          const auto en = entry_of(entries->element[i]);
          if (!en) continue;
          if (!handle(d, *c, *en, 1, failed)) break;
        }
      }
      own_pending = own_pending || failed;
    } catch (...) {
      // Unreachable server, a refused command, closed: drop the connection, pause, try again.
      c.reset();
      own_pending = true;
      redis_internal::pause_unless([&d] { return d.stopping.load(); }, options.poll_interval);
    }
  }
  // A made-up consumer name is never used again: remove the consumer from the group, unless it
  // still owns pending entries (deleting it would drop them from the group's pending list; they
  // stay for other consumers to reclaim).
  if (d.made_up_name && c && !c->broken()) {
    try {
      const reply left = c->command({"XPENDING", stream, group, "-", "+", "1", d.durable.consumer},
                                    "reading the pending entries of " + d.durable.consumer);
      if (left->type == REDIS_REPLY_ARRAY && left->elements == 0) {
        c->command({"XGROUP", "DELCONSUMER", stream, group, d.durable.consumer},
                   "removing consumer " + d.durable.consumer);
      }
    } catch (...) {
      // Best effort: an unreachable server keeps the (empty) consumer.
    }
  }
  reading_durable = nullptr;
}

}  // namespace eventsourced::redis_internal
