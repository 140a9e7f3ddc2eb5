#include <eventsourced/engine/open.hpp>

#include <map>
#include <mutex>

#include <eventsourced/engine/memory.hpp>
#include <eventsourced/engine/sqlite.hpp>
#include <eventsourced/error.hpp>

namespace eventsourced {
namespace {

struct registry {
  std::mutex mutex;
  std::map<std::string, engine_factory, std::less<>> factories;  // GUARDED_BY(mutex)

  registry() {
    factories["memory"] = [](std::string_view uri) {
      if (uri != "memory:") {
        throw invalid_argument_error("invalid memory URI '" + std::string(uri) +
                                     "': it takes no path or parameters, use \"memory:\"");
      }
      return make_memory_engine();
    };
    factories["sqlite"] = [](std::string_view uri) {
      return make_sqlite_engine(parse_sqlite_uri(uri));
    };
  }
};

registry& the_registry() {
  static registry r;
  return r;
}

}  // namespace

void register_engine_scheme(std::string scheme, engine_factory factory) {
  auto& r = the_registry();
  std::lock_guard lock(r.mutex);
  r.factories[std::move(scheme)] = std::move(factory);
}

std::unique_ptr<engine> open_engine(std::string_view uri) {
  const std::size_t colon = uri.find(':');
  auto& r = the_registry();
  engine_factory factory;
  std::string known;
  {
    std::lock_guard lock(r.mutex);
    if (colon != std::string_view::npos) {
      const auto it = r.factories.find(uri.substr(0, colon));
      if (it != r.factories.end()) factory = it->second;
    }
    for (const auto& entry : r.factories) known += (known.empty() ? "" : ", ") + entry.first;
  }
  if (!factory) {
    const std::string scheme(colon == std::string_view::npos ? std::string_view()
                                                             : uri.substr(0, colon));
    throw invalid_argument_error((scheme.empty() ? std::string("store URI has no scheme")
                                                 : "unknown store URI scheme '" + scheme + "'") +
                                 " (known: " + known + "; e.g. \"sqlite:app.db\" or \"memory:\")");
  }
  return factory(uri);
}

}  // namespace eventsourced
