// The memory engine: documents and the event log in this process's memory.
//
// For tests and ephemeral state. Follows the engine contract exactly (the conformance suite runs
// against it); nothing survives the engine object. Opened by the URI "memory:".
//
// \par Thread safety
// Safe from many threads: reads share a lock, commits take it exclusively.
#pragma once

#include <memory>

#include <eventsourced/engine/engine.hpp>

namespace eventsourced {

std::unique_ptr<engine> make_memory_engine();

}  // namespace eventsourced
