// Private to the engines: the size limit of commit_request::max_body_bytes.
#pragma once

#include <cstddef>
#include <string>

#include <eventsourced/engine/engine.hpp>
#include <eventsourced/error.hpp>

namespace eventsourced::engine_detail {

// Throws invalid_argument_error when a serialized body of `size` bytes exceeds `max` (0: no limit).
inline void check_body_size(const document_write& w, std::size_t size, std::size_t max) {
  if (max != 0 && size > max) {
    throw invalid_argument_error("document '" + w.collection + "/" + w.id + "' is " +
                                 std::to_string(size) + " bytes of JSON, the limit is " +
                                 std::to_string(max));
  }
}

}  // namespace eventsourced::engine_detail
