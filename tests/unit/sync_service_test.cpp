// sync_service: catch-up then live push, several clients at once, client writes with mutation
// ids, acknowledgements, slow clients, and bad input over the protocol (docs/sync_protocol.md).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <eventsourced/eventsourced.hpp>

#include "sync_test_client.hpp"
#include "sync_test_support.hpp"

namespace eventsourced_test {
namespace {

using eventsourced::json;
using namespace std::chrono_literals;

json subscribe_message(int request_id, const std::string& collection, const std::string& id,
                       std::int64_t version) {
  return {{"type", "subscribe"},
          {"request_id", request_id},
          {"documents", {{{"collection", collection}, {"id", id}, {"version", version}}}}};
}

// Returns once every message queued for the connection before the call has been sent: its
// reply to a request comes after them (replies are ordered with everything else).
void barrier(eventsourced::sync_service& service, eventsourced::sync_connection_id connection,
             test_client& client, const std::string& id) {
  service.receive(connection, json{{"type", "unsubscribe"},
                                   {"request_id", id},
                                   {"documents", {{{"collection", "games"}, {"id", "unrelated"}}}}}
                                  .dump());
  ASSERT_EQ(client.reply(id)["type"], "ok");
}

class sync_service_test : public sync_service_fixture {
 protected:
  void set_gold(const std::string& id, int gold, const std::string& client = "server") {
    storage().find_one_and_update(
        "games", id,
        [&](const json& g) {
          json next = g;
          next["gold"] = gold;
          return next;
        },
        as_client(client));
  }

