#include <eventsourced/command/dispatcher.hpp>

#include <cstddef>
#include <mutex>
#include <string>
#include <utility>

#include <eventsourced/engine/json_limits.hpp>

namespace eventsourced {

void validate_command(const command& c) {
  if (!c.metadata.is_object() && !c.metadata.is_null()) {
    throw invalid_argument_error("eventsourced: the metadata of command " + c.type + " (" + c.id +
                                 ") must be an object or null, got " + c.metadata.type_name());
  }
  check_json(c.payload, kMaxJsonDepthSetting, "the payload of command " + c.type);
  check_json(c.metadata, kMaxJsonDepthSetting, "the metadata of command " + c.type);
}

json causation_metadata(const command& c) {
  validate_command(c);
  json metadata = c.metadata.is_object() ? c.metadata : json::object();
  if (auto it = metadata.find(kCorrelationIdKey); it == metadata.end() || !it->is_string()) {
    metadata[std::string(kCorrelationIdKey)] = c.id;
  }
  metadata[std::string(kCausationIdKey)] = c.id;
  return metadata;
}

namespace {

class function_handler final : public command_handler {
 public:
  explicit function_handler(command_handler_function f) : f_(std::move(f)) {}
  command_result handle(const command& c) override { return f_(c); }

 private:
  command_handler_function f_;
};

command_result run_chain(const std::vector<dispatcher::middleware>& chain, std::size_t index,
                         command_handler& handler, const command& c) {
  if (index == chain.size()) return handler.handle(c);
  return chain[index](c, [&chain, index, &handler](const command& next_command) {
    return run_chain(chain, index + 1, handler, next_command);
  });
}

}  // namespace

void dispatcher::register_handler(std::string command_type,
                                  std::shared_ptr<command_handler> handler) {
  if (command_type.empty()) {
    throw invalid_argument_error("eventsourced: empty command type in register_handler");
  }
  if (!handler) {
    throw invalid_argument_error("eventsourced: null handler for command type " + command_type);
  }
  std::unique_lock lock(mutex_);
  auto [it, inserted] = handlers_.try_emplace(std::move(command_type), std::move(handler));
  if (!inserted) {
    throw invalid_argument_error("eventsourced: command type " + it->first +
                                 " already has a handler");
  }
}

void dispatcher::register_handler(std::string command_type, command_handler_function handler) {
  if (!handler) {
    throw invalid_argument_error("eventsourced: null handler for command type " + command_type);
  }
  register_handler(std::move(command_type), std::make_shared<function_handler>(std::move(handler)));
}

void dispatcher::use(middleware m) {
  if (!m) throw invalid_argument_error("eventsourced: null middleware");
  std::unique_lock lock(mutex_);
  auto chain = std::make_shared<std::vector<middleware>>(*chain_);
  chain->push_back(std::move(m));
  chain_ = std::move(chain);
}

bool dispatcher::has_handler(std::string_view command_type) const {
  std::shared_lock lock(mutex_);
  return handlers_.find(command_type) != handlers_.end();
}

command_result dispatcher::dispatch(const command& c) const {
  validate_command(c);
  std::shared_ptr<command_handler> handler;
  std::shared_ptr<const std::vector<middleware>> chain;
  {
    std::shared_lock lock(mutex_);
    auto it = handlers_.find(c.type);
    if (it == handlers_.end()) {
      throw invalid_argument_error("eventsourced: no handler for command type \"" + c.type + "\"");
    }
    handler = it->second;
    chain = chain_;
  }
  return run_chain(*chain, 0, *handler, c);
}

}  // namespace eventsourced
