// Starting and reaping the test worker (tests/support/test_worker.cpp) from a test.
#pragma once

#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <stdexcept>
#include <string>
#include <vector>

extern char** environ;

namespace eventsourced::testing {

// Starts the test worker with args; returns its pid.
inline pid_t spawn_worker(const std::vector<std::string>& args) {
  std::vector<std::string> argv_strings = {EVENTSOURCED_TEST_WORKER};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int rc =
      ::posix_spawn(&pid, EVENTSOURCED_TEST_WORKER, nullptr, nullptr, argv.data(), environ);
  if (rc != 0) throw std::runtime_error("posix_spawn failed: " + std::to_string(rc));
  return pid;
}

// The worker's exit code, -1 when it did not exit normally (killed by a signal), -2 when it could
// not be waited for.
inline int wait_for_exit(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -2;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace eventsourced::testing
