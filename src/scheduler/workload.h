// WorkloadMix: the requests seen so far, grouped by shape and counted. The
// fragmentation-aware policy measures a node's fragmentation against this
// mix (after FGD, Weng et al., USENIX ATC'23: the expected amount of a
// node's free GPU capacity that the next request, drawn from the mix, could
// not use).
//
// A plain value: the owner (the manager, the simulator) records arrivals and
// passes it to Scheduler::Schedule. Not thread-safe for writes.
#ifndef GPURM_SCHEDULER_WORKLOAD_H_
#define GPURM_SCHEDULER_WORKLOAD_H_

#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "core/types.h"
#include "scheduler/cluster_state.h"

namespace gpurm {

class SchedulingContext;

class WorkloadMix {
 public:
  // The GPU part of a request shape; shapes differing only in host demand
  // share one, so the GPU side of fragmentation is computed once per part.
  struct GpuPart {
    int gpu_count = 0;     // GPUs of one task on one node.
    int milli = 0;         // 1..999 for a compute share, 0 otherwise.
    bool shared = false;   // A shared slice (memory slice or compute share).
    int64_t need_mib = 0;  // GPU memory asked per GPU.
    std::string gpu_type;  // As requested ("" = any; "A|B" = either).
  };
  struct Shape {
    size_t part = 0;     // Index into parts().
    HostResources host;  // CPU / host memory per node.
    double count = 0;    // Times seen.
  };

  // Counts one arrival. CPU-only requests (gpu_count 0) are not recorded:
  // every node's fragmentation against them is its whole free GPU capacity,
  // which shifts all candidates equally and so never changes a choice.
  void Record(const GpuRequest& request, const HostResources& host = {});

  const std::vector<GpuPart>& parts() const { return parts_; }
  const std::vector<Shape>& shapes() const { return shapes_; }
  double total() const { return total_; }
  bool empty() const { return shapes_.empty(); }

 private:
  using PartKey = std::tuple<int, int, bool, int64_t, std::string>;
  std::vector<GpuPart> parts_;
  std::map<PartKey, size_t> part_index_;
  std::vector<Shape> shapes_;
  std::map<std::tuple<size_t, int64_t, int64_t>, size_t> shape_index_;
  double total_ = 0;
};

// The fragmentation-aware policy's measure of `node` as it is now: the
// expected free GPU capacity (milli-GPU) that a task drawn from
// context.options().workload could not use there -- per shape, what is left
// after packing the node with as many of its tasks as the node's free GPUs,
// CPU and host memory allow; all of it when the shape's GPU type rules the
// node's GPUs out -- weighted by how often each shape was seen. 0 without a
// workload or free GPU capacity. Pure; exposed for tests.
double ExpectedFragmentation(const SchedulingContext& context, const NodeAvailability& node);

}  // namespace gpurm

#endif  // GPURM_SCHEDULER_WORKLOAD_H_
