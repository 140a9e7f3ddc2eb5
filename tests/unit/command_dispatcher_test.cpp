// The command dispatcher: registration errors, unknown types, object and lambda handlers, the
// middleware chain, and command handlers over the repository that commit nothing when they throw.
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <eventsourced/eventsourced.hpp>

namespace {

using eventsourced::aggregate_root;
using eventsourced::command;
using eventsourced::dispatcher;
using eventsourced::event;
using eventsourced::invalid_argument_error;
using eventsourced::json;
using eventsourced::make_command;
using eventsourced::repository;

struct earn_gold {
  std::int64_t amount = 0;
};
// Only read (payload_as): NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE's to_json would be an unused
// function, which Clang reports.
void from_json(const json& j, earn_gold& value) {
  j.at("amount").get_to(value.amount);
}

class wallet final : public aggregate_root {
 public:
  explicit wallet(std::string id) : aggregate_root("wallet", std::move(id)) {
    on("GoldEarned", [this](const event& e) { gold_ += e.data.at("amount").get<std::int64_t>(); });
  }
  void earn(std::int64_t amount) {
    if (amount <= 0) throw std::invalid_argument("amount must be positive");
    raise("GoldEarned", {{"amount", amount}});
  }
  std::int64_t gold() const { return gold_; }

 private:
  std::int64_t gold_ = 0;
};

class counting_handler final : public eventsourced::command_handler {
 public:
  eventsourced::command_result handle(const command& c) override {
    seen.push_back(c.aggregate_id);
    return {.command_id = c.id, .version = static_cast<std::int64_t>(seen.size())};
  }
  std::vector<std::string> seen;
};

TEST(command_test, make_command_gives_fresh_ids_and_converts_payloads) {
  command a = make_command("Earn", "w1", {{"amount", 3}});
  command b = make_command("Earn", "w1", {{"amount", 3}});
  EXPECT_FALSE(a.id.empty());
  EXPECT_NE(a.id, b.id);
  EXPECT_EQ(a.payload_as<earn_gold>().amount, 3);
  command bad = make_command("Earn", "w1", {{"amount", "three"}});
  EXPECT_THROW(bad.payload_as<earn_gold>(), eventsourced::serialization_error);
}

TEST(command_test, causation_metadata_keeps_the_callers_correlation_id) {
  command c = make_command("Earn", "w1", nullptr, {{"correlation_id", "req-7"}});
  json m = eventsourced::causation_metadata(c);
  EXPECT_EQ(m.at("correlation_id"), "req-7");
  EXPECT_EQ(m.at("causation_id"), c.id);
  command plain = make_command("Earn", "w1");
  EXPECT_EQ(eventsourced::causation_metadata(plain).at("correlation_id"), plain.id);
  // Other members (a client id, ...) reach the events; the command's own cause is replaced.
  command from_client =
      make_command("Earn", "w1", nullptr, {{"client_id", "c7"}, {"causation_id", "event-9"}});
  json carried = eventsourced::causation_metadata(from_client);
  EXPECT_EQ(carried.at("client_id"), "c7");
  EXPECT_EQ(carried.at("causation_id"), from_client.id);
  EXPECT_EQ(carried.at("correlation_id"), from_client.id);
}

TEST(command_test, metadata_that_is_not_an_object_or_null_is_refused_not_dropped) {
  dispatcher d;
  int handled = 0;
  d.register_handler("Earn", [&](const command&) {
    ++handled;
    return eventsourced::command_result{};
  });
  for (const json& metadata : {json::array({"client", "c7"}), json("c7"), json(7)}) {
    SCOPED_TRACE(metadata.dump());
    command c = make_command("Earn", "w1", nullptr, metadata);
    EXPECT_THROW(eventsourced::causation_metadata(c), eventsourced::invalid_argument_error);
    EXPECT_THROW(d.dispatch(c), eventsourced::invalid_argument_error);
  }
  command deep = make_command("Earn", "w1");
  deep.payload = json::parse(std::string(100'000, '[') + std::string(100'000, ']'));
  EXPECT_THROW(d.dispatch(deep), eventsourced::json_depth_error);
  EXPECT_EQ(handled, 0);
  EXPECT_NO_THROW(d.dispatch(make_command("Earn", "w1", nullptr, {{"client_id", "c7"}})));
  EXPECT_EQ(handled, 1);
}

TEST(command_dispatcher_test, routes_to_object_and_lambda_handlers) {
  dispatcher d;
  auto object = std::make_shared<counting_handler>();
  d.register_handler("Earn", object);
  std::vector<std::string> lambda_seen;
  d.register_handler("Rename", [&](const command& c) { lambda_seen.push_back(c.aggregate_id); });
  EXPECT_TRUE(d.has_handler("Earn"));
  EXPECT_FALSE(d.has_handler("Spend"));
  command earn = make_command("Earn", "w1");
  auto result = d.dispatch(earn);
  EXPECT_EQ(result.command_id, earn.id);
  EXPECT_EQ(result.version, 1);  // what the object handler returned
  command rename = make_command("Rename", "w2");
  EXPECT_EQ(d.dispatch(rename).command_id, rename.id);  // void lambda: the command id only
  EXPECT_EQ(object->seen, std::vector<std::string>{"w1"});
  EXPECT_EQ(lambda_seen, std::vector<std::string>{"w2"});
}

TEST(command_dispatcher_test, a_second_handler_for_one_type_is_an_error) {
  dispatcher d;
  d.register_handler("Earn", [](const command&) {});
  EXPECT_THROW(d.register_handler("Earn", [](const command&) {}), invalid_argument_error);
  EXPECT_THROW(d.register_handler("Earn", std::make_shared<counting_handler>()),
               invalid_argument_error);
  EXPECT_THROW(d.register_handler("", [](const command&) {}), invalid_argument_error);
  EXPECT_THROW(d.register_handler("Null", eventsourced::command_handler_function{}),
               invalid_argument_error);
  EXPECT_THROW(d.register_handler("Null", std::shared_ptr<eventsourced::command_handler>{}),
               invalid_argument_error);
  EXPECT_THROW(d.use(dispatcher::middleware{}), invalid_argument_error);
}

TEST(command_dispatcher_test, an_unknown_type_fails_before_any_middleware) {
  dispatcher d;
  int middleware_calls = 0;
  d.use([&](const command& c, const dispatcher::next_function& next) {
    ++middleware_calls;
    return next(c);
  });
  try {
    d.dispatch(make_command("Nobody", "x"));
    FAIL() << "expected invalid_argument_error";
  } catch (const invalid_argument_error& e) {
    EXPECT_NE(std::string(e.what()).find("Nobody"), std::string::npos);
  }
  EXPECT_EQ(middleware_calls, 0);
}

TEST(command_dispatcher_test, middleware_runs_in_order_and_can_rewrite_or_stop) {
  dispatcher d;
  std::vector<std::string> trace;
  d.register_handler("Earn", [&](const command& c) {
    trace.push_back("handler " + c.metadata.value("user", std::string("?")));
  });
  d.use([&](const command& c, const dispatcher::next_function& next) {
    trace.push_back("outer before");
    auto result = next(c);
    trace.push_back("outer after");
    return result;
  });
  d.use([&](const command& c, const dispatcher::next_function& next) {
    if (c.payload.is_null()) throw invalid_argument_error("payload required");
    command enriched = c;
    enriched.metadata = {{"user", "ann"}};
    return next(enriched);
  });
  d.dispatch(make_command("Earn", "w1", json::object()));
  EXPECT_EQ(trace, (std::vector<std::string>{"outer before", "handler ann", "outer after"}));
  trace.clear();
  EXPECT_THROW(d.dispatch(make_command("Earn", "w1")), invalid_argument_error);
  EXPECT_EQ(trace, std::vector<std::string>{"outer before"});
}

// A command handler the way an application writes one: load, act, save with causation metadata.
class command_handler_test : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = eventsourced::open("memory:");
    repo_ = std::make_unique<repository>(*store_);
    d_.register_handler("Earn", [this](const command& c) {
      auto w = repo_->load<wallet>(c.aggregate_id);
      auto payload = c.payload_as<earn_gold>();
      w->earn(payload.amount);
      if (c.metadata.is_object() && c.metadata.value("fail_after_raise", false))
        throw std::runtime_error("boom");
      repo_->save(*w, eventsourced::causation_metadata(c));
    });
  }
  void TearDown() override { store_->close(); }
  std::size_t logged() { return store_->engine().read_all(0, 1000).size(); }

