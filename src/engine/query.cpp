#include <eventsourced/engine/json_limits.hpp>
#include <eventsourced/engine/query.hpp>
#include <eventsourced/error.hpp>

#include <algorithm>
#include <string>

namespace eventsourced {
namespace {

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

[[noreturn]] void invalid_filter(const std::string& why) {
  throw invalid_argument_error("invalid filter: " + why);
}

// Kinds in the documented sort order.
int kind_rank(const json* v) {
  if (v == nullptr || v->is_null()) return 0;
  if (v->is_number()) return 1;
  if (v->is_string()) return 2;
  if (v->is_object()) return 3;
  if (v->is_array()) return 4;
  return 5;  // boolean
}

template <typename T>
int three_way(const T& a, const T& b) {
  return a < b ? -1 : (b < a ? 1 : 0);
}

// Numbers compare by value: integers exactly (also unsigned ones above INT64_MAX, which
// nlohmann's own operators wrap), anything involving a double as doubles.
int compare_numbers(const json& a, const json& b) {
  if (a.is_number_float() || b.is_number_float())
    return three_way(a.get<double>(), b.get<double>());
  const bool a_neg = a.is_number_integer() && !a.is_number_unsigned() && a.get<std::int64_t>() < 0;
  const bool b_neg = b.is_number_integer() && !b.is_number_unsigned() && b.get<std::int64_t>() < 0;
  if (a_neg != b_neg) return a_neg ? -1 : 1;
  if (a_neg) return three_way(a.get<std::int64_t>(), b.get<std::int64_t>());
  return three_way(a.get<std::uint64_t>(), b.get<std::uint64_t>());
}

bool values_equal(const json* field, const json& operand) {
  if (operand.is_null()) return field == nullptr || field->is_null();
  if (field == nullptr) return false;
  if (operand.is_number()) return field->is_number() && compare_numbers(*field, operand) == 0;
  if (operand.is_string()) return field->is_string() && *field == operand;
  if (operand.is_boolean()) return field->is_boolean() && *field == operand;
  // Objects and arrays: canonical text, as stored (nlohmann dumps keys sorted).
  return field->type() == operand.type() && field->dump() == operand.dump();
}

bool range_matches(filter_op op, const json* field, const json& operand) {
  if (field == nullptr) return false;
  int c = 0;
  if (operand.is_number()) {
    if (!field->is_number()) return false;
    c = compare_numbers(*field, operand);
  } else {
    if (!field->is_string()) return false;
    c = field->get_ref<const std::string&>().compare(operand.get_ref<const std::string&>());
  }
  switch (op) {
    case filter_op::gt:
      return c > 0;
    case filter_op::gte:
      return c >= 0;
    case filter_op::lt:
      return c < 0;
    default:
      return c <= 0;
  }
}

bool node_matches(const filter_node& node, const json& doc) {
  switch (node.op) {
    case filter_op::all_of:
      return std::all_of(node.children.begin(), node.children.end(),
                         [&](const filter_node& c) { return node_matches(c, doc); });
    case filter_op::any_of:
      return std::any_of(node.children.begin(), node.children.end(),
                         [&](const filter_node& c) { return node_matches(c, doc); });
    default:
      break;
  }
  const json* field = node.path->resolve(doc);
  switch (node.op) {
    case filter_op::eq:
      return values_equal(field, node.operand);
    case filter_op::ne:
      return !values_equal(field, node.operand);
    case filter_op::in:
    case filter_op::nin: {
      const bool found = std::any_of(node.operand.begin(), node.operand.end(),
                                     [&](const json& v) { return values_equal(field, v); });
      return node.op == filter_op::in ? found : !found;
    }
    case filter_op::exists:
      return (field != nullptr) == node.operand.get<bool>();
    default:
      return range_matches(node.op, field, node.operand);
  }
}

filter_node leaf(filter_op op, const field_path& path, const json& operand) {
  filter_node n;
  n.op = op;
  n.path = path;
  n.operand = operand;
  return n;
}

filter_node parse_operator(const field_path& path, const std::string& op, const json& operand) {
  const std::string where = "'" + op + "' on '" + path.str() + "'";
  if (op == "$eq") return leaf(filter_op::eq, path, operand);
  if (op == "$ne") return leaf(filter_op::ne, path, operand);
  if (op == "$gt" || op == "$gte" || op == "$lt" || op == "$lte") {
    if (!operand.is_number() && !operand.is_string()) {
      invalid_filter(where + " needs a number or a string, got " + operand.type_name());
    }
    const filter_op fop = op == "$gt"    ? filter_op::gt
                          : op == "$gte" ? filter_op::gte
                          : op == "$lt"  ? filter_op::lt
                                         : filter_op::lte;
    return leaf(fop, path, operand);
  }
  if (op == "$in" || op == "$nin") {
    if (!operand.is_array()) invalid_filter(where + " needs an array, got " + operand.type_name());
    return leaf(op == "$in" ? filter_op::in : filter_op::nin, path, operand);
  }
  if (op == "$exists") {
    if (!operand.is_boolean()) invalid_filter(where + " needs true or false");
    return leaf(filter_op::exists, path, operand);
  }
  invalid_filter("unknown operator " + where +
                 " (supported: $eq $ne $gt $gte $lt $lte $in $nin $exists $and $or)");
}

filter_node parse_object(const json& spec);

filter_node combine(filter_op op, std::vector<filter_node> children) {
  if (op == filter_op::all_of && children.size() == 1) return std::move(children.front());
  filter_node n;
  n.op = op;
  n.children = std::move(children);
  return n;
}

filter_node parse_logical(const std::string& key, const json& value) {
  if (!value.is_array() || value.empty()) invalid_filter("'" + key + "' needs a non-empty array");
  std::vector<filter_node> children;
  for (const json& item : value) {
    if (!item.is_object() || item.empty()) {
      invalid_filter("every element of '" + key + "' must be a non-empty object");
    }
    children.push_back(parse_object(item));
  }
  if (key == "$or") {
    filter_node n;
    n.op = filter_op::any_of;
    n.children = std::move(children);
    return n;
  }
  return combine(filter_op::all_of, std::move(children));
}

bool is_operator_object(const json& value) {
  return value.is_object() && !value.empty() && value.begin().key().starts_with('$');
}

filter_node parse_object(const json& spec) {
  std::vector<filter_node> children;
  for (const auto& [key, value] : spec.items()) {
    if (key == "$and" || key == "$or") {
      children.push_back(parse_logical(key, value));
      continue;
    }
    if (key.starts_with('$')) {
      invalid_filter("unknown top-level operator '" + key + "' (supported: $and $or)");
    }
    const field_path path = field_path::parse(key);
    if (!is_operator_object(value)) {
      children.push_back(leaf(filter_op::eq, path, value));
      continue;
    }
    for (const auto& [op, operand] : value.items()) {
      if (!op.starts_with('$')) {
        invalid_filter("'" + key + "' mixes operators and plain fields ('" + op + "')");
      }
      children.push_back(parse_operator(path, op, operand));
    }
  }
  return combine(filter_op::all_of, std::move(children));
}

}  // namespace

field_path field_path::parse(std::string_view dotted) {
  if (dotted.empty()) throw invalid_argument_error("invalid field path: it is empty");
  field_path p;
  p.dotted_ = std::string(dotted);
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = dotted.find('.', start);
    const std::string_view seg =
        dotted.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    auto fail = [&](const char* why) {
      constexpr std::size_t kShown = 200;
      const bool cut = p.dotted_.size() > kShown;
      throw invalid_argument_error("invalid field path '" + p.dotted_.substr(0, kShown) +
                                   (cut ? "...'" : "'") + ": " + why);
    };
    // A path names a value nested at least as deep as its segments.
    if (p.segments_.size() == kMaxJsonDepth) fail("it has more segments than kMaxJsonDepth");
    if (seg.empty()) fail("it has an empty segment");
    if (seg.front() == '$') fail("a segment may not start with '$'");
    for (char c : seg) {
      if (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20) {
        fail("segments may not contain '\"', '\\' or control characters");
      }
    }
    if (all_digits(seg) && seg.size() > 9) fail("an array index is too large");
    p.segments_.emplace_back(seg);
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return p;
}

bool field_path::is_index(std::size_t i) const {
  return all_digits(segments_.at(i));
}

const json* field_path::resolve(const json& doc) const {
  const json* cur = &doc;
  for (std::size_t i = 0; i < segments_.size(); ++i) {
    if (is_index(i)) {
      const std::size_t index = std::stoul(segments_[i]);
      if (!cur->is_array() || index >= cur->size()) return nullptr;
      cur = &(*cur)[index];
    } else {
      if (!cur->is_object()) return nullptr;
      const auto it = cur->find(segments_[i]);
      if (it == cur->end()) return nullptr;
      cur = &*it;
    }
  }
  return cur;
}

filter filter::parse(const json& spec, std::size_t max_depth) {
  // Before anything recursive (parse_object, the operands' copies) runs on it.
  check_json(spec, max_depth, "filter");
  if (spec.is_null()) return filter{};
  if (!spec.is_object())
    invalid_filter(std::string("it must be a JSON object, got ") + spec.type_name());
  filter f;
  if (!spec.empty()) f.root_ = parse_object(spec);
  return f;
}

bool filter::matches(const json& doc) const {
  return !root_ || node_matches(*root_, doc);
}

int compare_for_sort(const json* a, const json* b) {
  const int ra = kind_rank(a);
  const int rb = kind_rank(b);
  if (ra != rb) return ra < rb ? -1 : 1;
  switch (ra) {
    case 0:
      return 0;
    case 1:
      return compare_numbers(*a, *b);
    case 2: {
      const int c = a->get_ref<const std::string&>().compare(b->get_ref<const std::string&>());
      return c < 0 ? -1 : (c > 0 ? 1 : 0);
    }
    case 5:
      return three_way(a->get<bool>(), b->get<bool>());
    default: {
      const int c = a->dump().compare(b->dump());
      return c < 0 ? -1 : (c > 0 ? 1 : 0);
    }
  }
}

}  // namespace eventsourced
