// Cluster traces in the format of Alibaba's cluster-trace-gpu-v2023 (the
// "openb" node and pod lists of the FGD paper, USENIX ATC'23): reading the
// CSVs and turning them into what the scheduler sees, an inventory snapshot
// with host capacities and one GpuRequest (+ host demand) per pod.
//
// Columns are found by header name, so files with extra or fewer optional
// columns (the multigpu variants have no gpu_spec) load alike.
#ifndef GPURM_SIMULATOR_TRACE_H_
#define GPURM_SIMULATOR_TRACE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/types.h"
#include "scheduler/cluster_state.h"

namespace gpurm::sim {

// One row of a node list: `sn,cpu_milli,memory_mib,gpu,model`.
struct TraceNode {
  std::string name;
  int64_t cpu_milli = 0;
  int64_t memory_mib = 0;
  int gpus = 0;
  std::string model;  // "" for CPU-only nodes.
};

// One row of a pod list: `name,cpu_milli,memory_mib,num_gpu,gpu_milli[,gpu_spec,...]`.
struct TracePod {
  std::string name;
  int64_t cpu_milli = 0;
  int64_t memory_mib = 0;
  int num_gpu = 0;
  int gpu_milli = 0;     // For num_gpu == 1: the share of the GPU (1000 = whole).
  std::string gpu_spec;  // "" = any model; else models separated by '|'.

  // GPU demand in milli-GPU: num_gpu * 1000, or gpu_milli for a share.
  int64_t GpuDemandMilli() const;
};

// kInvalidArgument naming the file, line and column for malformed rows;
// kNotFound when the file cannot be opened.
Result<std::vector<TraceNode>> LoadTraceNodes(const std::string& path);
Result<std::vector<TracePod>> LoadTracePods(const std::string& path);

// Writes `pods` as a pod list LoadTracePods reads back (`name,cpu_milli,
// memory_mib,num_gpu,gpu_milli,gpu_spec`); kInternal when it cannot.
Status WriteTracePods(const std::vector<TracePod>& pods, const std::string& path);

// The cluster as the scheduler sees it.
struct SimulatedCluster {
  std::shared_ptr<const InventorySnapshot> snapshot;
  std::vector<HostResources> host_capacity;  // One per node.
  int64_t gpu_count = 0;
};

// GPU UUIDs are "<node>-gpu<i>"; GPU memory comes from the model name where
// gpurm knows it, else 16 GB (the trace has no GPU memory sizes, and pods ask
// none; any size above 1000 MiB keeps milli-GPU accounting exact).
SimulatedCluster BuildCluster(const std::vector<TraceNode>& nodes);

// The request a pod makes: whole GPUs on one node (gpu_count 0 for CPU-only
// pods), or a gpu_milli share of one GPU; gpu_spec becomes gpu_type.
GpuRequest RequestFor(const TracePod& pod);
HostResources HostDemandOf(const TracePod& pod);

}  // namespace gpurm::sim

#endif  // GPURM_SIMULATOR_TRACE_H_
