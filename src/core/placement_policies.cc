#include "core/placement_policies.h"

namespace gpurm {

const PlacementPolicyInfo* FindPlacementPolicyInfo(std::string_view name) {
  for (const PlacementPolicyInfo& policy : kPlacementPolicies) {
    if (policy.name == name) return &policy;
  }
  return nullptr;
}

std::string PlacementPolicyNameList() {
  std::string list;
  for (const PlacementPolicyInfo& policy : kPlacementPolicies) {
    if (!list.empty()) list += ", ";
    list += policy.name;
  }
  return list;
}

}  // namespace gpurm
