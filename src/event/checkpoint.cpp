#include <eventsourced/event/checkpoint.hpp>

#include <chrono>
#include <string>

#include <eventsourced/error.hpp>

namespace eventsourced {
namespace {

constexpr const char* kPositionKey = "position";
constexpr const char* kRebuildingKey = "rebuilding";
constexpr const char* kSavedAtKey = "saved_at_us";

std::string described(std::string_view name) {
  return "checkpoint '" + std::string(name) + "'";
}

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

checkpoint load_checkpoint(engine& engine, std::string_view name) {
  validate_id(name, "checkpoint name");
  checkpoint cp{std::string(name)};
  const auto stored = engine.get(kCheckpointCollection, name);
  if (!stored) return cp;
  const json& body = stored->body;
  const auto position = body.is_object() ? body.find(kPositionKey) : body.end();
  if (!body.is_object() || position == body.end() || !position->is_number_integer() ||
      position->get<std::int64_t>() < 0) {
    throw serialization_error(
        "eventsourced: " + described(name) +
        " is stored without a non-negative integer \"position\": " + body.dump());
  }
  cp.position = position->get<std::int64_t>();
  cp.version = stored->version;
  const auto rebuilding = body.find(kRebuildingKey);
  cp.rebuilding = rebuilding != body.end() && rebuilding->is_boolean() && rebuilding->get<bool>();
  return cp;
}

document_write checkpoint_write(const checkpoint& next) {
  validate_id(next.name, "checkpoint name");
  if (next.position < 0 || next.version < 0) {
    throw invalid_argument_error("eventsourced: " + described(next.name) +
                                 ": position and version must not be negative (position " +
                                 std::to_string(next.position) + ", version " +
                                 std::to_string(next.version) + ")");
  }
  json body = {{kPositionKey, next.position}, {kSavedAtKey, now_us()}};
  if (next.rebuilding) body[kRebuildingKey] = true;
  return document_write{std::string(kCheckpointCollection), next.name, next.version, write_op::put,
                        std::move(body)};
}

checkpoint save_checkpoint(engine& engine, const checkpoint& next) {
  commit_request request;
  request.writes.push_back(checkpoint_write(next));
  const commit_result result = engine.commit(request);
  checkpoint saved = next;
  saved.version = result.versions.at(0);
  return saved;
}

}  // namespace eventsourced
