#include <eventsourced/storage/update_operators.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <eventsourced/engine/json_limits.hpp>
#include <eventsourced/engine/query.hpp>
#include <eventsourced/error.hpp>

namespace eventsourced {
namespace {

// The operation the caller sees: apply_update is what update_one runs.
constexpr std::string_view kContext = "update_one: ";

// Writing to index i of a shorter array pads it with nulls. MongoDB refuses to pad by more than
// this many elements; so do we, so that a typo cannot allocate gigabytes — and in all, for one
// update: forty such paths would still allocate a gigabyte (about 16 bytes per null).
constexpr std::size_t kMaxArrayPadding = 1'500'000;

enum class update_op { set, unset, inc, mul, min, max, push, pull, add_to_set, rename };

struct operator_name {
  std::string_view name;
  update_op op;
};

constexpr operator_name kOperators[] = {
    {"$set", update_op::set},
    {"$unset", update_op::unset},
    {"$inc", update_op::inc},
    {"$mul", update_op::mul},
    {"$min", update_op::min},
    {"$max", update_op::max},
    {"$push", update_op::push},
    {"$pull", update_op::pull},
    {"$addToSet", update_op::add_to_set},
    {"$rename", update_op::rename},
};

[[noreturn]] void fail(const std::string& what) {
  throw invalid_argument_error(std::string(kContext) + what);
}

// Tests array elements against a condition, with query.hpp's semantics: a filter operand such as
// {"$gte": 5} for $pull, or equality (numbers numerically, objects and arrays by canonical text)
// for $pull of a plain value and for $addToSet's "already present". Reusing filter keeps update
// and query equality one rule.
class element_matcher {
 public:
  explicit element_matcher(const json& condition)
      : filter_(filter::parse(json{{kField, condition}})) {}
  static element_matcher equal_to(const json& value) {
    return element_matcher(json{{"$eq", value}});
  }
  bool matches(const json& element) const { return filter_.matches(json{{kField, element}}); }

 private:
  // Named so that a filter error reads naturally: "unknown operator '$x' on 'element'".
  static constexpr const char* kField = "element";
  filter filter_;
};

// One {path: operand} entry of one operator, validated before the document is touched so that
// an invalid update fails the same way whatever document it meets.
struct path_update {
  update_op op;
  std::string_view op_name;
  field_path path;
  const json* operand;
  std::vector<json> values;                // $push, $addToSet: the elements to add
  std::optional<element_matcher> matcher;  // $pull
  std::optional<field_path> target;        // $rename
  std::size_t* padded = nullptr;           // the nulls this update has padded arrays with so far

  [[noreturn]] void fail_here(const std::string& why) const {
    fail(std::string(op_name) + " on '" + path.str() + "': " + why);
  }
};

// Signed or unsigned: json::parse gives non-negative integers the unsigned kind.
bool is_integer(const json& v) {
  return v.is_number_integer();
}

// The value of an integer as int64; an unsigned value beyond int64 is refused rather than wrapped.
std::optional<std::int64_t> as_int64(const json& v) {
  if (v.is_number_unsigned()) {
    const auto u = v.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return std::nullopt;
    }
    return static_cast<std::int64_t>(u);
  }
  return v.get<std::int64_t>();
}

bool starts_with_dollar(const std::string& key) {
  return !key.empty() && key.front() == '$';
}

// {"$gte": 5}: every key an operator. A mix of operators and fields is refused.
bool is_operator_object(const path_update& u, const json& v) {
  if (!v.is_object() || v.empty()) return false;
  std::size_t operators = 0;
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (starts_with_dollar(it.key())) ++operators;
  }
  if (operators == 0) return false;
  if (operators != v.size()) u.fail_here("the operand mixes operators and plain fields");
  return true;
}

void validate_number_operand(const path_update& u) {
  const json& v = *u.operand;
  if (!v.is_number()) {
    u.fail_here(std::string("the operand is a ") + v.type_name() + ", expected a number");
  }
  if (v.is_number_float() && !std::isfinite(v.get<double>())) {
    u.fail_here("the operand is not a finite number");
  }
  if (is_integer(v) && !as_int64(v)) u.fail_here("the operand is beyond the 64-bit integer range");
}

