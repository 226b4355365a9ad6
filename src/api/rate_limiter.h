// RateLimiter: a token bucket per client address, for the HTTP server's
// per-client request rate limit.
//
// Each address gets `burst` tokens, refilled at `rate_per_s`; a request
// takes one token or is refused with the time until the next token. Buckets
// live in a map split into shards, each with its own mutex, so that requests
// from different clients rarely contend and no single lock serialises the
// server (a request holds one shard's lock for a hash lookup and a few
// arithmetic operations). A shard forgets the buckets that have refilled
// completely when it grows past a bound, so a scan from many addresses
// costs bounded memory: a full bucket is exactly what a new client gets.
#ifndef GPURM_API_RATE_LIMITER_H_
#define GPURM_API_RATE_LIMITER_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/clock.h"

namespace gpurm {

class RateLimiter {
 public:
  struct Decision {
    bool allowed = true;
    // When refused: seconds until a token is available (>= 1, rounded up;
    // the value of a Retry-After header).
    int64_t retry_after_s = 0;
  };

  // rate_per_s <= 0 turns limiting off (every request allowed). burst < 1 is
  // taken as 1. `clock` must outlive the limiter; it may go backwards (wall
  // clock), which refills nothing.
  RateLimiter(double rate_per_s, double burst, const Clock* clock);

  bool enabled() const { return rate_per_s_ > 0; }

  // Takes one token from `client`'s bucket. Thread-safe.
  Decision Acquire(std::string_view client);

  // Buckets currently remembered (for tests).
  size_t TrackedClients() const;

 private:
  struct Bucket {
    double tokens = 0;
    int64_t updated_ms = 0;
  };
  struct Shard {
    mutable std::mutex mutex;
    std::unordered_map<std::string, Bucket> buckets;
  };
  static constexpr size_t kShards = 16;
  // A shard with more buckets than this drops its full ones.
  static constexpr size_t kMaxBucketsPerShard = 4096;

  double Refilled(const Bucket& bucket, int64_t now_ms) const;

  const double rate_per_s_;
  const double burst_;
  const Clock* clock_;
  std::array<Shard, kShards> shards_;
};

}  // namespace gpurm

#endif  // GPURM_API_RATE_LIMITER_H_
