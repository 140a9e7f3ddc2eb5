// Opening an engine from a URI, and registering engines for new schemes.
//
// Built in: "memory:" and "sqlite:..." (see sqlite.hpp). Engines in other targets
// (eventsourced::postgres, ...) add their scheme with register_engine_scheme(), which their
// headers call for the user, so linking eventsourced::core never pulls in a network client.
//
// \par Thread safety
// All functions are safe to call from many threads.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <eventsourced/engine/engine.hpp>

namespace eventsourced {

using engine_factory = std::function<std::unique_ptr<engine>(std::string_view uri)>;

// Makes `scheme` (the part before the first ':') open with `factory`. Replaces an earlier
// registration of the same scheme.
void register_engine_scheme(std::string scheme, engine_factory factory);

// Opens the engine for uri. Throws invalid_argument_error for a URI without a scheme or with a
// scheme nobody registered (the message lists the known ones), and whatever the engine's factory
// throws.
std::unique_ptr<engine> open_engine(std::string_view uri);

}  // namespace eventsourced
