#include <eventsourced/event/projection.hpp>

#include <algorithm>
#include <map>
#include <mutex>
#include <set>
#include <stop_token>
#include <utility>

#include <eventsourced/error.hpp>
#include <eventsourced/event/checkpoint.hpp>
#include <eventsourced/event/log.hpp>
#include <eventsourced/storage/store.hpp>

#include "event/consumer_loop.hpp"

namespace eventsourced {

using event_internal::background_thread;
using event_internal::delivery_failure;
using event_internal::loop_settings;
using event_internal::progress;

namespace {

const std::string kWho = "projection_runner";

// The read model of one batch: stored documents read once from the engine, overlaid with the
// batch's staged writes, each remembering the version it was read at so that the commit is
// version-checked against it.
class staged_read_model final : public read_model {
 public:
  staged_read_model(engine& engine, const store_options& options,
                    const std::set<std::string, std::less<>>& owned, std::string_view projection)
      : engine_(engine), options_(options), owned_(owned), projection_(projection) {}

  std::optional<json> get(std::string_view collection, std::string_view id) override {
    const entry& e = load(collection, id);
    if (!e.body) return std::nullopt;
    json body = *e.body;
    // A staged put gets the next version unless it re-creates a document after a tombstone; the
    // engine corrects that at commit.
    stamp(body, id, e.staged ? e.base_version + 1 : e.base_version);
    return body;
  }

  void put(std::string_view collection, std::string_view id, json body) override {
    validate_id(id);
    if (!body.is_object()) {
      throw invalid_argument_error("eventsourced: projection '" + projection_ + "' put " +
                                   described(collection, id) + " with a body that is " +
                                   body.type_name() + ", not an object");
    }
    const auto given = body.find(options_.id_field);
    if (given != body.end() && !given->is_null() && *given != json(id)) {
      throw invalid_argument_error("eventsourced: projection '" + projection_ + "' put " +
                                   described(collection, id) + " with a body whose \"" +
                                   options_.id_field + "\" is " + given->dump());
    }
    entry& e = load(collection, id);
    body[options_.id_field] = id;
    e.body = std::move(body);
    e.staged = true;
  }

  void erase(std::string_view collection, std::string_view id) override {
    entry& e = load(collection, id);
    e.body.reset();
    e.staged = true;
  }

  // The staged writes as engine writes; `keys` gets their (collection, id) in the same order.
  std::vector<document_write> writes() const {
    std::vector<document_write> out;
    for (const auto& [key, e] : entries_) {
      if (!e.staged) continue;
      if (e.body) {
        out.push_back({key.first, key.second, e.base_version, write_op::put, *e.body});
      } else if (e.base_version != 0) {
        out.push_back({key.first, key.second, e.base_version, write_op::erase, json()});
      }  // else: erased something that never existed; nothing to write
    }
    return out;
  }

 private:
  struct entry {
    std::int64_t base_version = 0;  // stored version when first read; 0: did not exist
    std::optional<json> body;       // current content (stored or staged); nullopt: absent
    bool staged = false;
  };

  static std::string described(std::string_view collection, std::string_view id) {
    return "'" + std::string(collection) + "/" + std::string(id) + "'";
  }

  void stamp(json& body, std::string_view id, std::int64_t version) const {
    body[options_.id_field] = id;
    body[options_.version_field] = version;
  }

  entry& load(std::string_view collection, std::string_view id) {
    if (!owned_.contains(collection)) {
      throw invalid_argument_error("eventsourced: projection '" + projection_ +
                                   "' may only use the collections it owns, not '" +
                                   std::string(collection) + "'");
    }
    std::pair<std::string, std::string> key{collection, id};
    auto it = entries_.find(key);
    if (it != entries_.end()) return it->second;
    validate_id(id);
    entry e;
    if (auto doc = engine_.get(collection, id)) {
      e.base_version = doc->version;
      e.body = std::move(doc->body);
    }
    return entries_.emplace(std::move(key), std::move(e)).first->second;
  }

