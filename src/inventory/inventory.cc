#include "inventory/inventory.h"

#include <algorithm>
#include <unordered_set>
#include <utility>

namespace gpurm {
namespace {

// A GPU's memory_used_by_managed_mib from `managed` (0 when absent), never
// above what the GPU reports in use.
int64_t ManagedMibOf(const Gpu& gpu, const std::unordered_map<std::string, int64_t>& managed) {
  auto it = managed.find(gpu.uuid);
  return it == managed.end() ? 0 : std::min(it->second, gpu.memory_used_mib);
}

// Whether any GPU of `snapshot` would change under ApplyManagedUse.
bool ManagedUseChanges(const std::unordered_map<std::string, int64_t>& managed,
                       const InventorySnapshot& snapshot) {
  for (const Node& node : snapshot.nodes) {
    for (const Gpu& gpu : node.gpus) {
      if (gpu.memory_used_by_managed_mib != ManagedMibOf(gpu, managed)) return true;
    }
  }
  return false;
}

void ApplyManagedUse(const std::unordered_map<std::string, int64_t>& managed,
                     InventorySnapshot& snapshot) {
  for (Node& node : snapshot.nodes) {
    for (Gpu& gpu : node.gpus) gpu.memory_used_by_managed_mib = ManagedMibOf(gpu, managed);
  }
}

}  // namespace

Inventory::Inventory(std::unique_ptr<InventoryProvider> provider, const Clock* clock,
                     size_t history_capacity)
    : provider_(std::move(provider)),
      provider_name_(provider_->name()),
      clock_(clock),
      history_capacity_(history_capacity > 0 ? history_capacity : 1) {}

Status Inventory::Refresh() {
  std::lock_guard<std::mutex> refresh_lock(refresh_mutex_);
  Result<DiscoveryReport> report = provider_->Discover();
  std::lock_guard<std::mutex> lock(mutex_);
  if (!report.ok()) {
    last_error_ = report.status();
    changes_.fetch_add(1, std::memory_order_acq_rel);
    return last_error_;
  }
  auto snapshot = std::make_shared<InventorySnapshot>();
  snapshot->nodes = std::move(report->nodes);
  ApplyManagedUse(managed_mib_by_uuid_, *snapshot);
  snapshot->taken_unix_ms = clock_->NowUnixMs();
  snapshot->generation = snapshot_ ? snapshot_->generation + 1 : 1;

  provider_cpu_seconds_ += report->worker_cpu_seconds;
  const std::unordered_set<std::string> stale(report->stale_gpus.begin(), report->stale_gpus.end());
  std::unordered_set<std::string> present;
  for (const Node& node : snapshot->nodes) {
    for (const Gpu& gpu : node.gpus) {
      present.insert(gpu.uuid);
      if (stale.contains(gpu.uuid)) continue;  // History holds measurements only.
      std::deque<GpuSample>& samples = history_[gpu.uuid];
      samples.push_back(GpuSample{snapshot->taken_unix_ms, gpu.utilization, gpu.memory_used_mib,
                                  gpu.temperature_c, gpu.power_w, gpu.utilization_available});
      while (samples.size() > history_capacity_) samples.pop_front();
    }
  }
  // GPUs that disappeared take their history with them: memory stays bounded.
  std::erase_if(history_, [&](const auto& entry) { return !present.contains(entry.first); });

  snapshot_ = std::move(snapshot);
  notes_ = std::move(report->notes);
  stale_gpus_ = std::move(report->stale_gpus);
  last_error_ = Status::Ok();
  changes_.fetch_add(1, std::memory_order_acq_rel);
  return last_error_;
}

void Inventory::SetManagedUse(std::unordered_map<std::string, int64_t> managed_mib_by_uuid) {
  std::lock_guard<std::mutex> lock(mutex_);
  managed_mib_by_uuid_ = std::move(managed_mib_by_uuid);
  // Unchanged (the usual pass): readers keep their snapshot and generation,
  // and nothing is copied.
  if (!snapshot_ || !ManagedUseChanges(managed_mib_by_uuid_, *snapshot_)) return;
  auto annotated = std::make_shared<InventorySnapshot>(*snapshot_);
  ApplyManagedUse(managed_mib_by_uuid_, *annotated);
  annotated->generation = snapshot_->generation + 1;
  snapshot_ = std::move(annotated);
  changes_.fetch_add(1, std::memory_order_acq_rel);
}

std::shared_ptr<const InventorySnapshot> Inventory::Snapshot() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return snapshot_;
}

std::vector<std::string> Inventory::Notes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return notes_;
}

std::vector<std::string> Inventory::StaleGpus() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stale_gpus_;
}

double Inventory::ProviderCpuSeconds() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return provider_cpu_seconds_;
}

Status Inventory::LastError() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return last_error_;
}

std::vector<GpuSample> Inventory::History(const std::string& gpu_uuid,
                                          int64_t since_unix_ms) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<GpuSample> out;
  auto it = history_.find(gpu_uuid);
  if (it == history_.end()) return out;
  for (const GpuSample& sample : it->second) {
    if (sample.unix_ms >= since_unix_ms) out.push_back(sample);
  }
  return out;
}

}  // namespace gpurm
