// sync_service: subscriptions, catch-up, live push, acknowledgements and client writes
// (sync/sync_service.hpp, docs/sync_protocol.md).
#include <eventsourced/sync/sync_service.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <eventsourced/error.hpp>

namespace eventsourced {
namespace {

using message_ptr = std::shared_ptr<const std::string>;

constexpr std::size_t kLogPage = 512;
constexpr std::size_t kSendBatch = 64;

// Never throws for text: an error message quoting a client's bytes may cut a UTF-8 sequence,
// which nlohmann's dump() would otherwise refuse; such bytes become U+FFFD.
message_ptr make_message(const json& j) {
  return std::make_shared<const std::string>(
      j.dump(-1, ' ', false, json::error_handler_t::replace));
}

// The levels a request wraps around the values it carries: the deepest is a patch operation's
// value (message → "patch" array → operation → value).
constexpr std::size_t kRequestEnvelopeDepth = 3;

// A client message that cannot be handled; becomes an "error" reply.
struct request_error {
  std::string code;
  std::string message;
  json extra = json::object();
};

[[noreturn]] void bad_message(const std::string& message) {
  throw request_error{"invalid_message", message};
}

const json& member(const json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end()) bad_message(std::string("missing member \"") + name + "\"");
  return *it;
}

std::string string_member(const json& j, const char* name) {
  const json& v = member(j, name);
  if (!v.is_string()) bad_message(std::string("\"") + name + "\" must be a string");
  return v.get<std::string>();
}

std::int64_t version_member(const json& j, const char* name) {
  const json& v = member(j, name);
  if (!v.is_number_integer() || v.get<std::int64_t>() < 0) {
    bad_message(std::string("\"") + name + "\" must be an integer >= 0");
  }
  return v.get<std::int64_t>();
}

// "<collection>/<id>": collection names hold no '/'.
std::string document_key(std::string_view collection, std::string_view id) {
  std::string key(collection);
  key.append("/").append(id);
  return key;
}

json event_message(const event& e) {
  const auto& key = e.stream.id;
  const auto slash = key.find('/');
  json m = {{"type", "event"},
            {"collection", key.substr(0, slash)},
            {"id", key.substr(slash + 1)},
            {"version", e.stream_version},
            {"op", e.data.value("op", "")},
            {"json_patch", e.data.value("json_patch", json::array())},
            {"client_id", e.data.value(std::string(kClientIdKey), "")},
            {"vector_clock", e.data.value(std::string(kVectorClockKey), json::object())},
            {"event_id", e.id}};
  if (auto it = e.data.find("mutation_id"); it != e.data.end()) m["mutation_id"] = *it;
  return m;
}

json snapshot_message(std::string_view collection, std::string_view id, const sync_snapshot& s) {
  json clock = json::object();
  for (const auto& [client, counter] : s.vector_clock) clock[client] = counter;
  return {{"type", "snapshot"},   {"collection", collection}, {"id", id},
          {"version", s.version}, {"document", s.document},   {"vector_clock", clock}};
}

// The messages that bring a client from its version to the batch's.
void append_batch(std::vector<message_ptr>& out, std::string_view collection, std::string_view id,
                  const sync_batch& batch) {
  if (batch.snapshot)
    out.push_back(make_message(snapshot_message(collection, id, *batch.snapshot)));
  for (const auto& e : batch.events) out.push_back(make_message(event_message(e)));
}

// Thread-local: the connection whose send function this thread is running (disconnect from
// inside a send must not wait for itself).
thread_local const void* tl_sending = nullptr;

}  // namespace

struct sync_service::impl {
  struct connection {
    sync_connection_id id = 0;
    std::string client_id;
    send_function send;

    // Guarded by impl::mu: document key -> the version the connection has been sent.
    std::unordered_map<std::string, std::int64_t> subscriptions;

    std::mutex queue_mu;  // guards queue, bounded, scheduled
    // Each message with whether it counts toward the queue's bound (catch-ups do not).
    std::deque<std::pair<message_ptr, bool>> queue;
    std::size_t bounded = 0;  // messages in queue that count
    bool scheduled = false;   // in the ready queue or being delivered
    std::atomic<bool> closed{false};
    // Set when the queue overflowed: the subscriptions are dropped (under impl::mu) by the next
    // one to look.
    std::atomic<bool> resync{false};

    std::mutex send_mu;     // held while send runs
    std::mutex receive_mu;  // receive() calls one at a time
  };
  using connection_ptr = std::shared_ptr<connection>;

