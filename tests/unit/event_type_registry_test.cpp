// event_type_registry (type_registry.hpp): registered event types decode to their C++ types,
// unknown types decode to generic events, bad data and misuse are clear errors.
#include <eventsourced/event/type_registry.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace eventsourced {
namespace game {

struct player_created {
  std::string name;
  int gold = 0;
  friend bool operator==(const player_created&, const player_created&) = default;
};
void to_json(json& j, const player_created& p) {
  j = {{"name", p.name}, {"gold", p.gold}};
}
void from_json(const json& j, player_created& p) {
  j.at("name").get_to(p.name);
  j.at("gold").get_to(p.gold);
}

struct player_renamed {
  std::string to;
};
void to_json(json& j, const player_renamed& p) {
  j = {{"to", p.to}};
}
void from_json(const json& j, player_renamed& p) {
  j.at("to").get_to(p.to);
}

struct never_registered {
  int x = 0;
};
void to_json(json& j, const never_registered& n) {
  j = {{"x", n.x}};
}
void from_json(const json& j, never_registered& n) {
  j.at("x").get_to(n.x);
}

}  // namespace game

namespace {

event recorded(std::string type, json data, std::string id = "e-1") {
  event e;
  e.id = std::move(id);
  e.type = std::move(type);
  e.stream = {"players", "ann"};
  e.stream_version = 1;
  e.position = 1;
  e.data = std::move(data);
  return e;
}

// The registry holds a shared_mutex: it is neither copyable nor movable, so tests fill their own.
void add_game_types(event_type_registry& types) {
  types.add<game::player_created>("PlayerCreated");
  types.add<game::player_renamed>("PlayerRenamed");
}

TEST(event_type_registry, a_registered_type_decodes_to_its_cpp_type) {
  event_type_registry types;
  add_game_types(types);
  const decoded_event d = types.decode(recorded("PlayerCreated", {{"name", "ann"}, {"gold", 10}}));
  EXPECT_TRUE(d.known());
  ASSERT_NE(d.get_if<game::player_created>(), nullptr);
  EXPECT_EQ(*d.get_if<game::player_created>(), (game::player_created{"ann", 10}));
  EXPECT_EQ(d.get_if<game::player_renamed>(), nullptr);  // another type: no value
  EXPECT_EQ(d.source().id, "e-1");
}

TEST(event_type_registry, an_unknown_type_decodes_to_a_generic_event_with_its_data) {
  event_type_registry types;
  add_game_types(types);
  const decoded_event d = types.decode(recorded("GuildFounded", {{"name", "Knights"}}));
  EXPECT_FALSE(d.known());
  EXPECT_EQ(d.get_if<game::player_created>(), nullptr);
  EXPECT_EQ(d.type(), "GuildFounded");
  EXPECT_EQ(d.data(), json({{"name", "Knights"}}));
}

TEST(event_type_registry, data_that_does_not_convert_is_a_serialization_error_naming_type_and_id) {
  event_type_registry types;
  add_game_types(types);
  try {
    types.decode(recorded("PlayerCreated", {{"name", "ann"}, {"gold", "lots"}}, "e-42"));
    FAIL() << "decode accepted gold: \"lots\"";
  } catch (const serialization_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("PlayerCreated"), std::string::npos) << what;
    EXPECT_NE(what.find("e-42"), std::string::npos) << what;
  }
  EXPECT_THROW(types.decode(recorded("PlayerCreated", nullptr)), serialization_error);
}

TEST(event_type_registry, encode_uses_the_registered_name_and_a_fresh_id) {
  event_type_registry types;
  add_game_types(types);
  const new_event a = types.encode(game::player_created{"ann", 10}, {{"correlation_id", "c1"}});
  const new_event b = types.encode(game::player_created{"bob", 0});
  EXPECT_EQ(a.type, "PlayerCreated");
  EXPECT_EQ(a.data, json({{"name", "ann"}, {"gold", 10}}));
  EXPECT_EQ(a.metadata, json({{"correlation_id", "c1"}}));
  EXPECT_NE(a.id, b.id);
  EXPECT_FALSE(a.id.empty());
}

TEST(event_type_registry, encode_then_decode_gives_the_value_back) {
  event_type_registry types;
  add_game_types(types);
  const new_event n = types.encode(game::player_created{"ann", 10});
  const decoded_event d = types.decode(recorded(n.type, n.data));
  ASSERT_NE(d.get_if<game::player_created>(), nullptr);
  EXPECT_EQ(*d.get_if<game::player_created>(), (game::player_created{"ann", 10}));
}

TEST(event_type_registry, encoding_an_unregistered_type_is_an_invalid_argument) {
  event_type_registry types;
  add_game_types(types);
  EXPECT_THROW(types.encode(game::never_registered{1}), invalid_argument_error);
}

TEST(event_type_registry, a_name_or_a_type_registered_twice_differently_is_refused) {
  event_type_registry types;
  add_game_types(types);
  EXPECT_NO_THROW(types.add<game::player_created>("PlayerCreated"));  // the same again: fine
  EXPECT_THROW(types.add<game::player_renamed>("PlayerCreated"), invalid_argument_error);
  EXPECT_THROW(types.add<game::player_created>("PlayerJoined"), invalid_argument_error);
  EXPECT_THROW(types.add<game::never_registered>(""), invalid_argument_error);
  // The refused calls changed nothing.
  EXPECT_FALSE(types.contains("PlayerJoined"));
  EXPECT_EQ(types.type_name_of<game::player_created>(), "PlayerCreated");
  EXPECT_EQ(types.type_name_of<game::never_registered>(), std::nullopt);
}

TEST(event_type_registry, types_may_be_added_while_other_threads_decode) {
  event_type_registry types;
  types.add<game::player_created>("PlayerCreated");
  std::atomic<bool> stop{false};
  std::atomic<int> renamed_known{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t) {
    readers.emplace_back([&] {
      while (!stop) {
        const decoded_event a =
            types.decode(recorded("PlayerCreated", {{"name", "a"}, {"gold", 1}}));
        ASSERT_TRUE(a.known());
        if (types.decode(recorded("PlayerRenamed", {{"to", "b"}})).known()) ++renamed_known;
      }
    });
  }
  types.add<game::player_renamed>("PlayerRenamed");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (renamed_known.load() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  stop = true;
  for (auto& r : readers) r.join();
  EXPECT_TRUE(types.contains("PlayerRenamed"));
}

}  // namespace
}  // namespace eventsourced
