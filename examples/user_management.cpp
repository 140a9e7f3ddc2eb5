// The seed README's user-management flow: a users collection whose every write records its
// events in the same commit, a custom mapper that adds UserEmailChanged when the email changes,
// and handlers (an object, the seeds' HandleEvent, and lambdas) fed by the outbox relay.
//
//   ./build/examples/user_management [database-file]   (default: users.db, recreated each run)
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <string>
#include <vector>

#include <eventsourced/eventsourced.hpp>

namespace app {

struct User {
  std::string id;
  std::string name;
  std::string email;
  std::int64_t version = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(User, id, name, email, version)

// The seeds' UserEventMapper: the registered UserCreated/UserUpdated/UserDeleted event, plus
// UserEmailChanged when a write changes the email.
class user_event_mapper : public eventsourced::default_event_mapper {
 public:
  user_event_mapper() {
    register_collection_event_types("users", {.created = "UserCreated",
                                              .updated = "UserUpdated",
                                              .deleted = "UserDeleted",
                                              .aggregate_type = "User"});
  }

  std::vector<eventsourced::mapped_event> map(
      const eventsourced::document_change& change) const override {
    auto events = default_event_mapper::map(change);
    if (change.collection != "users") return events;
    const auto& patch = change.diff.merge_patch;
    if (patch.is_object() && patch.contains("email") && patch["email"].is_string()) {
      events.push_back(
          {events.front().stream,
           eventsourced::make_event("UserEmailChanged", {{"new_email", patch["email"]}})});
    }
    return events;
  }
};

// A handler as an object, like the seeds' UserCreatedHandler.
class user_created_handler : public eventsourced::event_handler {
 public:
  void handle_event(const eventsourced::event& e) override {
    std::lock_guard lock(mutex_);
    std::cout << "   [UserCreated]      welcome, " << e.stream.id << " ("
              << e.data["merge_patch"].value("email", "") << ")\n";
  }

 private:
  std::mutex mutex_;
};

}  // namespace app

int main(int argc, char** argv) {
  namespace es = eventsourced;
  const std::string file = argc > 1 ? argv[1] : "users.db";
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(file + suffix);

  try {
    es::event_sourced_options options;
    options.storage.mapper = std::make_shared<app::user_event_mapper>();
    options.start_relay = false;  // subscribe first, so no handler misses an event
    auto storage = es::event_sourced_storage::open("sqlite:" + file, options);

    auto created = storage->subscribe("UserCreated", std::make_shared<app::user_created_handler>());
    auto updated = storage->subscribe("UserUpdated", [](const es::event& e) {
      std::cout << "   [UserUpdated]      " << e.stream.id << " is now at version "
                << e.data["version"] << ": " << e.data["merge_patch"].dump() << "\n";
    });
    auto email = storage->subscribe("UserEmailChanged", [](const es::event& e) {
      std::cout << "   [UserEmailChanged] " << e.stream.id << " -> " << e.data["new_email"]
                << " (correlation " << es::correlation_id(e).value_or("-") << ")\n";
    });
    storage->relay().start();

    auto users = storage->collection<app::User>("users");
    std::cout << "== Create a user\n";
    users.find_one_and_upsert(
        app::User{.id = "user123", .name = "John Doe", .email = "john@example.com"});
    storage->wait_until_published(std::chrono::seconds(5));

    std::cout << "== Rename (UserUpdated only)\n";
    users.find_one_and_update("user123", [](app::User u) {
      u.name = "John Q. Doe";
      return u;
    });
    storage->wait_until_published(std::chrono::seconds(5));

    std::cout << "== Change the email (UserUpdated + UserEmailChanged, one commit)\n";
    es::write_options traced;
    traced.event_metadata = {{"correlation_id", "request-42"}};
    auto [user, diff, events] = users.find_one_and_update(
        "user123",
        [](app::User u) {
          u.email = "john.doe@example.com";
          return u;
        },
        traced);
    storage->wait_until_published(std::chrono::seconds(5));
    std::cout << "   the write recorded " << events.size() << " events at positions "
              << events.front().position << ".." << events.back().position << "\n";

    std::cout << "== The User/user123 stream, read back from the log\n";
    for (const es::event& e : storage->log().read_stream({"User", "user123"})) {
      std::cout << "   v" << e.stream_version << " " << e.type << " (document version "
                << es::document_of(e)->version << ")\n";
    }
    storage->close();
    return 0;
  } catch (const es::error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
