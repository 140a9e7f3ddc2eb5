// A fresh directory under the system temp directory, removed with everything in it on
// destruction. The tests' SQLite files (and their -wal/-shm companions) live in one.
#pragma once

#include <stdlib.h>  // mkdtemp (POSIX)

#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>

namespace eventsourced::testing {

class temporary_directory {
 public:
  temporary_directory() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "eventsourced-test-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  temporary_directory(const temporary_directory&) = delete;
  temporary_directory& operator=(const temporary_directory&) = delete;
  ~temporary_directory() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace eventsourced::testing
