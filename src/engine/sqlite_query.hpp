// Private to the SQLite engine: translation of a query (filter, sort, limit, skip) into one
// SELECT over the documents table.
//
// The SQL text depends only on the *shape* of the query (which operators, how nested, how many
// sort keys); every value — collection name, JSON paths, operands, limit and skip — is a bound
// parameter. So nothing a user wrote is ever part of SQL text, and the text makes a good key for
// the prepared-statement cache.
//
// The translation reproduces filter::matches() and compare_for_sort() (query.hpp); the unit test
// sqlite_engine_test.cpp checks that over generated documents and filters. Known differences,
// all outside what nlohmann::json parses from ordinary input:
// - integers above INT64_MAX in stored bodies are read by SQLite as reals;
// - sorting numbers beyond 2^53 mixed with reals: SQLite compares an integer with a real
//   exactly, compare_for_sort() converts the integer to double first;
// - strings holding U+0000: SQLite's JSON functions end them there (sqlite.hpp says so).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <eventsourced/engine/query.hpp>

namespace eventsourced::sqlite_detail {

// A value for one numbered placeholder (?1, ?2, ...): its index is its position + 1.
using sql_value = std::variant<std::int64_t, double, std::string>;

struct sql_statement {
  std::string text;
  std::vector<sql_value> params;
};

// The SQLite JSON path ("$.\"stats\".\"level\"", "$.\"items\"[0]") for a field path. Object keys
// are always quoted: field_path forbids '"' and '\\' in segments, so quoting is exact.
std::string sqlite_json_path(const field_path& path);

// Whether the statement first checks that a row's body is JSON before a JSON function reads it
// (json_valid: one more parse per row). Without it, one row that is not JSON fails the statement
// with "malformed JSON".
enum class text_check { none, json_valid };

// SELECT id, version, body FROM documents WHERE collection = ?1 AND body IS NOT NULL AND <filter>
// ORDER BY <sort keys>, id LIMIT ? OFFSET ?. Throws invalid_argument_error for an invalid sort
// path, serialization_error for an operand that cannot be written as JSON.
sql_statement translate_find(std::string_view collection, const query& q,
                             text_check check = text_check::none);

}  // namespace eventsourced::sqlite_detail
