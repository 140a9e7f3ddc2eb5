// Private: the consumer-group side of redis_streams_bus — the entries of a stream reply, and
// what a durable subscription's thread does: read its group, call the handler, acknowledge,
// retry its own failures, give up to the dead letters, reclaim entries of dead consumers
// (redis_streams_bus.hpp describes the behaviour).
#pragma once

#include <hiredis/hiredis.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include <eventsourced/redis/redis_streams_bus.hpp>

#include "connection.hpp"

namespace eventsourced::redis_internal {

// A stream entry as the bus writes it.
struct entry {
  std::string id;                   // the stream entry id
  std::optional<std::string> type;  // the `type` field
  std::optional<std::string> body;  // the `event` field
};

// An entry of an XRANGE/XREADGROUP/XCLAIM reply: [id, [field, value, ...]]; nullopt for a
// deleted one (nil, or an id with nil fields).
std::optional<entry> entry_of(const redisReply* r);
// The id of an entry in a reply, also of a deleted one ([id, nil]); empty if there is none.
std::string id_of(const redisReply* r);
// An id of the form ms-seq as numbers, for comparisons.
std::pair<std::uint64_t, std::uint64_t> id_parts(const std::string& id);

// XGROUP CREATE stream group (0 or $) MKSTREAM; an existing group is fine. Throws like
// connection::command.
void create_group(connection& c, const std::string& stream, const std::string& group,
                  bool from_beginning);

// A durable subscription: its thread reads the group as the consumer.
struct durable_reader {
  durable_reader(std::string t, std::shared_ptr<event_handler> h, durable_subscription d,
                 bool made_up)
      : type(std::move(t)), handler(std::move(h)), durable(std::move(d)), made_up_name(made_up) {}
  const std::string type;
  const std::shared_ptr<event_handler> handler;
  const durable_subscription durable;
  const bool made_up_name;  // the consumer name was made up: removed from the group at the end
  std::atomic<bool> stopping{false};  // no handler call starts once set
  std::thread thread;                 // GUARDED_BY(the bus's mutex)
};

// What every durable subscription thread of one bus runs. Holds references to the bus's state,
// which outlives the threads.
class durable_consumer {
 public:
  durable_consumer(const redis_streams_bus_options& bus_options, redis_internal::pool& connections,
                   const std::string& stream_key, const std::string& dead_letter_key,
                   std::atomic<std::uint64_t>& malformed_count)
      : options(bus_options),
        pool(connections),
        stream(stream_key),
        dead_letters(dead_letter_key),
        malformed(malformed_count) {}

  // The subscription's loop, until d.stopping: reconnects by itself, never throws.
  void run(durable_reader& d) noexcept;
  // The reader whose handler runs on the calling thread, if any.
  static const durable_reader* current() noexcept;

 private:
  bool handle(durable_reader& d, connection& c, const entry& en, std::int64_t deliveries,
              bool& failed);
  void give_up(durable_reader& d, connection& c, const entry& en, const event& e,
               std::exception_ptr error, std::int64_t deliveries);
  std::int64_t deliveries_of(connection& c, const std::string& group, const std::string& id);
  bool retry_own(durable_reader& d, connection& c);
  void reclaim(durable_reader& d, connection& c, std::string& cursor, bool& failed);

  const redis_streams_bus_options& options;
  redis_internal::pool& pool;
  const std::string& stream;
  const std::string& dead_letters;
  std::atomic<std::uint64_t>& malformed;
};

}  // namespace eventsourced::redis_internal