  json server_document(const std::string& id) {
    auto doc = storage().find_one("games", id);
    return doc ? *doc : json(nullptr);
  }
};

TEST_P(sync_service_test, subscribe_sends_what_the_client_misses_then_live_events) {
  auto& service = start();
  storage().find_one_and_upsert("games", {{"id", "g1"}, {"gold", 0}});
  for (int gold = 1; gold <= 4; ++gold) set_gold("g1", gold);  // versions 2..5

  test_client client;
  const auto connection = client.connect(service, "ann");
  // The client has version 2 (applied by hand, as if from an earlier session).
  client.set_copy("games", "g1", {2, json{{"id", "g1"}, {"gold", 1}, {"version", 2}}});
  service.receive(connection, subscribe_message(1, "games", "g1", 2).dump());
  auto reply = client.reply(1);
  ASSERT_EQ(reply["type"], "ok") << reply.dump();
  EXPECT_EQ(reply["subscribed"][0]["version"], 5);
  EXPECT_EQ(client.count("event"), 3u);  // 3, 4, 5: before the reply, in order
  EXPECT_EQ(client.count("snapshot"), 0u);

  set_gold("g1", 10, "bob");
  ASSERT_TRUE(client.wait_for_version("games", "g1", 6));
  EXPECT_EQ(client.copy_of("games", "g1").document, server_document("g1"));
  EXPECT_EQ(client.violations(), 0);
  const auto last = client.messages().back();
  EXPECT_EQ(last["type"], "event");
  EXPECT_EQ(last["client_id"], "bob");
  EXPECT_EQ(last["vector_clock"], (json{{"bob", 1}, {"server", 5}}));
  EXPECT_EQ(last["op"], "update");
}

TEST_P(sync_service_test, a_client_far_behind_gets_a_snapshot_first) {
  auto& service = start({.snapshot_interval = 5, .max_missing_events = 3});
  storage().find_one_and_upsert("games", {{"id", "g1"}, {"gold", 0}});
  for (int gold = 1; gold < 22; ++gold) set_gold("g1", gold);  // version 22
  test_client client;
  const auto connection = client.connect(service, "ann");
  service.receive(connection, subscribe_message(1, "games", "g1", 0).dump());
  ASSERT_EQ(client.reply(1)["type"], "ok");
  EXPECT_EQ(client.count("snapshot"), 1u);
  EXPECT_EQ(client.count("event"), 2u);  // 21, 22 after the snapshot at 20
  EXPECT_EQ(client.copy_of("games", "g1").version, 22);
  EXPECT_EQ(client.copy_of("games", "g1").document, server_document("g1"));
}

TEST_P(sync_service_test, several_clients_at_different_positions_catch_up_while_writers_write) {
  auto& service = start({.snapshot_interval = 7, .max_missing_events = 5});
  const std::vector<std::string> ids = {"g1", "g2", "g3"};
  for (const auto& id : ids) storage().find_one_and_upsert("games", {{"id", id}, {"gold", 0}});
  for (int n = 1; n <= 30; ++n) set_gold(ids[n % 3], n);

  std::vector<std::thread> writers;
  for (int w = 0; w < 2; ++w) {
    writers.emplace_back([&, w] {
      for (int n = 0; n < 60; ++n) {
        storage().find_one_and_update(
            "games", ids[(n + w) % 3],
            [&](const json& g) {
              json next = g;
              next["gold"] = g["gold"].get<int>() + 1;
              next["by_" + std::to_string(w)] = n;
              return next;
            },
            as_client("writer" + std::to_string(w)));
      }
    });
  }

  // Eight clients, each with a copy of every document at a different (real) earlier version.
  constexpr int kClients = 8;
  std::vector<std::unique_ptr<test_client>> clients;
  std::vector<std::thread> joiners;
  std::mt19937 random(7);
  for (int i = 0; i < kClients; ++i) clients.push_back(std::make_unique<test_client>());
  for (int i = 0; i < kClients; ++i) {
    json documents = json::array();
    for (const auto& id : ids) {
      const std::int64_t version = std::uniform_int_distribution<int>(0, 10)(random);
      if (version > 0) {
        // The copy a client that stopped at `version` has: replayed from the events.
        auto batch = storage().get_missing_events("games", id, {.version = 0});
        json body = nullptr;
        if (batch.snapshot) body = batch.snapshot->document;
        for (const auto& e : batch.events) {
          if (e.stream_version > version) break;
          body = body.patch(e.data["json_patch"]);
        }
        clients[i]->set_copy("games", id, {version, body});
      }
      documents.push_back({{"collection", "games"}, {"id", id}, {"version", version}});
    }
    joiners.emplace_back([&, i, documents] {
      const auto connection = clients[i]->connect(service, "client" + std::to_string(i));
      service.receive(
          connection,
          json{{"type", "subscribe"}, {"request_id", i}, {"documents", documents}}.dump());
    });
  }
  for (auto& t : joiners) t.join();
  for (auto& t : writers) t.join();
  for (int i = 0; i < kClients; ++i) {
    auto reply = clients[i]->reply(i);
    ASSERT_EQ(reply["type"], "ok") << reply.dump();
  }
  for (const auto& id : ids) {
    const auto server = server_document(id);
    for (int i = 0; i < kClients; ++i) {
      ASSERT_TRUE(clients[i]->wait_for_version("games", id, server["version"].get<std::int64_t>()));
      EXPECT_EQ(clients[i]->copy_of("games", id).document, server) << "client " << i << " " << id;
    }
  }
  for (int i = 0; i < kClients; ++i) EXPECT_EQ(clients[i]->violations(), 0) << "client " << i;
}

TEST_P(sync_service_test, the_same_mutation_id_twice_changes_the_document_once) {
  auto& service = start();
  storage().find_one_and_upsert("games", {{"id", "g1"}, {"gold", 100}});
  test_client client;
  const auto connection = client.connect(service, "ann");
  const json write = {
      {"type", "write"},       {"mutation_id", "m-1"},
      {"collection", "games"}, {"id", "g1"},
      {"op", "patch"},         {"patch", {{{"op", "replace"}, {"path", "/gold"}, {"value", 90}}}}};
  json first = write;
  first["request_id"] = 1;
  service.receive(connection, first.dump());
  auto reply = client.reply(1);
  ASSERT_EQ(reply["type"], "ok") << reply.dump();
  EXPECT_EQ(reply["version"], 2);
  EXPECT_EQ(reply["duplicate"], false);
  EXPECT_EQ(reply["changed"], true);

  set_gold("g1", 500);  // the server moves on; a stale resend must not undo it
  json again = write;
  again["request_id"] = 2;
  service.receive(connection, again.dump());
  reply = client.reply(2);
  ASSERT_EQ(reply["type"], "ok") << reply.dump();
  EXPECT_EQ(reply["duplicate"], true);
  EXPECT_EQ(reply["version"], 2);
  EXPECT_EQ(server_document("g1")["gold"], 500);
  EXPECT_EQ(server_document("g1")["version"], 3);

  // The write's sync event names its mutation, so the writer recognises its own echo.
  auto events = storage().get_missing_events("games", "g1", {.version = 1}).events;
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].data["mutation_id"], "m-1");
  EXPECT_EQ(events[0].data["client_id"], "ann");
  EXPECT_FALSE(events[1].data.contains("mutation_id"));

