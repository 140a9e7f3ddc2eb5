// The test worker's event-layer sub-commands (see test_worker.cpp for the usage text):
//
//   relay <uri> <name> <delivery-file> <until-position>
//     Runs an outbox_relay named <name> over the store at <uri>, publishing to a synchronous
//     in_memory_event_bus whose handler appends each delivered event to <delivery-file> (format:
//     event_workloads.hpp). Writes a "start" line with the stored checkpoint first. Exits 0 once
//     the checkpoint reaches <until-position>, 1 on any error. The parent kills it mid-stream.
//
//   project <uri> <name> <collection> rebuild-forever | catch-up
//     Runs counting_projection(<name>, <collection>) with small batches by poll(). rebuild-forever
//     rebuilds and replays to the head in a loop until killed; catch-up finishes whatever the
//     stored checkpoint says (an interrupted rebuild included), replays to the head and exits 0.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>

#include <eventsourced/event/checkpoint.hpp>
#include <eventsourced/event/log.hpp>
#include <eventsourced/event/memory_bus.hpp>
#include <eventsourced/event/projection.hpp>
#include <eventsourced/event/relay.hpp>
#include <eventsourced/eventsourced.hpp>

#include "event_workloads.hpp"

namespace eventsourced::testing {

// Appends line with one write(2): whole lines even when the process is killed.
inline void append_line(int fd, const std::string& line) {
  ssize_t written = 0;
  do {
    written = ::write(fd, line.data(), line.size());
  } while (written < 0 && errno == EINTR);
  if (written != static_cast<ssize_t>(line.size())) {
    throw std::runtime_error("cannot append to the delivery file");
  }
}

inline int relay_to_file(const std::string& uri, const std::string& name, const std::string& path,
                         std::int64_t until) {
  auto store = open(uri);
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot open " + path);
  append_line(fd, start_line(load_checkpoint(store->engine(), name).position));
  // Synchronous: the handler has written the line before publish() returns, so before the relay
  // saves the checkpoint that covers it.
  auto bus = std::make_shared<in_memory_event_bus>();
  subscription delivered =
      bus->subscribe(kAllEvents, [fd](const event& e) { append_line(fd, delivery_line(e)); });
  outbox_relay relay(
      event_log(store), bus,
      {.name = name, .batch_size = 7, .wait_timeout = std::chrono::milliseconds(20)});
  relay.start();
  while (!relay.wait_until_published(until, std::chrono::seconds(1))) {
  }
  relay.stop();
  ::close(fd);
  return 0;
}

inline int project(const std::string& uri, const std::string& name, const std::string& collection,
                   const std::string& mode) {
  auto store = open(uri);
  projection_runner runner(store, counting_projection(name, collection),
                           {.batch_size = 20, .rebuild_batch_size = 10});
  if (mode == "rebuild-forever") {
    for (;;) {
      runner.rebuild();
      while (runner.poll(std::chrono::milliseconds(0)) > 0) {
      }
    }
  }
  if (mode != "catch-up") throw std::runtime_error("unknown project mode " + mode);
  while (runner.poll(std::chrono::milliseconds(0)) > 0) {
  }
  return 0;
}

}  // namespace eventsourced::testing
