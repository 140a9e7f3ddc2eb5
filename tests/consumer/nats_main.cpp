// Links eventsourced::nats from an installed eventsourced: a bus on a server that does not exist
// is a retryable error.
#include <iostream>

#include <eventsourced/eventsourced.hpp>
#include <eventsourced/nats/jetstream_bus.hpp>

int main() {
  try {
    eventsourced::jetstream_bus bus({.connection = {.url = "nats://127.0.0.1:1"}, .ns = "app"});
  } catch (const eventsourced::engine_unavailable_error& e) {
    std::cout << "eventsourced::nats linked: " << e.what() << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "unexpected: " << e.what() << "\n";
  }
  return 1;
}
