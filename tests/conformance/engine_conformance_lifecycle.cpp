// Engine conformance: close().
#include "conformance/engine_conformance.hpp"

#include <chrono>

namespace eventsourced::conformance {
namespace {

using namespace std::chrono_literals;

TEST_P(engine_conformance, close_is_idempotent_and_later_calls_throw_store_closed) {
  ASSERT_EQ(commit_write(db(), put_write("c", "a", 0, {{"v", 1}})), 1);
  commit_append(db(), append_to({"order", "o1"}, std::nullopt, {make_event("Placed")}));

  db().close();
  EXPECT_NO_THROW(db().close());

  EXPECT_THROW(db().get("c", "a"), store_closed_error);
  EXPECT_THROW(db().find("c", query{}), store_closed_error);
  EXPECT_THROW(db().commit(request_of({put_write("c", "b", 0, {{"v", 1}})})), store_closed_error);
  EXPECT_THROW(db().commit(request_of(
                   {}, {append_to({"order", "o1"}, std::nullopt, {make_event("Shipped")})})),
               store_closed_error);
  EXPECT_THROW(db().read_stream({"order", "o1"}, 1, 10), store_closed_error);
  EXPECT_THROW(db().read_all(0, 10), store_closed_error);
  EXPECT_THROW(db().wait_for(0, 10ms), store_closed_error);
  EXPECT_NO_THROW(db().close());
}

TEST_P(engine_conformance, closed_engine_error_is_not_retryable) {
  db().close();
  try {
    db().get("c", "a");
    ADD_FAILURE() << "get after close did not throw";
  } catch (const store_closed_error& e) {
    EXPECT_FALSE(e.retryable());
  }
}

TEST_P(engine_conformance, destroying_an_open_engine_is_safe) {
  ASSERT_EQ(commit_write(db(), put_write("c", "a", 0, {{"v", 1}})), 1);
  engine_.reset();  // without close()
  SUCCEED();
}

}  // namespace
}  // namespace eventsourced::conformance
