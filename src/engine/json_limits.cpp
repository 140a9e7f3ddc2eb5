#include <eventsourced/engine/json_limits.hpp>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include <eventsourced/error.hpp>

#include "engine/json_limits_switch.hpp"

namespace eventsourced {
namespace {

// Only bench/ ever clears it (json_limits_switch.hpp).
std::atomic<bool> checks_on{true};

using kind = json_limit_violation::kind;

// A JSON pointer segment (RFC 6901: '~' as "~0", '/' as "~1"). Error messages travel to clients
// as JSON, which must be valid UTF-8: control and non-ASCII bytes are written as \xNN, and long
// keys are cut.
void append_segment(std::string& out, std::string_view key) {
  constexpr std::size_t kMaxSegmentBytes = 32;
  out += '/';
  for (std::size_t i = 0; i < key.size() && i < kMaxSegmentBytes; ++i) {
    const auto c = static_cast<unsigned char>(key[i]);
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else if (c < 0x20 || c >= 0x7f || c == '\\') {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (key.size() > kMaxSegmentBytes) out += "...";
}

// Builds a pointer from segments given root first; past kShownSegments only the count is kept.
class pointer_builder {
 public:
  void add(std::string_view key) {
    if (count_++ < kShownSegments) append_segment(text_, key);
  }
  void add(std::size_t index) {
    if (count_++ < kShownSegments) text_ += "/" + std::to_string(index);
  }
  std::string finish() && {
    if (count_ > kShownSegments) {
      text_ += "/... (" + std::to_string(count_ - kShownSegments) + " more levels)";
    }
    return std::move(text_);
  }

 private:
  static constexpr std::size_t kShownSegments = 24;
  std::string text_;
  std::size_t count_ = 0;
};

// Recursive, but never deeper than max_depth + 1 frames: it stops at the first level over the
// limit. On a violation, the path is collected while unwinding (leaf first).
class checker {
 public:
  explicit checker(std::size_t max_depth) : max_depth_(max_depth) {}

  std::optional<json_limit_violation> run(const json& value) {
    if (walk(value, 0)) return std::nullopt;
    pointer_builder pointer;
    for (auto it = path_.rbegin(); it != path_.rend(); ++it) {
      if (it->key != nullptr) {
        pointer.add(*it->key);
      } else {
        pointer.add(it->index);
      }
    }
    return json_limit_violation{found_, std::move(pointer).finish()};
  }

 private:
  struct segment {
    const std::string* key;
    std::size_t index;
  };

  // `enclosing`: the containers around value. False on a violation.
  bool walk(const json& value, std::size_t enclosing) {
    switch (value.type()) {
      case json::value_t::object:
        if (enclosing + 1 > max_depth_) return fail(kind::too_deep);
        for (const auto& [key, member] : value.get_ref<const json::object_t&>()) {
          if (!walk(member, enclosing + 1)) {
            path_.push_back({&key, 0});
            return false;
          }
        }
        return true;
      case json::value_t::array: {
        if (enclosing + 1 > max_depth_) return fail(kind::too_deep);
        const auto& items = value.get_ref<const json::array_t&>();
        for (std::size_t i = 0; i < items.size(); ++i) {
          if (!walk(items[i], enclosing + 1)) {
            path_.push_back({nullptr, i});
            return false;
          }
        }
        return true;
      }
      case json::value_t::number_float:
        return std::isfinite(value.get<double>()) || fail(kind::not_finite);
      case json::value_t::discarded:
        return fail(kind::discarded);
      default:
        return true;
    }
  }

  bool fail(kind k) {
    found_ = k;
    return false;
  }

  std::size_t max_depth_;
  kind found_ = kind::too_deep;
  std::vector<segment> path_;
};

// A SAX handler building the value like nlohmann's own DOM parser (iteratively), but never
// deeper than max_depth, and without non-finite numbers. On a violation it stops the parse
// (strict) or puts null in the offending place and goes on (lenient), skipping the events of a
// too-deep value without building it.
class checked_builder {
 public:
  checked_builder(std::size_t max_depth, bool lenient) : max_depth_(max_depth), lenient_(lenient) {}

  json root;
  std::optional<json_limit_violation> violation;
  std::string syntax_error;

  bool null() { return put(json()); }
  bool boolean(bool v) { return put(json(v)); }
  bool number_integer(json::number_integer_t v) { return put(json(v)); }
  bool number_unsigned(json::number_unsigned_t v) { return put(json(v)); }
  bool number_float(json::number_float_t v, const std::string&) {
    if (skipping_ == 0 && !std::isfinite(v)) {
      if (!violate(kind::not_finite)) return false;
      return put(json());
    }
    return put(json(v));
  }
  bool string(json::string_t& v) { return put(json(std::move(v))); }
  bool binary(json::binary_t& v) { return put(json(std::move(v))); }
  bool start_object(std::size_t) { return open(json::value_t::object); }
  bool key(json::string_t& k) {
    if (skipping_ != 0) return true;
    level& top = stack_.back();
    auto& members = top.value->get_ref<json::object_t&>();
    auto [it, inserted] = members.try_emplace(std::move(k));
    if (!inserted) it->second = json();  // a repeated key: the last one wins, as in json::parse
    top.key = &it->first;
    top.slot = &it->second;
    return true;
  }
  bool end_object() { return close(); }
  bool start_array(std::size_t) { return open(json::value_t::array); }
  bool end_array() { return close(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) {
    syntax_error = e.what();
    return false;
  }

 private:
  struct level {
    json* value;
    const std::string* key = nullptr;  // objects: the member being read
    json* slot = nullptr;              // objects: where its value goes
  };

  // Where the next value goes, as a pointer (before it is placed).
  std::string next_pointer() const {
    pointer_builder pointer;
    for (std::size_t i = 0; i < stack_.size(); ++i) {
      const level& l = stack_[i];
      if (l.value->is_object()) {
        pointer.add(*l.key);
      } else {
        // Below the top, the child being built is the array's last item; at the top, the next.
        const std::size_t size = l.value->size();
        pointer.add(i + 1 < stack_.size() ? size - 1 : size);
      }
    }
    return std::move(pointer).finish();
  }

  // Records the first violation. False: stop parsing (strict mode).
  bool violate(kind k) {
    if (!violation) violation = json_limit_violation{k, next_pointer()};
    return lenient_;
  }

  json* place(json&& v) {
    if (stack_.empty()) {
      root = std::move(v);
      return &root;
    }
    level& top = stack_.back();
    if (top.value->is_array()) {
      auto& items = top.value->get_ref<json::array_t&>();
      items.push_back(std::move(v));
      return &items.back();
    }
    *top.slot = std::move(v);
    return top.slot;
  }

  bool put(json&& v) {
    if (skipping_ == 0) place(std::move(v));
    return true;
  }

  bool open(json::value_t type) {
    if (skipping_ != 0) {
      ++skipping_;
      return true;
    }
    if (stack_.size() + 1 > max_depth_) {
      if (!violate(kind::too_deep)) return false;
      place(json());
      skipping_ = 1;
      return true;
    }
    stack_.push_back({place(json(type))});
    return true;
  }

  bool close() {
    if (skipping_ != 0) {
      --skipping_;
    } else {
      stack_.pop_back();
    }
    return true;
  }

  std::size_t max_depth_;
  bool lenient_;
  std::vector<level> stack_;
  std::size_t skipping_ = 0;  // > 0: inside a value over the depth limit, this many levels down
};

checked_builder run_parse(std::string_view text, std::size_t max_depth, bool lenient) {
  checked_builder builder(max_depth, lenient);
  json::sax_parse(text, &builder);
  return builder;
}

}  // namespace

void json_limit_violation::raise(std::string_view what, std::size_t max_depth) const {
  const std::string where = pointer.empty() ? std::string() : " at " + pointer;
  switch (problem) {
    case kind::too_deep:
      throw json_depth_error(std::string(what) + " is nested deeper than the limit of " +
                                 std::to_string(max_depth) + " levels" + where,
                             max_depth);
    case kind::not_finite:
      throw invalid_argument_error(std::string(what) + ": not a finite number" + where +
                                   " (JSON has no NaN or infinity)");
    case kind::discarded:
      break;
  }
  throw invalid_argument_error(std::string(what) + ": a discarded value" + where +
                               " cannot be stored");
}

std::optional<json_limit_violation> find_json_violation(const json& value, std::size_t max_depth) {
  if (!checks_on.load(std::memory_order_relaxed)) return std::nullopt;
  return checker(max_depth).run(value);
}

void check_json(const json& value, std::size_t max_depth, std::string_view what) {
  if (auto violation = find_json_violation(value, max_depth)) violation->raise(what, max_depth);
}

void validate_max_json_depth(std::size_t max_depth, std::string_view option) {
  if (max_depth < 1 || max_depth > kMaxJsonDepthSetting) {
    throw invalid_argument_error(std::string(option) + " must be 1.." +
                                 std::to_string(kMaxJsonDepthSetting) + ", got " +
                                 std::to_string(max_depth));
  }
}

json parse_json(std::string_view text, std::size_t max_depth, std::string_view what) {
  if (!checks_on.load(std::memory_order_relaxed)) {
    try {
      return json::parse(text);
    } catch (const json::exception& e) {
      throw serialization_error(std::string(what) + " is not valid JSON: " + e.what());
    }
  }
  checked_builder b = run_parse(text, max_depth, /*lenient=*/false);
  if (b.violation) b.violation->raise(what, max_depth);
  if (!b.syntax_error.empty()) {
    throw serialization_error(std::string(what) + " is not valid JSON: " + b.syntax_error);
  }
  return std::move(b.root);
}

lenient_json parse_json_lenient(std::string_view text, std::size_t max_depth) {
  checked_builder b = run_parse(text, max_depth, /*lenient=*/true);
  if (!b.syntax_error.empty()) {
    throw serialization_error("not valid JSON: " + b.syntax_error);
  }
  return {std::move(b.root), std::move(b.violation)};
}

namespace engine_detail {

void set_json_checks_for_benchmark(bool on) noexcept {
  checks_on.store(on);
}

}  // namespace engine_detail
}  // namespace eventsourced
