// deserialize_event (event/serializer.hpp) on any text: what a bus consumer reads off the wire.
//
// Promises checked: anything but an event is a serialization_error (a sanitizer or any other
// exception is a bug), and an event that was read writes back to text that reads as the same
// event.
#include <cstddef>
#include <cstdint>

#include <eventsourced/event/serializer.hpp>

#include "fuzz_support.hpp"

namespace fuzz = eventsourced::fuzz;

namespace {

bool same_event(const eventsourced::event& a, const eventsourced::event& b) {
  return a.id == b.id && a.type == b.type && a.stream == b.stream &&
         a.stream_version == b.stream_version && a.position == b.position &&
         a.timestamp == b.timestamp && a.data == b.data && a.metadata == b.metadata;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  eventsourced::event e;
  try {
    e = eventsourced::deserialize_event(fuzz::as_text(data, size));
  } catch (const eventsourced::serialization_error&) {
    return 0;
  }
  // Everything in e came from valid JSON text, so writing it cannot fail.
  const std::string text = eventsourced::serialize_event(e);
  if (!same_event(eventsourced::deserialize_event(text), e)) {
    fuzz::fail("an event does not survive serialize_event + deserialize_event: " + text);
  }
  return 0;
}
