// given / when / then for aggregates and command handlers, for the library's users' own tests.
//
//   eventsourced::testing::scenario s([](eventsourced::dispatcher& d,
//                                        const eventsourced::repository& repo) {
//     d.register_handler("EarnGold", eventsourced::aggregate_handler<player>(repo, earn_gold));
//   });
//   auto verdict = s.given({"player", "p1"}, {{"PlayerJoined", {{"name", "ann"}}}})
//                      .when(eventsourced::make_command("EarnGold", "p1", {{"amount", 5}}))
//                      .then({{"GoldEarned", {{"amount", 5}}}});
//   EXPECT_TRUE(verdict) << verdict;   // or: if (!verdict) throw ...(verdict.message())
//
// A scenario owns a fresh in-memory engine, a repository on it (built from the options given)
// and a dispatcher; `setup` registers the handlers under test on them. given() appends events to
// a stream as if earlier commands had recorded them; when() dispatches one command (and keeps
// what it threw); then() compares the events recorded during when() — all of them, in log order,
// whatever stream — with the expected ones (type, data, and the stream when given), and
// then_error() checks what when() threw. Framework-neutral: a verdict converts to bool and
// prints its message; nothing here depends on GoogleTest.
//
// \par Thread safety
// A scenario is used from one thread (the handlers it runs may start others).
#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <eventsourced/aggregate/repository.hpp>
#include <eventsourced/command/dispatcher.hpp>
#include <eventsourced/engine/engine.hpp>

namespace eventsourced::testing {

// An event as a test states it.
struct expected_event {
  std::string type;
  json data = json::object();
  // When set, the event must be on this stream; then() ignores the stream otherwise.
  std::optional<stream_ref> stream{};
  // given() stores it with the event (e.g. {"schema_version": 1} for an old event); then()
  // ignores it.
  json metadata = nullptr;
};

// The outcome of a then(): true when it held; message() says what differed.
class verdict {
 public:
  static verdict pass() { return verdict(true, "ok"); }
  static verdict fail(std::string message) { return verdict(false, std::move(message)); }
  explicit operator bool() const noexcept { return ok_; }
  const std::string& message() const noexcept { return message_; }
  friend std::ostream& operator<<(std::ostream& out, const verdict& v) { return out << v.message_; }

 private:
  verdict(bool ok, std::string message) : ok_(ok), message_(std::move(message)) {}
  bool ok_;
  std::string message_;
};

class scenario {
 public:
  using setup_function = std::function<void(dispatcher& d, const repository& repo)>;

  // Throws invalid_argument_error for a null setup and what setup or repository throw.
  explicit scenario(setup_function setup, repository_options options = {});
  ~scenario();
  scenario(const scenario&) = delete;
  scenario& operator=(const scenario&) = delete;

  // Appends events (with fresh ids, as stored: not stamped) to `stream` after whatever given() put
  // there before. Throws invalid_argument_error after when(), for an invalid stream or an event
  // without a type.
  scenario& given(const stream_ref& stream, const std::vector<expected_event>& events);

  // Dispatches c and keeps its result or exception. Throws invalid_argument_error when called a
  // second time.
  scenario& when(const command& c);

  // The events recorded during when() must be exactly `expected`, in order. Fails when when()
  // threw or was not called.
  verdict then(const std::vector<expected_event>& expected) const;

  // when() must have thrown an exception of type E whose what() contains message_part.
  template <class E>
  verdict then_error(std::string_view message_part = {}) const {
    if (!ran_) return verdict::fail("then_error: when() was not called");
    if (!error_) {
      return verdict::fail("expected an exception, but the command succeeded; " +
                           describe_recorded());
    }
    try {
      std::rethrow_exception(error_);
    } catch (const E& e) {
      if (std::string_view(e.what()).find(message_part) == std::string_view::npos) {
        return verdict::fail("the exception's message \"" + std::string(e.what()) +
                             "\" does not contain \"" + std::string(message_part) + "\"");
      }
      return verdict::pass();
    } catch (...) {
      return verdict::fail("when() threw another exception: " +
                           describe_error(std::current_exception()));
    }
  }

  // What the dispatch returned (empty when it threw or did not run).
  const command_result& result() const noexcept { return result_; }
  // The engine, repository and dispatcher of the scenario, for further checks.
  eventsourced::engine& engine() noexcept { return *engine_; }
  const eventsourced::repository& repository() const noexcept { return *repository_; }
  eventsourced::dispatcher& dispatcher() noexcept { return dispatcher_; }
  // The events recorded during when(), in log order.
  const std::vector<recorded_event>& recorded() const noexcept { return recorded_; }

 private:
  std::string describe_recorded() const;
  static std::string describe_error(std::exception_ptr error);

  std::unique_ptr<eventsourced::engine> engine_;
  std::unique_ptr<eventsourced::repository> repository_;
  eventsourced::dispatcher dispatcher_;
  bool ran_ = false;
  command_result result_;
  std::exception_ptr error_;
  std::vector<recorded_event> recorded_;
};

}  // namespace eventsourced::testing
