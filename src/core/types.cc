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
