#include "common/status_macros.h"

#include <string>

#include "gtest/gtest.h"

namespace dtabd {
namespace {

int g_calls = 0;

absl::Status CountedStatus(absl::Status s) {
  ++g_calls;
  return s;
}

absl::StatusOr<std::string> CountedValue(absl::StatusOr<std::string> v) {
  ++g_calls;
  return v;
}

absl::Status ReturnIfError(absl::Status inner, bool* reached_end) {
  DTABD_RETURN_IF_ERROR(CountedStatus(inner));
  *reached_end = true;
  return absl::OkStatus();
}

absl::StatusOr<size_t> AssignOrReturn(absl::StatusOr<std::string> inner) {
  DTABD_ASSIGN_OR_RETURN(std::string s, CountedValue(std::move(inner)));
  DTABD_ASSIGN_OR_RETURN(auto t, CountedValue(s + "!"));
  return t.size();
}

TEST(StatusMacrosTest, ReturnIfErrorPassesOkThroughAndEvaluatesOnce) {
  g_calls = 0;
  bool reached = false;
  EXPECT_TRUE(ReturnIfError(absl::OkStatus(), &reached).ok());
  EXPECT_TRUE(reached);
  EXPECT_EQ(g_calls, 1);
}

TEST(StatusMacrosTest, ReturnIfErrorReturnsTheError) {
  g_calls = 0;
  bool reached = false;
  absl::Status s = ReturnIfError(absl::NotFoundError("dtab 'x'"), &reached);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "dtab 'x'");
  EXPECT_FALSE(reached);
  EXPECT_EQ(g_calls, 1);
}

TEST(StatusMacrosTest, AssignOrReturnAssignsValues) {
  g_calls = 0;
  absl::StatusOr<size_t> r = AssignOrReturn(std::string("abc"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 4u);
  EXPECT_EQ(g_calls, 2);
}

TEST(StatusMacrosTest, AssignOrReturnReturnsTheError) {
  g_calls = 0;
  absl::StatusOr<size_t> r = AssignOrReturn(absl::AbortedError("stale"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(g_calls, 1);
}

}  // namespace
}  // namespace dtabd
