// The placement policies gpurm implements: name and one-sentence description
// of each. This is the one list: the scheduler's policy objects take their
// names and descriptions from it, config validation (server.policy) checks
// against it, GET /api/v1/gpu/policies answers it, and a test compares
// docs/openapi.json's policy enum with it. It lives in core because config
// sits below the scheduler.
#ifndef GPURM_CORE_PLACEMENT_POLICIES_H_
#define GPURM_CORE_PLACEMENT_POLICIES_H_

#include <array>
#include <string>
#include <string_view>

namespace gpurm {

struct PlacementPolicyInfo {
  std::string_view name;
  std::string_view description;  // One sentence, for docs, the API and the CLI.
};

inline constexpr PlacementPolicyInfo kBinpackPolicy{
    "binpack",
    "most allocated / best fit: fills partly used nodes and GPUs first, keeping whole GPUs and "
    "nodes free for large jobs"};
inline constexpr PlacementPolicyInfo kSpreadPolicy{
    "spread",
    "least allocated (the Kubernetes default): emptiest nodes and GPUs first, balancing load and "
    "heat"};
inline constexpr PlacementPolicyInfo kTopologyPolicy{
    "topology",
    "NVLink island, then NUMA locality for multi-GPU jobs, keeping islands intact; fewest nodes "
    "for multi-node jobs"};
inline constexpr PlacementPolicyInfo kFragmentationAwarePolicy{
    "fragmentation-aware",
    "least growth of expected GPU fragmentation for the workload mix seen so far (FGD)"};
inline constexpr PlacementPolicyInfo kRandomPolicy{
    "random", "uniformly random feasible node and GPUs (seeded); a baseline"};

// Every policy, the built-in default (binpack) first.
inline constexpr std::array<PlacementPolicyInfo, 5> kPlacementPolicies{
    kBinpackPolicy, kSpreadPolicy, kTopologyPolicy, kFragmentationAwarePolicy, kRandomPolicy};

// The policy used when neither the request nor server.policy names one.
inline constexpr std::string_view kDefaultPlacementPolicy = kBinpackPolicy.name;

// The entry called `name`, or nullptr.
const PlacementPolicyInfo* FindPlacementPolicyInfo(std::string_view name);

// "binpack, spread, topology, fragmentation-aware, random": for messages that
// say what is accepted.
std::string PlacementPolicyNameList();

}  // namespace gpurm

#endif  // GPURM_CORE_PLACEMENT_POLICIES_H_
