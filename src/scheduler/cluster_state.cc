#include "scheduler/cluster_state.h"

#include <algorithm>
#include <string>
#include <unordered_map>
#include <utility>

namespace gpurm {

int NodeAvailability::UntouchedGpuCount() const {
  return static_cast<int>(std::count_if(gpus.begin(), gpus.end(),
                                        [](const GpuAvailability& g) { return g.untouched(); }));
}

ClusterState::ClusterState(std::shared_ptr<const InventorySnapshot> snapshot,
                           const std::vector<GpuGrant>& active_grants)
    : snapshot_(std::move(snapshot)) {
  std::unordered_map<std::string, GpuAvailability*> by_uuid;
  nodes_.reserve(snapshot_->nodes.size());
  for (const Node& node : snapshot_->nodes) {
    NodeAvailability& availability = nodes_.emplace_back();
    availability.node = &node;
    availability.gpus.reserve(node.gpus.size());
    for (const Gpu& gpu : node.gpus) {
      GpuAvailability& g = availability.gpus.emplace_back();
      g.gpu = &gpu;
      g.free_mib = std::max<int64_t>(0, gpu.memory_free_of_outside_use_mib());
    }
  }
  // Pointers into nodes_ are stable from here on: nothing is appended later.
  for (NodeAvailability& node : nodes_) {
    for (GpuAvailability& g : node.gpus) by_uuid.emplace(g.gpu->uuid, &g);
  }
  for (const GpuGrant& grant : active_grants) {
    auto it = by_uuid.find(grant.gpu_uuid);
    if (it == by_uuid.end()) continue;
    GpuAvailability& g = *it->second;
    if (grant.exclusive) {
      g.exclusively_held = true;
    } else {
      ++g.shared_holders;
      g.shared_reserved_mib += grant.memory_mib;
    }
  }
  for (NodeAvailability& node : nodes_) {
    for (GpuAvailability& g : node.gpus) {
      g.free_mib =
          g.exclusively_held ? 0 : std::max<int64_t>(0, g.free_mib - g.shared_reserved_mib);
    }
  }
}

}  // namespace gpurm
