// Checkpoints: how far a log consumer (relay, subscription, projection) has got, stored durably.
//
// A checkpoint is a document in the reserved collection kCheckpointCollection whose id is the
// consumer's name and whose body is
//   {"position": <int64>, "saved_at_us": <microseconds since the Unix epoch>}
// plus "rebuilding": true while a projection rebuild is clearing its read model. Because it is a
// document it commits atomically with other writes (a projection's read model) and it is
// version-checked like any document: two consumers with the same name cannot silently overwrite
// each other's progress, the second to save gets a conflict_error.
//
//   auto cp = eventsourced::load_checkpoint(engine, "mailer");   // version 0: never saved
//   ... process events up to position p ...
//   cp.position = p;
//   cp = eventsourced::save_checkpoint(engine, cp);               // conflict_error if raced
//
// \par Thread safety
// The functions are safe to call from many threads; checkpoint is a plain value.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <eventsourced/engine/engine.hpp>

namespace eventsourced {

// Where checkpoints live (reserved: user collections cannot take this name).
inline constexpr std::string_view kCheckpointCollection = "_es_checkpoints";

struct checkpoint {
  std::string name{};  // the consumer's name: the checkpoint document's id
  // Every event at or below this position has been processed; 0: none yet.
  std::int64_t position = 0;
  // The stored document's version this value was read at or saved as; 0: never saved. A save
  // expects exactly this version.
  std::int64_t version = 0;
  // A projection rebuild is under way (see projection.hpp); position is then 0.
  bool rebuilding = false;
  friend bool operator==(const checkpoint&, const checkpoint&) = default;
};

// The stored checkpoint `name`, or {name, 0, 0} when it was never saved. Throws
// invalid_argument_error for an invalid name (names follow the document id rules),
// serialization_error for a stored checkpoint that is not in the format above, and what the
// engine throws.
checkpoint load_checkpoint(engine& engine, std::string_view name);

// The version-checked write that stores `next` (expected version next.version). For committing a
// checkpoint together with other writes in one engine commit. Throws invalid_argument_error for
// an invalid name, a negative position or version.
document_write checkpoint_write(const checkpoint& next);

// Commits checkpoint_write(next) alone and returns next with its new version. Throws
// conflict_error when the stored version is no longer next.version (another consumer with the
// same name saved, or the checkpoint was reset), invalid_argument_error as checkpoint_write, and
// what the engine throws.
checkpoint save_checkpoint(engine& engine, const checkpoint& next);

}  // namespace eventsourced