  std::shared_ptr<event_sync_storage> storage;
  sync_service_options options;

  mutable std::mutex mu;  // connections, index, every connection's subscriptions
  std::unordered_map<sync_connection_id, connection_ptr> connections;
  std::unordered_map<std::string, std::map<sync_connection_id, connection_ptr>> index;
  sync_connection_id next_id = 1;

  std::mutex ready_mu;
  std::condition_variable ready_cv;
  std::deque<connection_ptr> ready;

  std::atomic<bool> stopping{false};
  std::atomic<std::int64_t> position{0};
  mutable std::mutex position_mu;
  mutable std::condition_variable position_cv;
  std::atomic<std::int64_t> messages_sent{0}, events_pushed{0}, resyncs{0}, send_failures{0};

  std::thread tail;
  std::vector<std::thread> delivery;

  engine& log() const { return storage->store()->engine(); }

  // The position of the log's last event (0: empty), by O(log n) probes of read_all(p, 1).
  std::int64_t log_end() const {
    auto& e = log();
    if (e.read_all(0, 1).empty()) return 0;
    std::int64_t lo = 0, hi = 1;  // read_all(lo) has events; looking for hi where it has none
    while (!e.read_all(hi, 1).empty()) {
      lo = hi;
      hi *= 2;
    }
    while (hi - lo > 1) {
      const std::int64_t mid = lo + (hi - lo) / 2;
      if (e.read_all(mid, 1).empty()) {
        hi = mid;
      } else {
        lo = mid;
      }
    }
    return hi;
  }

  // What a queued message is, for the queue's bound (sync_service.hpp, "Delivery").
  enum class kind {
    live,      // a pushed event: overflows the queue at max_queued_messages
    catch_up,  // a subscribe's catch-up and its reply: bounded by the request itself; neither
               // overflows the queue nor counts toward its bound
    reply,     // another reply: overflows at twice max_queued_messages (a client that sends
               // and never reads)
  };

  // Queues a message for the connection; on overflow, replaces the queue by "resync_needed".
  // Returns false when the message was not queued (the connection is closed, overflowed now, or
  // is waiting to resubscribe after an overflow: live events are dropped then).
  bool enqueue(const connection_ptr& c, message_ptr m, kind k) {
    bool schedule = false;
    bool queued = false;
    {
      std::lock_guard lock(c->queue_mu);
      if (c->closed.load()) return false;
      if (k == kind::live && c->resync.load()) return false;
      const std::size_t limit = k == kind::live    ? options.max_queued_messages
                                : k == kind::reply ? 2 * options.max_queued_messages
                                                   : static_cast<std::size_t>(-1);
      if (c->bounded >= limit) {
        c->queue.clear();
        c->bounded = 0;
        c->resync.store(true);
        resyncs.fetch_add(1);
        c->queue.emplace_back(
            make_message({{"type", "resync_needed"},
                          {"reason", "queue_full"},
                          {"message",
                           "the client did not keep up: its subscriptions ended; subscribe again "
                           "with the versions it has"}}),
            false);
      } else {
        const bool counts = k != kind::catch_up;
        c->queue.emplace_back(std::move(m), counts);
        c->bounded += counts ? 1 : 0;
        queued = true;
      }
      if (!c->scheduled) {
        c->scheduled = true;
        schedule = true;
      }
    }
    if (schedule) {
      {
        std::lock_guard lock(ready_mu);
        ready.push_back(c);
      }
      ready_cv.notify_one();
    }
    return queued;
  }

  // Under mu: drops the subscriptions of a connection whose queue overflowed.
  void purge_if_resync(const connection_ptr& c) {
    if (!c->resync.exchange(false)) return;
    unindex(c);
  }

  // Under mu.
  void unindex(const connection_ptr& c) {
    for (const auto& [key, version] : c->subscriptions) {
      auto it = index.find(key);
      if (it == index.end()) continue;
      it->second.erase(c->id);
      if (it->second.empty()) index.erase(it);
    }
    c->subscriptions.clear();
  }

  // ---- the log tail --------------------------------------------------------------------------

