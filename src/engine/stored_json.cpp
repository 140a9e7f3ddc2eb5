#include "engine/stored_json.hpp"

#include <utility>

namespace eventsourced::engine_detail {

json read_body(std::string_view collection, std::string_view id, std::int64_t version,
               std::string_view text) {
  std::string reason;
  try {
    json body = parse_json(text, kMaxJsonDepth, "the body");
    if (body.is_object()) return body;
    reason = std::string("it is ") + body.type_name() + ", not a JSON object";
  } catch (const error& e) {
    reason = e.what();
  }
  throw unreadable_document_error(
      {std::string(collection), std::string(id), version, std::move(reason)});
}

json check_body(std::string_view collection, std::string_view id, std::int64_t version, json body) {
  std::string reason;
  if (!body.is_object()) {
    reason = std::string("it is ") + body.type_name() + ", not a JSON object";
  } else if (auto violation = find_json_violation(body, kMaxJsonDepth)) {
    try {
      violation->raise("the body", kMaxJsonDepth);
    } catch (const error& e) {
      reason = e.what();
    }
  } else {
    return body;
  }
  throw unreadable_document_error(
      {std::string(collection), std::string(id), version, std::move(reason)});
}

void found_rows::add_decoded(std::string id, std::int64_t version, json body) {
  try {
    json checked = check_body(collection_, id, version, std::move(body));
    documents_.push_back({std::move(id), version, std::move(checked)});
  } catch (const unreadable_document_error& e) {
    unreadable_.push_back(e.document());
  }
}

void found_rows::add(std::string id, std::int64_t version, std::string_view body_text) {
  try {
    json body = read_body(collection_, id, version, body_text);
    documents_.push_back({std::move(id), version, std::move(body)});
  } catch (const unreadable_document_error& e) {
    unreadable_.push_back(e.document());
  }
}

std::vector<stored_document> found_rows::finish(const query& q, std::size_t skip,
                                                std::optional<std::size_t> limit) && {
  if (q.on_unreadable) {
    for (const unreadable_document& u : unreadable_) q.on_unreadable(u);
  }
  if (skip == 0 && !limit) return std::move(documents_);
  std::vector<stored_document> out;
  for (std::size_t i = skip; i < documents_.size() && (!limit || out.size() < *limit); ++i) {
    out.push_back(std::move(documents_[i]));
  }
  return out;
}

}  // namespace eventsourced::engine_detail
