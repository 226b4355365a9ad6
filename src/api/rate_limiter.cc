#include "api/rate_limiter.h"

#include <algorithm>
#include <cmath>
#include <functional>

namespace gpurm {

RateLimiter::RateLimiter(double rate_per_s, double burst, const Clock* clock)
    : rate_per_s_(rate_per_s), burst_(std::max(1.0, burst)), clock_(clock) {}

double RateLimiter::Refilled(const Bucket& bucket, int64_t now_ms) const {
  const double elapsed_s =
      static_cast<double>(std::max<int64_t>(0, now_ms - bucket.updated_ms)) / 1000;
  return std::min(burst_, bucket.tokens + elapsed_s * rate_per_s_);
}

RateLimiter::Decision RateLimiter::Acquire(std::string_view client) {
  if (!enabled()) return {};
  Shard& shard = shards_[std::hash<std::string_view>{}(client) % kShards];
  const int64_t now_ms = clock_->NowUnixMs();
  std::lock_guard<std::mutex> lock(shard.mutex);
  auto it = shard.buckets.find(std::string(client));
  if (it == shard.buckets.end()) {
    if (shard.buckets.size() >= kMaxBucketsPerShard) {
      std::erase_if(shard.buckets,
                    [&](const auto& entry) { return Refilled(entry.second, now_ms) >= burst_; });
    }
    it = shard.buckets.emplace(std::string(client), Bucket{burst_, now_ms}).first;
  }
  Bucket& bucket = it->second;
  bucket.tokens = Refilled(bucket, now_ms);
  // A clock that went backwards restarts the refill from now.
  bucket.updated_ms = std::max(bucket.updated_ms, now_ms);
  if (bucket.tokens >= 1) {
    bucket.tokens -= 1;
    return {};
  }
  const double wait_s = (1 - bucket.tokens) / rate_per_s_;
  return {false, std::max<int64_t>(1, static_cast<int64_t>(std::ceil(wait_s)))};
}

size_t RateLimiter::TrackedClients() const {
  size_t total = 0;
  for (const Shard& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard.mutex);
    total += shard.buckets.size();
  }
  return total;
}

}  // namespace gpurm
