#include <eventsourced/engine/memory.hpp>

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <unordered_set>

#include <eventsourced/error.hpp>

#include "engine/body_size.hpp"

namespace eventsourced {
namespace {

class memory_engine final : public engine {
 public:
  std::optional<stored_document> get(std::string_view collection, std::string_view id) override {
    validate_collection_name(collection);
    validate_id(id);
    std::shared_lock lock(mutex_);
    check_open();
    const entry* e = find_entry(collection, id);
    if (e == nullptr || !e->body) return std::nullopt;
    return stored_document{std::string(id), e->version, *e->body};
  }

  std::vector<stored_document> find(std::string_view collection, const query& q) override {
    validate_collection_name(collection);
    std::vector<field_path> sort_paths;
    for (const sort_key& k : q.sort) sort_paths.push_back(field_path::parse(k.path));

    std::vector<stored_document> out;
    {
      std::shared_lock lock(mutex_);
      check_open();
      const auto c = collections_.find(collection);
      if (c == collections_.end()) return out;
      for (const auto& [id, e] : c->second) {
        if (e.body && q.where.matches(*e.body)) out.push_back({id, e.version, *e.body});
      }
    }
    // Documents come out of the map in id order, so a stable sort keeps the id tie-break.
    std::stable_sort(
        out.begin(), out.end(), [&](const stored_document& a, const stored_document& b) {
          for (std::size_t i = 0; i < sort_paths.size(); ++i) {
            int c = compare_for_sort(sort_paths[i].resolve(a.body), sort_paths[i].resolve(b.body));
            if (q.sort[i].order == sort_order::descending) c = -c;
            if (c != 0) return c < 0;
          }
          return false;
        });
    const std::size_t begin = std::min(q.skip, out.size());
    const std::size_t end = q.limit ? std::min(out.size(), begin + *q.limit) : out.size();
    return {std::make_move_iterator(out.begin() + static_cast<std::ptrdiff_t>(begin)),
            std::make_move_iterator(out.begin() + static_cast<std::ptrdiff_t>(end))};
  }

  commit_result commit(const commit_request& request) override {
    validate_commit_request(request);
    commit_result result;
    {
      std::unique_lock lock(mutex_);
      check_open();
      // Check every version first: all or nothing without undo.
      for (const document_write& w : request.writes) {
        const entry* e = find_entry(w.collection, w.id);
        const std::int64_t live = (e != nullptr && e->body) ? e->version : 0;
        if (live != w.expected_version) {
          throw conflict_error(conflict_target::document, w.collection, w.id, w.expected_version,
                               live);
        }
        if (w.op == write_op::put && request.max_body_bytes != 0) {
          engine_detail::check_body_size(w, w.body.dump().size(), request.max_body_bytes);
        }
      }
      std::vector<stream_append> derived;
      if (request.derived_appends) {
        // The versions the writes are about to get (see the loop applying them below).
        std::vector<std::int64_t> versions;
        versions.reserve(request.writes.size());
        for (const document_write& w : request.writes) {
          const entry* e = find_entry(w.collection, w.id);
          const std::int64_t stored = e != nullptr ? e->version : 0;
          versions.push_back(w.op == write_op::check ? w.expected_version : stored + 1);
        }
        derived = request.derived_appends(versions);
        validate_derived_appends(request, derived);
      }
      for (const std::vector<stream_append>* appends :
           {&request.appends, &std::as_const(derived)}) {
        for (const stream_append& a : *appends) check_append(a);
      }
      for (const document_write& w : request.writes) {
        entry& e = collections_[w.collection][w.id];
        const std::int64_t previous = e.version;  // tombstone version when re-creating
        switch (w.op) {
          case write_op::check:
            result.versions.push_back(w.expected_version);
            continue;
          case write_op::erase:
            e.body.reset();
            break;
          case write_op::put:
            e.body = w.body;
            break;
        }
        e.version = previous + 1;
        if (e.body && !request.version_field.empty()) (*e.body)[request.version_field] = e.version;
        result.versions.push_back(e.version);
      }
      const auto now =
          std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
      for (const std::vector<stream_append>* appends :
           {&request.appends, &std::as_const(derived)}) {
        for (const stream_append& a : *appends) record(a, now, result.events);
      }
    }
    if (!result.events.empty()) appended_.notify_all();
    return result;
  }

  std::vector<recorded_event> read_stream(const stream_ref& stream, std::int64_t from_version,
                                          std::size_t max) override {
    validate_collection_name(stream.type, "stream type");
    validate_id(stream.id, "stream id");
    std::shared_lock lock(mutex_);
    check_open();
    std::vector<recorded_event> out;
    const auto it = streams_.find({stream.type, stream.id});
    if (it == streams_.end()) return out;
    const auto& positions = it->second.positions;
    for (auto e = positions.lower_bound(from_version); e != positions.end() && out.size() < max;
         ++e) {
      out.push_back(log_.at(e->second));
    }
    return out;
  }