// $push / $addToSet: a single value, or {"$each": [values]}.
std::vector<json> values_to_add(const path_update& u) {
  const json& v = *u.operand;
  if (!is_operator_object(u, v)) return {v};
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (it.key() != "$each") {
      u.fail_here("unsupported modifier '" + it.key() + "' (only $each is supported)");
    }
  }
  const json& each = v.at("$each");
  if (!each.is_array()) {
    u.fail_here(std::string("$each takes an array, got a ") + each.type_name());
  }
  return {each.begin(), each.end()};
}

field_path parse_path(std::string_view op_name, const std::string& dotted) {
  try {
    return field_path::parse(dotted);
  } catch (const invalid_argument_error& e) {
    fail(std::string(op_name) + ": " + e.what());
  }
}

bool is_prefix_of(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  return a.size() <= b.size() && std::equal(a.begin(), a.end(), b.begin());
}

void validate_operand(path_update& u) {
  switch (u.op) {
    case update_op::set:
    case update_op::unset:  // MongoDB ignores $unset's operand; so do we
      return;
    case update_op::inc:
    case update_op::mul:
      validate_number_operand(u);
      return;
    case update_op::min:
    case update_op::max:
      if (u.operand->is_string()) return;
      if (!u.operand->is_number()) {
        u.fail_here(std::string("the operand is a ") + u.operand->type_name() +
                    ", expected a number or a string");
      }
      validate_number_operand(u);
      return;
    case update_op::push:
    case update_op::add_to_set:
      u.values = values_to_add(u);
      return;
    case update_op::pull:
      try {
        u.matcher = is_operator_object(u, *u.operand) ? element_matcher(*u.operand)
                                                      : element_matcher::equal_to(*u.operand);
      } catch (const invalid_argument_error& e) {
        u.fail_here(e.what());
      }
      return;
    case update_op::rename: {
      if (!u.operand->is_string()) {
        u.fail_here(std::string("the target must be a string path, got a ") +
                    u.operand->type_name());
      }
      u.target = parse_path(u.op_name, u.operand->get<std::string>());
      const auto& source = u.path.segments();
      const auto& target = u.target->segments();
      if (source == target) u.fail_here("the target is the source");
      if (is_prefix_of(source, target)) {
        u.fail_here("the target '" + u.target->str() + "' is inside the source");
      }
      if (is_prefix_of(target, source)) {
        u.fail_here("the source is inside the target '" + u.target->str() + "'");
      }
      return;
    }
  }
}

// Array indexes in a path compare by value ("a.01" and "a.1" are the same element).
std::vector<std::string> conflict_key(const field_path& p) {
  std::vector<std::string> key = p.segments();
  for (std::size_t i = 0; i < key.size(); ++i) {
    if (!p.is_index(i)) continue;
    const std::size_t first = key[i].find_first_not_of('0');
    key[i] = first == std::string::npos ? "0" : key[i].substr(first);
  }
  return key;
}

// MongoDB's conflict rule: no two operators may touch one path, or a path and one inside it,
// because the result would depend on the order they ran in.
void check_conflicts(const std::vector<path_update>& updates) {
  struct touched {
    std::vector<std::string> key;
    const path_update* by;
    const field_path* path;
  };
  std::vector<touched> all;
  for (const path_update& u : updates) {
    all.push_back({conflict_key(u.path), &u, &u.path});
    if (u.target) all.push_back({conflict_key(*u.target), &u, &*u.target});
  }
  // Sorted, every path that has another as a prefix sorts right after it or after another path
  // with that same prefix, so comparing neighbours finds a conflict if there is one. (A $rename's
  // source and target never overlap: validate_operand refused that.)
  std::sort(all.begin(), all.end(),
            [](const touched& a, const touched& b) { return a.key < b.key; });
  for (std::size_t i = 1; i < all.size(); ++i) {
    const touched& a = all[i - 1];
    const touched& b = all[i];
    if (is_prefix_of(a.key, b.key)) {
      fail(std::string(b.by->op_name) + " on '" + b.path->str() + "' conflicts with " +
           std::string(a.by->op_name) + " on '" + a.path->str() + "'");
    }
  }
}

