// The cluster-wide utilization summary that GET /status and GET /monitoring
// both answer as "utilization", so the two can never disagree.
#ifndef GPURM_API_UTILIZATION_SUMMARY_H_
#define GPURM_API_UTILIZATION_SUMMARY_H_

#include <nlohmann/json.hpp>

#include "scheduler/cluster_state.h"

namespace gpurm {

// {"gpu_utilization", "gpu_memory_usage", "gpu_memory_reserved"} over every
// GPU of `state`, each a ratio 0..1 rounded to 3 decimals:
//   gpu_utilization      mean busy ratio of the GPUs that report one (not
//                        MIG devices or GPUs in MIG mode: NVML has none),
//   gpu_memory_usage     memory in use as the devices report it / total
//                        (a MIG device's memory is counted once, as its GPU's),
//   gpu_memory_reserved  memory gpurm allocations hold (a whole GPU when
//                        exclusive, the slices when shared) / total.
// All 0 when there is no GPU.
nlohmann::json UtilizationSummaryJson(const ClusterState& state);

}  // namespace gpurm

#endif  // GPURM_API_UTILIZATION_SUMMARY_H_
