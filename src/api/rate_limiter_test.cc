// The per-client token bucket on a FakeClock: burst, refill, Retry-After,
// clients kept apart, a clock going backwards, bounded memory.
#include "api/rate_limiter.h"

#include <gtest/gtest.h>

#include <string>

namespace gpurm {
namespace {

TEST(RateLimiterTest, ZeroRateAllowsEverything) {
  FakeClock clock;
  RateLimiter limiter(0, 0, &clock);
  EXPECT_FALSE(limiter.enabled());
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(limiter.Acquire("10.0.0.1").allowed);
  EXPECT_EQ(limiter.TrackedClients(), 0u);
}

TEST(RateLimiterTest, AllowsTheBurstThenRefusesWithRetryAfter) {
  FakeClock clock;
  RateLimiter limiter(/*rate_per_s=*/0.5, /*burst=*/3, &clock);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.Acquire("a").allowed) << i;
  const RateLimiter::Decision refused = limiter.Acquire("a");
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after_s, 2);  // One token per 2 s.
  clock.AdvanceMs(1000);
  EXPECT_FALSE(limiter.Acquire("a").allowed);
  EXPECT_EQ(limiter.Acquire("a").retry_after_s, 1);
  clock.AdvanceMs(1000);
  EXPECT_TRUE(limiter.Acquire("a").allowed);
  EXPECT_FALSE(limiter.Acquire("a").allowed);
}

TEST(RateLimiterTest, RetryAfterIsAtLeastOneSecond) {
  FakeClock clock;
  RateLimiter limiter(100, 1, &clock);
  EXPECT_TRUE(limiter.Acquire("a").allowed);
  const RateLimiter::Decision refused = limiter.Acquire("a");
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after_s, 1);
}

TEST(RateLimiterTest, RefillStopsAtTheBurst) {
  FakeClock clock;
  RateLimiter limiter(10, 2, &clock);
  EXPECT_TRUE(limiter.Acquire("a").allowed);
  clock.AdvanceMs(3'600'000);
  EXPECT_TRUE(limiter.Acquire("a").allowed);
  EXPECT_TRUE(limiter.Acquire("a").allowed);
  EXPECT_FALSE(limiter.Acquire("a").allowed);
}

TEST(RateLimiterTest, ClientsHaveTheirOwnBuckets) {
  FakeClock clock;
  RateLimiter limiter(1, 1, &clock);
  EXPECT_TRUE(limiter.Acquire("10.0.0.1").allowed);
  EXPECT_FALSE(limiter.Acquire("10.0.0.1").allowed);
  EXPECT_TRUE(limiter.Acquire("10.0.0.2").allowed);
  EXPECT_TRUE(limiter.Acquire("::1").allowed);
}

TEST(RateLimiterTest, AClockGoingBackwardsRefillsNothing) {
  FakeClock clock;
  RateLimiter limiter(1, 1, &clock);
  EXPECT_TRUE(limiter.Acquire("a").allowed);
  clock.AdvanceMs(-60'000);
  EXPECT_FALSE(limiter.Acquire("a").allowed);
  clock.AdvanceMs(60'000);
  EXPECT_FALSE(limiter.Acquire("a").allowed);  // Back where it was: still empty.
  clock.AdvanceMs(1'000);
  EXPECT_TRUE(limiter.Acquire("a").allowed);
}

TEST(RateLimiterTest, ForgetsFullBucketsWhenManyClientsPassBy) {
  FakeClock clock;
  RateLimiter limiter(1, 1, &clock);
  for (int i = 0; i < 100'000; ++i) {
    limiter.Acquire("client-" + std::to_string(i));
    clock.AdvanceMs(10);
  }
  // Buckets older than a second have refilled and are dropped when a shard
  // fills; the bound is 16 shards x 4096.
  EXPECT_LE(limiter.TrackedClients(), 16u * 4096u);
  // A forgotten client starts with a full bucket, as it would anyway.
  EXPECT_TRUE(limiter.Acquire("client-0").allowed);
}

}  // namespace
}  // namespace gpurm