  std::vector<recorded_event> read_all(std::int64_t after_position, std::size_t max) override {
    std::shared_lock lock(mutex_);
    check_open();
    std::vector<recorded_event> out;
    for (auto e = log_.upper_bound(after_position); e != log_.end() && out.size() < max; ++e) {
      out.push_back(e->second);
    }
    return out;
  }

  std::size_t truncate_stream(const stream_ref& stream, std::int64_t before_version) override {
    validate_truncate_stream(stream, before_version);
    std::unique_lock lock(mutex_);
    check_open();
    const auto it = streams_.find({stream.type, stream.id});
    if (it == streams_.end()) return 0;
    auto& positions = it->second.positions;
    const std::int64_t end = std::min(before_version, it->second.version);  // keeps the latest
    std::size_t deleted = 0;
    while (!positions.empty() && positions.begin()->first < end) {
      const auto e = log_.find(positions.begin()->second);
      event_ids_.erase(e->second.id);
      log_.erase(e);
      positions.erase(positions.begin());
      ++deleted;
    }
    return deleted;
  }

  bool wait_for(std::int64_t position, std::chrono::milliseconds timeout) override {
    std::shared_lock lock(mutex_);
    check_open();
    appended_.wait_for(lock, timeout, [&] { return closed_ || last_position_ > position; });
    check_open();
    return last_position_ > position;
  }

  void close() override {
    {
      std::unique_lock lock(mutex_);
      closed_ = true;
      collections_.clear();
      log_.clear();
      streams_.clear();
      event_ids_.clear();
    }
    appended_.notify_all();
  }

 private:
  // Records a's events; the caller holds mutex_ and has checked the append.
  void record(const stream_append& a, std::chrono::sys_time<std::chrono::microseconds> now,
              std::vector<recorded_event>& recorded) {
    stream_log& s = streams_[{a.stream.type, a.stream.id}];
    for (const new_event& ev : a.events) {
      recorded_event r{ev.id, ev.type, a.stream,   ++s.version, ++last_position_,
                       now,   ev.data, ev.metadata};
      s.positions.emplace(r.stream_version, r.position);
      event_ids_.insert(ev.id);
      log_.emplace(r.position, r);
      recorded.push_back(std::move(r));
    }
  }

  struct entry {
    std::int64_t version = 0;
    std::optional<json> body;  // nullopt: tombstone
  };

  void check_open() const {
    if (closed_) throw store_closed_error("memory engine is closed");
  }

  const entry* find_entry(std::string_view collection, std::string_view id) const {
    const auto c = collections_.find(collection);
    if (c == collections_.end()) return nullptr;
    const auto e = c->second.find(id);
    return e == c->second.end() ? nullptr : &e->second;
  }

  // Throws unless `a` may be recorded now: its expected version, event ids not in the log.
  void check_append(const stream_append& a) const {
    const std::int64_t current = stream_version(a.stream);
    if (a.expected_version && *a.expected_version != current) {
      throw conflict_error(conflict_target::stream, a.stream.type, a.stream.id, *a.expected_version,
                           current);
    }
    for (const new_event& ev : a.events) {
      if (event_ids_.contains(ev.id)) {
        throw invalid_argument_error("event id '" + ev.id + "' is already in the log");
      }
    }
  }

  std::int64_t stream_version(const stream_ref& s) const {
    const auto it = streams_.find({s.type, s.id});
    return it == streams_.end() ? 0 : it->second.version;
  }

  mutable std::shared_mutex mutex_;
  std::condition_variable_any appended_;
  bool closed_ = false;  // GUARDED_BY(mutex_)
  std::map<std::string, std::map<std::string, entry, std::less<>>, std::less<>>
      collections_;  // GUARDED_BY(mutex_)
  // The events of one stream still in the log, and the stream's version (its latest event's,
  // which truncate_stream never deletes).
  struct stream_log {
    std::int64_t version = 0;
    std::map<std::int64_t, std::int64_t> positions;  // stream version -> position
  };
  std::map<std::int64_t, recorded_event> log_;  // GUARDED_BY(mutex_); by position
  std::int64_t last_position_ = 0;              // GUARDED_BY(mutex_)
  std::map<std::pair<std::string, std::string>, stream_log> streams_;  // GUARDED_BY(mutex_)
  std::unordered_set<std::string> event_ids_;                          // GUARDED_BY(mutex_)
};

}  // namespace

std::unique_ptr<engine> make_memory_engine() {
  return std::make_unique<memory_engine>();
}

}  // namespace eventsourced
