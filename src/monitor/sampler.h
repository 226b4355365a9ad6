// Sampler: the one thread that asks the inventory's provider for fresh
// readings, every monitor_update_interval seconds and on demand, and turns
// them into change events. Providers are only ever called from this thread,
// never from HTTP threads (LocalProvider fans each GPU's vendor calls out to
// a worker of its own and waits for them at most its per-GPU deadline, so a
// hung GPU neither stalls the others nor makes a pass unbounded); the API
// reads the published snapshot and the per-GPU history the Inventory keeps.
#ifndef GPURM_MONITOR_SAMPLER_H_
#define GPURM_MONITOR_SAMPLER_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "inventory/inventory.h"
#include "monitor/change_detector.h"
#include "monitor/event_hub.h"

namespace gpurm {

struct SamplerOptions {
  double interval_s = 30;          // monitor_update_interval; > 0.
  double change_threshold = 0.05;  // resource_change_threshold (see ChangeDetector).
};

// What one sampling pass did; given to the observer after each pass.
struct SampleReport {
  Status status;       // OK, or the provider's error (the previous snapshot stays).
  bool first = false;  // The first successful pass since Start.
  int64_t unix_ms = 0;
  size_t nodes = 0;
  size_t gpus = 0;
  size_t events = 0;
  // CPU time the pass spent on the sampler thread and the provider's
  // sampling workers (a worker's time counts when its job finishes).
  double cpu_seconds = 0;
  double wall_seconds = 0;  // Elapsed (steady clock) time of the pass.
  // The events worth a log line: health transitions and GPUs that appeared
  // (after the first pass) or disappeared. Numbered as published.
  std::vector<GpuEvent> notable_events;
};

struct SamplerStats {
  uint64_t passes = 0;       // Sampling passes, successful or not.
  uint64_t failures = 0;     // Passes whose provider call failed.
  uint64_t events = 0;       // Change events published.
  uint64_t gpu_samples = 0;  // GPUs summed over successful passes.
  double cpu_seconds = 0;    // SampleReport::cpu_seconds summed over passes.
  int64_t last_pass_unix_ms = 0;
  double last_pass_wall_seconds = 0;
};

// Thread-safe. The schedule follows the injected Clock: a pass is due when
// clock time reaches the previous pass's time plus the interval (a clock that
// jumps backwards restarts the schedule). With a FakeClock, advance it and
// call Sync() to let the thread act on the new time.
class Sampler {
 public:
  // Called on the sampler thread after every pass; must not call back into
  // the sampler's waiting methods (SampleNow, Sync).
  using Observer = std::function<void(const SampleReport&)>;

  // `inventory`, `clock` and `events` must outlive the sampler.
  Sampler(Inventory* inventory, const Clock* clock, EventHub* events, SamplerOptions options,
          Observer observer = {});
  ~Sampler();  // Stops.
  Sampler(const Sampler&) = delete;
  Sampler& operator=(const Sampler&) = delete;

  // Starts the thread; the first pass runs at once. Call at most once.
  void Start();
  // Finishes the pass in progress, if any, and joins the thread. Idempotent.
  void Stop();

  static constexpr std::chrono::milliseconds kNoTimeout = std::chrono::milliseconds::max();

  // Runs a pass on the sampler thread and waits for it, at most `timeout`;
  // returns the status of a pass that started after this call. kUnavailable
  // when not running, or when the pass is still going after `timeout` (it
  // then finishes in the background).
  Status SampleNow(std::chrono::milliseconds timeout = kNoTimeout);
  // Asks for a pass as soon as possible, without waiting.
  void RequestSample();
  // Makes the thread read the clock again and run a pass if one is due, and
  // waits until it has. Returns the number of passes so far. For tests and
  // tools that drive a FakeClock; 0 when not running.
  uint64_t Sync();

  SamplerStats stats() const;
  const SamplerOptions& options() const { return options_; }

 private:
  void Run();
  SampleReport Pass();

  Inventory* const inventory_;
  const Clock* const clock_;
  EventHub* const events_;
  const SamplerOptions options_;
  const int64_t interval_ms_;
  const Observer observer_;
  ChangeDetector detector_;  // Sampler thread only.
  bool sampled_ok_ = false;  // Sampler thread only.

  mutable std::mutex mutex_;      // Guards the members below.
  std::condition_variable wake_;  // To the sampler thread.
  std::condition_variable done_;  // From it.
  bool running_ = false;
  bool stop_ = false;
  uint64_t requested_ = 0;  // On-demand tickets handed out...
  uint64_t served_ = 0;     // ...and the highest one a finished pass covered.
  uint64_t sync_requested_ = 0;
  uint64_t synced_ = 0;
  Status last_status_;
  SamplerStats stats_;
  std::thread thread_;
};

}  // namespace gpurm

#endif  // GPURM_MONITOR_SAMPLER_H_
