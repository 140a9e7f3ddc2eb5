// Links eventsourced::postgres from an installed eventsourced: the header registers the
// postgresql:// scheme, and a server that does not exist is a retryable error.
#include <iostream>

#include <eventsourced/engine/postgres.hpp>
#include <eventsourced/eventsourced.hpp>

int main() {
  try {
    eventsourced::open("postgresql://127.0.0.1:1/none?max_attempts=1&connect_timeout=2");
  } catch (const eventsourced::engine_unavailable_error& e) {
    std::cout << "eventsourced::postgres linked: " << e.what() << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "unexpected: " << e.what() << "\n";
  }
  return 1;
}
