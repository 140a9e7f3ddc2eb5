// The samples of docs/postgres.md, run against the PostgreSQL server of scripts/services.sh
// (EVENTSOURCED_TEST_POSTGRES_URI). Without that variable the program exits with 77, which ctest
// reports as skipped — except under CI, where a missing server is a failure (exit 1).
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

//! [open]
#include <eventsourced/engine/postgres.hpp>  // registers postgresql:// and postgres:// with open()
#include <eventsourced/eventsourced.hpp>

// uri: e.g. "postgresql://game:secret@db.internal/game?schema=game"
std::shared_ptr<eventsourced::store> open_game_store(const std::string& uri) {
  eventsourced::store_options options;
  options.mapper = std::make_shared<eventsourced::default_event_mapper>();  // writes record events
  return eventsourced::open(uri, options);
}
//! [open]

struct counter {
  std::string id;
  int value = 0;
  std::int64_t version = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(counter, id, value, version)

void expect(bool ok, const char* what) {
  if (!ok) {
    std::cerr << "sample check failed: " << what << "\n";
    std::exit(1);
  }
}

int main() {
  const char* server = std::getenv("EVENTSOURCED_TEST_POSTGRES_URI");
  if (server == nullptr || *server == '\0') {
    const char* ci = std::getenv("CI");
    const bool in_ci =
        ci != nullptr && *ci != '\0' && std::string(ci) != "0" && std::string(ci) != "false";
    std::cerr << "EVENTSOURCED_TEST_POSTGRES_URI is not set (scripts/services.sh start postgres)\n";
    return in_ci ? 1 : 77;
  }
  try {
    std::string uri = server;
    uri += (uri.find('?') == std::string::npos ? "?" : "&");
    uri += "schema=doc_sample";
    auto store = open_game_store(uri);
    auto counters = store->collection<counter>("counters");
    const std::string id = "c-" + std::to_string(::getpid());
    counters.find_one_and_upsert(counter{.id = id});
    auto [after, diff, events] = counters.find_one_and_update(id, [](counter c) {
      ++c.value;
      return c;
    });
    expect(after.value == 1 && after.version == 2, "one increment on a new counter");
    expect(events.size() == 1 && events[0].stream_version == 2, "the update recorded its event");
    std::cout << "counter " << id << " = " << after.value << " (version " << after.version
              << "), event at log position " << events[0].position << "\n";
  } catch (const std::exception& e) {
    std::cerr << "sample failed: " << e.what() << "\n";
    return 1;
  }
}