  // Mutation ids are per client: bob's m-1 is another write.
  test_client bob;
  const auto bob_connection = bob.connect(service, "bob");
  json bobs = write;
  bobs["request_id"] = 3;
  service.receive(bob_connection, bobs.dump());
  EXPECT_EQ(bob.reply(3)["duplicate"], false);
  EXPECT_EQ(server_document("g1")["gold"], 90);
}

TEST_P(sync_service_test, a_write_that_changes_nothing_is_recorded_too) {
  auto& service = start();
  storage().find_one_and_upsert("games", {{"id", "g1"}, {"gold", 5}});
  test_client client;
  const auto connection = client.connect(service, "ann");
  json write = {{"type", "write"},          {"request_id", 1}, {"mutation_id", "m-7"},
                {"collection", "games"},    {"id", "g1"},      {"op", "put"},
                {"document", {{"gold", 5}}}};
  service.receive(connection, write.dump());
  auto reply = client.reply(1);
  ASSERT_EQ(reply["type"], "ok") << reply.dump();
  EXPECT_EQ(reply["changed"], false);
  EXPECT_EQ(reply["version"], 1);
  set_gold("g1", 7);
  write["request_id"] = 2;
  service.receive(connection, write.dump());  // a late resend: must not set gold back to 5
  reply = client.reply(2);
  EXPECT_EQ(reply["duplicate"], true);
  EXPECT_EQ(server_document("g1")["gold"], 7);
}

TEST_P(sync_service_test, racing_resends_of_one_mutation_apply_once) {
  auto& service = start();
  storage().find_one_and_upsert("games", {{"id", "g1"}, {"gold", 0}});
  constexpr int kMutations = 20;
  constexpr int kConnections = 4;  // one client, four connections resending everything at once
  std::vector<std::unique_ptr<test_client>> clients;
  std::vector<eventsourced::sync_connection_id> connections;
  for (int c = 0; c < kConnections; ++c) {
    clients.push_back(std::make_unique<test_client>());
    connections.push_back(clients.back()->connect(service, "ann"));
  }
  std::vector<std::thread> threads;
  for (int c = 0; c < kConnections; ++c) {
    threads.emplace_back([&, c] {
      for (int m = 0; m < kMutations; ++m) {
        service.receive(
            connections[c],
            json{{"type", "write"},
                 {"request_id", m},
                 {"mutation_id", "add-" + std::to_string(m)},
                 {"collection", "games"},
                 {"id", "g1"},
                 {"op", "patch"},
                 {"patch", {{{"op", "add"}, {"path", "/m" + std::to_string(m)}, {"value", m}}}}}
                .dump());
      }
    });
  }
  for (auto& t : threads) t.join();
  int applied = 0;
  for (int c = 0; c < kConnections; ++c) {
    for (int m = 0; m < kMutations; ++m) {
      auto reply = clients[c]->reply(m);
      ASSERT_EQ(reply["type"], "ok") << reply.dump();
      applied += reply["duplicate"] == false ? 1 : 0;
    }
  }
  EXPECT_EQ(applied, kMutations);
  EXPECT_EQ(server_document("g1")["version"], 1 + kMutations);
}

TEST_P(sync_service_test, a_write_based_on_an_old_version_is_a_conflict_and_changes_nothing) {
  auto& service = start();
  storage().find_one_and_upsert("games", {{"id", "g1"}, {"gold", 5}});
  set_gold("g1", 6);
  test_client client;
  const auto connection = client.connect(service, "ann");
  service.receive(connection, json{{"type", "write"},
                                   {"request_id", 1},
                                   {"mutation_id", "m"},
                                   {"collection", "games"},
                                   {"id", "g1"},
                                   {"op", "delete"},
                                   {"base_version", 1}}
                                  .dump());
  auto reply = client.reply(1);
  EXPECT_EQ(reply["type"], "error");
  EXPECT_EQ(reply["code"], "conflict");
  EXPECT_EQ(reply["version"], 2);
  EXPECT_EQ(server_document("g1")["gold"], 6);
  // Not recorded: the same mutation id based on the right version applies.
  service.receive(connection, json{{"type", "write"},
                                   {"request_id", 2},
                                   {"mutation_id", "m"},
                                   {"collection", "games"},
                                   {"id", "g1"},
                                   {"op", "delete"},
                                   {"base_version", 2}}
                                  .dump());
  EXPECT_EQ(client.reply(2)["changed"], true);
  EXPECT_TRUE(server_document("g1").is_null());
}

