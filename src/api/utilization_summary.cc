#include "api/utilization_summary.h"

#include <cmath>
#include <cstdint>

namespace gpurm {
namespace {

double Ratio(double part, double whole) {
  return whole > 0 ? std::round(part / whole * 1000.0) / 1000.0 : 0.0;
}

}  // namespace

nlohmann::json UtilizationSummaryJson(const ClusterState& state) {
  double utilization_sum = 0;
  int64_t used_mib = 0;
  int64_t reserved_mib = 0;
  int64_t total_mib = 0;
  int gpus = 0;
  for (const NodeAvailability& node : state.nodes()) {
    for (const GpuAvailability& g : node.gpus) {
      ++gpus;
      utilization_sum += g.gpu->utilization;
      used_mib += g.gpu->memory_used_mib;
      total_mib += g.gpu->memory_total_mib;
      reserved_mib += g.exclusively_held ? g.gpu->memory_total_mib : g.shared_reserved_mib;
    }
  }
  const double total = static_cast<double>(total_mib);
  return {{"gpu_utilization", Ratio(utilization_sum, gpus)},
          {"gpu_memory_usage", Ratio(static_cast<double>(used_mib), total)},
          {"gpu_memory_reserved", Ratio(static_cast<double>(reserved_mib), total)}};
}

}  // namespace gpurm
