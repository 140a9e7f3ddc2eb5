// Links eventsourced::redis from an installed eventsourced: a server that does not exist is a
// retryable error, and the cache turns it into a miss.
#include <iostream>

#include <eventsourced/eventsourced.hpp>
#include <eventsourced/redis/redis_cache.hpp>
#include <eventsourced/redis/redis_streams_bus.hpp>

int main() {
  eventsourced::redis_cache cache({.connection = {.uri = "redis://127.0.0.1:1"}});
  if (cache.get("c", "1").has_value() || cache.failures() != 1) {
    std::cerr << "unexpected cache result\n";
    return 1;
  }
  try {
    eventsourced::redis_streams_bus bus({.connection = {.uri = "redis://127.0.0.1:1"}});
    eventsourced::event e;
    e.id = eventsourced::make_event_id();
    e.type = "Linked";
    bus.publish(e);
  } catch (const eventsourced::engine_unavailable_error& e) {
    std::cout << "eventsourced::redis linked: " << e.what() << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "unexpected: " << e.what() << "\n";
  }
  return 1;
}