std::vector<path_update> parse_update(const json& update) {
  if (!update.is_object()) {
    fail(std::string("the update must be an object of operators, got a ") + update.type_name());
  }
  if (update.empty()) fail("the update is empty; it needs at least one operator such as $set");
  const std::string* plain_field = nullptr;
  const std::string* some_operator = nullptr;
  for (auto it = update.begin(); it != update.end(); ++it) {
    if (starts_with_dollar(it.key())) {
      some_operator = &it.key();
    } else {
      plain_field = &it.key();
    }
  }
  if (plain_field != nullptr && some_operator != nullptr) {
    fail("the update mixes operators ('" + *some_operator + "') and plain fields ('" +
         *plain_field + "')");
  }
  if (plain_field != nullptr) {
    fail("the update has no operators (plain field '" + *plain_field +
         "'); use {\"$set\": {...}} to change fields");
  }

  std::vector<path_update> updates;
  for (const auto& [name, paths] : update.items()) {
    const auto known = std::find_if(std::begin(kOperators), std::end(kOperators),
                                    [&n = name](const operator_name& o) { return o.name == n; });
    if (known == std::end(kOperators)) {
      fail("unknown operator '" + name +
           "' (supported: $set $unset $inc $mul $min $max $push $pull $addToSet $rename)");
    }
    if (!paths.is_object()) {
      fail(name + " takes an object of {path: operand}, got a " + paths.type_name());
    }
    for (const auto& [dotted, operand] : paths.items()) {
      path_update u{known->op, known->name, parse_path(known->name, dotted), &operand, {}, {}, {}};
      validate_operand(u);
      updates.push_back(std::move(u));
    }
  }
  check_conflicts(updates);
  return updates;
}

std::size_t index_of(const std::string& segment) {
  // field_path::parse keeps index segments to 9 digits, so this cannot overflow.
  return static_cast<std::size_t>(std::stoul(segment));
}

std::string prefix_of(const field_path& p, std::size_t segments) {
  std::string s;
  for (std::size_t i = 0; i < segments; ++i) {
    if (i > 0) s += '.';
    s += p.segments()[i];
  }
  return s;
}

// Where the last segment of a path lives: its container (an object or an array) and the slot in it.
class location {
 public:
  location(json& container, const field_path& path) : container_(&container), path_(&path) {}

  json* get() const {
    const std::string& segment = path_->segments().back();
    if (container_->is_array()) {
      const std::size_t i = index_of(segment);
      return i < container_->size() ? &(*container_)[i] : nullptr;
    }
    const auto it = container_->find(segment);
    return it == container_->end() ? nullptr : &*it;
  }

  // Removes the slot if it exists. An array element becomes null rather than disappearing, as in
  // MongoDB, so that the indexes of the elements after it do not shift.
  void remove() const {
    const std::string& segment = path_->segments().back();
    if (container_->is_array()) {
      const std::size_t i = index_of(segment);
      if (i < container_->size()) (*container_)[i] = nullptr;
    } else {
      container_->erase(segment);
    }
  }

  void assign(json value) const {
    const std::string& segment = path_->segments().back();
    if (container_->is_array()) {
      const std::size_t i = index_of(segment);
      if (i >= container_->size()) container_->get_ref<json::array_t&>().resize(i + 1);
      (*container_)[i] = std::move(value);
    } else {
      (*container_)[segment] = std::move(value);
    }
  }

 private:
  json* container_;
  const field_path* path_;
};

