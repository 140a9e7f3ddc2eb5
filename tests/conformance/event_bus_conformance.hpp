// The event bus conformance suite: what every bus promises (bus.hpp), written once and run
// against every bus.
//
// The test bodies (TEST_P(event_bus_conformance, ...)) live in
// tests/conformance/event_bus_conformance.cpp; a bus joins the suite from its own test file:
//
//   INSTANTIATE_TEST_SUITE_P(redis, event_bus_conformance,
//                            ::testing::Values(bus_under_test{"redis", make, settle}),
//                            bus_under_test_name);
//
// Every test gets a fresh bus from bus_under_test::make and closes it afterwards. Delivery may be
// asynchronous: the tests call settle() before looking at what handlers received, and never
// assert on timing.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <eventsourced/event/bus.hpp>
#include <eventsourced/event/event.hpp>

#include "support/servers.hpp"

namespace eventsourced::conformance {

// One bus the suite runs against.
struct bus_under_test {
  std::string name;                                  // [A-Za-z0-9_]: part of the test names
  std::function<std::unique_ptr<event_bus>()> make;  // a fresh bus with no subscribers
  // Returns once every event published so far has been delivered to every current subscriber.
  std::function<void(event_bus&)> settle;
  // Whether the bus delivers the events of one stream in publish order.
  bool ordered_per_stream = true;
  // For a bus on a server: the environment variable holding its address. SetUp() skips the test
  // when it is unset (fails it under CI; see support/servers.hpp) before calling make().
  const char* server_variable = nullptr;
};

inline void PrintTo(const bus_under_test& b, std::ostream* os) {
  *os << b.name;
}

inline std::string bus_under_test_name(const ::testing::TestParamInfo<bus_under_test>& info) {
  return info.param.name;
}

// What a handler saw, safe to fill from any thread.
class received_events {
 public:
  void add(const event& e) {
    std::lock_guard lock(mutex_);
    events_.push_back(e);
  }
  std::vector<event> events() const {
    std::lock_guard lock(mutex_);
    return events_;
  }
  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return events_.size();
  }
  std::vector<std::string> ids() const {
    std::lock_guard lock(mutex_);
    std::vector<std::string> out;
    for (const auto& e : events_) out.push_back(e.id);
    return out;
  }
  // The handler records into this object.
  event_handler_function recorder() {
    return [this](const event& e) { add(e); };
  }

 private:
  mutable std::mutex mutex_;
  std::vector<event> events_;
};

// An event ready to publish: a fresh id, the given type and stream, a position from a counter.
inline event make_test_event(std::string type, std::string stream_id = "s1",
                             std::int64_t stream_version = 1, json data = json::object()) {
  static std::atomic<std::int64_t> position{0};
  event e;
  e.id = make_event_id();
  e.type = std::move(type);
  e.stream = {"players", std::move(stream_id)};
  e.stream_version = stream_version;
  e.position = ++position;
  e.timestamp = std::chrono::system_clock::now();
  e.data = std::move(data);
  e.metadata = json::object();
  return e;
}

// Polls until done() or about 30 s have passed (a generous bound that only a broken bus meets).
template <typename Done>
bool eventually(Done done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

class event_bus_conformance : public ::testing::TestWithParam<bus_under_test> {
 protected:
  void SetUp() override {
    if (GetParam().server_variable != nullptr) {
      std::string address;
      EVENTSOURCED_REQUIRE_SERVER(GetParam().server_variable, address);
    }
    bus_ = GetParam().make();
    ASSERT_NE(bus_, nullptr);
  }
  void TearDown() override {
    if (bus_) bus_->close();
  }

  event_bus& bus() { return *bus_; }
  void settle() { GetParam().settle(*bus_); }

  std::unique_ptr<event_bus> bus_;
};

}  // namespace eventsourced::conformance
