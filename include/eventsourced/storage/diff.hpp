// What a write changed, in the two standard JSON patch formats.
//
// For every write, json_patch applied to the document before the write gives the document after
// it (json::patch), and so does merge_patch (json::merge_patch) — except that RFC 7396 cannot
// express a member whose new value is null (null means "remove"): when the new document holds
// null values, use json_patch. A created document has no "before": its patches apply to null; a
// deleted document's "after" is null. Both patches include the version field, which changes with
// every write, so a client that applies them ends at the right version.
#pragma once

#include <cstdint>

#include <nlohmann/json.hpp>

namespace eventsourced {

using json = nlohmann::json;

struct diff {
  bool is_new = false;       // the write created the document
  bool is_deleted = false;   // the write deleted the document
  bool has_changes = false;  // anything other than nothing happened (false: no write was made)
  std::int64_t version =
      0;  // the document's version after the write (tombstone version if deleted)
  json json_patch = json::array();    // RFC 6902, before → after
  json merge_patch = json::object();  // RFC 7396, before → after
};

// The diff between two states of a document; null stands for "does not exist".
diff make_diff(const json& before, const json& after, std::int64_t version);

// An RFC 7396 merge patch that turns `from` into `to` (see the null caveat above).
json create_merge_patch(const json& from, const json& to);

}  // namespace eventsourced
