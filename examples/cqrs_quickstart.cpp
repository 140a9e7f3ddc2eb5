// The seed README's CQRS quick start: a user aggregate, CreateUser and ChangeEmail commands
// through a dispatcher, and a UserCreated subscription that greets the new user — on embedded
// SQLite.
//
//   ./build/examples/cqrs_quickstart [database-file]
//   (default: cqrs_quickstart.db in the current directory, removed before and after the run)
#include <chrono>
#include <filesystem>
#include <iostream>
#include <stdexcept>
#include <string>

#include <eventsourced/eventsourced.hpp>

namespace app {

// Command payloads and event data: plain structs, converted by nlohmann::json.
struct create_user {
  std::string name;
  std::string email;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(create_user, name, email)

struct change_email {
  std::string email;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(change_email, email)

struct user_email_changed {
  std::string old_email;
  std::string new_email;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(user_email_changed, old_email, new_email)

// A broken business rule. The dispatcher passes it to the caller unchanged; nothing is saved.
struct domain_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The write model: its state is the fold of the events of stream User/<id>.
class user final : public eventsourced::aggregate_root {
 public:
  explicit user(std::string id) : aggregate_root("User", std::move(id)) {
    on<create_user>("UserCreated", [this](const create_user& e) {
      name_ = e.name;
      email_ = e.email;
    });
    on<user_email_changed>("UserEmailChanged",
                           [this](const user_email_changed& e) { email_ = e.new_email; });
  }

  // Commands check the rules first, then raise the events that record the decision.
  void create(const create_user& c) {
    if (version() != 0) throw domain_error("user " + id() + " already exists");
    if (c.email.find('@') == std::string::npos) throw domain_error("invalid email " + c.email);
    raise("UserCreated", c);
  }
  void change_email(const std::string& email) {
    if (version() == 0) throw domain_error("no user " + id());
    if (email == email_) return;  // nothing to record
    raise("UserEmailChanged", user_email_changed{email_, email});
  }

  const std::string& name() const { return name_; }
  const std::string& email() const { return email_; }

 private:
  std::string name_;
  std::string email_;
};

}  // namespace app

int main(int argc, char** argv) {
  namespace es = eventsourced;
  const std::string file = argc > 1 ? argv[1] : "cqrs_quickstart.db";
  const auto remove_database = [&] {
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(file + suffix);
  };
  remove_database();

  try {
    // 1. A store whose event log feeds a bus through the outbox relay. Subscribe before the relay
    //    starts, so the handler sees every event.
    auto storage = es::event_sourced_storage::open("sqlite:" + file, {.start_relay = false});
    auto welcome = storage->subscribe("UserCreated", [](const es::event& e) {
      std::cout << "   [UserCreated] welcome, " << e.data["name"].get<std::string>() << " ("
                << e.stream.id << ")!\n";
    });
    storage->relay().start();

    // 2. Commands go through a dispatcher to handlers that load, run and save one aggregate.
    es::repository users(*storage->store());
    es::dispatcher commands;
    commands.register_handler("CreateUser", es::aggregate_handler<app::user>(
                                                users, [](app::user& u, const es::command& c) {
                                                  u.create(c.payload_as<app::create_user>());
                                                }));
    commands.register_handler(
        "ChangeEmail",
        es::aggregate_handler<app::user>(users, [](app::user& u, const es::command& c) {
          u.change_email(c.payload_as<app::change_email>().email);
        }));

    std::cout << "== Dispatch CreateUser for user123\n";
    const es::command create = es::make_command(
        "CreateUser", "user123", {{"name", "John Doe"}, {"email", "john@example.com"}});
    es::command_result created = commands.dispatch(create);
    std::cout << "   recorded " << created.events.size() << " event ("
              << created.events.front().type << "), user123 is at version " << created.version
              << "\n";
    storage->wait_until_published(std::chrono::seconds(5));

    std::cout << "== Dispatch the same command again (a client retrying after a timeout)\n";
    es::command_result again = commands.dispatch(create);
    std::cout << "   duplicate=" << std::boolalpha << again.duplicate
              << ": nothing ran or was written; the earlier outcome is returned (version "
              << again.version << ")\n";

    std::cout << "== A business rule refuses a second CreateUser with a new command id\n";
    try {
      commands.dispatch(es::make_command("CreateUser", "user123",
                                         {{"name", "Jane"}, {"email", "jane@example.com"}}));
    } catch (const app::domain_error& e) {
      std::cout << "   refused: " << e.what() << "\n";
    }

    std::cout << "== Dispatch ChangeEmail\n";
    es::command_result changed = commands.dispatch(
        es::make_command("ChangeEmail", "user123", {{"email", "john.doe@example.com"}}));
    std::cout << "   recorded " << changed.events.front().type << " " << changed.events.front().data
              << ", caused by command " << es::causation_id(changed.events.front()).value_or("-")
              << "\n";

    // 3. Everything committed has reached the bus once the relay has caught up.
    storage->wait_until_published(std::chrono::seconds(5));

    std::cout << "== The User/user123 stream: each event once\n";
    for (const es::event& e : storage->log().read_stream({"User", "user123"})) {
      std::cout << "   v" << e.stream_version << " " << e.type << " " << e.data << "\n";
    }
    const auto john = users.load<app::user>("user123");
    std::cout << "== Loaded by replay: " << john->name() << " <" << john->email() << ">, version "
              << john->version() << "\n";

    storage->close();
    remove_database();
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