  engine& engine_;
  const store_options& options_;
  const std::set<std::string, std::less<>>& owned_;
  const std::string projection_;
  std::map<std::pair<std::string, std::string>, entry> entries_;
};

}  // namespace

struct projection_runner::state {
  state(std::shared_ptr<eventsourced::store> st, projection def, projection_options o)
      : log(st),
        owner(std::move(st)),
        definition(std::move(def)),
        owned(definition.collections.begin(), definition.collections.end()),
        options(std::move(o)),
        loop{options.wait_timeout, options.initial_backoff, options.max_backoff,
             options.max_attempts, options.on_error} {}

  // Handles one batch and commits its read-model writes with the checkpoint. A stop request ends
  // the batch early; the events handled so far are committed.
  std::size_t handle_batch(std::chrono::milliseconds wait, const std::stop_token& stop) {
    std::lock_guard lock(batch_mutex);
    load();
    const log_page page = log.read_all_or_wait(cp.position, options.batch_size, wait);
    staged_read_model model(log.engine(), owner->options(), owned, definition.name);
    std::size_t handled = 0;
    std::int64_t last = cp.position;
    for (const event& e : page.events) {
      if (stop.stop_requested()) break;
      try {
        definition.handle(e, model);
      } catch (...) {
        throw delivery_failure{std::current_exception()};
      }
      last = e.position;
      ++handled;
    }
    if (handled == 0) return 0;
    checkpoint next = cp;
    next.position = last;
    commit(model.writes(), next);
    return handled;
  }

  // Deletes the read model and sets the checkpoint to 0, in chunks (see projection.hpp).
  void rebuild() {
    std::lock_guard lock(batch_mutex);
    loaded = false;
    cp = load_checkpoint(log.engine(), definition.name);
    loaded = true;
    cp.rebuilding = true;  // carried by the first chunk's commit
    clear_read_model_or_reload();
  }

  void load() {
    if (loaded) return;
    cp = load_checkpoint(log.engine(), definition.name);
    loaded = true;
    done.advance(cp.position);
    if (cp.rebuilding) clear_read_model_or_reload();  // an interrupted rebuild: finish it first
  }

  // clear_read_model(), and when it fails part-way (a find() or a chunk's commit), forgets the
  // loaded checkpoint: the next batch reloads it — still marked "rebuilding" once a chunk
  // committed — and finishes the deletes before applying any event.
  void clear_read_model_or_reload() {
    try {
      clear_read_model();
    } catch (...) {
      loaded = false;
      throw;
    }
  }

  void clear_read_model() {
    const std::size_t chunk = options.rebuild_batch_size;
    while (true) {
      std::vector<document_write> erases;
      bool more = false;
      for (const std::string& collection : definition.collections) {
        query q;
        q.limit = chunk + 1 - erases.size();
        for (stored_document& doc : log.engine().find(collection, q)) {
          if (erases.size() == chunk) {
            more = true;
            break;
          }
          erases.push_back({collection, std::move(doc.id), doc.version, write_op::erase, json()});
        }
        if (more) break;
      }
      checkpoint next = cp;
      next.position = 0;
      next.rebuilding = more;
      commit(std::move(erases), next);
      if (!more) return;
    }
  }

  // One engine commit of `writes` and the checkpoint `next`; then cp, progress and the store's
  // cache follow it. On failure cp is reloaded before the next batch (the outcome of a failed
  // commit may be unknown).
  void commit(std::vector<document_write> writes, const checkpoint& next) {
    commit_request request;
    request.writes = std::move(writes);
    request.writes.push_back(checkpoint_write(next));
    request.version_field = owner->options().version_field;
    request.max_body_bytes = owner->options().max_document_bytes;
    commit_result result;
    try {
      result = log.engine().commit(request);
    } catch (...) {
      loaded = false;
      throw;
    }
    cp = next;
    cp.version = result.versions.back();
    refresh_cache(request, result);
    done.advance(cp.position);
  }

  void refresh_cache(const commit_request& request, const commit_result& result) const {
    const auto& cache = owner->options().cache;
    if (!cache) return;
    for (std::size_t i = 0; i + 1 < request.writes.size(); ++i) {  // the last is the checkpoint
      const document_write& w = request.writes[i];
      cached_document doc{result.versions[i], std::nullopt};
      if (w.op == write_op::put) {
        doc.body = w.body;
        (*doc.body)[owner->options().id_field] = w.id;
        (*doc.body)[owner->options().version_field] = result.versions[i];
      }
      cache->put(w.collection, w.id, doc);
    }
  }

