#include "api/utilization_summary.h"

#include <cmath>
#include <cstdint>
#include <set>
#include <string_view>

namespace gpurm {
namespace {

double Ratio(double part, double whole) {
  return whole > 0 ? std::round(part / whole * 1000.0) / 1000.0 : 0.0;
}

}  // namespace

nlohmann::json UtilizationSummaryJson(const ClusterState& state) {
  double utilization_sum = 0;
  int utilization_gpus = 0;
  int64_t used_mib = 0;
  int64_t reserved_mib = 0;
  int64_t total_mib = 0;
  std::set<std::string_view> physical;  // A node's GPUs (its MIG devices follow theirs).
  for (const NodeAvailability& node : state.nodes()) {
    physical.clear();
    for (const GpuAvailability& g : node.gpus) {
      if (g.gpu->utilization_available) {
        utilization_sum += g.gpu->utilization;
        ++utilization_gpus;
      }
      // A MIG device's memory is its GPU's, unless its GPU is not listed
      // (Kubernetes' MIG resources).
      if (!g.gpu->is_mig_device() || !physical.contains(g.gpu->mig_parent_uuid)) {
        used_mib += g.gpu->memory_used_mib;
        total_mib += g.gpu->memory_total_mib;
      }
      if (!g.gpu->is_mig_device()) physical.insert(g.gpu->uuid);
      reserved_mib += g.exclusively_held ? g.gpu->memory_total_mib : g.shared_reserved_mib;
    }
  }
  const double total = static_cast<double>(total_mib);
  return {{"gpu_utilization", Ratio(utilization_sum, utilization_gpus)},
          {"gpu_memory_usage", Ratio(static_cast<double>(used_mib), total)},
          {"gpu_memory_reserved", Ratio(static_cast<double>(reserved_mib), total)}};
}

}  // namespace gpurm
