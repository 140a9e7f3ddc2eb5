// Private: what both NATS buses do with a received message: parse the event, call the handler,
// report a handler's final failure.
#pragma once

#include <nats/nats.h>

#include <exception>
#include <functional>
#include <optional>
#include <string_view>

#include <eventsourced/event/memory_bus.hpp>
#include <eventsourced/event/serializer.hpp>

#include "subscriber_thread.hpp"

namespace eventsourced::nats_internal {

// The event a message carries, or nullopt when its payload is not one (serializer.hpp).
inline std::optional<event> event_of(natsMsg* msg) noexcept {
  try {
    const char* data = natsMsg_GetData(msg);
    const int size = natsMsg_GetDataLength(msg);
    return deserialize_event(std::string_view(data == nullptr ? "" : data,
                                              static_cast<std::size_t>(size < 0 ? 0 : size)));
  } catch (...) {
    return std::nullopt;
  }
}

// Calls s's handler with e up to max_attempts times (fewer if s is ended meanwhile); nullptr when
// a call succeeded, else what the last call threw. attempts gets the number of calls.
inline std::exception_ptr call_handler(subscriber& s, const event& e, int max_attempts,
                                       int& attempts) noexcept {
  std::exception_ptr error;
  attempts = 0;
  while (attempts < max_attempts && !(attempts > 0 && s.stopping.load())) {
    ++attempts;
    try {
      s.handler->handle_event(e);
      return nullptr;
    } catch (...) {
      error = std::current_exception();
    }
  }
  return error;
}

// Passes a failure to the observer, swallowing what it throws.
inline void report_failure(const std::function<void(const handler_failure&)>& observer,
                           const subscriber& s, const event& e, std::exception_ptr error,
                           int attempts) noexcept {
  if (!observer) return;
  try {
    observer(handler_failure{e, s.type, std::move(error), attempts});
  } catch (...) {
    // Documented: an observer's exception is swallowed.
  }
}

}  // namespace eventsourced::nats_internal