TEST_P(sync_service_test, acknowledgements_record_what_the_client_has_seen) {
  auto& service = start();
  storage().find_one_and_upsert("games", {{"id", "g1"}, {"gold", 5}});
  set_gold("g1", 6, "bob");
  test_client client;
  const auto connection = client.connect(service, "ann");
  service.receive(connection, json{{"type", "ack"},
                                   {"request_id", 1},
                                   {"collection", "games"},
                                   {"id", "g1"},
                                   {"vector_clock", {{"server", 1}, {"bob", 1}}}}
                                  .dump());
  auto reply = client.reply(1);
  ASSERT_EQ(reply["type"], "ok") << reply.dump();
  EXPECT_EQ(reply["vector_clock"], (json{{"bob", 1}, {"server", 1}}));
  auto stored = storage().acknowledged_vector_clock("games", "g1", "ann");
  ASSERT_TRUE(stored);
  EXPECT_EQ((*stored)["bob"], 1);

  // From the future: refused, nothing recorded.
  service.receive(connection, json{{"type", "ack"},
                                   {"request_id", 2},
                                   {"collection", "games"},
                                   {"id", "g1"},
                                   {"vector_clock", {{"bob", 9}}}}
                                  .dump());
  reply = client.reply(2);
  EXPECT_EQ(reply["type"], "error");
  EXPECT_EQ(reply["code"], "invalid_argument");
  EXPECT_EQ((*storage().acknowledged_vector_clock("games", "g1", "ann"))["bob"], 1);
}

TEST_P(sync_service_test, bad_messages_get_clear_errors_and_change_nothing) {
  auto& service = start({}, {.max_message_bytes = 4096});
  storage().find_one_and_upsert("games", {{"id", "g1"}, {"gold", 5}});
  test_client client;
  const auto connection = client.connect(service, "ann");
  struct bad {
    std::string text;
    std::string code;
  };
  const std::vector<bad> cases = {
      {"not json", "invalid_message"},
      {"[1,2]", "invalid_message"},
      {R"({"request_id": 7})", "invalid_message"},
      {R"({"type": "launch_missiles"})", "invalid_message"},
      {R"({"type": "subscribe", "documents": []})", "invalid_message"},
      {R"({"type": "subscribe", "documents": [{"collection": "games"}]})", "invalid_message"},
      {R"({"type": "subscribe", "documents": [{"collection": "games", "id": "g1", "version": -1}]})",
       "invalid_message"},
      {R"({"type": "subscribe", "documents": [{"collection": "games", "id": "g1"},
           {"collection": "games", "id": "g1"}]})",
       "invalid_message"},
      {R"({"type": "subscribe", "documents": [{"collection": "games", "id": "nope"}]})",
       "not_found"},
      {R"({"type": "subscribe", "documents": [{"collection": "games", "id": "g1", "version": 9}]})",
       "invalid_argument"},
      // One good and one unknown document: neither is subscribed.
      {R"({"type": "subscribe", "documents": [{"collection": "games", "id": "g1"},
           {"collection": "games", "id": "nope"}]})",
       "not_found"},
      {R"({"type": "subscribe", "documents": [{"collection": "_es_sync_states", "id": "x"}]})",
       "invalid_argument"},
      {R"({"type": "ack", "collection": "games", "id": "g1", "vector_clock": {"server": 5}})",
       "invalid_argument"},
      {R"({"type": "ack", "collection": "games", "id": "g1", "vector_clock": [1]})",
       "invalid_message"},
      {R"({"type": "write", "mutation_id": "m", "collection": "games", "id": "g1", "op": "put",
           "document": [1]})",
       "invalid_argument"},
      {R"({"type": "write", "mutation_id": "m", "collection": "games", "id": "g1", "op": "put",
           "document": {"id": "g2"}})",
       "invalid_argument"},
      {R"({"type": "write", "mutation_id": "m", "collection": "games", "id": "g1", "op": "patch",
           "patch": [{"op": "test", "path": "/gold", "value": 4}, {"op": "remove", "path": "/gold"}]})",
       "invalid_argument"},
      {R"({"type": "write", "mutation_id": "m", "collection": "games", "id": "nope", "op": "patch",
           "patch": []})",
       "not_found"},
      {R"({"type": "write", "mutation_id": "", "collection": "games", "id": "g1", "op": "delete"})",
       "invalid_argument"},
      {R"({"type": "write", "mutation_id": "m", "collection": "games", "id": "g1", "op": "drop"})",
       "invalid_message"},
      {std::string(R"({"type": "write", "pad": ")") + std::string(5000, 'x') + "\"}",
       "invalid_message"},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    json with_id = json::parse(cases[i].text, nullptr, false);
    const bool padded = cases[i].text.find("\"pad\"") != std::string::npos;
    std::string text = cases[i].text;
    if (with_id.is_object() && !padded) {
      with_id["request_id"] = 100 + static_cast<int>(i);
      text = with_id.dump();
    }
    const auto before = client.count("error");
    EXPECT_EQ(service.receive(connection, text), cases[i].code != "invalid_message")
        << "receive() says whether the message was well formed: " << cases[i].text;
    json reply;
    if (with_id.is_object() && !padded) {
      reply = client.reply(100 + static_cast<int>(i));
    } else {
      for (int spin = 0; spin < 2000 && client.count("error") == before; ++spin) {
        std::this_thread::sleep_for(1ms);
      }
      reply = client.messages().back();
    }
    EXPECT_EQ(reply["type"], "error") << cases[i].text;
    EXPECT_EQ(reply["code"], cases[i].code) << cases[i].text << " -> " << reply.dump();
    EXPECT_FALSE(reply.value("message", "").empty());
  }
  // Nothing changed: the document, and no subscription (a new write reaches nobody).
  EXPECT_EQ(server_document("g1")["version"], 1);
  EXPECT_EQ(server_document("g1")["gold"], 5);
  EXPECT_FALSE(storage().acknowledged_vector_clock("games", "g1", "ann"));
  set_gold("g1", 6);
  ASSERT_TRUE(service.wait_until_caught_up(kWait));
  barrier(service, connection, client, "barrier");
  EXPECT_EQ(client.count("event"), 0u);
  EXPECT_EQ(client.count("snapshot"), 0u);
}