  void run_tail() {
    std::int64_t at = position.load();
    while (!stopping.load()) {
      try {
        auto page = log().read_all(at, kLogPage);
        if (page.empty()) {
          log().wait_for(at, options.poll_interval);
          continue;
        }
        for (const auto& e : page) {
          if (e.stream.type == kSyncStreamType) dispatch(e);
          at = e.position;
        }
        {
          std::lock_guard lock(position_mu);
          position.store(at);
        }
        position_cv.notify_all();
      } catch (const store_closed_error&) {
        return;
      } catch (...) {
        // The engine is unavailable for a moment (a lost connection): look again later.
        std::unique_lock lock(position_mu);
        position_cv.wait_for(lock, options.poll_interval, [&] { return stopping.load(); });
      }
    }
  }

  void dispatch(const recorded_event& e) {
    const std::string& key = e.stream.id;
    message_ptr message;
    std::lock_guard lock(mu);
    auto it = index.find(key);
    if (it == index.end()) return;
    std::vector<connection_ptr> subscribers;
    subscribers.reserve(it->second.size());
    for (const auto& [id, c] : it->second) subscribers.push_back(c);
    for (const auto& c : subscribers) {
      if (c->resync.load()) {
        purge_if_resync(c);
        continue;
      }
      auto sub = c->subscriptions.find(key);
      if (sub == c->subscriptions.end()) continue;
      const std::int64_t have = sub->second;
      if (e.stream_version <= have) continue;  // sent with the catch-up already
      if (e.stream_version == have + 1) {
        if (!message) message = make_message(event_message(e));
        if (enqueue(c, message, kind::live)) {
          sub->second = e.stream_version;
          events_pushed.fetch_add(1);
        } else {
          purge_if_resync(c);
        }
        continue;
      }
      // Ahead of what the connection has: send what lies between (rare: the tail was behind
      // the subscription's catch-up, or compaction).
      const auto slash = key.find('/');
      std::vector<message_ptr> messages;
      try {
        const auto batch = storage->get_missing_events(key.substr(0, slash), key.substr(slash + 1),
                                                       client_state{.version = have});
        append_batch(messages, key.substr(0, slash), key.substr(slash + 1), batch);
        bool all = true;
        for (auto& m : messages) {
          if (!(all = enqueue(c, std::move(m), kind::live))) break;
        }
        if (all) {
          sub->second = batch.version;
          events_pushed.fetch_add(static_cast<std::int64_t>(messages.size()));
        } else {
          purge_if_resync(c);
        }
      } catch (...) {
        // Cannot read the gap now: the client must resync rather than miss events.
        enqueue(c,
                make_message({{"type", "resync_needed"},
                              {"reason", "gap"},
                              {"message", "events could not be read; subscribe again"}}),
                kind::catch_up);
        resyncs.fetch_add(1);
        c->resync.store(true);
        purge_if_resync(c);
      }
    }
  }

  // ---- delivery ------------------------------------------------------------------------------

  void run_delivery() {
    for (;;) {
      connection_ptr c;
      {
        std::unique_lock lock(ready_mu);
        ready_cv.wait(lock, [&] { return stopping.load() || !ready.empty(); });
        if (stopping.load()) return;
        c = std::move(ready.front());
        ready.pop_front();
      }
      std::vector<message_ptr> batch;
      {
        std::lock_guard lock(c->queue_mu);
        while (!c->queue.empty() && batch.size() < kSendBatch) {
          auto& [message, counts] = c->queue.front();
          c->bounded -= counts ? 1 : 0;
          batch.push_back(std::move(message));
          c->queue.pop_front();
        }
      }
      bool failed = false;
      {
        std::lock_guard send_lock(c->send_mu);
        tl_sending = c.get();
        for (const auto& m : batch) {
          if (c->closed.load()) break;
          try {
            c->send(*m);
            messages_sent.fetch_add(1);
          } catch (...) {
            failed = true;  // counted once the connection is gone (stats stay consistent)
            break;
          }
        }
        tl_sending = nullptr;
      }
      if (failed) {
        drop(c->id);
        send_failures.fetch_add(1);
        continue;
      }
      if (c->closed.load()) {
        forget(c);  // disconnected from inside its own send
        continue;
      }
      bool again = false;
      {
        std::lock_guard lock(c->queue_mu);
        if (c->queue.empty() || c->closed.load()) {
          c->scheduled = false;
        } else {
          again = true;  // to the back of the line: one busy client does not hold a thread
        }
      }
      if (again) {
        {
          std::lock_guard lock(ready_mu);
          ready.push_back(c);
        }
        ready_cv.notify_one();
      }
    }
  }