// Walks to the container of the path's last segment, creating what is missing on the way: an
// object, or an array when the next segment is an index (so that the query that reads the path
// back finds the value). Throws when the path runs through a scalar, uses a field name in an
// array, or an index in an object. With allow_arrays false, any array on the way is refused.
location walk_creating(const path_update& u, json& doc, const field_path& path, bool allow_arrays) {
  json* cur = &doc;
  const std::size_t n = path.segments().size();
  for (std::size_t i = 0;; ++i) {
    const std::string& segment = path.segments()[i];
    const bool index = path.is_index(i);
    auto where = [&] {
      return i == 0 ? std::string("the document") : "'" + prefix_of(path, i) + "'";
    };
    if (cur->is_array()) {
      if (!allow_arrays)
        u.fail_here(where() + " is an array, and $rename cannot move fields into arrays");
      if (!index) u.fail_here(where() + " is an array, and '" + segment + "' is not an index");
      const std::size_t at = index_of(segment);
      if (at > cur->size()) {
        const std::size_t padding = at - cur->size();
        if (padding > kMaxArrayPadding ||
            (u.padded != nullptr && *u.padded + padding > kMaxArrayPadding)) {
          u.fail_here("index " + segment + " would pad " + where() + " with more than " +
                      std::to_string(kMaxArrayPadding) + " nulls (in all, for one update)");
        }
        if (u.padded != nullptr) *u.padded += padding;
      }
    } else if (cur->is_object()) {
      if (index) {
        u.fail_here(where() + " is an object, and '" + segment + "' is an array index");
      }
    } else {
      u.fail_here(where() + " is a " + cur->type_name() + ", not an object or an array");
    }
    location here(*cur, path);
    if (i + 1 == n) return here;
    // Not the last segment: descend, creating the intermediate value if needed.
    json* next = nullptr;
    if (cur->is_array()) {
      const std::size_t at = index_of(segment);
      if (at < cur->size()) next = &(*cur)[at];
    } else {
      const auto it = cur->find(segment);
      if (it != cur->end()) next = &*it;
    }
    if (next == nullptr) {
      json created = path.is_index(i + 1) ? json::array() : json::object();
      if (cur->is_array()) {
        const std::size_t at = index_of(segment);
        if (at >= cur->size()) cur->get_ref<json::array_t&>().resize(at + 1);
        (*cur)[at] = std::move(created);
        next = &(*cur)[at];
      } else {
        next = &((*cur)[segment] = std::move(created));
      }
    }
    cur = next;
  }
}

// Walks to the container of the path's last segment without changing anything; nullopt when the
// path does not exist (a missing field, an index past the end, a scalar on the way).
std::optional<location> walk_existing(json& doc, const field_path& path,
                                      bool* crossed_array = nullptr) {
  json* cur = &doc;
  const std::size_t n = path.segments().size();
  for (std::size_t i = 0;; ++i) {
    const std::string& segment = path.segments()[i];
    json* next = nullptr;
    if (cur->is_array()) {
      if (crossed_array != nullptr) *crossed_array = true;
      if (!path.is_index(i)) return std::nullopt;
      if (i + 1 == n) return location(*cur, path);
      const std::size_t at = index_of(segment);
      if (at < cur->size()) next = &(*cur)[at];
    } else if (cur->is_object()) {
      if (path.is_index(i)) return std::nullopt;
      if (i + 1 == n) return location(*cur, path);
      const auto it = cur->find(segment);
      if (it != cur->end()) next = &*it;
    }
    if (next == nullptr) return std::nullopt;
    cur = next;
  }
}

[[noreturn]] void fail_field_type(const path_update& u, const json& field, const char* expected) {
  u.fail_here(std::string("field is a ") + field.type_name() + ", expected " + expected);
}

json arithmetic(const path_update& u, const json& field) {
  const json& operand = *u.operand;
  const bool multiply = u.op == update_op::mul;
  if (is_integer(field) && is_integer(operand)) {
    const std::optional<std::int64_t> a = as_int64(field);
    if (!a) u.fail_here("field is beyond the 64-bit integer range");
    const std::int64_t b = *as_int64(operand);  // validated by validate_number_operand
    std::int64_t result = 0;
    const bool overflow =
        multiply ? __builtin_mul_overflow(*a, b, &result) : __builtin_add_overflow(*a, b, &result);
    if (overflow) u.fail_here("the result overflows a 64-bit integer");
    return result;
  }
  const double a = field.get<double>();
  const double b = operand.get<double>();
  const double result = multiply ? a * b : a + b;
  // JSON has no infinity or NaN; storing one would silently become null.
  if (!std::isfinite(result)) u.fail_here("the result is not a finite number");
  return result;
}

void apply_arithmetic(const path_update& u, json& doc) {
  const location loc = walk_creating(u, doc, u.path, true);
  const json* field = loc.get();
  if (field == nullptr) {
    // As MongoDB: $inc sets a missing field to the increment; $mul sets it to zero of the
    // multiplier's kind.
    if (u.op == update_op::inc) {
      loc.assign(*u.operand);
    } else {
      loc.assign(is_integer(*u.operand) ? json(std::int64_t{0}) : json(0.0));
    }
    return;
  }
  if (!field->is_number()) fail_field_type(u, *field, "a number");
  loc.assign(arithmetic(u, *field));
}