TEST_P(sync_service_test, unknown_connections_and_client_ids_are_refused) {
  auto& service = start();
  EXPECT_THROW(service.receive(12345, R"({"type": "ack"})"), eventsourced::invalid_argument_error);
  test_client client;
  EXPECT_THROW(client.connect(service, ""), eventsourced::invalid_argument_error);
  EXPECT_THROW(service.connect("ann", nullptr), eventsourced::invalid_argument_error);
  const auto connection = client.connect(service, "ann");
  service.disconnect(connection);
  service.disconnect(connection);  // twice: ignored
  EXPECT_THROW(service.receive(connection, R"({"type": "ack"})"),
               eventsourced::invalid_argument_error);
  EXPECT_THROW(eventsourced::sync_service::start(nullptr), eventsourced::invalid_argument_error);
  EXPECT_THROW(eventsourced::sync_service::start(shared_, {.delivery_threads = 0}),
               eventsourced::invalid_argument_error);
}

TEST_P(sync_service_test, a_slow_client_is_told_to_resync_and_does_not_stall_the_others) {
  auto& service = start({}, {.max_queued_messages = 20, .delivery_threads = 2});
  storage().find_one_and_upsert("games", {{"id", "g1"}, {"gold", 0}});

  std::mutex gate_mu;
  std::condition_variable gate_cv;
  bool open = false;
  auto open_gate = [&] {
    {
      std::lock_guard lock(gate_mu);
      open = true;
    }
    gate_cv.notify_all();
  };
  std::atomic<bool> slow_blocked{false};
  test_client slow;
  slow.before_message = [&] {
    slow_blocked = true;
    std::unique_lock lock(gate_mu);
    gate_cv.wait(lock, [&] { return open; });
  };
  test_client fast;
  // Opens the gate however the test ends (a failed assertion returns early; the clients'
  // disconnect would wait for the blocked send for ever).
  struct on_exit {
    std::function<void()> fn;
    ~on_exit() { fn(); }
  } gate_guard{open_gate};
  const auto slow_connection = slow.connect(service, "slow");
  const auto fast_connection = fast.connect(service, "fast");
  service.receive(fast_connection, subscribe_message(1, "games", "g1", 0).dump());
  ASSERT_EQ(fast.reply(1)["type"], "ok");
  service.receive(slow_connection, subscribe_message(1, "games", "g1", 0).dump());
  for (int spin = 0; spin < 2000 && !slow_blocked; ++spin) std::this_thread::sleep_for(1ms);
  ASSERT_TRUE(slow_blocked) << "the slow client's first message never reached it";

  // The slow client holds one delivery thread; the fast one still gets every event.
  // (Paced by the fast client: a client that keeps up is never told to resync.)
  for (int gold = 1; gold <= 60; ++gold) {
    set_gold("g1", gold);
    ASSERT_TRUE(fast.wait_for_version("games", "g1", gold + 1)) << "stalled at " << gold;
  }
  ASSERT_TRUE(fast.wait_for_version("games", "g1", 61))
      << "fast has version " << fast.copy_of("games", "g1").version << ", " << fast.violations()
      << " violations, " << fast.messages().size() << " messages";
  EXPECT_EQ(fast.copy_of("games", "g1").document, server_document("g1"));

  open_gate();
  ASSERT_TRUE(slow.wait_for_resync());
  EXPECT_GE(service.stats().resyncs, 1);
  // It subscribes again from what it has and ends with the server's document.
  const auto have = slow.copy_of("games", "g1").version;
  service.receive(slow_connection, subscribe_message(2, "games", "g1", have).dump());
  ASSERT_EQ(slow.reply(2)["type"], "ok");
  set_gold("g1", 1000);
  ASSERT_TRUE(slow.wait_for_version("games", "g1", 62));
  EXPECT_EQ(slow.copy_of("games", "g1").document, server_document("g1"));
  EXPECT_EQ(fast.violations(), 0);
}

