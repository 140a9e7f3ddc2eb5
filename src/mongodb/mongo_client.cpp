#include "mongodb/mongo_client.hpp"

#include <cstdint>
#include <mutex>

#include <eventsourced/error.hpp>

#include "mongodb/bson_json.hpp"

namespace eventsourced::mongodb_detail {

void ensure_initialized() {
  static std::once_flag once;
  std::call_once(once, [] { mongoc_init(); });
}

void throw_error(const bson_error_t& error, const std::string& what) {
  const std::string message = "MongoDB: " + what + ": " + error.message;
  if (error.domain == MONGOC_ERROR_SERVER_SELECTION || error.domain == MONGOC_ERROR_STREAM) {
    throw engine_unavailable_error(message);
  }
  throw engine_error(message);
}

client_pool::client_pool(const mongodb_options& options) {
  ensure_initialized();
  bson_error_t error;
  uri_ = mongoc_uri_new_with_error(options.uri.c_str(), &error);
  if (uri_ == nullptr) {
    throw invalid_argument_error(std::string("MongoDB URI: ") + error.message);
  }
  if (mongoc_uri_get_option_as_int32(uri_, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 0) == 0) {
    mongoc_uri_set_option_as_int32(
        uri_, MONGOC_URI_SERVERSELECTIONTIMEOUTMS,
        static_cast<std::int32_t>(options.server_selection_timeout.count()));
  }
  for (const mongoc_host_list_t* h = mongoc_uri_get_hosts(uri_); h != nullptr; h = h->next) {
    if (!hosts_.empty()) hosts_ += ",";
    hosts_ += h->host_and_port;
  }
  if (hosts_.empty()) hosts_ = "(srv)";
  pool_ = mongoc_client_pool_new(uri_);
  if (pool_ == nullptr) {
    mongoc_uri_destroy(uri_);
    throw invalid_argument_error("MongoDB URI: libmongoc cannot make a client pool of it");
  }
  mongoc_client_pool_set_error_api(pool_, MONGOC_ERROR_API_VERSION_2);
}

client_pool::~client_pool() {
  if (pool_ != nullptr) mongoc_client_pool_destroy(pool_);
  if (uri_ != nullptr) mongoc_uri_destroy(uri_);
}

client_pool::lease client_pool::acquire() {
  return lease(pool_, mongoc_client_pool_pop(pool_));
}

void client_pool::check_server() {
  auto client = acquire();
  bson_ptr command = to_bson({{"hello", 1}});
  bson_t reply;
  bson_error_t error;
  const bool ok =
      mongoc_client_command_simple(client.get(), "admin", command.get(), nullptr, &reply, &error);
  const json answer = to_json(reply);
  bson_destroy(&reply);
  if (!ok) throw_error(error, "no answer from " + hosts_);
  const bool replica_set = answer.contains("setName");
  const bool mongos = answer.value("msg", std::string()) == "isdbgrid";
  if (!replica_set && !mongos) {
    throw engine_error("MongoDB at " + hosts_ +
                       " is a standalone server: eventsourced needs multi-document transactions, "
                       "which MongoDB offers only on a replica set or a sharded cluster (a "
                       "one-member replica set will do: start mongod with --replSet rs0, run "
                       "rs.initiate() once, and add replicaSet=rs0 to the URI)");
  }
}

}  // namespace eventsourced::mongodb_detail