void apply_min_max(const path_update& u, json& doc) {
  const location loc = walk_creating(u, doc, u.path, true);
  const json* field = loc.get();
  const json& operand = *u.operand;
  if (field == nullptr) {
    loc.assign(operand);
    return;
  }
  if (operand.is_number() && !field->is_number()) fail_field_type(u, *field, "a number");
  if (operand.is_string() && !field->is_string()) fail_field_type(u, *field, "a string");
  // Ordered as $gt/$lt order them in queries (query.hpp): numbers by value, integers exactly
  // (json's own operator< wraps unsigned ones above INT64_MAX), strings bytewise. An equal value
  // is left as it is, kind included (5 stays 5 under $max 5.0).
  const int c = compare_for_sort(&operand, field);
  const bool replace = u.op == update_op::min ? c < 0 : c > 0;
  if (replace) loc.assign(operand);
}

void apply_add(const path_update& u, json& doc) {
  const location loc = walk_creating(u, doc, u.path, true);
  json* field = loc.get();
  if (field == nullptr) {
    loc.assign(json::array());
    field = loc.get();
  } else if (!field->is_array()) {
    fail_field_type(u, *field, "an array");
  }
  for (const json& value : u.values) {
    if (u.op == update_op::add_to_set) {
      const element_matcher same = element_matcher::equal_to(value);
      if (std::any_of(field->begin(), field->end(),
                      [&](const json& element) { return same.matches(element); })) {
        continue;
      }
    }
    field->push_back(value);
  }
}

void apply_unset(const path_update& u, json& doc) {
  const std::optional<location> loc = walk_existing(doc, u.path);
  if (loc) loc->remove();
}

void apply_pull(const path_update& u, json& doc) {
  const std::optional<location> loc = walk_existing(doc, u.path);
  if (!loc) return;
  json* field = loc->get();
  if (field == nullptr) return;
  if (!field->is_array()) fail_field_type(u, *field, "an array");
  auto& elements = field->get_ref<json::array_t&>();
  elements.erase(std::remove_if(elements.begin(), elements.end(),
                                [&](const json& element) { return u.matcher->matches(element); }),
                 elements.end());
}

void apply_rename(const path_update& u, json& doc) {
  bool crossed_array = false;
  const std::optional<location> source = walk_existing(doc, u.path, &crossed_array);
  if (!source || source->get() == nullptr) return;
  if (crossed_array)
    u.fail_here("the path crosses an array, and $rename cannot move array elements");
  json value = std::move(*source->get());
  source->remove();
  walk_creating(u, doc, *u.target, false).assign(std::move(value));
}

void apply_one(const path_update& u, json& doc) {
  switch (u.op) {
    case update_op::set:
      walk_creating(u, doc, u.path, true).assign(*u.operand);
      return;
    case update_op::unset:
      apply_unset(u, doc);
      return;
    case update_op::inc:
    case update_op::mul:
      apply_arithmetic(u, doc);
      return;
    case update_op::min:
    case update_op::max:
      apply_min_max(u, doc);
      return;
    case update_op::push:
    case update_op::add_to_set:
      apply_add(u, doc);
      return;
    case update_op::pull:
      apply_pull(u, doc);
      return;
    case update_op::rename:
      apply_rename(u, doc);
      return;
  }
}

}  // namespace

json apply_update(const json& document, const json& update) {
  // Before anything copies or compares them (the store checks its own, lower limit first).
  check_json(update, kMaxJsonDepth, "the update");
  check_json(document, kMaxJsonDepth, "the document to update");
  std::vector<path_update> updates = parse_update(update);
  if (!document.is_object()) {
    fail(std::string("the document must be an object, got a ") + document.type_name());
  }
  // Conflicting paths were refused above, so the operators commute and their order is free.
  json result = document;
  std::size_t padded = 0;
  for (path_update& u : updates) {
    u.padded = &padded;
    apply_one(u, result);
  }
  return result;
}

}  // namespace eventsourced
