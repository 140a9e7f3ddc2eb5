// A child process for the multi-process tests.
//
//   eventsourced_test_worker increment <uri> <collection> <id> <count>
//     Opens the store at <uri> and runs <count> find_one_and_update increments of the "count"
//     member of document <id> (created by the parent beforehand). Exits 0 when every increment
//     committed; prints the error and exits 1 otherwise.
//
//   eventsourced_test_worker commit-forever <uri> <id>
//     Opens the engine at <uri> and, until killed, commits version-checked writes of document
//     "counters/<id>" each together with one event appended to stream "counter/<id>" at the same
//     version: the parent kills it with SIGKILL and checks that writes and events stayed paired.
//
//   eventsourced_test_worker store-write-forever <uri> <seed>
//     Opens a store at <uri> with the default event mapper and, until killed, makes random writes
//     (update_one, delete_one, find_one_and_upsert, two-document transactions) to documents
//     "docs/d0".."docs/d4": the parent checks that every version has exactly its event.
//
//   eventsourced_test_worker commands <uri> <first> <count>
//     Opens the store at <uri> and dispatches commands "cmd-<first>".."cmd-<first+count-1>"
//     (eventsourced_test::workload_command) through retrying aggregate handlers, in order: a
//     restarted worker, or another worker given the same range, must find the earlier ones
//     recorded (duplicates). Exits 0 when all are done.
//
//   eventsourced_test_worker client-writes <uri> <client> <first> <last> <progress-file>
//                            <outcome-file> <ready-file>
//     Opens an event_sync_storage at <uri> (snapshots every 5 versions, compaction on) and sends
//     client writes of <client> with mutation ids "m<first>".."m<last>" (<last> = -1: until
//     killed), each a JSON Patch appending its mutation id to the array "seen" of document
//     "lists/l" (created by the parent): applied twice, a write would show twice. Before each
//     write it appends "<n>" to <progress-file> (what a client keeps as "sent, not acknowledged");
//     after it, "m<n> applied|duplicate <version>" to <outcome-file>. <ready-file> is created once
//     the storage is open.
//
//   eventsourced_test_worker relay <uri> <name> <delivery-file> <until-position>
//   eventsourced_test_worker project <uri> <name> <collection> rebuild-forever|catch-up
//     The event layer's relay and projection under kill -9: see event_worker_commands.hpp.
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <random>
#include <string>

#include <eventsourced/eventsourced.hpp>

#include "event_worker_commands.hpp"
#include "unit/cqrs_test_support.hpp"

