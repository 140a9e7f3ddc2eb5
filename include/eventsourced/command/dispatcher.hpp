// The dispatcher: routes each command to the one handler registered for its type, through a
// chain of middleware (validation, logging, ...).
//
// Errors. Registering a second handler for a type throws invalid_argument_error. Dispatching a
// command whose type has no handler throws invalid_argument_error ("no handler for command type
// X"): it is a bad request, not a missing document, so not not_found_error. What a middleware or
// the handler throws propagates unchanged.
//
// Middleware. use() appends a middleware; the first one added is the outermost. A middleware
// receives the command and `next`; it may inspect or rewrite the command before passing it on,
// run code after next returns (and return next's result, or another), or stop the command by
// throwing (or by returning without calling next). The
// handler is looked up before the chain runs, so an unknown type fails before any middleware.
//
// \par Thread safety
// Every member is safe to call from any thread, also while other threads dispatch. dispatch()
// holds no lock while middleware and handlers run, so handlers may dispatch further commands.
//
// \par Ownership
// The dispatcher shares ownership of the handlers and middleware registered with it.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <eventsourced/command/command.hpp>

namespace eventsourced {

class dispatcher {
 public:
  using next_function = std::function<command_result(const command&)>;
  using middleware = std::function<command_result(const command&, const next_function& next)>;

  // Registers the handler of command_type. Throws invalid_argument_error for an empty type, a
  // null handler, or a type that already has one.
  void register_handler(std::string command_type, std::shared_ptr<command_handler> handler);
  void register_handler(std::string command_type, command_handler_function handler);
  // A callable returning void: dispatch() returns {.command_id = c.id} for it.
  template <class F>
  requires std::is_invocable_v<F&, const command&> &&
      std::is_void_v<std::invoke_result_t<F&, const command&>>
  void register_handler(std::string command_type, F handler) {
    register_handler(std::move(command_type),
                     command_handler_function{[h = std::move(handler)](const command& c) mutable {
                       h(c);
                       return command_result{.command_id = c.id};
                     }});
  }

  // Appends a middleware to the chain. Throws invalid_argument_error for a null one.
  void use(middleware m);

  bool has_handler(std::string_view command_type) const;

  // Runs c through the middleware chain into its handler and returns what the chain returns.
  // Throws invalid_argument_error when no handler is registered for c.type or c is malformed
  // (validate_command in command.hpp); otherwise whatever the middleware or handler throws.
  command_result dispatch(const command& c) const;

 private:
  mutable std::shared_mutex mutex_;
  std::map<std::string, std::shared_ptr<command_handler>, std::less<>> handlers_;  // mutex_
  std::shared_ptr<const std::vector<middleware>> chain_ =
      std::make_shared<const std::vector<middleware>>();  // guarded by mutex_; copied on write
};

}  // namespace eventsourced
