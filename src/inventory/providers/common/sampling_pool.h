// SamplingPool: one worker thread per GPU for the vendor calls that read its
// live values. A vendor call can block for many seconds (NVML on a GPU that
// fell off the bus); on a thread of its own such a GPU stalls only itself,
// and the caller decides how long to wait for it. Each worker runs at most
// one job at a time and jobs never queue: a GPU whose call is still stuck
// gets no second call behind it.
#ifndef GPURM_INVENTORY_PROVIDERS_COMMON_SAMPLING_POOL_H_
#define GPURM_INVENTORY_PROVIDERS_COMMON_SAMPLING_POOL_H_

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

namespace gpurm {

// Thread-compatible: one thread posts and waits; jobs run on the workers.
class SamplingPool {
 public:
  using Job = std::function<void()>;

  // Starts `workers` threads.
  explicit SamplingPool(size_t workers);
  // Joins the idle workers and detaches the busy ones, which exit when their
  // job returns: whatever a job uses must then outlive the pool (jobs should
  // own their captures; see ~LocalProvider for what it does with the vendor
  // library a stuck job is inside). Call WaitIdle first to give running jobs
  // a grace period.
  ~SamplingPool();
  SamplingPool(const SamplingPool&) = delete;
  SamplingPool& operator=(const SamplingPool&) = delete;

  size_t size() const { return threads_.size(); }
  // Starts `job` on worker `i` and returns true; returns false, dropping
  // `job`, while worker `i`'s previous job is still running.
  bool Post(size_t i, Job job);
  // Waits until no worker runs a job, or until `deadline`; true when idle.
  bool WaitIdle(std::chrono::steady_clock::time_point deadline) const;
  // Whether worker `i` is running a job.
  bool Busy(size_t i) const;
  // CPU time the workers spent in finished jobs, summed.
  double cpu_seconds() const;

 private:
  struct Shared;  // Shared with the workers: outlives the pool while a detached one runs.
  static void Work(const std::shared_ptr<Shared>& shared, size_t i);

  std::shared_ptr<Shared> shared_;
  std::vector<std::thread> threads_;
};

}  // namespace gpurm

#endif  // GPURM_INVENTORY_PROVIDERS_COMMON_SAMPLING_POOL_H_
