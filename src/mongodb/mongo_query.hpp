// Private to the MongoDB engine: a query (engine/query.hpp) as a MongoDB aggregation pipeline
// with the library's own semantics, which are not MongoDB's query semantics:
//   - no implicit array traversal: {tags: "a"} does not match {tags: ["a"]}, and "items.name"
//     does not reach into the elements of an array "items";
//   - a path segment made of digits indexes an array and nothing else;
//   - $gt/$gte/$lt/$lte match only a field of the operand's kind (number or string);
//   - {field: null} matches a missing field or null; $ne / $nin also match a missing field.
// So every condition is an aggregation expression inside $expr (MongoDB 5.0 or later: $getField),
// and a field is reached segment by segment, each step checking the kind of what it steps into:
//   {$cond: [{$eq: [{$type: X}, "object"]}, {$getField: {field: {$literal: "seg"}, input: X}},
//            "$$REMOVE"]}                                       a key
//   {$cond: [{$isArray: X}, {$arrayElemAt: [X, 3]}, "$$REMOVE"]}  an index ($arrayElemAt past the
//                                                                  end gives "missing")
// Operands are always wrapped in {$literal: ...}, so no operand is ever read as an expression or a
// field path (a string starting with '$', an object with '$' keys).
//
// Sorting follows compare_for_sort: missing/null < numbers < strings < objects < arrays <
// booleans, which is BSON's order of those kinds; ties by id ascending. Each sort key becomes two
// computed fields, the kind's rank and the value — an array wrapped in {a: [...]}, because $sort
// orders a bare array by its smallest element.
//
// Known differences from the reference semantics (filter::matches, compare_for_sort), all outside
// ordinary data: objects and arrays compare (equality and sort) value by value in BSON order, not
// by their JSON text — so [1] equals [1.0] here and not in the reference, and [1, 10] sorts after
// [1, 9] here and before it there; numbers compare exactly, where nlohmann::json compares an
// integer with a double as doubles (they differ beyond 2^53).
//
// Documents are stored as {_id: id, version, body} with body null for a tombstone; the pipeline
// keeps only live documents and returns them whole.
//
// Thread safety: pure functions.
#pragma once

#include <nlohmann/json.hpp>

#include <eventsourced/engine/query.hpp>

namespace eventsourced::mongodb_detail {

using json = nlohmann::json;

// The aggregation expression reaching `path` inside the stored body ("$body").
json field_expression(const field_path& path);

// The boolean aggregation expression of a filter node.
json filter_expression(const filter_node& node);

// The aggregation pipeline of a find: live documents matching q.where, sorted, skipped, limited.
// Throws invalid_argument_error for an invalid sort path.
json find_pipeline(const query& q);

}  // namespace eventsourced::mongodb_detail