  // Removes a connection; returns it (null when unknown).
  // Closes a connection and forgets it — unless one of its sends is running on this thread (a
  // disconnect from inside its own send): then the delivery thread forgets it when that send
  // returns, so a disconnect from another thread meanwhile still finds it and waits.
  connection_ptr drop(sync_connection_id id) {
    connection_ptr c;
    {
      std::lock_guard lock(mu);
      auto it = connections.find(id);
      if (it == connections.end()) return nullptr;
      c = it->second;
      if (tl_sending != c.get()) connections.erase(it);
      unindex(c);
    }
    {
      std::lock_guard lock(c->queue_mu);
      c->closed.store(true);
      c->queue.clear();
      c->bounded = 0;
    }
    return c;
  }

  void forget(const connection_ptr& c) {
    std::lock_guard lock(mu);
    auto it = connections.find(c->id);
    if (it != connections.end() && it->second == c) connections.erase(it);
  }

  connection_ptr find(sync_connection_id id) const {
    std::lock_guard lock(mu);
    auto it = connections.find(id);
    if (it == connections.end() || it->second->closed.load()) {
      throw invalid_argument_error("eventsourced: sync connection " + std::to_string(id) +
                                   " is not connected (never connected, or disconnected)");
    }
    return it->second;
  }

  // ---- requests ------------------------------------------------------------------------------

  // Returns false when the message was malformed (an invalid_message reply).
  bool handle(const connection_ptr& c, std::string_view text) {
    json request_id;  // null: the request named none
    json reply;
    bool subscribed = false;  // the reply ends a subscribe's catch-up
    try {
      if (text.size() > options.max_message_bytes) {
        throw request_error{"invalid_message", "message of " + std::to_string(text.size()) +
                                                   " bytes; at most " +
                                                   std::to_string(options.max_message_bytes)};
      }
      // Checked while parsing: nothing deeper than the limit is built, and the parse goes on
      // past it so that the reply still carries the request's id.
      lenient_json parsed;
      try {
        parsed = parse_json_lenient(text, options.max_json_depth + kRequestEnvelopeDepth);
      } catch (const serialization_error&) {
        bad_message("not JSON");
      }
      json& m = parsed.value;
      if (!m.is_object()) bad_message("a message is a JSON object");
      if (auto it = m.find("request_id"); it != m.end()) {
        if (!it->is_string() && !it->is_number_integer()) {
          bad_message("\"request_id\" must be a string or an integer");
        }
        request_id = *it;
      }
      if (parsed.violation) {
        parsed.violation->raise("a value of the message", options.max_json_depth);
      }
      const std::string type = string_member(m, "type");
      if (type == "subscribe") {
        reply = subscribe(c, m);
        subscribed = true;
      } else if (type == "unsubscribe") {
        reply = unsubscribe(c, m);
      } else if (type == "ack") {
        reply = ack(c, m);
      } else if (type == "write") {
        reply = write(c, m);
      } else {
        bad_message("unknown message type \"" + type + "\"");
      }
      reply["type"] = "ok";
    } catch (const request_error& e) {
      reply = e.extra;
      reply["type"] = "error";
      reply["code"] = e.code;
      reply["message"] = e.message;
    } catch (const conflict_error& e) {
      reply = {{"type", "error"},
               {"code", "conflict"},
               {"message", e.what()},
               {"version", e.actual_version()}};
    } catch (const not_found_error& e) {
      reply = {{"type", "error"}, {"code", "not_found"}, {"message", e.what()}};
    } catch (const json_depth_error& e) {
      reply = {{"type", "error"},
               {"code", "too_deep"},
               {"message", e.what()},
               {"max_depth", e.max_depth()}};
    } catch (const invalid_argument_error& e) {
      reply = {{"type", "error"}, {"code", "invalid_argument"}, {"message", e.what()}};
    } catch (const error& e) {
      reply = {{"type", "error"},
               {"code", "unavailable"},
               {"message", e.what()},
               {"retryable", e.retryable()}};
    } catch (const std::exception& e) {
      reply = {{"type", "error"}, {"code", "internal"}, {"message", e.what()}};
    }
    if (!request_id.is_null()) reply["request_id"] = request_id;
    const bool well_formed = reply.value("code", std::string()) != "invalid_message";
    enqueue(c, make_message(reply), subscribed ? kind::catch_up : kind::reply);
    return well_formed;
  }

  struct document_ref {
    std::string collection, id;
    std::int64_t version = 0;
  };

