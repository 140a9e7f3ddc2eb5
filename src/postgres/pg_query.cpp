#include "postgres/pg_query.hpp"

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <eventsourced/error.hpp>

namespace eventsourced::postgres_detail {
namespace {

// Every predicate below is true or false, never SQL NULL, so NOT (...) of it means "does not
// match" ($ne, $nin) instead of "unknown" (which would drop the row).

class param_list {
 public:
  std::string add(std::optional<std::string> value) {
    values_.push_back(std::move(value));
    return "$" + std::to_string(values_.size());
  }
  params take() { return std::move(values_); }

 private:
  params values_;
};

std::string dump_operand(const json& operand) {
  try {
    return operand.dump();
  } catch (const json::exception& e) {
    throw serialization_error("filter operand cannot be written as JSON: " + std::string(e.what()));
  }
}

// The field's value as jsonb, SQL NULL when missing.
std::string field(param_list& p, const field_path& path) {
  return "jsonb_path_query_first(body, " + p.add(jsonpath_of(path)) +
         "::jsonpath, '{}'::jsonb, true)";
}

std::string join(const std::vector<std::string>& items, const char* separator) {
  std::string out;
  for (const std::string& item : items) {
    if (!out.empty()) out += separator;
    out += item;
  }
  return out;
}

// "the field equals operand" as query.hpp defines equality.
std::string equals(param_list& p, const field_path& path, const json& operand) {
  const std::string f = field(p, path);
  switch (operand.type()) {
    case json::value_t::null:
      // A missing field counts as null.
      return "(coalesce(jsonb_typeof(" + f + "), 'null') = 'null')";
    case json::value_t::boolean:
    case json::value_t::string:
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float:
      // jsonb equality: numbers numerically (1 = 1.0), strings and booleans exactly.
      return "coalesce(" + f + " = " + p.add(dump_operand(operand)) + "::jsonb, false)";
    case json::value_t::object:
    case json::value_t::array:
      // Whole values by canonical text (so {"x": 1} differs from {"x": 1.0}, as in nlohmann).
      return "coalesce(" + f + "::text = (" + p.add(dump_operand(operand)) +
             "::jsonb)::text, false)";
    default:  // binary / discarded: never equal to stored JSON
      return "false";
  }
}

std::string equals_any(param_list& p, const field_path& path, const json& operands) {
  std::vector<std::string> parts;
  for (const json& operand : operands) parts.push_back(equals(p, path, operand));
  if (parts.empty()) return "false";
  return "(" + join(parts, " OR ") + ")";
}

std::string range(param_list& p, const filter_node& node) {
  const char* op = node.op == filter_op::gt    ? ">"
                   : node.op == filter_op::gte ? ">="
                   : node.op == filter_op::lt  ? "<"
                                               : "<=";
  const std::string f = field(p, *node.path);
  if (node.operand.is_string()) {
    // Bytewise, as std::string compares.
    return "coalesce(CASE WHEN jsonb_typeof(" + f + ") = 'string' THEN (" + f +
           " #>> '{}') COLLATE \"C\" " + op + " " + p.add(node.operand.get<std::string>()) +
           "::text END, false)";
  }
  if (!node.operand.is_number()) return "false";  // filter::parse admits only numbers, strings
  return "coalesce(CASE WHEN jsonb_typeof(" + f + ") = 'number' THEN (" + f + ")::numeric " + op +
         " " + p.add(dump_operand(node.operand)) + "::numeric END, false)";
}

std::string translate(param_list& p, const filter_node& node) {
  switch (node.op) {
    case filter_op::all_of:
    case filter_op::any_of: {
      if (node.children.empty()) return node.op == filter_op::all_of ? "true" : "false";
      std::vector<std::string> parts;
      for (const filter_node& child : node.children) parts.push_back(translate(p, child));
      return "(" + join(parts, node.op == filter_op::all_of ? " AND " : " OR ") + ")";
    }
    case filter_op::eq:
      return equals(p, *node.path, node.operand);
    case filter_op::ne:
      return "(NOT " + equals(p, *node.path, node.operand) + ")";
    case filter_op::in:
    case filter_op::nin: {
      const json operands = node.operand.is_array() ? node.operand : json::array();
      const std::string in = equals_any(p, *node.path, operands);
      return node.op == filter_op::in ? in : "(NOT " + in + ")";
    }
    case filter_op::exists:
      return "(" + field(p, *node.path) + (node.operand == true ? " IS NOT NULL)" : " IS NULL)");
    case filter_op::gt:
    case filter_op::gte:
    case filter_op::lt:
    case filter_op::lte:
      return range(p, node);
  }
  return "false";
}

// Kinds in the documented order: missing/null < numbers < strings < objects < arrays <
// booleans; numbers numerically, the rest by text bytewise ("false" < "true").
std::string sort_terms(param_list& p, const sort_key& key) {
  const std::string f = field(p, field_path::parse(key.path));
  const char* direction = key.order == sort_order::descending ? " DESC" : " ASC";
  return "CASE jsonb_typeof(" + f +
         ") WHEN 'number' THEN 1 WHEN 'string' THEN 2 WHEN 'object' THEN 3 WHEN 'array' THEN 4 "
         "WHEN 'boolean' THEN 5 ELSE 0 END" +
         direction + ", CASE WHEN jsonb_typeof(" + f + ") = 'number' THEN (" + f +
         ")::numeric END" + direction + ", (CASE jsonb_typeof(" + f + ") WHEN 'string' THEN " + f +
         " #>> '{}' WHEN 'object' THEN " + f + "::text WHEN 'array' THEN " + f +
         "::text WHEN 'boolean' THEN " + f + "::text END) COLLATE \"C\"" + direction;
}

}  // namespace

std::string jsonpath_of(const field_path& path) {
  std::string out = "strict $";
  const auto& segments = path.segments();
  for (std::size_t i = 0; i < segments.size(); ++i) {
    if (path.is_index(i)) {
      // field_path::parse caps indexes at 9 digits; printing the number drops leading zeros.
      out += "[" + std::to_string(std::stoul(segments[i])) + "]";
    } else {
      out += ".\"" + segments[i] + "\"";
    }
  }
  return out;
}

find_statement translate_find(const std::string& documents_table, std::string_view collection,
                              const query& q) {
  param_list p;
  std::string sql = "SELECT id, version, coalesce(body_exact, body::text) FROM " + documents_table +
                    " WHERE collection = " + p.add(std::string(collection)) +
                    "::text AND body IS NOT NULL";
  if (const auto& root = q.where.root()) sql += " AND " + translate(p, *root);
  sql += " ORDER BY ";
  for (const sort_key& key : q.sort) sql += sort_terms(p, key) + ", ";
  constexpr auto kMax = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
  const auto clamped = [&](std::size_t n) { return std::to_string(n > kMax ? kMax : n); };
  // LIMIT NULL is no limit.
  sql += "id ASC LIMIT " +
         p.add(q.limit ? std::optional<std::string>(clamped(*q.limit)) : std::nullopt) + "::bigint";
  sql += " OFFSET " + p.add(clamped(q.skip)) + "::bigint";
  return {std::move(sql), p.take()};
}

}  // namespace eventsourced::postgres_detail
