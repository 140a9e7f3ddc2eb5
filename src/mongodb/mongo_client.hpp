// Private to the MongoDB engine: libmongoc's one-time initialisation, a pool of clients, and the
// first contact with the server (is it there, can it run transactions).
#pragma once

#include <mongoc/mongoc.h>

#include <string>

#include <eventsourced/engine/mongodb.hpp>

namespace eventsourced::mongodb_detail {

// Calls mongoc_init() once per process (never mongoc_cleanup(): other users of libmongoc in the
// process may outlive us). Thread-safe.
void ensure_initialized();

// Throws the library's error for a failed libmongoc call: engine_unavailable_error when no server
// could be reached or the connection failed (retryable), engine_error otherwise. `what` says what
// was being done.
[[noreturn]] void throw_error(const bson_error_t& error, const std::string& what);

// A pool of libmongoc clients for one URI (mongoc_client_pool_t: thread-safe).
class client_pool {
 public:
  // No I/O: libmongoc connects on first use. Applies the options' server selection timeout when the
  // URI does not set one. Throws invalid_argument_error for a URI libmongoc refuses.
  explicit client_pool(const mongodb_options& options);
  ~client_pool();
  client_pool(const client_pool&) = delete;
  client_pool& operator=(const client_pool&) = delete;

  // A client taken from the pool for the lifetime of the lease.
  class lease {
   public:
    lease(mongoc_client_pool_t* pool, mongoc_client_t* client) : pool_(pool), client_(client) {}
    lease(lease&& other) noexcept : pool_(other.pool_), client_(other.client_) {
      other.client_ = nullptr;
    }
    lease(const lease&) = delete;
    lease& operator=(const lease&) = delete;
    lease& operator=(lease&&) = delete;
    ~lease() {
      if (client_ != nullptr) mongoc_client_pool_push(pool_, client_);
    }
    mongoc_client_t* get() const noexcept { return client_; }

   private:
    mongoc_client_pool_t* pool_;
    mongoc_client_t* client_;
  };
  // Blocks while every client is in use (maxPoolSize, default 100).
  lease acquire();

  // Asks the server who it is. Throws engine_unavailable_error when no server answers within the
  // server selection timeout, and engine_error when the server cannot run multi-document
  // transactions: a standalone server (the message says how to make it a replica set).
  void check_server();

  // The hosts of the URI, for messages (never the password).
  const std::string& hosts() const noexcept { return hosts_; }

 private:
  mongoc_uri_t* uri_ = nullptr;
  mongoc_client_pool_t* pool_ = nullptr;
  std::string hosts_;
};

}  // namespace eventsourced::mongodb_detail
