// ScriptedProvider: an InventoryProvider whose answers a test or benchmark
// sets directly, and which counts how often it was asked. Header-only; for
// tests and bench/ only.
#ifndef GPURM_INVENTORY_TESTING_SCRIPTED_PROVIDER_H_
#define GPURM_INVENTORY_TESTING_SCRIPTED_PROVIDER_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/gpu_model.h"
#include "inventory/provider.h"

namespace gpurm::testing {

// The state a ScriptedProvider serves. Thread-safe: the test thread edits it
// while the sampler thread reads it through the provider.
class Script {
 public:
  void SetNodes(std::vector<Node> nodes) {
    std::lock_guard<std::mutex> lock(mutex_);
    nodes_ = std::move(nodes);
  }
  // Applies `edit` to the GPU with this index on the first node.
  template <typename Edit>
  void EditGpu(int index, Edit edit) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (Gpu& gpu : nodes_.front().gpus) {
      if (gpu.index == index) edit(gpu);
    }
  }
  // Makes the next Discover calls fail (kUnavailable) until cleared.
  void SetFailure(std::string message) {
    std::lock_guard<std::mutex> lock(mutex_);
    failure_ = std::move(message);
  }
  int64_t discover_calls() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return calls_;
  }
  // The thread that made the last Discover call.
  std::thread::id last_caller() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return last_caller_;
  }

  Result<DiscoveryReport> Serve() {
    std::lock_guard<std::mutex> lock(mutex_);
    ++calls_;
    last_caller_ = std::this_thread::get_id();
    if (!failure_.empty()) return Unavailable(failure_);
    DiscoveryReport report;
    report.nodes = nodes_;
    report.notes = {"scripted"};
    report.stale_gpus = stale_gpus_;
    report.worker_cpu_seconds = worker_cpu_seconds_;
    return report;
  }
  // What the following answers say about GPUs whose values are stale and
  // about CPU time spent on provider threads (as LocalProvider reports them).
  void SetStale(std::vector<std::string> uuids, double worker_cpu_seconds) {
    std::lock_guard<std::mutex> lock(mutex_);
    stale_gpus_ = std::move(uuids);
    worker_cpu_seconds_ = worker_cpu_seconds;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<Node> nodes_;
  std::string failure_;
  std::vector<std::string> stale_gpus_;
  double worker_cpu_seconds_ = 0;
  int64_t calls_ = 0;
  std::thread::id last_caller_;
};

class ScriptedProvider final : public InventoryProvider {
 public:
  explicit ScriptedProvider(std::shared_ptr<Script> script) : script_(std::move(script)) {}
  std::string name() const override { return "scripted"; }
  Result<DiscoveryReport> Discover() override { return script_->Serve(); }

 private:
  std::shared_ptr<Script> script_;
};

// One node named `node_name` with `gpu_count` idle H100s (80 GiB, 30 C,
// 70 W of 700 W), uuids "<node_name>-gpu<i>".
inline Node H100Node(const std::string& node_name, int gpu_count) {
  Node node;
  node.name = node_name;
  for (int i = 0; i < gpu_count; ++i) {
    Gpu gpu;
    gpu.index = i;
    gpu.uuid = node_name + "-gpu" + std::to_string(i);
    gpu.model = ParseGpuModel("NVIDIA H100 80GB HBM3");
    gpu.memory_total_mib = 81559;
    gpu.memory_used_mib = 512;
    gpu.utilization = 0.0;
    gpu.temperature_c = 30;
    gpu.power_w = 70;
    gpu.power_limit_w = 700;
    gpu.nvlink_group = 0;
    node.gpus.push_back(std::move(gpu));
  }
  return node;
}

}  // namespace gpurm::testing

#endif  // GPURM_INVENTORY_TESTING_SCRIPTED_PROVIDER_H_
