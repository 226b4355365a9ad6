#include "core/types.h"

#include <algorithm>

namespace gpurm {

const char* AllocationStateName(AllocationState state) {
  switch (state) {
    case AllocationState::kActive:
      return "active";
    case AllocationState::kReleased:
      return "released";
    case AllocationState::kExpired:
      return "expired";
  }
  return "unknown";
}

std::string GpuTypeLabel(const Gpu& gpu) {
  std::string label = gpu.model.known() ? gpu.model.canonical : gpu.model.raw_name;
  if (gpu.is_mig_device()) {
    // An unknown model's raw name already ends in " MIG <profile>".
    if (!gpu.model.known()) return label;
    label += " MIG";
    if (!gpu.mig_profile.empty()) label += " " + gpu.mig_profile;
  }
  return label;
}

std::vector<std::string> Allocation::NodeNames() const {
  std::vector<std::string> names;
  for (const GpuGrant& grant : grants) {
    if (std::find(names.begin(), names.end(), grant.node_name) == names.end()) {
      names.push_back(grant.node_name);
    }
  }
  return names;
}

}  // namespace gpurm
