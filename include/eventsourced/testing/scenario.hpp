// given / when / then for aggregates and command handlers, for the library's users' own tests.
//
// Command handlers (through a dispatcher, a repository and an in-memory engine):
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
// An aggregate on its own (no engine at all):
//
//   eventsourced::testing::aggregate_scenario<player> a("p1");
//   auto verdict = a.given({{"GoldEarned", {{"amount", 3}}}})
//                      .when([](player& p) { p.spend(5); })
//                      .then_error<not_enough_gold>();
//
// A scenario owns a fresh in-memory engine, a repository on it (built from the options given)
// and a dispatcher; `setup` registers the handlers under test on them. given() appends events to
// a stream as if earlier commands had recorded them; when() dispatches one command (and keeps
// what it threw); then() compares the events recorded during when() — all of them, in log order,
// whatever stream — with the expected ones (type, data, and the stream when given), and
// then_error() checks what when() threw. An aggregate_scenario applies the given events to a
// fresh aggregate (as a load would), runs the action, and compares the events it raised.
// Framework-neutral: a verdict converts to bool and prints its message; nothing here depends on
// GoogleTest.
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
#include <type_traits>
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

namespace detail {

// What an exception says (what(), or a note for a non-standard one).
std::string describe_error(std::exception_ptr error);
// "recorded:" and one line per event, or "no events were recorded".
std::string describe_events(const std::vector<recorded_event>& events);
// The then() of both scenarios.
verdict compare_events(bool ran, std::exception_ptr error,
                       const std::vector<expected_event>& expected,
                       const std::vector<recorded_event>& actual);

// The then_error() of both scenarios.
template <class E>
verdict check_error(bool ran, std::exception_ptr error, std::string_view message_part,
                    const std::vector<recorded_event>& recorded) {
  if (!ran) return verdict::fail("then_error: when() was not called");
  if (!error) {
    return verdict::fail("expected an exception, but when() succeeded; " +
                         describe_events(recorded));
  }
  try {
    std::rethrow_exception(error);
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

}  // namespace detail

class scenario {
 public:
  using setup_function = std::function<void(dispatcher& d, const repository& repo)>;

  // Throws invalid_argument_error for a null setup and what setup or repository throw.
  explicit scenario(setup_function setup, repository_options options = {});
  ~scenario();
  scenario(const scenario&) = delete;
  scenario& operator=(const scenario&) = delete;

  // Appends events (with fresh ids, as stored: not stamped) to `stream` after whatever given()
  // put there before. Throws invalid_argument_error after when(), for an invalid stream or an
  // event without a type.
  scenario& given(const stream_ref& stream, const std::vector<expected_event>& events);

  // Dispatches c and keeps its result or exception. Throws invalid_argument_error when called a
  // second time.
  scenario& when(const command& c);

  // The events recorded during when() must be exactly `expected`, in order. Fails when when()
  // threw or was not called.
  verdict then(const std::vector<expected_event>& expected) const {
    return detail::compare_events(ran_, error_, expected, recorded_);
  }

  // when() must have thrown an exception of type E whose what() contains message_part.
  template <class E>
  verdict then_error(std::string_view message_part = {}) const {
    return detail::check_error<E>(ran_, error_, message_part, recorded_);
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
  std::unique_ptr<eventsourced::engine> engine_;
  std::unique_ptr<eventsourced::repository> repository_;
  eventsourced::dispatcher dispatcher_;
  bool ran_ = false;
  command_result result_;
  std::exception_ptr error_;
  std::vector<recorded_event> recorded_;
};

template <class A>
requires std::is_base_of_v<aggregate_root, A> && std::is_constructible_v<A, std::string>
class aggregate_scenario {
 public:
  // Throws what A's constructor throws.
  explicit aggregate_scenario(std::string id = "test") : aggregate_(std::move(id)) {}

  // Applies events to the aggregate as a load would (consecutive stream versions; an expected
  // stream, if given, is ignored: they are the aggregate's). Throws invalid_argument_error after
  // when() and what the apply handlers throw.
  aggregate_scenario& given(const std::vector<expected_event>& events) {
    if (ran_)
      throw invalid_argument_error("eventsourced: aggregate_scenario: given() after when()");
    for (const expected_event& e : events) {
      recorded_event r;
      r.id = make_event_id();
      r.type = e.type;
      r.stream = aggregate_.stream();
      r.stream_version = aggregate_.version() + 1;
      r.position = r.stream_version;
      r.data = e.data;
      r.metadata = e.metadata;
      aggregate_.apply(r);
    }
    return *this;
  }

  // Runs action on the aggregate and keeps what it threw. Throws invalid_argument_error when
  // called a second time.
  template <class F>
  requires std::is_invocable_v<F&, A&> aggregate_scenario& when(F action) {
    if (ran_) throw invalid_argument_error("eventsourced: aggregate_scenario: when() called twice");
    ran_ = true;
    try {
      action(aggregate_);
    } catch (...) {
      error_ = std::current_exception();
    }
    std::int64_t version = aggregate_.committed_version();
    for (const new_event& e : aggregate_.uncommitted()) {
      recorded_event r;
      r.id = e.id;
      r.type = e.type;
      r.stream = aggregate_.stream();
      r.stream_version = ++version;
      r.data = e.data;
      r.metadata = e.metadata;
      raised_.push_back(std::move(r));
    }
    return *this;
  }

  // The events the action raised must be exactly `expected`, in order.
  verdict then(const std::vector<expected_event>& expected) const {
    return detail::compare_events(ran_, error_, expected, raised_);
  }
  template <class E>
  verdict then_error(std::string_view message_part = {}) const {
    return detail::check_error<E>(ran_, error_, message_part, raised_);
  }

  A& aggregate() noexcept { return aggregate_; }

 private:
  A aggregate_;
  bool ran_ = false;
  std::exception_ptr error_;
  std::vector<recorded_event> raised_;
};

}  // namespace eventsourced::testing
