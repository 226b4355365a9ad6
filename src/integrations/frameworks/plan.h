// Framework plans: what TensorFlow, PyTorch and their launchers need to use
// exactly the GPUs of an allocation (visible devices, memory cap, mixed
// precision, distribution strategy, torchrun / TF_CONFIG settings, a batch
// size estimate). Pure functions of the request and the chosen GPUs.
#ifndef GPURM_INTEGRATIONS_FRAMEWORKS_PLAN_H_
#define GPURM_INTEGRATIONS_FRAMEWORKS_PLAN_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/types.h"

namespace gpurm {

// One GPU chosen for the request, with the node it is on.
struct PlannedGpu {
  std::string node_name;
  std::string node_address;  // May be empty: the node name is used instead.
  Gpu gpu;                   // The GPU as the inventory saw it.
  int64_t granted_mib = 0;   // Memory the allocation holds on it.
  bool exclusive = true;
};

// The request plus the GPUs, in grant order (grouped by node). An empty `gpus`
// means no GPU fits: plans then describe CPU execution.
struct PlanInput {
  GpuRequest request;
  std::vector<PlannedGpu> gpus;
  int master_port = 29500;
};

// The common part, returned by /allocate as "gpu_config".
nlohmann::json BuildGpuConfig(const PlanInput& input);
// Settings for TensorFlow (/setup-tensorflow).
nlohmann::json BuildTensorFlowPlan(const PlanInput& input);
// Settings for PyTorch (/setup-pytorch).
nlohmann::json BuildPyTorchPlan(const PlanInput& input);

// Largest power-of-two batch size whose activations fit `memory_limit_mib`
// after weights and optimizer state, for a model of `parameter_count`
// parameters and `per_sample_mib` activation memory per sample.
int EstimateBatchSize(int64_t memory_limit_mib, int64_t parameter_count, double per_sample_mib,
                      bool mixed_precision);

}  // namespace gpurm

#endif  // GPURM_INTEGRATIONS_FRAMEWORKS_PLAN_H_
