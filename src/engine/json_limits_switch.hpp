// Private, for bench/ only: turns the JSON limit checks (engine/json_limits.hpp) off in this
// process, so that a benchmark measures what they cost against the very same code without them
// (bench/storage_bench.cpp, depth_limit_overhead_find_one_and_update). With the checks off,
// find_json_violation finds nothing and parse_json is nlohmann's plain parser: hostile input
// crashes the process again. Nothing outside bench/ may call it.
#pragma once

namespace eventsourced::engine_detail {

void set_json_checks_for_benchmark(bool on) noexcept;

}  // namespace eventsourced::engine_detail
