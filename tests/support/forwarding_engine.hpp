// An engine that hands every call to another one: the base of the test engines that own
// something beside their engine (a temporary directory, a scratch schema or database) and clean
// it up when they are destroyed.
#pragma once

#include <memory>
#include <utility>

#include <eventsourced/engine/engine.hpp>

namespace eventsourced::testing {

class forwarding_engine : public engine {
 public:
  explicit forwarding_engine(std::unique_ptr<engine> inner = nullptr) : inner_(std::move(inner)) {}

  std::optional<stored_document> get(std::string_view collection, std::string_view id) override {
    return inner_->get(collection, id);
  }
  std::vector<stored_document> find(std::string_view collection, const query& q) override {
    return inner_->find(collection, q);
  }
  commit_result commit(const commit_request& request) override { return inner_->commit(request); }
  std::vector<recorded_event> read_stream(const stream_ref& stream, std::int64_t from_version,
                                          std::size_t max) override {
    return inner_->read_stream(stream, from_version, max);
  }
  std::vector<recorded_event> read_all(std::int64_t after_position, std::size_t max) override {
    return inner_->read_all(after_position, max);
  }
  std::size_t truncate_stream(const stream_ref& stream, std::int64_t before_version) override {
    return inner_->truncate_stream(stream, before_version);
  }
  bool wait_for(std::int64_t position, std::chrono::milliseconds timeout) override {
    return inner_->wait_for(position, timeout);
  }
  void close() override { inner_->close(); }

 protected:
  // Derived classes that must clean up after the engine is gone reset it in their destructor.
  std::unique_ptr<engine> inner_;
};

}  // namespace eventsourced::testing
