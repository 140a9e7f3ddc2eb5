// sync_service::receive (sync/sync_service.hpp) with any sequence of client messages — what a
// WebSocket client can send after authenticating.
//
// One service for the whole run, over an in-memory event_sync_storage holding a few documents
// (starting and stopping the service's threads per input would cost more than the input). Small
// limits (depth, message size, subscriptions, snapshot interval) so that short inputs reach them.
// Another client stays subscribed to the fixed documents throughout, so live delivery of the
// fuzzed writes runs too.
//
// Input: one message per line (docs/sync_protocol.md), sent in order on a new connection of
// client "ann", which is disconnected at the end of the input. Promises checked, per input:
// - receive() never throws for what a client sends;
// - every message sent to the client is a JSON object of a known type;
// - every request gets exactly one reply ("ok" or "error"), in order, carrying the request's
//   request_id (unless a "resync_needed" dropped replies);
// - nothing is sent on a connection after disconnect() has returned.
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <eventsourced/sync/event_sync_storage.hpp>
#include <eventsourced/sync/sync_service.hpp>

#include "fuzz_support.hpp"

using eventsourced::json;
namespace es = eventsourced;
namespace fuzz = eventsourced::fuzz;

namespace {

constexpr std::size_t kMaxMessages = 32;
constexpr es::sync_service_options kServiceOptions{.max_queued_messages = 256,
                                                   .max_subscriptions = 8,
                                                   .max_message_bytes = 4096,
                                                   .max_json_depth = 16,
                                                   .delivery_threads = 2,
                                                   .poll_interval = std::chrono::milliseconds(50)};
// How long the replies to one input may take before one counts as missing: far beyond what a
// reply takes, short enough that libFuzzer's own timeout does not fire first.
constexpr auto kReplyTimeout = std::chrono::seconds(10);

// What one connection received.
class inbox {
 public:
  void receive(const std::string& text) {
    json m;
    try {
      m = json::parse(text);
    } catch (const json::exception&) {
      fuzz::fail("the service sent text that is not JSON: " + text);
    }
    const std::string type = m.is_object() ? m.value("type", "") : "";
    if (type != "ok" && type != "error" && type != "event" && type != "snapshot" &&
        type != "resync_needed") {
      fuzz::fail("the service sent a message of no known type: " + text);
    }
    std::lock_guard lock(mu_);
    if (closed_) fuzz::fail("the service sent after disconnect() returned: " + text);
    if (type == "resync_needed") resynced_ = true;
    if (type == "ok" || type == "error") {
      replies_.push_back(m.contains("request_id") ? m["request_id"] : json());
      cv_.notify_all();
    }
  }

  // Waits for `count` replies (fewer when a resync dropped some); their request ids.
  std::vector<json> wait_for_replies(std::size_t count, bool& resynced) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, kReplyTimeout, [&] { return replies_.size() >= count; });
    resynced = resynced_;
    return replies_;
  }

  void close() {
    std::lock_guard lock(mu_);
    closed_ = true;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool closed_ = false;        // GUARDED_BY(mu_)
  bool resynced_ = false;      // GUARDED_BY(mu_)
  std::vector<json> replies_;  // GUARDED_BY(mu_): each reply's request_id, null when none
};

struct fixture {
  std::shared_ptr<es::event_sync_storage> storage;
  std::unique_ptr<es::sync_service> service;

  fixture() {
    es::sync_options options;
    options.storage.max_json_depth = 24;
    options.snapshot_interval = 4;
    options.snapshots_kept = 2;
    options.max_missing_events = 3;
    options.compact_events = true;  // bounds the log of documents the fuzzer writes again and again
    storage = es::event_sync_storage::open("memory:", options);
    for (int version = 0; version < 6; ++version) {  // past a snapshot and a compaction
      storage->find_one_and_upsert("games", {{"id", "g1"},
                                             {"gold", version},
                                             {"items", {{{"name", "sword"}}}},
                                             {"stats", {{"hp", 5}, {"tags", {"a", "b"}}}}});
    }
    storage->find_one_and_upsert("games", {{"id", "g2"}, {"gold", 0}});
    storage->find_one_and_upsert("players", {{"id", "p1"}, {"name", "Ann"}, {"level", 1}});
    storage->find_one_and_upsert("players", {{"id", "gone"}});
    storage->delete_one("players", "gone");
    service = es::sync_service::start(storage, kServiceOptions);
    const auto watcher = service->connect("bob", [](const std::string&) {});
    service->receive(watcher, R"({"type": "subscribe", "documents": [
        {"collection": "games", "id": "g1"}, {"collection": "games", "id": "g2"},
        {"collection": "players", "id": "p1"}]})");
  }
};

// The request_id the service must echo for a message: what its own parse of the message finds
// (nothing for a message over the size limit, which is not parsed).
json expected_request_id(std::string_view message) {
  if (message.size() > kServiceOptions.max_message_bytes) return nullptr;
  try {
    const auto parsed = es::parse_json_lenient(message, kServiceOptions.max_json_depth + 3).value;
    if (!parsed.is_object()) return nullptr;
    const auto it = parsed.find("request_id");
    if (it == parsed.end() || !(it->is_string() || it->is_number_integer())) return nullptr;
    return *it;
  } catch (const es::error&) {
    return nullptr;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Never destroyed: its threads run until the process exits.
  static fixture* const f = new fixture();

  const auto messages = fuzz::lines(fuzz::as_text(data, size), kMaxMessages);
  auto received = std::make_shared<inbox>();
  const auto connection =
      f->service->connect("ann", [received](const std::string& text) { received->receive(text); });
  for (const auto message : messages) {
    try {
      f->service->receive(connection, message);
    } catch (const std::exception& e) {
      fuzz::fail(std::string("receive() threw for a client's message: ") + e.what());
    }
  }
  bool resynced = false;
  const std::vector<json> replies = received->wait_for_replies(messages.size(), resynced);
  f->service->disconnect(connection);
  received->close();

  if (!resynced && replies.size() != messages.size()) {
    fuzz::fail(std::to_string(messages.size()) + " requests got " + std::to_string(replies.size()) +
               " replies");
  }
  if (replies.size() > messages.size()) fuzz::fail("more replies than requests");
  if (!resynced) {
    for (std::size_t i = 0; i < messages.size(); ++i) {
      if (replies[i] != expected_request_id(messages[i])) {
        fuzz::fail("reply " + std::to_string(i) + " carries request_id " + replies[i].dump() +
                   ", expected " + expected_request_id(messages[i]).dump());
      }
    }
  }
  return 0;
}