  const event_log log;
  const std::shared_ptr<eventsourced::store>
      owner;  // the store whose options the read model follows
  const projection definition;
  const std::set<std::string, std::less<>> owned;
  const projection_options options;
  const loop_settings loop;
  progress done;
  std::mutex batch_mutex;  // one batch or rebuild at a time
  checkpoint cp{};         // GUARDED_BY(batch_mutex)
  bool loaded = false;     // GUARDED_BY(batch_mutex)
};

namespace {

void validate_projection(const projection& p, const projection_options& o) {
  auto fail = [](const std::string& what) {
    throw invalid_argument_error("eventsourced: " + kWho + ": " + what);
  };
  validate_id(p.name, "projection name");
  if (!p.handle) fail("projection '" + p.name + "' has no handler");
  std::set<std::string_view> seen;
  for (const std::string& c : p.collections) {
    validate_collection_name(c, "read-model collection");
    if (c.starts_with(kReservedPrefix)) {
      fail("read-model collection '" + c + "' has the reserved prefix " +
           std::string(kReservedPrefix));
    }
    if (!seen.insert(c).second) fail("read-model collection '" + c + "' is listed twice");
  }
  if (o.batch_size == 0) fail("batch_size must be at least 1");
  if (o.rebuild_batch_size == 0) fail("rebuild_batch_size must be at least 1");
}

// A conflict on the checkpoint means another runner with this name: permanent. A conflict on a
// read-model document (someone else wrote it) is retried on fresh state.
bool is_permanent_for_projection(const std::exception_ptr& failure) {
  try {
    std::rethrow_exception(failure);
  } catch (const conflict_error& c) {
    return c.collection() == kCheckpointCollection;
  } catch (...) {
    return event_internal::is_permanent(failure);
  }
}

}  // namespace

projection_runner::projection_runner(std::shared_ptr<eventsourced::store> store,
                                     projection definition, projection_options options)
    : thread_(std::make_unique<background_thread>()) {
  if (!store) throw invalid_argument_error("eventsourced: " + kWho + ": the store is null");
  validate_projection(definition, options);
  state_ = std::make_shared<state>(std::move(store), std::move(definition), std::move(options));
  event_internal::validate(state_->loop, kWho);
}

projection_runner::~projection_runner() = default;  // thread_ stops or detaches

void projection_runner::start() {
  if (!thread_->running()) state_->done.clear_failure();
  thread_->start([s = state_](std::stop_token stop) {
    {
      std::lock_guard lock(s->batch_mutex);
      s->loaded = false;
    }
    event_internal::run_until_stopped(
        stop, s->loop, s->done, [&] { s->handle_batch(s->options.wait_timeout, stop); },
        is_permanent_for_projection);
  });
}

void projection_runner::stop() noexcept {
  thread_->stop();
}

bool projection_runner::running() const {
  return thread_->running();
}

std::size_t projection_runner::poll(std::chrono::milliseconds timeout) {
  if (timeout.count() < 0) {
    throw invalid_argument_error("eventsourced: " + kWho + ": negative poll timeout");
  }
  if (thread_->running()) {
    throw invalid_argument_error("eventsourced: " + kWho +
                                 ": poll() while the runner runs its own thread");
  }
  try {
    return state_->handle_batch(timeout, std::stop_token{});
  } catch (const delivery_failure& d) {
    std::rethrow_exception(d.inner);
  }
}

void projection_runner::rebuild() {
  state_->rebuild();
}

std::int64_t projection_runner::position() const {
  return state_->done.position();
}

bool projection_runner::wait_until_processed(std::int64_t position,
                                             std::chrono::milliseconds timeout) const {
  if (position < 0 || timeout.count() < 0) {
    throw invalid_argument_error("eventsourced: " + kWho +
                                 ": wait_until_processed needs a non-negative position and "
                                 "timeout");
  }
  return state_->done.wait_until(position, timeout);
}

std::exception_ptr projection_runner::failure() const {
  return state_->done.failure();
}

}  // namespace eventsourced
