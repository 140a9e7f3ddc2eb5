// Workloads shared by the event-layer tests and the test worker (test_worker.cpp): appending
// events straight through the engine, a projection whose read model reveals any event applied
// twice or out of order, and the delivery log the relay worker writes.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <eventsourced/event/checkpoint.hpp>
#include <eventsourced/event/event.hpp>
#include <eventsourced/event/projection.hpp>
#include <eventsourced/eventsourced.hpp>

namespace eventsourced::testing {

// Commits `commits` engine commits of 1 to 3 events each, on streams "thing/t0".."thing/t4"
// (unchecked appends), event data {"n": <running number from first_n>}. Returns the recorded
// events.
inline std::vector<recorded_event> append_events(engine& db, int commits, std::uint32_t seed,
                                                 std::int64_t first_n = 0) {
  std::mt19937 rng(seed);
  std::vector<recorded_event> recorded;
  std::int64_t n = first_n;
  for (int c = 0; c < commits; ++c) {
    commit_request request;
    stream_append append{{"thing", "t" + std::to_string(rng() % 5)}};
    const int count = 1 + static_cast<int>(rng() % 3);
    for (int i = 0; i < count; ++i) {
      append.events.push_back(make_event("Happened", {{"n", n++}}));
    }
    request.appends.push_back(std::move(append));
    auto result = db.commit(request);
    recorded.insert(recorded.end(), result.events.begin(), result.events.end());
  }
  return recorded;
}

// The position of the last event in the log (0 when empty).
inline std::int64_t head_position(engine& db) {
  std::int64_t after = 0;
  for (auto page = db.read_all(after, 1000); !page.empty(); page = db.read_all(after, 1000)) {
    after = page.back().position;
  }
  return after;
}

// A projection that counts. Into `collection` it writes, per stream, a document
// "stream-<type>-<id>" {count, sum, last_version, errors}; per event a document "event-<id>"
// {position}; and "totals" {events, sum, last_position, errors}. errors count events seen out of
// stream order or at a position not above the last one: applied twice, or reordered. So a read
// model with errors == 0 and counts equal to the log's proves exactly-once, in-order effect.
inline projection counting_projection(std::string name, std::string collection) {
  projection p;
  p.name = std::move(name);
  p.collections = {collection};
  p.handle = [collection](const event& e, read_model& rm) {
    const std::int64_t n = e.data.value("n", std::int64_t{0});
    const std::string stream_doc = "stream-" + e.stream.type + "-" + e.stream.id;
    json s = rm.get(collection, stream_doc)
                 .value_or(json{{"count", 0}, {"sum", 0}, {"last_version", 0}, {"errors", 0}});
    if (e.stream_version != s["last_version"].get<std::int64_t>() + 1) {
      s["errors"] = s["errors"].get<std::int64_t>() + 1;
    }
    s["count"] = s["count"].get<std::int64_t>() + 1;
    s["sum"] = s["sum"].get<std::int64_t>() + n;
    s["last_version"] = e.stream_version;
    rm.put(collection, stream_doc, s);

    rm.put(collection, "event-" + e.id, {{"position", e.position}});

    json t = rm.get(collection, "totals")
                 .value_or(json{{"events", 0}, {"sum", 0}, {"last_position", 0}, {"errors", 0}});
    if (e.position <= t["last_position"].get<std::int64_t>()) {
      t["errors"] = t["errors"].get<std::int64_t>() + 1;
    }
    t["events"] = t["events"].get<std::int64_t>() + 1;
    t["sum"] = t["sum"].get<std::int64_t>() + n;
    t["last_position"] = e.position;
    rm.put(collection, "totals", t);
  };
  return p;
}

// The relay worker's delivery log: one line per event the bus handed to its handler,
//   d <position> <stream type> <stream id> <stream version> <event id>
// and, each time the worker starts, before the relay runs,
//   start <checkpoint position>
// Each line is written with one write(2) on an O_APPEND descriptor, so a SIGKILL leaves whole
// lines (a torn last line, if the kernel ever produced one, is ignored by the reader).
inline std::string delivery_line(const event& e) {
  return "d " + std::to_string(e.position) + " " + e.stream.type + " " + e.stream.id + " " +
         std::to_string(e.stream_version) + " " + e.id + "\n";
}

inline std::string start_line(std::int64_t checkpoint_position) {
  return "start " + std::to_string(checkpoint_position) + "\n";
}

}  // namespace eventsourced::testing