  std::shared_ptr<eventsourced::store> store_;
  std::unique_ptr<repository> repo_;
  dispatcher d_;
};

TEST_F(command_handler_test, dispatched_commands_record_events_caused_by_them) {
  command c = make_command("Earn", "w1", {{"amount", 5}});
  d_.dispatch(c);
  d_.dispatch(make_command("Earn", "w1", {{"amount", 2}}));
  EXPECT_EQ(repo_->load<wallet>("w1")->gold(), 7);
  auto events = store_->engine().read_stream({"wallet", "w1"}, 1, 10);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(eventsourced::causation_id(events[0]), c.id);
}

TEST_F(command_handler_test, a_handler_that_throws_commits_nothing) {
  EXPECT_THROW(
      d_.dispatch(make_command("Earn", "w1", {{"amount", 5}}, {{"fail_after_raise", true}})),
      std::runtime_error);
  EXPECT_THROW(d_.dispatch(make_command("Earn", "w1", {{"amount", -1}})), std::invalid_argument);
  EXPECT_THROW(d_.dispatch(make_command("Earn", "w1", {{"amount", "x"}})),
               eventsourced::serialization_error);
  EXPECT_EQ(logged(), 0u);
  EXPECT_EQ(repo_->load<wallet>("w1")->version(), 0);
}

}  // namespace
