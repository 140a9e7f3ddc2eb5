#include "engine/sqlite_query.hpp"

#include <cstddef>
#include <limits>
#include <string>
#include <utility>

#include <eventsourced/error.hpp>

namespace eventsourced::sqlite_detail {
namespace {

// Every predicate below evaluates to 0 or 1, never SQL NULL, so that NOT (...) of it means
// "does not match" ($ne, $nin) instead of "unknown" (which would drop the row).

// Appends values and hands out their numbered placeholders.
class param_list {
 public:
  std::string add(sql_value value) {
    params_.push_back(std::move(value));
    return "?" + std::to_string(params_.size());
  }
  std::vector<sql_value> take() { return std::move(params_); }

 private:
  std::vector<sql_value> params_;
};

// The two views of one field, through one bound path: json_type() is SQL NULL when the path is
// missing and otherwise one of 'null' 'true' 'false' 'integer' 'real' 'text' 'array' 'object';
// json_extract() is the value (objects and arrays as their stored, canonical JSON text).
struct field_sql {
  std::string type;
  std::string value;
};

field_sql field(param_list& params, const field_path& path) {
  const std::string p = params.add(sqlite_json_path(path));
  return {"json_type(body, " + p + ")", "json_extract(body, " + p + ")"};
}

// A number operand as the filter semantics compare it (nlohmann::json comparison): an integer
// field against an integer operand exactly, anything involving a real as doubles.
struct number_operand {
  bool integral = false;     // an int64 operand (or unsigned that fits in one)
  bool above_int64 = false;  // an unsigned operand above INT64_MAX: above every integer field
  std::int64_t as_integer = 0;
  double as_double = 0;
};

number_operand to_number(const json& operand) {
  number_operand n;
  if (operand.is_number_unsigned()) {
    const auto u = operand.get<std::uint64_t>();
    n.as_double = static_cast<double>(u);
    // Beyond int64 SQLite cannot hold it as an integer; as a double it still compares
    // correctly with every int64 field (none reaches 2^63 after conversion).
    if (u <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      n.integral = true;
      n.as_integer = static_cast<std::int64_t>(u);
    } else {
      // As a double it rounds to 2^63, which INT64_MAX also rounds to: compared exactly (as
      // nlohmann::json does), no integer field equals it and every one is below it.
      n.above_int64 = true;
    }
  } else if (operand.is_number_integer()) {
    n.integral = true;
    n.as_integer = operand.get<std::int64_t>();
    n.as_double = static_cast<double>(n.as_integer);
  } else {
    n.as_double = operand.get<double>();
  }
  return n;
}

std::string join(const std::vector<std::string>& items, const char* separator) {
  std::string out;
  for (const std::string& item : items) {
    if (!out.empty()) out += separator;
    out += item;
  }
  return out;
}

std::string dump_operand(const json& operand) {
  try {
    return operand.dump();
  } catch (const json::exception& e) {
    throw serialization_error("filter operand cannot be written as JSON: " + std::string(e.what()));
  }
}

// "the field equals one of operands" ($eq is the one-element case), as one CASE over the
// field's JSON type so json_type() is evaluated once per row.
std::string equals_any(param_list& params, const field_path& path, const json& operands) {
  std::vector<std::string> strings, integers_exact, integers_as_real, reals, objects, arrays;
  bool null = false, true_value = false, false_value = false;
  for (const json& operand : operands) {
    switch (operand.type()) {
      case json::value_t::null:
        null = true;
        break;
      case json::value_t::boolean:
        (operand.get<bool>() ? true_value : false_value) = true;
        break;
      case json::value_t::string:
        strings.push_back(params.add(operand.get<std::string>()));
        break;
      case json::value_t::number_integer:
      case json::value_t::number_unsigned:
      case json::value_t::number_float: {
        const number_operand n = to_number(operand);
        const std::string as_double = params.add(n.as_double);
        reals.push_back(as_double);
        if (n.integral) {
          integers_exact.push_back(params.add(n.as_integer));
        } else if (!n.above_int64) {
          integers_as_real.push_back(as_double);
        }
        break;
      }
      case json::value_t::object:
        objects.push_back(params.add(dump_operand(operand)));
        break;
      case json::value_t::array:
        arrays.push_back(params.add(dump_operand(operand)));
        break;
      default:  // binary / discarded: never equal to stored JSON
        break;
    }
  }
  const field_sql f = field(params, path);
  std::string cases;
  auto when = [&](const char* type, const std::string& then) {
    cases += std::string(" WHEN '") + type + "' THEN " + then;
  };
  auto in_list = [](const std::string& value, const std::vector<std::string>& list) {
    return value + " IN (" + join(list, ", ") + ")";
  };
  if (null) when("null", "1");
  if (true_value) when("true", "1");
  if (false_value) when("false", "1");
  if (!strings.empty()) when("text", in_list(f.value, strings));
  if (!reals.empty()) {
    std::vector<std::string> integer_tests;
    if (!integers_exact.empty()) integer_tests.push_back(in_list(f.value, integers_exact));
    if (!integers_as_real.empty()) {
      integer_tests.push_back(in_list("CAST(" + f.value + " AS REAL)", integers_as_real));
    }
    when("integer", integer_tests.empty() ? "0" : "(" + join(integer_tests, " OR ") + ")");
    when("real", in_list(f.value, reals));
  }
  if (!objects.empty()) when("object", in_list(f.value, objects));
  if (!arrays.empty()) when("array", in_list(f.value, arrays));
  if (cases.empty()) return "0";
  // A missing field (NULL type) behaves as null for equality.
  return "(CASE coalesce(" + f.type + ", 'null')" + cases + " ELSE 0 END)";
}

std::string range(param_list& params, const filter_node& node) {
  const char* op = node.op == filter_op::gt    ? ">"
                   : node.op == filter_op::gte ? ">="
                   : node.op == filter_op::lt  ? "<"
                                               : "<=";
  if (node.operand.is_string()) {
    const std::string value = params.add(node.operand.get<std::string>());
    const field_sql f = field(params, *node.path);
    return "(CASE " + f.type + " WHEN 'text' THEN " + f.value + " " + op + " " + value +
           " ELSE 0 END)";
  }
  if (!node.operand.is_number()) return "0";  // filter::parse admits only numbers and strings
  const number_operand n = to_number(node.operand);
  const field_sql f = field(params, *node.path);
  const std::string compare = std::string(" ") + op + " ";
  const std::string as_double = params.add(n.as_double);
  const bool above = node.op == filter_op::gt || node.op == filter_op::gte;
  const std::string integer_test = n.above_int64 ? (above ? "0" : "1")
                                   : n.integral
                                       ? f.value + compare + params.add(n.as_integer)
                                       : "CAST(" + f.value + " AS REAL)" + compare + as_double;
  return "(CASE " + f.type + " WHEN 'integer' THEN " + integer_test + " WHEN 'real' THEN " +
         f.value + compare + as_double + " ELSE 0 END)";
}

std::string translate(param_list& params, const filter_node& node) {
  switch (node.op) {
    case filter_op::all_of:
    case filter_op::any_of: {
      if (node.children.empty()) return node.op == filter_op::all_of ? "1" : "0";
      std::vector<std::string> parts;
      for (const filter_node& child : node.children) parts.push_back(translate(params, child));
      return "(" + join(parts, node.op == filter_op::all_of ? " AND " : " OR ") + ")";
    }
    case filter_op::eq:
    case filter_op::ne: {
      const std::string eq = equals_any(params, *node.path, json::array({node.operand}));
      return node.op == filter_op::eq ? eq : "(NOT " + eq + ")";
    }
    case filter_op::in:
    case filter_op::nin: {
      const json operands = node.operand.is_array() ? node.operand : json::array();
      const std::string in = equals_any(params, *node.path, operands);
      return node.op == filter_op::in ? in : "(NOT " + in + ")";
    }
    case filter_op::exists: {
      const field_sql f = field(params, *node.path);
      return "(" + f.type + (node.operand == true ? " IS NOT NULL)" : " IS NULL)");
    }
    case filter_op::gt:
    case filter_op::gte:
    case filter_op::lt:
    case filter_op::lte:
      return range(params, node);
  }
  return "0";
}

// Kinds in the documented sort order: missing/null < numbers < strings < objects < arrays <
// booleans. Within a kind json_extract() orders: numbers numerically, strings and the canonical
// text of objects and arrays bytewise (BINARY collation, as std::string::compare), false (0)
// before true (1); missing and null are both SQL NULL and tie.
// `checked`: a row that is not JSON sorts as if the field were missing.
std::string sort_terms(param_list& params, const sort_key& key, bool checked) {
  field_sql f = field(params, field_path::parse(key.path));
  if (checked) {
    f.type = "(CASE WHEN json_valid(body) THEN " + f.type + " END)";
    f.value = "(CASE WHEN json_valid(body) THEN " + f.value + " END)";
  }
  const char* direction = key.order == sort_order::descending ? " DESC" : " ASC";
  return "CASE " + f.type +
         " WHEN 'integer' THEN 1 WHEN 'real' THEN 1 WHEN 'text' THEN 2 WHEN 'object' THEN 3"
         " WHEN 'array' THEN 4 WHEN 'false' THEN 5 WHEN 'true' THEN 5 ELSE 0 END" +
         direction + ", " + f.value + direction;
}

std::int64_t clamp_to_int64(std::size_t n) {
  constexpr auto kMax = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
  return static_cast<std::int64_t>(n > kMax ? kMax : n);
}

}  // namespace

std::string sqlite_json_path(const field_path& path) {
  std::string out = "$";
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

sql_statement translate_find(std::string_view collection, const query& q, text_check check) {
  param_list params;
  std::string sql = "SELECT id, version, body FROM documents WHERE collection = " +
                    params.add(std::string(collection)) + " AND body IS NOT NULL";
  // Checked, a row that is not JSON gets through the filter and sorts as if every field were
  // missing, so the engine sees it and reports it (its own parse fails). CASE, not AND: SQLite
  // does not promise to evaluate AND's operands in order.
  const bool checked = check == text_check::json_valid;
  if (const auto& root = q.where.root()) {
    const std::string predicate = translate(params, *root);
    sql += checked ? " AND CASE WHEN json_valid(body) THEN " + predicate + " ELSE 1 END"
                   : " AND " + predicate;
  }
  sql += " ORDER BY ";
  for (const sort_key& key : q.sort) sql += sort_terms(params, key, checked) + ", ";
  sql += "id ASC LIMIT ";
  sql += params.add(q.limit ? clamp_to_int64(*q.limit) : std::int64_t{-1});
  sql += " OFFSET " + params.add(clamp_to_int64(q.skip));
  return {std::move(sql), params.take()};
}

}  // namespace eventsourced::sqlite_detail
