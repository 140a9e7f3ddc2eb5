#include "mongodb/bson_json.hpp"

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include <eventsourced/error.hpp>

namespace eventsourced::mongodb_detail {
namespace {

std::string printable(std::string_view key) {
  std::string out;
  for (char c : key) out += c == '\0' ? std::string("\\0") : std::string(1, c);
  return out;
}

void check_utf8(std::string_view text, std::string_view what, std::string_view key) {
  if (!bson_utf8_validate(text.data(), text.size(), /*allow_null=*/true)) {
    throw invalid_argument_error("MongoDB: the " + std::string(what) + " '" + printable(key) +
                                 "' is not valid UTF-8");
  }
}

void check_append(bool ok, std::string_view key) {
  // libbson refuses only when the document would exceed INT32_MAX bytes.
  if (!ok) {
    throw invalid_argument_error("MongoDB: the document is too large to encode (at '" +
                                 printable(key) + "')");
  }
}

int key_length(std::string_view key) {
  if (key.find('\0') != std::string_view::npos) {
    throw invalid_argument_error("MongoDB: the key '" + printable(key) +
                                 "' holds a NUL character, which BSON keys cannot");
  }
  check_utf8(key, "key", key);
  if (key.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    throw invalid_argument_error("MongoDB: a key is too long");
  }
  return static_cast<int>(key.size());
}

}  // namespace

bson_ptr new_bson() {
  return bson_ptr(bson_new());
}

void append_json(bson_t* out, std::string_view key, const json& value, int depth) {
  const int klen = key_length(key);
  const char* k = key.data();
  switch (value.type()) {
    case json::value_t::null:
      check_append(bson_append_null(out, k, klen), key);
      return;
    case json::value_t::boolean:
      check_append(bson_append_bool(out, k, klen, value.get<bool>()), key);
      return;
    case json::value_t::number_integer:
      check_append(bson_append_int64(out, k, klen, value.get<std::int64_t>()), key);
      return;
    case json::value_t::number_unsigned: {
      const auto u = value.get<std::uint64_t>();
      if (u <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        check_append(bson_append_int64(out, k, klen, static_cast<std::int64_t>(u)), key);
        return;
      }
      bson_decimal128_t d;
      if (!bson_decimal128_from_string(std::to_string(u).c_str(), &d)) {
        throw invalid_argument_error("MongoDB: cannot encode " + std::to_string(u));
      }
      check_append(bson_append_decimal128(out, k, klen, &d), key);
      return;
    }
    case json::value_t::number_float: {
      const double d = value.get<double>();
      if (!std::isfinite(d)) {
        check_append(bson_append_null(out, k, klen), key);
      } else {
        check_append(bson_append_double(out, k, klen, d), key);
      }
      return;
    }
    case json::value_t::string: {
      const auto& s = value.get_ref<const std::string&>();
      check_utf8(s, "string at", key);
      if (s.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
        throw invalid_argument_error("MongoDB: a string is too long");
      }
      check_append(bson_append_utf8(out, k, klen, s.data(), static_cast<int>(s.size())), key);
      return;
    }
    case json::value_t::object:
    case json::value_t::array: {
      if (depth + 1 > kMaxNestingDepth) {
        throw invalid_argument_error("MongoDB: the document is nested deeper than " +
                                     std::to_string(kMaxNestingDepth) + " levels (at '" +
                                     printable(key) + "')");
      }
      bson_t child;
      const bool is_array = value.is_array();
      check_append(is_array ? bson_append_array_begin(out, k, klen, &child)
                            : bson_append_document_begin(out, k, klen, &child),
                   key);
      try {
        if (is_array) {
          std::size_t i = 0;
          for (const json& element : value) {
            append_json(&child, std::to_string(i++), element, depth + 1);
          }
        } else {
          for (const auto& [member, element] : value.items()) {
            append_json(&child, member, element, depth + 1);
          }
        }
      } catch (...) {
        // Close the child so that `out` stays a valid (if partial) document to destroy.
        is_array ? bson_append_array_end(out, &child) : bson_append_document_end(out, &child);
        throw;
      }
      check_append(
          is_array ? bson_append_array_end(out, &child) : bson_append_document_end(out, &child),
          key);
      return;
    }
    case json::value_t::binary:
      throw invalid_argument_error("MongoDB: binary JSON values are not supported (at '" +
                                   printable(key) + "')");
    case json::value_t::discarded:
      break;
  }
  throw invalid_argument_error("MongoDB: a discarded JSON value cannot be stored (at '" +
                               printable(key) + "')");
}

bson_ptr to_bson(const json& object, std::size_t max_bytes) {
  if (!object.is_object()) {
    throw invalid_argument_error(std::string("MongoDB: a document must be a JSON object, got ") +
                                 object.type_name());
  }
  bson_ptr out = new_bson();
  for (const auto& [key, value] : object.items()) append_json(out.get(), key, value, 1);
  if (out->len > max_bytes) {
    throw invalid_argument_error("MongoDB: the document is " + std::to_string(out->len) +
                                 " bytes as BSON, more than the " + std::to_string(max_bytes) +
                                 " allowed");
  }
  return out;
}

namespace {

json decimal_to_json(const bson_decimal128_t& d) {
  char text[BSON_DECIMAL128_STRING];
  bson_decimal128_to_string(&d, text);
  const std::string s(text);
  const bool integral = !s.empty() && s.find_first_not_of("-0123456789") == std::string::npos;
  if (integral) {
    try {
      if (s[0] == '-') return json(static_cast<std::int64_t>(std::stoll(s)));
      return json(static_cast<std::uint64_t>(std::stoull(s)));
    } catch (const std::out_of_range&) {
      // beyond 64 bits: as a floating point number below
    }
  }
  try {
    return json(std::stod(s));  // "1.5E+3", "Infinity", "NaN" included
  } catch (const std::exception&) {
    return json(nullptr);
  }
}

json extended_json(const bson_iter_t& it) {
  bson_t holder;
  bson_init(&holder);
  bson_append_iter(&holder, "v", 1, &it);
  char* text = bson_as_relaxed_extended_json(&holder, nullptr);
  bson_destroy(&holder);
  if (text == nullptr) return json(nullptr);
  json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
  bson_free(text);
  if (parsed.is_discarded() || !parsed.contains("v")) return json(nullptr);
  return std::move(parsed["v"]);
}

}  // namespace

json to_json(const bson_iter_t& it) {
  switch (bson_iter_type(&it)) {
    case BSON_TYPE_DOUBLE:
      return json(bson_iter_double(&it));
    case BSON_TYPE_INT32:
      return json(static_cast<std::int64_t>(bson_iter_int32(&it)));
    case BSON_TYPE_INT64:
      return json(bson_iter_int64(&it));
    case BSON_TYPE_BOOL:
      return json(bson_iter_bool(&it));
    case BSON_TYPE_NULL:
    case BSON_TYPE_UNDEFINED:
      return json(nullptr);
    case BSON_TYPE_UTF8: {
      std::uint32_t length = 0;
      const char* s = bson_iter_utf8(&it, &length);
      return json(std::string(s, length));
    }
    case BSON_TYPE_DECIMAL128: {
      bson_decimal128_t d;
      bson_iter_decimal128(&it, &d);
      return decimal_to_json(d);
    }
    case BSON_TYPE_DOCUMENT:
    case BSON_TYPE_ARRAY: {
      const bool is_array = bson_iter_type(&it) == BSON_TYPE_ARRAY;
      json out = is_array ? json::array() : json::object();
      bson_iter_t child;
      if (!bson_iter_recurse(&it, &child)) return out;
      while (bson_iter_next(&child)) {
        if (is_array) {
          out.push_back(to_json(child));
        } else {
          out[std::string(bson_iter_key(&child), bson_iter_key_len(&child))] = to_json(child);
        }
      }
      return out;
    }
    default:
      return extended_json(it);
  }
}

json to_json(const bson_t& document) {
  json out = json::object();
  bson_iter_t it;
  if (!bson_iter_init(&it, &document)) return out;
  while (bson_iter_next(&it)) {
    out[std::string(bson_iter_key(&it), bson_iter_key_len(&it))] = to_json(it);
  }
  return out;
}

}  // namespace eventsourced::mongodb_detail
