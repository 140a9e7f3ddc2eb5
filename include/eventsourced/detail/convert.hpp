// Conversions between a user's type T and a document body, with errors that name the document.
#pragma once

#include <string>
#include <string_view>
#include <type_traits>

#include <nlohmann/json.hpp>

#include <eventsourced/error.hpp>

namespace eventsourced::detail {

using json = nlohmann::json;

template <typename T>
T from_body(const json& body, std::string_view collection, std::string_view id) {
  if constexpr (std::is_same_v<T, json>) {
    return body;
  } else {
    try {
      return body.get<T>();
    } catch (const json::exception& e) {
      throw serialization_error("document '" + std::string(collection) + "/" + std::string(id) +
                                "' does not convert to the requested type: " + e.what());
    }
  }
}

template <typename T>
json to_body(const T& value, std::string_view collection) {
  json body;
  if constexpr (std::is_same_v<T, json>) {
    body = value;
  } else {
    try {
      body = value;
    } catch (const json::exception& e) {
      throw serialization_error("a document for collection '" + std::string(collection) +
                                "' does not convert to JSON: " + e.what());
    }
  }
  if (!body.is_object()) {
    throw serialization_error("a document for collection '" + std::string(collection) +
                              "' must convert to a JSON object, got " + body.type_name());
  }
  return body;
}

}  // namespace eventsourced::detail
