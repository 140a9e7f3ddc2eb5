// MongoDB URIs, options and names: checked before anything connects.
#include <gtest/gtest.h>

#include <string>

#include <eventsourced/engine/mongodb.hpp>
#include <eventsourced/error.hpp>

namespace {

using eventsourced::invalid_argument_error;
using eventsourced::parse_mongodb_uri;

// The message of the invalid_argument_error `uri` throws ("" when it does not throw).
std::string refusal(const std::string& uri) {
  try {
    parse_mongodb_uri(uri);
  } catch (const invalid_argument_error& e) {
    return e.what();
  }
  return "";
}

TEST(mongodb_uri, reads_the_database_and_the_server_selection_timeout) {
  auto o = parse_mongodb_uri("mongodb://localhost:27017/game?replicaSet=rs0");
  EXPECT_EQ(o.database, "game");
  EXPECT_EQ(o.uri, "mongodb://localhost:27017/game?replicaSet=rs0");
  EXPECT_EQ(o.server_selection_timeout, std::chrono::seconds(10)) << "the documented default";

  o = parse_mongodb_uri("mongodb://a:1,b:2/?serverSelectionTimeoutMS=250&w=majority&tls=false");
  EXPECT_EQ(o.database, "eventsourced");
  EXPECT_EQ(o.server_selection_timeout, std::chrono::milliseconds(250));

  o = parse_mongodb_uri("mongodb://localhost");
  EXPECT_EQ(o.database, "eventsourced");
  // Option names are case-insensitive, as libmongoc reads them.
  EXPECT_NO_THROW(parse_mongodb_uri("mongodb://h/?REPLICASET=rs0&readPreference=secondary"));
  EXPECT_NO_THROW(
      parse_mongodb_uri("mongodb://u:p@h/db?authSource=admin&authMechanism=SCRAM-SHA-256"));
}

TEST(mongodb_uri, a_misspelt_option_is_an_error_not_a_warning) {
  EXPECT_NE(refusal("mongodb://h/?replSet=rs0").find("unknown option 'replSet'"), std::string::npos)
      << refusal("mongodb://h/?replSet=rs0");
  EXPECT_NE(refusal("mongodb://h/?w=1&timeoutMS_typo=5"), "");
}

TEST(mongodb_uri, malformed_uris_and_values_are_refused) {
  EXPECT_NE(refusal("postgresql://h/db"), "");
  EXPECT_NE(refusal("mongodb://"), "");
  EXPECT_NE(refusal("mongodb://h/?serverSelectionTimeoutMS=soon"), "");
  EXPECT_NE(refusal("mongodb://h/?serverSelectionTimeoutMS=-5"), "");
  EXPECT_NE(refusal("mongodb://h:99999/"), "");
  EXPECT_NE(refusal(std::string("mongodb://h/\0db", 15)), "");
}

TEST(mongodb_uri, invalid_database_names_are_refused) {
  EXPECT_NE(refusal("mongodb://h/" + std::string(64, 'd')), "");
  EXPECT_NE(refusal("mongodb://h/a$b"), "");
  EXPECT_NE(refusal("mongodb://h/a%20b"), "");
  EXPECT_NO_THROW(parse_mongodb_uri("mongodb://h/" + std::string(63, 'd')));
}

TEST(mongodb_uri, messages_never_repeat_the_password) {
  const std::string message = refusal("mongodb://ann:s3cret-pw@h/?replSet=rs0");
  EXPECT_NE(message, "");
  EXPECT_EQ(message.find("s3cret-pw"), std::string::npos) << message;
  const std::string other = refusal("mongodb://ann:s3cret-pw@h/bad$name");
  EXPECT_EQ(other.find("s3cret-pw"), std::string::npos) << other;
  // Unescaped '@', '/' or ':' in a password (found by tests/fuzz): libmongoc refuses the URI and
  // its message quotes the password.
  for (const char* uri :
       {"mongodb://ann:@s3cret-pw@h/game?bogus=1", "mongodb://ann:@s3cret-pw@h/a$b",
        "mongodb://ann:pa/s3cret-pw@h/game", "mongodb://ann:pa:s3cret-pw@h/game"}) {
    const std::string leaked = refusal(uri);
    EXPECT_NE(leaked, "") << uri;
    EXPECT_EQ(leaked.find("s3cret-pw"), std::string::npos) << leaked;
  }
}

TEST(mongodb_names, collection_names_mongodb_refuses_are_refused) {
  using eventsourced::validate_mongodb_collection_name;
  EXPECT_NO_THROW(validate_mongodb_collection_name("players"));
  EXPECT_NO_THROW(validate_mongodb_collection_name("_es_events"));
  EXPECT_NO_THROW(validate_mongodb_collection_name("game.players"));
  EXPECT_THROW(validate_mongodb_collection_name("system.users"), invalid_argument_error);
  EXPECT_THROW(validate_mongodb_collection_name("system.profile"), invalid_argument_error);
  EXPECT_THROW(validate_mongodb_collection_name("a$b"), invalid_argument_error);
  EXPECT_THROW(validate_mongodb_collection_name(std::string("a\0b", 3)), invalid_argument_error);
  EXPECT_THROW(validate_mongodb_collection_name(""), invalid_argument_error);
  EXPECT_THROW(validate_mongodb_collection_name(std::string(129, 'c')), invalid_argument_error);
}

}  // namespace
