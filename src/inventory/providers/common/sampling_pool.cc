#include "inventory/providers/common/sampling_pool.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <utility>

#include "core/clock.h"

namespace gpurm {

struct SamplingPool::Shared {
  struct Worker {
    std::condition_variable wake;
    Job job;
    bool busy = false;  // From Post until the job has returned and released its captures.
  };

  explicit Shared(size_t n) : workers(n) {}

  mutable std::mutex mutex;  // Guards everything below.
  mutable std::condition_variable idle;
  std::vector<Worker> workers;  // Never resized: workers hold references.
  bool stop = false;
  double cpu_seconds = 0;
};

SamplingPool::SamplingPool(size_t workers) : shared_(std::make_shared<Shared>(workers)) {
  threads_.reserve(workers);
  for (size_t i = 0; i < workers; ++i) {
    threads_.emplace_back([shared = shared_, i] { Work(shared, i); });
  }
}

SamplingPool::~SamplingPool() {
  std::vector<bool> busy(threads_.size());
  {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    shared_->stop = true;
    for (size_t i = 0; i < threads_.size(); ++i) {
      busy[i] = shared_->workers[i].busy;
      shared_->workers[i].wake.notify_one();
    }
  }
  // An idle worker sees `stop` and returns; a busy one returns after its job
  // (nothing can be posted any more), possibly long after this.
  for (size_t i = 0; i < threads_.size(); ++i) {
    if (busy[i]) {
      threads_[i].detach();
    } else {
      threads_[i].join();
    }
  }
}

bool SamplingPool::Post(size_t i, Job job) {
  std::lock_guard<std::mutex> lock(shared_->mutex);
  Shared::Worker& worker = shared_->workers.at(i);
  if (worker.busy) return false;
  worker.job = std::move(job);
  worker.busy = true;
  worker.wake.notify_one();
  return true;
}

bool SamplingPool::WaitIdle(std::chrono::steady_clock::time_point deadline) const {
  std::unique_lock<std::mutex> lock(shared_->mutex);
  return shared_->idle.wait_until(lock, deadline, [&] {
    return std::none_of(shared_->workers.begin(), shared_->workers.end(),
                        [](const Shared::Worker& worker) { return worker.busy; });
  });
}

bool SamplingPool::Busy(size_t i) const {
  std::lock_guard<std::mutex> lock(shared_->mutex);
  return shared_->workers.at(i).busy;
}

double SamplingPool::cpu_seconds() const {
  std::lock_guard<std::mutex> lock(shared_->mutex);
  return shared_->cpu_seconds;
}

void SamplingPool::Work(const std::shared_ptr<Shared>& shared, size_t i) {
  Shared::Worker& worker = shared->workers[i];
  std::unique_lock<std::mutex> lock(shared->mutex);
  while (true) {
    worker.wake.wait(lock, [&] { return worker.busy || shared->stop; });
    if (!worker.busy) return;  // Stopped, with nothing to finish.
    Job job = std::move(worker.job);
    worker.job = nullptr;
    lock.unlock();
    const double cpu_start = ThreadCpuSeconds();
    job();
    job = nullptr;  // Its captures go before the worker reports idle.
    const double cpu = ThreadCpuSeconds() - cpu_start;
    lock.lock();
    shared->cpu_seconds += cpu;
    worker.busy = false;
    shared->idle.notify_all();
  }
}

}  // namespace gpurm
