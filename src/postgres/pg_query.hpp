// Private to the PostgreSQL engine: translation of a query (filter, sort, limit, skip) into one
// SELECT over the documents table, with jsonb functions.
//
// As for SQLite (engine/sqlite_query.hpp), the SQL text depends only on the shape of the query;
// the collection, every JSON path, operand, limit and skip are bound parameters. A field is read
// with jsonb_path_query_first(body, 'strict $."a"."b"[0]', '{}', true): strict mode with errors
// silenced gives exactly field_path::resolve() — a missing key, an index into a non-array, a key
// into a non-object are all "missing" (SQL NULL).
//
// Differences from filter::matches() / compare_for_sort() (query.hpp), all outside ordinary data:
// - objects compare (equality, sort) by jsonb's canonical text, whose key order is by length then
//   bytes and which puts a space after ',' and ':'; nlohmann's text sorts keys by bytes only. Two
//   objects are equal in both or in neither; their sort order can differ when keys differ in
//   length;
// - a string containing U+0000 (which jsonb cannot hold) is stored exactly for reads, but filters
//   see each U+0000 in it as U+FFFD;
// - numbers compare exactly (numeric); nlohmann compares an integer with a double as doubles, so
//   integers beyond 2^53 can compare differently with doubles.
#pragma once

#include <string>
#include <string_view>

#include <eventsourced/engine/query.hpp>

#include "postgres/pg_connection.hpp"

namespace eventsourced::postgres_detail {

struct find_statement {
  std::string text;
  params values;
};

// The jsonpath text of a field: strict $."seg"[3]... Keys are always quoted: field_path forbids
// '"', '\\' and control characters in segments, so the quoting is exact.
std::string jsonpath_of(const field_path& path);

// SELECT id, version, coalesce(body_exact, body::text) FROM <documents_table> WHERE collection = $1
// AND body IS NOT NULL AND <filter> ORDER BY <sort keys>, id LIMIT $n OFFSET $m. documents_table is
// the quoted, schema-qualified table name. Throws invalid_argument_error for an invalid sort path,
// serialization_error for an operand that cannot be written as JSON.
find_statement translate_find(const std::string& documents_table, std::string_view collection,
                              const query& q);

}  // namespace eventsourced::postgres_detail
