#include <eventsourced/testing/scenario.hpp>

#include <eventsourced/engine/memory.hpp>

namespace eventsourced::testing {
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
    if (e.type.empty())
      throw invalid_argument_error("eventsourced: scenario: given event without a type");
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
  std::int64_t before = 0;
  for (auto page = engine_->read_all(0, 1024); !page.empty();
       page = engine_->read_all(before, 1024)) {
    before = page.back().position;
  }
  try {
    result_ = dispatcher_.dispatch(c);
  } catch (...) {
    error_ = std::current_exception();
  }
  for (auto page = engine_->read_all(before, 1024); !page.empty();
       page = engine_->read_all(before, 1024)) {
    before = page.back().position;
    for (recorded_event& e : page) recorded_.push_back(std::move(e));
  }
  return *this;
}

std::string scenario::describe_recorded() const {
  if (recorded_.empty()) return "no events were recorded";
  std::string text = "recorded:";
  for (const recorded_event& e : recorded_) text += "\n  " + describe(e);
  return text;
}

std::string scenario::describe_error(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "a non-standard exception";
  }
}

verdict scenario::then(const std::vector<expected_event>& expected) const {
  if (!ran_) return verdict::fail("then: when() was not called");
  if (error_) return verdict::fail("the command threw: " + describe_error(error_));
  std::string expected_text = "expected:";
  if (expected.empty()) expected_text += " no events";
  for (const expected_event& e : expected) expected_text += "\n  " + describe(e);
  bool same = expected.size() == recorded_.size();
  for (std::size_t i = 0; same && i < expected.size(); ++i) {
    const expected_event& want = expected[i];
    const recorded_event& got = recorded_[i];
    same = want.type == got.type && want.data == got.data &&
           (!want.stream || *want.stream == got.stream);
  }
  if (same) return verdict::pass();
  return verdict::fail(expected_text + "\n" + describe_recorded());
}

}  // namespace eventsourced::testing