TEST_P(sync_service_test, disconnect_stops_delivery_and_may_be_called_from_a_send) {
  auto& service = start();
  storage().find_one_and_upsert("games", {{"id", "g1"}, {"gold", 0}});
  std::atomic<int> after_disconnect{0};
  std::atomic<bool> disconnected{false};
  test_client client;
  eventsourced::sync_connection_id connection = 0;
  client.before_message = [&] {
    if (disconnected) ++after_disconnect;
  };
  connection = client.connect(service, "ann");
  service.receive(connection, subscribe_message(1, "games", "g1", 0).dump());
  ASSERT_EQ(client.reply(1)["type"], "ok");
  service.disconnect(connection);
  disconnected = true;
  for (int gold = 1; gold <= 5; ++gold) set_gold("g1", gold);
  ASSERT_TRUE(service.wait_until_caught_up(kWait));
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(after_disconnect.load(), 0);

  // A transport that disconnects from inside its send (its socket failed) must not deadlock.
  std::atomic<eventsourced::sync_connection_id> closing_id{0};
  test_client closing;
  closing.before_message = [&] { service.disconnect(closing_id.load()); };
  closing_id = closing.connect(service, "bob");
  service.receive(closing_id, subscribe_message(1, "games", "g1", 0).dump());
  for (int spin = 0; spin < 2000 && service.stats().connections > 0; ++spin) {
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(service.stats().connections, 0);
}

TEST_P(sync_service_test, a_send_that_throws_drops_only_that_connection) {
  auto& service = start();
  storage().find_one_and_upsert("games", {{"id", "g1"}, {"gold", 0}});
  test_client good;
  const auto good_connection = good.connect(service, "ann");
  const auto bad_connection =
      service.connect("bob", [](const std::string&) { throw std::runtime_error("socket closed"); });
  service.receive(bad_connection, subscribe_message(1, "games", "g1", 0).dump());
  service.receive(good_connection, subscribe_message(1, "games", "g1", 0).dump());
  ASSERT_EQ(good.reply(1)["type"], "ok");
  set_gold("g1", 3);
  ASSERT_TRUE(good.wait_for_version("games", "g1", 2));
  for (int spin = 0; spin < 2000 && service.stats().send_failures == 0; ++spin) {
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(service.stats().send_failures, 1);
  EXPECT_EQ(service.stats().connections, 1);
  EXPECT_THROW(service.receive(bad_connection, "{}"), eventsourced::invalid_argument_error);
}

EVENTSOURCED_SYNC_TEST_ENGINES(sync_service_test);

}  // namespace
}  // namespace eventsourced_test
