// Trace-driven simulation of GPU placement, with the method of the FGD paper
// (Weng et al., USENIX ATC'23, "Beware of Fragmentation"): pods arrive one by
// one and never leave; each is placed by the real gpurm Scheduler (the code
// the daemon runs) on a ClusterState of the trace's nodes, CPU and host
// memory included; after each arrival the share of the cluster's GPU
// capacity that is allocated is recorded against the share that has arrived.
//
// As in the paper's artifact (hkust-adsl/kubernetes-scheduler-simulator,
// `TunePodsByNodeTotalResource`), the workload is tuned so that the pods'
// total requested GPU, in milli-GPU, is `ratio` times the cluster's GPU
// capacity: with `shuffle` the trace is first put in a seeded order, then
// pods drawn at random are dropped while the total is above the target, or
// pods drawn from the trace are appended while the next one still fits
// under it. Multiplying the pod count instead (the earlier method) remains
// an option. Deterministic: the same inputs and options give the same
// arrivals and placements.
#ifndef GPURM_SIMULATOR_SIMULATOR_H_
#define GPURM_SIMULATOR_SIMULATOR_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/placement_policies.h"
#include "core/status.h"
#include "scheduler/scheduler.h"
#include "simulator/trace.h"

namespace gpurm::sim {

// How the trace becomes the arrivals.
enum class Tuning {
  kNone,       // The trace as it is.
  kGpuDemand,  // Total requested milli-GPU = ratio x capacity (the artifact's).
  kPodCount,   // ceil(pods x ratio) arrivals, the extra ones drawn from the trace.
};

struct SimulationOptions {
  std::string policy{kDefaultPlacementPolicy};
  Tuning tuning = Tuning::kGpuDemand;
  double ratio = 1.3;    // The tuning's target (ignored by kNone).
  bool shuffle = false;  // Seeded permutation of the trace; else trace order.
  uint64_t seed = 42;    // Tuning draws, shuffle, and the random policy.
  bool record_curve = false;
  bool record_placements = false;
};

struct CurvePoint {
  double arrived_share = 0;    // Arrived GPU demand / capacity (may exceed 1).
  double allocated_share = 0;  // Allocated GPU / capacity.
};

// Pods of one shape: how many arrived and how many were refused.
struct RefusalCount {
  int64_t arrived = 0;
  int64_t refused = 0;
};

struct SimulationRun {
  std::string policy;
  int64_t arrivals = 0;
  // Allocated share of GPU capacity when the first pod could not be placed
  // (the final share if none failed).
  double allocated_share_at_first_failure = 0;
  // The same when the first whole-node pod -- one asking for as many GPUs
  // as the largest node has -- could not be placed (the final share if none
  // failed, or none arrived).
  double allocated_share_at_first_whole_node_failure = 0;
  double allocated_share_final = 0;
  // Capacity minus allocated GPUs when the arrived demand first reached
  // 100% of capacity; nullopt if it never did.
  std::optional<double> unallocated_gpus_at_full_arrival;
  int64_t pods_placed = 0;
  int64_t pods_failed = 0;
  // Arrivals and refusals by shape, counted up to the arrival that brings
  // the arrived demand to 100% of capacity (the whole run if it never
  // does): by GPU count ("0" for CPU-only, "1", "2", ... whole GPUs,
  // "fractional" for a share of one GPU), and GPU pods by the models they
  // accept ("any", or the gpu_spec).
  std::map<std::string, RefusalCount> refused_by_gpus;
  std::map<std::string, RefusalCount> refused_by_model;
  double seconds = 0;
  std::vector<CurvePoint> curve;  // One point per arrival, when recorded.
  // Per arrival, the grants given (empty when it failed or needed no GPU),
  // when recorded.
  std::vector<std::optional<Placement>> placements;
};

// The total GPU demand of `pods`, in milli-GPU.
int64_t TotalGpuDemandMilli(const std::vector<TracePod>& pods);

// The arrival sequence for these options on a cluster of `capacity_milli`
// milli-GPU: the trace (permuted when shuffling), then tuned -- kGpuDemand:
// random pods dropped while the total demand is above ratio x capacity, or
// pods drawn from the trace appended while the next draw fits under it;
// kPodCount: draws appended up to ceil(pods x ratio) arrivals.
std::vector<TracePod> Arrivals(const std::vector<TracePod>& pods, const SimulationOptions& options,
                               int64_t capacity_milli);

// Replays the arrivals. kInvalidArgument for an unknown policy.
Result<SimulationRun> Simulate(const SimulatedCluster& cluster,
                               const std::vector<TracePod>& arrivals,
                               const SimulationOptions& options);

}  // namespace gpurm::sim

#endif  // GPURM_SIMULATOR_SIMULATOR_H_
