#include <eventsourced/testing/scenario.hpp>

#include <eventsourced/engine/memory.hpp>

namespace eventsourced::testing {
namespace detail {
namespace {

std::string describe(const recorded_event& e) {
  return e.type + " " + e.data.dump() + " on " + e.stream.type + "/" + e.stream.id;
}

std::string describe(const expected_event& e) {
  std::string text = e.type + " " + e.data.dump();
  if (e.stream) text += " on " + e.stream->type + "/" + e.stream->id;
  return text;
}

}  // namespace

std::string describe_error(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "a non-standard exception";
  }
}

std::string describe_events(const std::vector<recorded_event>& events) {
  if (events.empty()) return "no events were recorded";
  std::string text = "recorded:";
  for (const recorded_event& e : events) text += "\n  " + describe(e);
  return text;
}

verdict compare_events(bool ran, std::exception_ptr error,
                       const std::vector<expected_event>& expected,
                       const std::vector<recorded_event>& actual) {
  if (!ran) return verdict::fail("then: when() was not called");
  if (error) return verdict::fail("when() threw: " + describe_error(error));
  bool same = expected.size() == actual.size();
  for (std::size_t i = 0; same && i < expected.size(); ++i) {
    const expected_event& want = expected[i];
    const recorded_event& got = actual[i];
    same = want.type == got.type && want.data == got.data &&
           (!want.stream || *want.stream == got.stream);
  }
  if (same) return verdict::pass();
  std::string text = "expected:";
  if (expected.empty()) text += " no events";
  for (const expected_event& e : expected) text += "\n  " + describe(e);
  return verdict::fail(text + "\n" + describe_events(actual));
}

}  // namespace detail

scenario::scenario(setup_function setup, repository_options options)
    : engine_(make_memory_engine()) {
  if (!setup) throw invalid_argument_error("eventsourced: scenario: null setup function");
  repository_ = std::make_unique<eventsourced::repository>(*engine_, std::move(options));
  setup(dispatcher_, *repository_);
}

scenario::~scenario() = default;

scenario& scenario::given(const stream_ref& stream, const std::vector<expected_event>& events) {
  if (ran_) throw invalid_argument_error("eventsourced: scenario: given() after when()");
  if (events.empty()) return *this;
  stream_append append{.stream = stream};
  for (const expected_event& e : events) {
    if (e.type.empty()) {
      throw invalid_argument_error("eventsourced: scenario: given event without a type");
    }
    append.events.push_back(
        new_event{.id = make_event_id(), .type = e.type, .data = e.data, .metadata = e.metadata});
  }
  commit_request request;
  request.appends.push_back(std::move(append));
  engine_->commit(request);
  return *this;
}

scenario& scenario::when(const command& c) {
  if (ran_) throw invalid_argument_error("eventsourced: scenario: when() called twice");
  ran_ = true;
  std::int64_t after = 0;
  for (auto page = engine_->read_all(0, 1024); !page.empty();
       page = engine_->read_all(after, 1024)) {
    after = page.back().position;
  }
  try {
    result_ = dispatcher_.dispatch(c);
  } catch (...) {
    error_ = std::current_exception();
  }
  for (auto page = engine_->read_all(after, 1024); !page.empty();
       page = engine_->read_all(after, 1024)) {
    after = page.back().position;
    for (recorded_event& e : page) recorded_.push_back(std::move(e));
  }
  return *this;
}

}  // namespace eventsourced::testing