namespace {

// Creates the (empty) file the crash tests wait for before their random kill delay starts, so a
// slow start (a loaded machine, a sanitizer build) cannot use up the delay.
void mark_ready(const std::string& ready_file) {
  std::ofstream(ready_file).put('\n');
}

int commit_forever(const std::string& uri, const std::string& id, const std::string& ready_file) {
  auto db = eventsourced::open_engine(uri);
  const eventsourced::stream_ref stream{"counter", id};
  for (std::uint64_t n = 0;; ++n) {
    const auto doc = db->get("counters", id);
    const std::int64_t version = doc ? doc->version : 0;
    eventsourced::commit_request request;
    request.writes.push_back({"counters",
                              id,
                              version,
                              eventsourced::write_op::put,
                              {{"n", version + 1}, {"padding", std::string(512, 'x')}}});
    request.appends.push_back(
        {stream,
         version,
         {{id + "-" + std::to_string(version + 1), "Counted", {{"n", version + 1}}, nullptr}}});
    db->commit(request);
    if (n == 0) mark_ready(ready_file);  // after the first commit
  }
}

int store_write_forever(const std::string& uri, unsigned seed, const std::string& ready_file) {
  eventsourced::store_options options;
  options.mapper = std::make_shared<eventsourced::default_event_mapper>();
  auto store = eventsourced::open(uri, options);
  auto docs = store->documents("docs");
  std::mt19937 rng(seed);
  const auto id = [&] { return "d" + std::to_string(rng() % 5); };
  mark_ready(ready_file);  // the store is open
  for (;;) {
    const std::string target = id();
    const unsigned dice = rng() % 20;
    if (dice < 12) {
      if (docs.find_one(target)) docs.update_one(target, {{"$inc", {{"n", 1}}}});
    } else if (dice < 15) {
      docs.delete_one(target);
    } else if (dice < 18) {
      docs.find_one_and_upsert({{"id", target}, {"n", 0}, {"padding", std::string(256, 'x')}});
    } else {
      const std::string other = id();
      store->with_transaction([&](eventsourced::transaction& tx) {
        for (const std::string& d : {target, other}) {
          if (auto body = tx.find_one("docs", d)) {
            (*body)["n"] = body->value("n", 0) + 10;
            tx.put("docs", std::move(*body));
          }
        }
      });
    }
  }
}

int run_commands(const std::string& uri, std::int64_t first, std::int64_t count) {
  auto store = eventsourced::open(uri);
  eventsourced::repository repo(*store, eventsourced::repository_options{.snapshot_every = 10});
  eventsourced::dispatcher d;
  eventsourced_test::register_hero_commands(
      d, repo,
      eventsourced::aggregate_handler_options{
          .retry = eventsourced::retry_options{.max_attempts = 1000}});
  for (std::int64_t n = first; n < first + count; ++n) {
    d.dispatch(eventsourced_test::workload_command(n));
  }
  return 0;
}

int client_writes(const std::string& uri, const std::string& client, std::int64_t first,
                  std::int64_t last, const std::string& progress_file,
                  const std::string& outcome_file, const std::string& ready_file) {
  eventsourced::sync_options options;
  options.snapshot_interval = 5;
  options.compact_events = true;
  options.storage.retry.max_attempts = 1000;  // other processes write the same document
  auto sync = eventsourced::event_sync_storage::open(uri, options);
  std::ofstream progress(progress_file, std::ios::app);
  std::ofstream outcomes(outcome_file, std::ios::app);
  mark_ready(ready_file);
  for (std::int64_t n = first; last < 0 || n <= last; ++n) {
    const std::string mutation = "m" + std::to_string(n);
    progress << n << std::endl;  // flushed: a kill -9 after this line keeps it
    eventsourced::client_write write;
    write.client_id = client;
    write.mutation_id = mutation;
    write.op = eventsourced::client_write::kind::patch;
    write.patch =
        eventsourced::json::array({{{"op", "add"}, {"path", "/seen/-"}, {"value", mutation}}});
    const auto result = sync->apply_client_write("lists", "l", write);
    outcomes << mutation << (result.duplicate ? " duplicate " : " applied ") << result.version
             << std::endl;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 5 && std::string(argv[1]) == "commands") {
    try {
      return run_commands(argv[2], std::stoll(argv[3]), std::stoll(argv[4]));
    } catch (const std::exception& e) {
      std::cerr << "eventsourced_test_worker: " << e.what() << "\n";
      return 1;
    }
  }
  if (argc == 6 && (std::string(argv[1]) == "relay" || std::string(argv[1]) == "project")) {
    try {
      if (std::string(argv[1]) == "relay") {
        return eventsourced::testing::relay_to_file(argv[2], argv[3], argv[4], std::stoll(argv[5]));
      }
      return eventsourced::testing::project(argv[2], argv[3], argv[4], argv[5]);
    } catch (const std::exception& e) {
      std::cerr << "eventsourced_test_worker: " << e.what() << "\n";
      return 1;
    }
  }
  if (argc == 5 && std::string(argv[1]) == "store-write-forever") {
    try {
      return store_write_forever(argv[2], static_cast<unsigned>(std::stoul(argv[3])), argv[4]);
    } catch (const std::exception& e) {
      std::cerr << "eventsourced_test_worker: " << e.what() << "\n";
      return 1;
    }
  }
  if (argc == 9 && std::string(argv[1]) == "client-writes") {
    try {
      return client_writes(argv[2], argv[3], std::stoll(argv[4]), std::stoll(argv[5]), argv[6],
                           argv[7], argv[8]);
    } catch (const std::exception& e) {
      std::cerr << "eventsourced_test_worker: " << e.what() << "\n";
      return 1;
    }
  }
  if (argc == 5 && std::string(argv[1]) == "commit-forever") {
    try {
      return commit_forever(argv[2], argv[3], argv[4]);
    } catch (const std::exception& e) {
      std::cerr << "eventsourced_test_worker: " << e.what() << "\n";
      return 1;
    }
  }
  if (argc != 6 || std::string(argv[1]) != "increment") {
    std::cerr << "usage: " << argv[0] << " increment <uri> <collection> <id> <count>\n"
              << "       " << argv[0] << " commit-forever <uri> <id> <ready-file>\n"
              << "       " << argv[0] << " store-write-forever <uri> <seed> <ready-file>\n"
              << "       " << argv[0] << " commands <uri> <first> <count>\n"
              << "       " << argv[0]
              << " client-writes <uri> <client> <first> <last> <progress-file> <outcome-file> "
                 "<ready-file>\n"
              << "       " << argv[0] << " relay <uri> <name> <delivery-file> <until-position>\n"
              << "       " << argv[0]
              << " project <uri> <name> <collection> rebuild-forever|catch-up\n";
    return 2;
  }
  try {
    auto store = eventsourced::open(argv[2]);
    auto docs = store->documents(argv[3]);
    const int count = std::stoi(argv[5]);
    eventsourced::write_options options;
    options.retry = eventsourced::retry_options{.max_attempts = 1000};
    for (int i = 0; i < count; ++i) {
      docs.find_one_and_update(
          argv[4],
          [](eventsourced::json doc) {
            doc["count"] = doc.value("count", 0) + 1;
            return doc;
          },
          options);
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "eventsourced_test_worker: " << e.what() << "\n";
    return 1;
  }
}
