// MongoDB update operators applied to a JSON document.
//
// Supported: $set $unset $inc $mul $min $max $push $pull $addToSet $rename, each taking an object
// of {dotted.path: operand}. $push and $addToSet accept {"$each": [...]}; $pull removes the
// elements equal to its operand (or matching it, when the operand is a filter object such as
// {"$gte": 5} — see query.hpp for the operators). Paths follow query.hpp's field_path rules;
// $set creates missing intermediate objects.
//
// Errors (invalid_argument_error, the document left unchanged): an unknown operator, a document
// that mixes operators and plain fields, an empty update, an operand of the wrong kind ($inc with
// a string), an operator applied to a field of the wrong type ($inc on a string, $push on a
// number), one path named by two operators, a path through a non-object, $rename onto a path
// inside itself; an update or document nested deeper than kMaxJsonDepth or holding a non-finite
// number (engine/json_limits.hpp). A result that overflows to a non-finite number is left for the
// store to refuse (every stored body is checked).
//
// \par Thread safety
// A pure function.
#pragma once

#include <nlohmann/json.hpp>

namespace eventsourced {

using json = nlohmann::json;

// Returns document with update applied. Throws invalid_argument_error (see above).
json apply_update(const json& document, const json& update);

}  // namespace eventsourced
