// How the API shows a GPU of the cluster state: its state name, utilization
// (null where the device gives none), reserved memory and counts. Shared by
// /status, /nodes, /monitoring, /metrics and the event stream so that they
// never describe one GPU two ways.
#ifndef GPURM_API_GPU_VIEWS_H_
#define GPURM_API_GPU_VIEWS_H_

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/types.h"
#include "inventory/inventory.h"
#include "scheduler/cluster_state.h"

namespace gpurm {

// A GPU's utilization, or null where the device gives none (MIG devices and
// GPUs in MIG mode): unavailable, never 0.
nlohmann::json UtilizationJson(const Gpu& gpu, double value);

// A reading that may be missing (temperature, power): the number or null.
nlohmann::json OptionalNumberJson(const std::optional<double>& value);

// Physical GPUs and MIG devices of a snapshot.
struct GpuCounts {
  size_t gpus = 0;
  size_t mig_devices = 0;
};
GpuCounts CountGpus(const InventorySnapshot& snapshot);

// "lost" (its node's agent does not answer), "unhealthy", "mig" (granted
// by its MIG devices only), "allocated", "shared", "free" or "cordoned".
const char* GpuStateName(const NodeAvailability& node, const GpuAvailability& g);

// Memory gpurm allocations hold on `g`: all of it when held exclusively,
// else the shared slices.
int64_t ReservedMib(const GpuAvailability& g);

}  // namespace gpurm

#endif  // GPURM_API_GPU_VIEWS_H_
