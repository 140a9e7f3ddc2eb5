// Command handlers that act on one aggregate: load it, run the command on it, save its events
// idempotently — the usual shape of a CQRS write.
//
//   eventsourced::repository repo(*store);
//   eventsourced::dispatcher d;
//   d.register_handler("EarnGold", eventsourced::aggregate_handler<player>(
//       repo, [](player& p, const eventsourced::command& c) {
//         p.earn(c.payload_as<earn_gold>().amount);
//       }));
//   auto result = d.dispatch(eventsourced::make_command("EarnGold", "p1", {{"amount", 5}}));
//
// For each command: if its id was executed before (repository::find_command), the earlier
// outcome is returned and the function is not called. Otherwise a fresh A(c.aggregate_id) is
// loaded, fn(aggregate, c) runs, and repository::save(aggregate, c) commits its events together
// with the command's record. (With options.idempotent = false: no lookup, no record, and the
// events are saved with causation_metadata(c).) When fn throws, nothing is saved or recorded (a
// later dispatch of the same id runs again) and the exception propagates.
//
// Conflicts. When another writer moved the aggregate between load and save, the save throws
// conflict_error. With options.retry.enabled (off by default) the handler then backs off, reloads
// and re-runs fn, up to retry.max_attempts in all; fn must therefore decide from the aggregate's
// state and the command only. Either way no event is lost or recorded twice.
//
// \par Thread safety
// The handler may be called from many threads at once (each call loads its own aggregate); fn must
// allow that. It refers to the repository, which must outlive it.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include <eventsourced/aggregate/repository.hpp>
#include <eventsourced/command/command.hpp>
#include <eventsourced/storage/retry.hpp>

namespace eventsourced {

struct aggregate_handler_options {
  // Conflict retries: off by default (the first conflict throws conflict_error). Setting
  // {.max_attempts = N} turns them on (retry_options::enabled defaults to true).
  retry_options retry{.enabled = false};
  // Record each command id with its events and skip commands recorded before (idempotency).
  // false: no record and no lookup — a resent command executes again — for commands that are
  // never resent (generated on the server, say); saves one lookup and one written page per
  // command.
  bool idempotent = true;
};

template <class A>
requires std::is_base_of_v<aggregate_root, A> && std::is_constructible_v<A, std::string>
class aggregate_command_handler final : public command_handler {
 public:
  using function = std::function<void(A& aggregate, const command& c)>;

  // Throws invalid_argument_error for a null fn or retry.max_attempts < 1.
  aggregate_command_handler(const repository& repo, function fn,
                            aggregate_handler_options options = {})
      : repo_(&repo), fn_(std::move(fn)), options_(options) {
    if (!fn_) throw invalid_argument_error("eventsourced: null aggregate command function");
    if (options_.retry.max_attempts < 1) {
      throw invalid_argument_error(
          "eventsourced: aggregate_handler retry.max_attempts must be >= 1");
    }
  }

  command_result handle(const command& c) override {
    const int attempts = options_.retry.enabled ? options_.retry.max_attempts : 1;
    for (int attempt = 0;; ++attempt) {
      if (options_.idempotent) {
        if (std::optional<command_result> earlier = repo_->find_command(c.id)) {
          return std::move(*earlier);
        }
      }
      std::unique_ptr<A> aggregate = repo_->template load<A>(c.aggregate_id);
      fn_(*aggregate, c);
      try {
        if (options_.idempotent) return repo_->save(*aggregate, c);
        commit_result saved = repo_->save(*aggregate, causation_metadata(c));
        return command_result{.command_id = c.id,
                              .aggregate = aggregate->stream(),
                              .version = aggregate->version(),
                              .events = std::move(saved.events)};
      } catch (const conflict_error&) {
        if (attempt + 1 >= attempts) throw;
      }
      detail::backoff_sleep(options_.retry, attempt);
    }
  }

 private:
  const repository* repo_;
  function fn_;
  aggregate_handler_options options_;
};

// A shared aggregate_command_handler<A>, for dispatcher::register_handler.
template <class A, class F>
std::shared_ptr<command_handler> aggregate_handler(const repository& repo, F fn,
                                                   aggregate_handler_options options = {}) {
  return std::make_shared<aggregate_command_handler<A>>(
      repo, typename aggregate_command_handler<A>::function(std::move(fn)), options);
}

}  // namespace eventsourced
