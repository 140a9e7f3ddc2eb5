// A snapshottable aggregate for the CQRS tests: a game player with gold, experience, a level
// (every 100 experience) and a name, and the commands that act on it.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include <eventsourced/eventsourced.hpp>

namespace eventsourced_test {

struct amount_payload {
  std::int64_t amount = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(amount_payload, amount)

struct not_enough_gold : std::runtime_error {
  not_enough_gold() : std::runtime_error("not enough gold") {}
};

class hero final : public eventsourced::aggregate_root {
 public:
  explicit hero(std::string id) : aggregate_root("hero", std::move(id)) {
    on("GoldEarned",
       [this](const eventsourced::event& e) { gold_ += e.data.at("amount").get<std::int64_t>(); });
    on("GoldSpent",
       [this](const eventsourced::event& e) { gold_ -= e.data.at("amount").get<std::int64_t>(); });
    on("ExperienceGained", [this](const eventsourced::event& e) {
      experience_ += e.data.at("amount").get<std::int64_t>();
    });
    on("LeveledUp",
       [this](const eventsourced::event& e) { level_ = e.data.at("level").get<std::int64_t>(); });
    on("Renamed",
       [this](const eventsourced::event& e) { name_ = e.data.at("name").get<std::string>(); });
  }

  void earn(std::int64_t amount) { raise("GoldEarned", {{"amount", amount}}); }
  void spend(std::int64_t amount) {
    if (amount > gold_) throw not_enough_gold();
    raise("GoldSpent", {{"amount", amount}});
  }
  void gain(std::int64_t amount) {
    raise("ExperienceGained", {{"amount", amount}});
    while (experience_ / 100 + 1 > level_) raise("LeveledUp", {{"level", level_ + 1}});
  }
  void rename(std::string name) { raise("Renamed", {{"name", std::move(name)}}); }

  std::optional<eventsourced::json> snapshot() const override {
    ++snapshots_taken;
    return eventsourced::json{
        {"gold", gold_}, {"experience", experience_}, {"level", level_}, {"name", name_}};
  }
  void restore(const eventsourced::json& s) override {
    ++restores;
    gold_ = s.at("gold").get<std::int64_t>();
    experience_ = s.at("experience").get<std::int64_t>();
    level_ = s.at("level").get<std::int64_t>();
    name_ = s.at("name").get<std::string>();
  }
  std::int64_t snapshot_schema_version() const override { return schema; }

  // The whole state, for comparisons (not through snapshot(): that counts).
  eventsourced::json state() const {
    return {{"gold", gold_},
            {"experience", experience_},
            {"level", level_},
            {"name", name_},
            {"version", version()}};
  }
  std::int64_t gold() const { return gold_; }
  std::int64_t level() const { return level_; }

  mutable int snapshots_taken = 0;
  int restores = 0;
  std::int64_t schema = 1;

 private:
  std::int64_t gold_ = 0;
  std::int64_t experience_ = 0;
  std::int64_t level_ = 1;
  std::string name_;
};

// Replays the stream of hero `id` up to `version` by hand (no repository, no snapshot): the
// reference the repository's loads are compared with.
inline eventsourced::json replayed_state(eventsourced::engine& engine, const std::string& id,
                                         std::int64_t version) {
  hero h(id);
  if (version > 0) {
    for (const auto& e : engine.read_stream({"hero", id}, 1, static_cast<std::size_t>(version))) {
      h.apply(e);
    }
  }
  return h.state();
}

// Registers EarnGold, SpendGold, GainExperience and Rename for hero on d.
inline void register_hero_commands(eventsourced::dispatcher& d,
                                   const eventsourced::repository& repo,
                                   eventsourced::aggregate_handler_options options = {}) {
  using eventsourced::command;
  d.register_handler(
      "EarnGold",
      eventsourced::aggregate_handler<hero>(
          repo, [](hero& h, const command& c) { h.earn(c.payload_as<amount_payload>().amount); },
          options));
  d.register_handler(
      "SpendGold",
      eventsourced::aggregate_handler<hero>(
          repo, [](hero& h, const command& c) { h.spend(c.payload_as<amount_payload>().amount); },
          options));
  d.register_handler(
      "GainExperience",
      eventsourced::aggregate_handler<hero>(
          repo, [](hero& h, const command& c) { h.gain(c.payload_as<amount_payload>().amount); },
          options));
  d.register_handler("Rename", eventsourced::aggregate_handler<hero>(
                                   repo,
                                   [](hero& h, const command& c) {
                                     h.rename(c.payload.at("name").get<std::string>());
                                   },
                                   options));
}

// The n-th command of the multi-process workload: id "cmd-<n>" on hero h<n % 5>; every third
// one gains 60 experience (raising a level-up now and then), the others earn 1 gold.
inline eventsourced::command workload_command(std::int64_t n) {
  eventsourced::command c =
      eventsourced::make_command(n % 3 == 0 ? "GainExperience" : "EarnGold",
                                 "h" + std::to_string(n % 5), {{"amount", n % 3 == 0 ? 60 : 1}});
  c.id = "cmd-" + std::to_string(n);
  return c;
}

}  // namespace eventsourced_test
