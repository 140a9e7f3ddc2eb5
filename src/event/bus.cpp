#include <eventsourced/event/bus.hpp>

#include <utility>

#include <eventsourced/error.hpp>

namespace eventsourced {
namespace {

class function_handler final : public event_handler {
 public:
  explicit function_handler(event_handler_function function) : function_(std::move(function)) {}
  void handle_event(const event& e) override { function_(e); }

 private:
  event_handler_function function_;
};

}  // namespace

subscription event_bus::subscribe(std::string_view type, event_handler_function handler) {
  if (!handler) throw invalid_argument_error("eventsourced: subscribe needs a handler, got null");
  return subscribe(type, std::make_shared<function_handler>(std::move(handler)));
}

}  // namespace eventsourced
