// Clock: the seam for time, so leases, history and sampling are testable
// without sleeping.
#ifndef GPURM_CORE_CLOCK_H_
#define GPURM_CORE_CLOCK_H_

#include <atomic>
#include <cstdint>
#include <string>

namespace gpurm {

// Thread-safe: implementations may be called from any thread.
class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock milliseconds since the Unix epoch.
  virtual int64_t NowUnixMs() const = 0;
};

// The real system clock.
class SystemClock final : public Clock {
 public:
  int64_t NowUnixMs() const override;
};

// A clock that only moves when told to. For tests.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t start_unix_ms = 1'700'000'000'000) : now_ms_(start_unix_ms) {}
  int64_t NowUnixMs() const override { return now_ms_.load(); }
  void AdvanceMs(int64_t delta_ms) { now_ms_.fetch_add(delta_ms); }
  void SetMs(int64_t unix_ms) { now_ms_.store(unix_ms); }

 private:
  std::atomic<int64_t> now_ms_;
};

// CPU time the calling thread has used, in seconds (CLOCK_THREAD_CPUTIME_ID).
// What the monitor reports as the cost of sampling.
double ThreadCpuSeconds();

// ISO-8601 UTC with milliseconds, e.g. "2026-11-25T12:52:47.123Z".
std::string FormatIso8601(int64_t unix_ms);

}  // namespace gpurm

#endif  // GPURM_CORE_CLOCK_H_
