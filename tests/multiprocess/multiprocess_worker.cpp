// A child process of multiprocess_test.cpp: one application process of a scaled-out deployment
// (PostgreSQL as the shared store, a durable bus between processes).
//
//   eventsourced_multiprocess_worker <postgres-uri> <schema> jetstream|redis <bus-address>
//       <namespace> <index> <increments> <expected-events> <output-file>
//
// Opens a store on PostgreSQL (schema <schema>, default event mapper), a durable subscriber of
// its own on the bus (JetStream durable / Redis Streams group "proc-<index>", from the first
// event), and an outbox relay of its own ("relay-<index>") publishing the log to the bus. Runs
// <increments> find_one_and_update increments of "n" on documents counters/c0..c9 (created by the
// parent), chosen at random. Then waits until its subscriber has received <expected-events>
// distinct events (at most 120 s), stops, and writes every delivery it received, in order, one
// per line: "<event id> <stream id> <stream version>". Exits 0 on success, 1 with a message on
// stderr otherwise.
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <eventsourced/engine/postgres.hpp>
#include <eventsourced/eventsourced.hpp>
#if EVENTSOURCED_MULTIPROCESS_NATS
#include <eventsourced/nats/jetstream_bus.hpp>
#endif
#if EVENTSOURCED_MULTIPROCESS_REDIS
#include <eventsourced/redis/redis_streams_bus.hpp>
#endif

namespace {

struct delivery {
  std::string id;
  std::string stream_id;
  std::int64_t stream_version;
};

int run(int argc, char** argv) {
  if (argc != 10) {
    std::cerr << "usage: see multiprocess_worker.cpp\n";
    return 2;
  }
  const std::string postgres_uri = argv[1], schema = argv[2], bus_kind = argv[3],
                    bus_address = argv[4], ns = argv[5], index = argv[6];
  const int increments = std::atoi(argv[7]);
  const std::size_t expected = static_cast<std::size_t>(std::atol(argv[8]));
  const std::string output = argv[9];

  auto options = eventsourced::parse_postgres_uri(postgres_uri);
  options.schema = schema;
  eventsourced::store_options store_options;
  store_options.mapper = std::make_shared<eventsourced::default_event_mapper>();
  auto store =
      eventsourced::store::wrap(eventsourced::make_postgres_engine(options), store_options);

  std::mutex mutex;
  std::vector<delivery> deliveries;
  std::set<std::string> distinct;
  const auto record = [&](const eventsourced::event& e) {
    std::lock_guard lock(mutex);
    deliveries.push_back({e.id, e.stream.id, e.stream_version});
    distinct.insert(e.id);
  };

  std::shared_ptr<eventsourced::event_bus> bus;
  eventsourced::subscription subscriber;
  const std::string durable = "proc-" + index;
  if (false) {
#if EVENTSOURCED_MULTIPROCESS_NATS
  } else if (bus_kind == "jetstream") {
    auto js = std::make_shared<eventsourced::jetstream_bus>(
        eventsourced::jetstream_bus_options{.connection = {.url = bus_address}, .ns = ns});
    subscriber = js->subscribe(eventsourced::kAllEvents, record, {.durable = durable});
    bus = js;
#endif
#if EVENTSOURCED_MULTIPROCESS_REDIS
  } else if (bus_kind == "redis") {
    auto streams = std::make_shared<eventsourced::redis_streams_bus>(
        eventsourced::redis_streams_bus_options{.connection = {.uri = bus_address}, .ns = ns});
    subscriber = streams->subscribe(eventsourced::kAllEvents, record,
                                    {.group = durable, .from_beginning = true});
    bus = streams;
#endif
  } else {
    std::cerr << "unknown or unbuilt bus " << bus_kind << "\n";
    return 2;
  }

  eventsourced::outbox_relay relay(eventsourced::event_log(store), bus, {.name = "relay-" + index});
  relay.start();

  std::mt19937 random(static_cast<unsigned>(std::atoi(index.c_str()) * 7919 + 1));
  auto counters = store->documents("counters");
  for (int i = 0; i < increments; ++i) {
    counters.find_one_and_update("c" + std::to_string(random() % 10), [](eventsourced::json doc) {
      doc["n"] = doc["n"].get<int>() + 1;
      return doc;
    });
  }

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (true) {
    {
      std::lock_guard lock(mutex);
      if (distinct.size() >= expected) break;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      std::lock_guard lock(mutex);
      std::cerr << "worker " << index << ": received " << distinct.size() << " of " << expected
                << " events in 120 s";
      if (auto failure = relay.failure()) {
        try {
          std::rethrow_exception(failure);
        } catch (const std::exception& e) {
          std::cerr << " (relay failed: " << e.what() << ")";
        }
      }
      std::cerr << "\n";
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  relay.stop();
  subscriber.unsubscribe();
  bus->close();
  store->close();

  std::ofstream out(output);
  std::lock_guard lock(mutex);
  for (const auto& d : deliveries) {
    out << d.id << ' ' << d.stream_id << ' ' << d.stream_version << '\n';
  }
  return out ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "worker failed: " << e.what() << "\n";
    return 1;
  }
}
