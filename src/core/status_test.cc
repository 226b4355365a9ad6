#include "core/status.h"

#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <string>

#include "core/clock.h"

namespace gpurm {
namespace {

TEST(StatusTest, DefaultIsOk) {
  const Status status;
  EXPECT_TRUE(status.ok());
  EXPECT_EQ(status.code(), StatusCode::kOk);
  EXPECT_EQ(status.message(), "");
  EXPECT_EQ(status.field(), "");
  EXPECT_EQ(status.ToString(), "ok");
  EXPECT_TRUE(Status::Ok().ok());
}

TEST(StatusTest, ToStringNamesCodeFieldAndMessage) {
  const struct {
    Status status;
    const char* text;
  } cases[] = {
      {InvalidArgument("must be >= 1", "gpu_count"), "invalid_argument: gpu_count: must be >= 1"},
      {InvalidArgument("body is not JSON"), "invalid_argument: body is not JSON"},
      {NotFound("no allocation 'a1'"), "not_found: no allocation 'a1'"},
      {Unavailable("manager not initialized"), "unavailable: manager not initialized"},
      {Internal("boom"), "internal: boom"},
      {Status(StatusCode::kUnschedulableNow, "no free V100", "gpu_type"),
       "unschedulable_now: gpu_type: no free V100"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    EXPECT_FALSE(c.status.ok());
    EXPECT_EQ(c.status.ToString(), c.text);
  }
  EXPECT_EQ(InvalidArgument("m", "f").field(), "f");
  EXPECT_EQ(InvalidArgument("m", "f").code(), StatusCode::kInvalidArgument);
}

TEST(StatusTest, CodeNamesAreStableAndDistinct) {
  const struct {
    StatusCode code;
    const char* name;
  } cases[] = {
      {StatusCode::kOk, "ok"},
      {StatusCode::kInvalidArgument, "invalid_argument"},
      {StatusCode::kNotFound, "not_found"},
      {StatusCode::kAlreadyExists, "already_exists"},
      {StatusCode::kFailedPrecondition, "failed_precondition"},
      {StatusCode::kUnschedulableNow, "unschedulable_now"},
      {StatusCode::kUnschedulableNever, "unschedulable_never"},
      {StatusCode::kUnavailable, "unavailable"},
      {StatusCode::kResourceExhausted, "resource_exhausted"},
      {StatusCode::kPermissionDenied, "permission_denied"},
      {StatusCode::kUnauthenticated, "unauthenticated"},
      {StatusCode::kInternal, "internal"},
  };
  std::set<std::string> seen;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_STREQ(StatusCodeName(c.code), c.name);
    EXPECT_TRUE(seen.insert(c.name).second);
  }
}

TEST(ResultTest, HoldsValue) {
  Result<int> result(42);
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(result.status().ok());
  EXPECT_EQ(result.value(), 42);
  EXPECT_EQ(*result, 42);
  *result = 7;
  EXPECT_EQ(result.value(), 7);

  const Result<std::string> text(std::string("abc"));
  EXPECT_EQ(text->size(), 3u);
}

TEST(ResultTest, HoldsError) {
  const Result<int> result = NotFound("no such node");
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(result.status().message(), "no such node");
}

TEST(ResultTest, MovesOutMoveOnlyValues) {
  Result<std::unique_ptr<int>> result(std::make_unique<int>(5));
  ASSERT_TRUE(result.ok());
  const std::unique_ptr<int> taken = std::move(result).value();
  ASSERT_NE(taken, nullptr);
  EXPECT_EQ(*taken, 5);
}

TEST(ClockTest, FormatIso8601IsUtcWithMilliseconds) {
  const struct {
    int64_t unix_ms;
    const char* text;
  } cases[] = {
      {0, "1970-01-01T00:00:00.000Z"},
      {1, "1970-01-01T00:00:00.001Z"},
      {999, "1970-01-01T00:00:00.999Z"},
      {1'700'000'000'123, "2023-11-14T22:13:20.123Z"},
      {951'782'400'000, "2000-02-29T00:00:00.000Z"},
      {4'102'444'799'999, "2099-12-31T23:59:59.999Z"},
      {-1, "1969-12-31T23:59:59.999Z"},
      {-86'400'000, "1969-12-31T00:00:00.000Z"},
      {253'402'300'799'999, "9999-12-31T23:59:59.999Z"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    EXPECT_EQ(FormatIso8601(c.unix_ms), c.text);
  }
}

TEST(ClockTest, FakeClockMovesOnlyWhenTold) {
  FakeClock clock(1'000);
  EXPECT_EQ(clock.NowUnixMs(), 1'000);
  clock.AdvanceMs(250);
  EXPECT_EQ(clock.NowUnixMs(), 1'250);
  clock.SetMs(5);
  EXPECT_EQ(clock.NowUnixMs(), 5);
  EXPECT_EQ(FakeClock().NowUnixMs(), 1'700'000'000'000);
}

TEST(ClockTest, SystemClockIsWallTime) {
  const SystemClock clock;
  const int64_t first = clock.NowUnixMs();
  EXPECT_GT(first, 1'700'000'000'000);  // After Nov 2023.
  EXPECT_GE(clock.NowUnixMs(), first);
}

}  // namespace
}  // namespace gpurm
