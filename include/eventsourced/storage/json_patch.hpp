// Applying an RFC 6902 JSON Patch that may come from an untrusted client.
//
// nlohmann's json::patch applies any patch it is given. From a client that is a way to crash or
// stall a server: copy operations double a document with each step (40 of them fill any memory),
// adds at the deepest point nest it deeper than anything may be, and operations that copy or
// compare large values cost time out of proportion to the patch. apply_json_patch checks each
// operation before applying it, so the limits hold after every step, not only at the end.
//
// \par Thread safety
// A pure function.
#pragma once

#include <cstddef>

#include <eventsourced/engine/json_limits.hpp>

namespace eventsourced {

struct json_patch_limits {
  // No operation may nest the document deeper than this (a value placed at a path of k tokens
  // counts k + its own depth).
  std::size_t max_depth = kDefaultMaxJsonDepth;
  // Operations per patch.
  std::size_t max_operations = 1000;
  // What the copy and move operations of one patch may copy in all, measured as the length of
  // the copied values' JSON text (approximately).
  std::size_t max_copied_bytes = 16 * 1024 * 1024;
};

// Applies patch to doc, operation by operation. Throws json_depth_error for an operation that
// would nest the document deeper than limits.max_depth, and invalid_argument_error for a patch
// that is not an array of operations, has too many of them, copies too much, or fails (a path
// that does not exist, a failing test). Nothing is applied when it throws (doc is a copy).
json apply_json_patch(json doc, const json& patch, const json_patch_limits& limits = {});

}  // namespace eventsourced
