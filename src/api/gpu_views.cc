#include "api/gpu_views.h"

namespace gpurm {

using nlohmann::json;

// A GPU's utilization, or null where the device gives none (MIG devices and
// GPUs in MIG mode): unavailable, never 0.
json UtilizationJson(const Gpu& gpu, double value) {
  return gpu.utilization_available ? json(value) : json(nullptr);
}

GpuCounts CountGpus(const InventorySnapshot& snapshot) {
  GpuCounts counts;
  for (const Node& node : snapshot.nodes) {
    for (const Gpu& gpu : node.gpus) ++(gpu.is_mig_device() ? counts.mig_devices : counts.gpus);
  }
  return counts;
}

json OptionalNumberJson(const std::optional<double>& value) {
  return value ? json(*value) : json();
}

const char* GpuStateName(const NodeAvailability& node, const GpuAvailability& g) {
  if (node.node->lost()) return "lost";
  if (!g.gpu->healthy) return "unhealthy";
  if (!g.gpu->allocatable_unit()) return "mig";  // Granted by its MIG devices only.
  if (g.exclusively_held) return "allocated";
  if (g.shared_holders > 0) return "shared";
  return node.node->schedulable ? "free" : "cordoned";
}

int64_t ReservedMib(const GpuAvailability& g) {
  return g.exclusively_held ? g.gpu->memory_total_mib : g.shared_reserved_mib;
}

}  // namespace gpurm
