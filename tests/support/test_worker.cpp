// A child process for the multi-process tests.
//
//   eventsourced_test_worker increment <uri> <collection> <id> <count>
//
// Opens the store at <uri> and runs <count> find_one_and_update increments of the "count" member
// of document <id> (created by the parent beforehand). Exits 0 when every increment committed;
// prints the error and exits 1 otherwise.
#include <cstdlib>
#include <iostream>
#include <string>

#include <eventsourced/eventsourced.hpp>

int main(int argc, char** argv) {
  if (argc != 6 || std::string(argv[1]) != "increment") {
    std::cerr << "usage: " << argv[0] << " increment <uri> <collection> <id> <count>\n";
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
