// Commands: requests to change one aggregate, handled by exactly one handler
// (command/dispatcher.hpp).
//
// A command carries its type (which handler runs), the id of the aggregate it targets, a JSON
// payload, its own unique id (a fresh make_event_id() by default; handlers use it as the
// causation id of the events they record) and metadata (an object or null; "correlation_id"
// as in event/event.hpp).
//
// \par Thread safety
// Commands are values. Handlers are called from the thread that dispatches; a handler object
// registered once may be called from several threads at once and must allow that.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <eventsourced/engine/engine.hpp>
#include <eventsourced/error.hpp>
#include <eventsourced/event/event.hpp>

namespace eventsourced {

struct command {
  std::string type{};
  std::string aggregate_id{};
  json payload{};
  std::string id = make_event_id();
  json metadata{};  // object or null

  // The payload converted to T (nlohmann from_json). Throws serialization_error when it does not
  // convert.
  template <class T>
  T payload_as() const {
    try {
      return payload.get<T>();
    } catch (const json::exception& e) {
      throw serialization_error("eventsourced: payload of command " + type +
                                " does not convert: " + e.what());
    }
  }
};

// What executing a command did.
struct command_result {
  std::string command_id{};
  // The aggregate the command acted on and its version afterwards (empty for handlers that do
  // not report one).
  stream_ref aggregate{};
  std::int64_t version = 0;
  // The events the command caused, as recorded. For a duplicate they are read back from the log.
  std::vector<recorded_event> events{};
  // True when this command id had been executed before: nothing was executed or written now, and
  // the rest of the result is the earlier outcome.
  bool duplicate = false;
};

// A command with a fresh id.
inline command make_command(std::string type, std::string aggregate_id, json payload = nullptr,
                            json metadata = nullptr) {
  return command{.type = std::move(type),
                 .aggregate_id = std::move(aggregate_id),
                 .payload = std::move(payload),
                 .metadata = std::move(metadata)};
}

// Throws invalid_argument_error unless c's metadata is an object or null and its payload and
// metadata are within kMaxJsonDepthSetting levels with finite numbers (engine/json_limits.hpp;
// a store then holds the events they lead to to its own max_json_depth). dispatch() calls it.
void validate_command(const command& c);

// The metadata events caused by c should carry: every member of c.metadata (a client or session
// id, ...), then correlation_id (c's, or c.id when c has none) and causation_id = c.id (replacing
// what c.metadata said: the events' cause is the command). repository::save(aggregate, c) and
// aggregate_handler use it. Throws what validate_command throws.
json causation_metadata(const command& c);

// Handles the commands of one type. What it throws, dispatch() throws unchanged; what it returns,
// dispatch() returns.
class command_handler {
 public:
  virtual ~command_handler() = default;
  virtual command_result handle(const command& c) = 0;
};

// A handler from a callable returning command_result (dispatcher::register_handler also takes
// callables returning void: their result is {.command_id = c.id}).
using command_handler_function = std::function<command_result(const command&)>;

}  // namespace eventsourced
