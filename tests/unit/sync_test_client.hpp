// Shared by the sync service tests: a client as a transport would run it.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <eventsourced/sync/sync_service.hpp>

#include "sync_test_support.hpp"

namespace eventsourced_test {

using namespace std::chrono_literals;

// How long a test waits for what it expects (generous: CI may be 10 times slower).
inline constexpr auto kWait = 20s;

// A client as a transport would run it: records every message the service sends and keeps a
// copy of each subscribed document by applying snapshots and events in order. Any event that
// does not follow the copy's version is an ordering violation (counted, and the test fails).
class test_client {
 public:
  test_client() = default;
  test_client(const test_client&) = delete;
  test_client& operator=(const test_client&) = delete;
  // The service never calls a send function after disconnect() returned: so a client going out
  // of scope first can never be called.
  ~test_client() {
    for (auto id : connections_) service_->disconnect(id);
  }

  eventsourced::sync_connection_id connect(eventsourced::sync_service& service,
                                           const std::string& client_id) {
    service_ = &service;
    connections_.push_back(
        service.connect(client_id, [this](const std::string& text) { on_message(text); }));
    return connections_.back();
  }

  void on_message(const std::string& text) {
    if (before_message) before_message();
    json m = eventsourced::json::parse(text);
    std::lock_guard lock(mu_);
    messages_.push_back(m);
    const std::string type = m.at("type");
    if (type == "snapshot") {
      auto& mine = copies_[key(m)];
      if (m["version"].get<std::int64_t>() <= mine.version) ++violations_;
      mine.version = m["version"];
      mine.document = m["document"];
    } else if (type == "event") {
      auto& mine = copies_[key(m)];
      if (m["version"].get<std::int64_t>() != mine.version + 1) {
        ++violations_;
      } else {
        mine.document = mine.document.patch(m["json_patch"]);
        mine.version = m["version"];
      }
    } else if (type == "resync_needed") {
      ++resyncs_;
    }
    cv_.notify_all();
  }

  // The reply to request_id (waits for it).
  json reply(const json& request_id) {
    std::unique_lock lock(mu_);
    json found;
    cv_.wait_for(lock, kWait, [&] {
      for (const auto& m : messages_) {
        if ((m["type"] == "ok" || m["type"] == "error") &&
            m.value("request_id", json()) == request_id) {
          found = m;
          return true;
        }
      }
      return false;
    });
    return found;
  }

  bool wait_for_version(const std::string& collection, const std::string& id,
                        std::int64_t version) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kWait, [&] {
      auto it = copies_.find(collection + "/" + id);
      return it != copies_.end() && it->second.version >= version;
    });
  }

  bool wait_for_resync() {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kWait, [&] { return resyncs_ > 0; });
  }

  struct copy {
    std::int64_t version = 0;
    json document = nullptr;
  };

  copy copy_of(const std::string& collection, const std::string& id) {
    std::lock_guard lock(mu_);
    return copies_[collection + "/" + id];
  }
  void set_copy(const std::string& collection, const std::string& id, copy c) {
    std::lock_guard lock(mu_);
    copies_[collection + "/" + id] = std::move(c);
  }
  int violations() {
    std::lock_guard lock(mu_);
    return violations_;
  }
  std::vector<json> messages() {
    std::lock_guard lock(mu_);
    return messages_;
  }
  std::size_t count(const std::string& type) {
    std::lock_guard lock(mu_);
    std::size_t n = 0;
    for (const auto& m : messages_) n += m["type"] == type ? 1 : 0;
    return n;
  }

  std::function<void()> before_message;  // runs on the delivery thread before a message

 private:
  static std::string key(const json& m) {
    return m.at("collection").get<std::string>() + "/" + m.at("id").get<std::string>();
  }
  eventsourced::sync_service* service_ = nullptr;
  std::vector<eventsourced::sync_connection_id> connections_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<json> messages_;
  std::map<std::string, copy> copies_;
  int violations_ = 0;
  int resyncs_ = 0;
};

// A sync_test with a sync_service over the storage under test.
class sync_service_fixture : public sync_test {
 protected:
  void TearDown() override {
    if (service_) service_->stop();
    service_.reset();
    shared_.reset();
    sync_test::TearDown();
  }

  eventsourced::sync_service& start(eventsourced::sync_options options = {},
                                    eventsourced::sync_service_options service_options = {}) {
    open_sync(std::move(options));
    shared_ = std::shared_ptr<eventsourced::event_sync_storage>(std::move(sync_));
    service_ = eventsourced::sync_service::start(shared_, service_options);
    return *service_;
  }

  eventsourced::event_sync_storage& storage() { return *shared_; }

  std::shared_ptr<eventsourced::event_sync_storage> shared_;
  std::unique_ptr<eventsourced::sync_service> service_;
};

}  // namespace eventsourced_test
