#include <eventsourced/error.hpp>

#include <utility>

namespace eventsourced {
namespace {

std::string conflict_message(conflict_target target, const std::string& collection,
                             const std::string& id, std::int64_t expected, std::int64_t actual) {
  const bool doc = target == conflict_target::document;
  std::string what = doc ? "version conflict on document '" : "version conflict on stream '";
  what += collection + "/" + id + "': expected version " + std::to_string(expected) + ", found " +
          (actual == 0 ? std::string(doc ? "none (it does not exist)" : "an empty stream")
                       : std::to_string(actual));
  return what;
}

}  // namespace

conflict_error::conflict_error(conflict_target target, std::string collection, std::string id,
                               std::int64_t expected_version, std::int64_t actual_version)
    : error(conflict_message(target, collection, id, expected_version, actual_version), true),
      target_(target),
      collection_(std::move(collection)),
      id_(std::move(id)),
      expected_version_(expected_version),
      actual_version_(actual_version) {}

not_found_error::not_found_error(std::string collection, std::string id)
    : error("document '" + collection + "/" + id + "' does not exist", false),
      collection_(std::move(collection)),
      id_(std::move(id)) {}

unreadable_document_error::unreadable_document_error(unreadable_document document)
    : serialization_error("the stored body of document '" + document.collection + "/" +
                          document.id + "' (version " + std::to_string(document.version) +
                          ") cannot be read: " + document.reason),
      document_(std::move(document)) {}

}  // namespace eventsourced