  static std::vector<document_ref> documents_of(const json& m, bool with_version) {
    const json& docs = member(m, "documents");
    if (!docs.is_array() || docs.empty()) bad_message("\"documents\" must be a non-empty array");
    std::vector<document_ref> out;
    std::set<std::pair<std::string, std::string>> seen;
    for (const auto& d : docs) {
      if (!d.is_object()) bad_message("each of \"documents\" is an object");
      document_ref r{string_member(d, "collection"), string_member(d, "id"), 0};
      if (with_version) r.version = d.contains("version") ? version_member(d, "version") : 0;
      if (!seen.emplace(r.collection, r.id).second) {
        bad_message("\"documents\" names " + r.collection + "/" + r.id + " twice");
      }
      out.push_back(std::move(r));
    }
    return out;
  }

  json subscribe(const connection_ptr& c, const json& m) {
    auto docs = documents_of(m, true);
    // The catch-up reads happen under mu, which the log tail holds while it dispatches: an
    // event committed before a read is in the read, one committed after reaches the new
    // subscription from the tail — none is lost between the two. Every document is read before
    // anything is subscribed: one that fails fails the request and nothing changes.
    std::lock_guard lock(mu);
    purge_if_resync(c);
    std::size_t adding = 0;
    for (const auto& d : docs)
      adding += c->subscriptions.count(document_key(d.collection, d.id)) ? 0 : 1;
    if (c->subscriptions.size() + adding > options.max_subscriptions) {
      throw request_error{
          "too_many_subscriptions",
          "at most " + std::to_string(options.max_subscriptions) + " documents per connection"};
    }
    std::vector<sync_batch> batches;
    for (const auto& d : docs) {
      batches.push_back(storage->get_missing_events(d.collection, d.id, {.version = d.version}));
    }
    json subscribed = json::array();
    for (std::size_t i = 0; i < docs.size(); ++i) {
      const auto& d = docs[i];
      std::vector<message_ptr> messages;
      append_batch(messages, d.collection, d.id, batches[i]);
      for (auto& msg : messages) enqueue(c, std::move(msg), kind::catch_up);
      const std::string key = document_key(d.collection, d.id);
      c->subscriptions[key] = batches[i].version;
      index[key][c->id] = c;
      subscribed.push_back(
          {{"collection", d.collection}, {"id", d.id}, {"version", batches[i].version}});
    }
    return {{"subscribed", std::move(subscribed)}};
  }

  json unsubscribe(const connection_ptr& c, const json& m) {
    auto docs = documents_of(m, false);
    std::lock_guard lock(mu);
    for (const auto& d : docs) {
      const std::string key = document_key(d.collection, d.id);
      c->subscriptions.erase(key);
      if (auto it = index.find(key); it != index.end()) {
        it->second.erase(c->id);
        if (it->second.empty()) index.erase(it);
      }
    }
    return json::object();
  }

  json ack(const connection_ptr& c, const json& m) {
    const std::string collection = string_member(m, "collection");
    const std::string id = string_member(m, "id");
    const json& clock = member(m, "vector_clock");
    if (!clock.is_object()) bad_message("\"vector_clock\" must be an object");
    vector_clock_map seen;
    for (const auto& [client, counter] : clock.items()) {
      if (!counter.is_number_integer()) bad_message("vector clock counters are integers");
      seen.emplace(client, counter.get<std::int64_t>());
    }
    const auto merged = storage->update_vector_clock(collection, id, c->client_id, seen);
    json out = json::object();
    for (const auto& [client, counter] : merged) out[client] = counter;
    return {{"vector_clock", std::move(out)}};
  }

  json write(const connection_ptr& c, const json& m) {
    const std::string collection = string_member(m, "collection");
    const std::string id = string_member(m, "id");
    client_write w;
    w.client_id = c->client_id;
    w.mutation_id = string_member(m, "mutation_id");
    const std::string op = string_member(m, "op");
    if (op == "put") {
      w.op = client_write::kind::put;
      w.document = member(m, "document");
    } else if (op == "patch") {
      w.op = client_write::kind::patch;
      w.patch = member(m, "patch");
    } else if (op == "delete") {
      w.op = client_write::kind::remove;
    } else {
      bad_message("\"op\" must be \"put\", \"patch\" or \"delete\"");
    }
    if (m.contains("base_version")) w.base_version = version_member(m, "base_version");
    const auto r = storage->apply_client_write(collection, id, w);
    return {{"mutation_id", w.mutation_id},
            {"version", r.version},
            {"duplicate", r.duplicate},
            {"changed", r.changed}};
  }
};

