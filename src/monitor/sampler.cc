#include "monitor/sampler.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <utility>

namespace gpurm {

Sampler::Sampler(Inventory* inventory, const Clock* clock, EventHub* events, SamplerOptions options,
                 Observer observer)
    : inventory_(inventory),
      clock_(clock),
      events_(events),
      options_(options),
      interval_ms_(std::max<int64_t>(1, std::llround(options.interval_s * 1000.0))),
      observer_(std::move(observer)),
      detector_(options.change_threshold) {}

Sampler::~Sampler() { Stop(); }

void Sampler::Start() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (running_ || stop_) return;
  running_ = true;
  thread_ = std::thread([this] { Run(); });
}

void Sampler::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!running_) return;
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
  std::lock_guard<std::mutex> lock(mutex_);
  running_ = false;
  done_.notify_all();
}

Status Sampler::SampleNow(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (!running_ || stop_) return Unavailable("the sampler is not running");
  const uint64_t ticket = ++requested_;
  wake_.notify_all();
  auto finished = [&] { return served_ >= ticket || !running_ || stop_; };
  if (timeout == kNoTimeout) {
    done_.wait(lock, finished);
  } else if (!done_.wait_for(lock, timeout, finished)) {
    return Unavailable("the sampling pass did not finish within " +
                       std::to_string(timeout.count()) +
                       " ms (a slow provider); it goes on in the background");
  }
  if (served_ < ticket) return Unavailable("the sampler stopped");
  return last_status_;
}

void Sampler::RequestSample() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++requested_;
  }
  wake_.notify_all();
}

uint64_t Sampler::Sync() {
  std::unique_lock<std::mutex> lock(mutex_);
  if (!running_ || stop_) return stats_.passes;
  const uint64_t ticket = ++sync_requested_;
  wake_.notify_all();
  done_.wait(lock, [&] { return synced_ >= ticket || !running_ || stop_; });
  return stats_.passes;
}

SamplerStats Sampler::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void Sampler::Run() {
  std::unique_lock<std::mutex> lock(mutex_);
  int64_t next_due = clock_->NowUnixMs();
  while (!stop_) {
    // Read the tickets before the clock, so a Sync is only acknowledged by
    // an iteration that saw the time as it was when Sync was called.
    const uint64_t sync_ticket = sync_requested_;
    const uint64_t demand_ticket = requested_;
    int64_t now = clock_->NowUnixMs();
    if (next_due - now > interval_ms_) next_due = now;  // The clock went backwards.
    if (now >= next_due || demand_ticket > served_) {
      lock.unlock();
      const SampleReport report = Pass();
      if (observer_) observer_(report);
      lock.lock();
      served_ = std::max(served_, demand_ticket);
      last_status_ = report.status;
      ++stats_.passes;
      if (!report.status.ok()) ++stats_.failures;
      if (report.status.ok()) stats_.gpu_samples += report.gpus;
      stats_.events += report.events;
      stats_.cpu_seconds += report.cpu_seconds;
      stats_.last_pass_unix_ms = report.unix_ms;
      stats_.last_pass_wall_seconds = report.wall_seconds;
      now = report.unix_ms;
      next_due = now + interval_ms_;
    }
    synced_ = std::max(synced_, sync_ticket);
    done_.notify_all();
    wake_.wait_for(lock, std::chrono::milliseconds(std::max<int64_t>(0, next_due - now)),
                   [&] { return stop_ || requested_ > served_ || sync_requested_ > synced_; });
  }
}

SampleReport Sampler::Pass() {
  SampleReport report;
  const double cpu_start = ThreadCpuSeconds();
  const double provider_cpu_start = inventory_->ProviderCpuSeconds();
  const auto wall_start = std::chrono::steady_clock::now();
  report.unix_ms = clock_->NowUnixMs();
  report.status = inventory_->Refresh();
  if (report.status.ok()) {
    const std::shared_ptr<const InventorySnapshot> snapshot = inventory_->Snapshot();
    report.first = !sampled_ok_;
    sampled_ok_ = true;
    report.nodes = snapshot->nodes.size();
    for (const Node& node : snapshot->nodes) report.gpus += node.gpus.size();
    std::vector<GpuEvent> events = detector_.Update(*snapshot);
    report.events = events.size();
    std::vector<size_t> notable;
    for (size_t i = 0; i < events.size(); ++i) {
      const GpuEventType type = events[i].type;
      if (type == GpuEventType::kHealth || type == GpuEventType::kRemoved ||
          (type == GpuEventType::kAdded && !report.first)) {
        notable.push_back(i);
        report.notable_events.push_back(events[i]);
      }
    }
    const uint64_t first_sequence = events_->Publish(std::move(events));
    for (size_t i = 0; i < notable.size() && first_sequence > 0; ++i) {
      report.notable_events[i].sequence = first_sequence + notable[i];
    }
  }
  report.cpu_seconds =
      ThreadCpuSeconds() - cpu_start + (inventory_->ProviderCpuSeconds() - provider_cpu_start);
  report.wall_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  return report;
}

}  // namespace gpurm
