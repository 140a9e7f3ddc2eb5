// The given/when/then helper users test their aggregates and command handlers with: it must pass
// what holds and fail — with a message saying why — what does not.
#include <gtest/gtest.h>

#include <string>

#include <eventsourced/eventsourced.hpp>
#include <eventsourced/testing/scenario.hpp>

#include "cqrs_test_support.hpp"

namespace {

using eventsourced::dispatcher;
using eventsourced::json;
using eventsourced::make_command;
using eventsourced::repository;
using eventsourced::testing::scenario;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(scenario_test, passes_when_the_command_records_the_expected_events) {
  scenario s([](dispatcher& d, const repository& repo) {
    eventsourced_test::register_hero_commands(d, repo);
  });
  auto verdict = s.given({"hero", "h1"}, {{"ExperienceGained", {{"amount", 90}}}})
                     .when(make_command("GainExperience", "h1", {{"amount", 20}}))
                     .then({{"ExperienceGained", {{"amount", 20}}},
                            {"LeveledUp", {{"level", 2}}, eventsourced::stream_ref{"hero", "h1"}}});
  EXPECT_TRUE(verdict) << verdict;
  EXPECT_EQ(s.result().version, 3);
  EXPECT_EQ(s.recorded().size(), 2u);
}

TEST(scenario_test, fails_with_a_message_when_the_events_differ) {
  scenario s([](dispatcher& d, const repository& repo) {
    eventsourced_test::register_hero_commands(d, repo);
  });
  s.when(make_command("EarnGold", "h1", {{"amount", 5}}));
  auto wrong_data = s.then({{"GoldEarned", {{"amount", 6}}}});
  EXPECT_FALSE(wrong_data);
  EXPECT_TRUE(contains(wrong_data.message(), "GoldEarned {\"amount\":6}")) << wrong_data;
  EXPECT_TRUE(contains(wrong_data.message(), "GoldEarned {\"amount\":5} on hero/h1")) << wrong_data;
  EXPECT_FALSE(s.then({}));
  EXPECT_FALSE(s.then({{"GoldEarned", {{"amount", 5}}}, {"GoldEarned", {{"amount", 5}}}}));
  EXPECT_FALSE(s.then({{"GoldEarned", {{"amount", 5}}, eventsourced::stream_ref{"hero", "h2"}}}));
  EXPECT_TRUE(s.then({{"GoldEarned", {{"amount", 5}}}}));
  EXPECT_FALSE(s.then_error<std::exception>()) << "the command succeeded";
}

TEST(scenario_test, checks_errors_and_that_they_recorded_nothing) {
  scenario s([](dispatcher& d, const repository& repo) {
    eventsourced_test::register_hero_commands(d, repo);
  });
  s.given({"hero", "h1"}, {{"GoldEarned", {{"amount", 3}}}})
      .when(make_command("SpendGold", "h1", {{"amount", 5}}));
  EXPECT_TRUE(s.then_error<eventsourced_test::not_enough_gold>("not enough"));
  EXPECT_FALSE(s.then_error<eventsourced_test::not_enough_gold>("too much"));
  EXPECT_FALSE(s.then_error<eventsourced::conflict_error>());
  auto then = s.then({});
  EXPECT_FALSE(then) << "then() fails when the command threw";
  EXPECT_TRUE(contains(then.message(), "not enough gold")) << then;
  EXPECT_TRUE(s.recorded().empty());
}

TEST(scenario_test, misuse_is_reported) {
  scenario s([](dispatcher& d, const repository& repo) {
    eventsourced_test::register_hero_commands(d, repo);
  });
  EXPECT_FALSE(s.then({}));  // when() not called
  EXPECT_FALSE(s.then_error<std::exception>());
  s.when(make_command("Unknown", "h1"));
  EXPECT_TRUE(s.then_error<eventsourced::invalid_argument_error>("no handler"));
  EXPECT_THROW(s.when(make_command("EarnGold", "h1", {{"amount", 1}})),
               eventsourced::invalid_argument_error);
  EXPECT_THROW(s.given({"hero", "h1"}, {{"GoldEarned", {{"amount", 1}}}}),
               eventsourced::invalid_argument_error);
  EXPECT_THROW(scenario(nullptr), eventsourced::invalid_argument_error);
}

TEST(scenario_test, given_events_keep_their_metadata_for_upcasting) {
  auto chain = std::make_shared<eventsourced::upcaster_chain>();
  chain->add("GoldEarned", 1, [](const eventsourced::event& e) {
    return json{{"amount", e.data.at("coins")}};
  });
  scenario s([](dispatcher& d,
                const repository& repo) { eventsourced_test::register_hero_commands(d, repo); },
             eventsourced::repository_options{.upcasters = chain});
  s.given({"hero", "h1"},
          {{.type = "GoldEarned", .data = {{"coins", 7}}, .metadata = {{"schema_version", 1}}}})
      .when(make_command("SpendGold", "h1", {{"amount", 7}}));
  auto verdict = s.then({{"GoldSpent", {{"amount", 7}}}});
  EXPECT_TRUE(verdict) << verdict;
}

}  // namespace

namespace {

using eventsourced::testing::aggregate_scenario;
using eventsourced_test::hero;

TEST(aggregate_scenario_test, checks_the_events_an_aggregate_raises) {
  aggregate_scenario<hero> a("h1");
  auto verdict = a.given({{"ExperienceGained", {{"amount", 150}}}, {"LeveledUp", {{"level", 2}}}})
                     .when([](hero& h) { h.gain(60); })
                     .then({{"ExperienceGained", {{"amount", 60}}}, {"LeveledUp", {{"level", 3}}}});
  EXPECT_TRUE(verdict) << verdict;
  EXPECT_EQ(a.aggregate().version(), 4);

  aggregate_scenario<hero> wrong("h1");
  wrong.when([](hero& h) { h.gain(60); });
  auto missed = wrong.then({{"ExperienceGained", {{"amount", 60}}}, {"LeveledUp", {{"level", 2}}}});
  EXPECT_FALSE(missed);
  EXPECT_TRUE(contains(missed.message(), "ExperienceGained {\"amount\":60} on hero/h1")) << missed;
}

TEST(aggregate_scenario_test, checks_domain_errors) {
  aggregate_scenario<hero> a("h1");
  a.given({{"GoldEarned", {{"amount", 3}}}}).when([](hero& h) { h.spend(5); });
  EXPECT_TRUE(a.then_error<eventsourced_test::not_enough_gold>());
  EXPECT_FALSE(a.then({}));
  EXPECT_THROW(a.when([](hero&) {}), eventsourced::invalid_argument_error);
  aggregate_scenario<hero> ok("h1");
  ok.given({{"GoldEarned", {{"amount", 9}}}}).when([](hero& h) { h.spend(5); });
  EXPECT_FALSE(ok.then_error<eventsourced_test::not_enough_gold>());
  EXPECT_TRUE(ok.then({{"GoldSpent", {{"amount", 5}}}}));
}

}  // namespace