std::unique_ptr<sync_service> sync_service::start(std::shared_ptr<event_sync_storage> storage,
                                                  sync_service_options options) {
  if (!storage) throw invalid_argument_error("eventsourced: sync_service needs a storage");
  validate_max_json_depth(options.max_json_depth, "sync_service_options::max_json_depth");
  if (options.max_queued_messages < 1 || options.max_subscriptions < 1 ||
      options.max_message_bytes < 1 || options.delivery_threads < 1 ||
      options.poll_interval.count() < 1) {
    throw invalid_argument_error(
        "eventsourced: sync_service_options need max_queued_messages, max_subscriptions, "
        "max_message_bytes, delivery_threads >= 1 and poll_interval >= 1 ms");
  }
  auto p = std::make_unique<impl>();
  p->storage = std::move(storage);
  p->options = options;
  p->position.store(p->log_end());
  std::unique_ptr<sync_service> service(new sync_service(std::move(p)));
  impl* i = service->impl_.get();
  i->tail = std::thread([i] { i->run_tail(); });
  for (std::size_t n = 0; n < i->options.delivery_threads; ++n) {
    i->delivery.emplace_back([i] { i->run_delivery(); });
  }
  return service;
}

sync_service::sync_service(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

sync_service::~sync_service() {
  stop();
}

void sync_service::stop() noexcept {
  if (impl_->stopping.exchange(true)) return;
  impl_->ready_cv.notify_all();
  impl_->position_cv.notify_all();
  if (impl_->tail.joinable()) impl_->tail.join();
  for (auto& t : impl_->delivery) {
    if (t.joinable()) t.join();
  }
  std::vector<impl::connection_ptr> all;
  {
    std::lock_guard lock(impl_->mu);
    for (auto& [id, c] : impl_->connections) all.push_back(c);
    impl_->connections.clear();
    impl_->index.clear();
  }
  for (auto& c : all) {
    std::lock_guard lock(c->queue_mu);
    c->closed.store(true);
    c->queue.clear();
    c->bounded = 0;
  }
}

sync_connection_id sync_service::connect(std::string client_id, send_function send) {
  if (impl_->stopping.load()) throw store_closed_error("eventsourced: the sync service is stopped");
  if (client_id.empty()) throw invalid_argument_error("eventsourced: empty client id");
  validate_id(client_id, "client id");
  if (!send)
    throw invalid_argument_error("eventsourced: sync_service::connect needs a send function");
  auto c = std::make_shared<impl::connection>();
  c->client_id = std::move(client_id);
  c->send = std::move(send);
  std::lock_guard lock(impl_->mu);
  c->id = impl_->next_id++;
  impl_->connections.emplace(c->id, c);
  return c->id;
}

void sync_service::disconnect(sync_connection_id connection) noexcept {
  auto c = impl_->drop(connection);
  if (!c || tl_sending == c.get()) return;  // from inside its own send: nothing to wait for
  std::lock_guard wait_for_send(c->send_mu);
}

bool sync_service::receive(sync_connection_id connection, std::string_view message) {
  if (impl_->stopping.load()) throw store_closed_error("eventsourced: the sync service is stopped");
  auto c = impl_->find(connection);
  std::lock_guard lock(c->receive_mu);
  return impl_->handle(c, message);
}

sync_service_stats sync_service::stats() const {
  sync_service_stats s;
  {
    std::lock_guard lock(impl_->mu);
    for (const auto& [id, c] : impl_->connections) s.connections += c->closed.load() ? 0 : 1;
  }
  s.messages_sent = impl_->messages_sent.load();
  s.events_pushed = impl_->events_pushed.load();
  s.resyncs = impl_->resyncs.load();
  s.send_failures = impl_->send_failures.load();
  s.log_position = impl_->position.load();
  return s;
}

bool sync_service::wait_until_caught_up(std::chrono::milliseconds timeout) const {
  const std::int64_t end = impl_->log_end();
  std::unique_lock lock(impl_->position_mu);
  return impl_->position_cv.wait_for(lock, timeout, [&] { return impl_->position.load() >= end; });
}

const std::shared_ptr<event_sync_storage>& sync_service::storage() const noexcept {
  return impl_->storage;
}

}  // namespace eventsourced
