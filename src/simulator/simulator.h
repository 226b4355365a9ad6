// Trace-driven simulation of GPU placement, with the method of the FGD paper
// (Weng et al., USENIX ATC'23, "Beware of Fragmentation"): pods arrive one by
// one and never leave; each is placed by the real gpurm Scheduler (the code
// the daemon runs) on a ClusterState of the trace's nodes, CPU and host
// memory included; after each arrival the share of the cluster's GPU
// capacity that is allocated is recorded against the share that has arrived.
//
// As in the paper's artifact, the trace is inflated to `inflation` times its
// pod count with pods drawn from it at random (seeded), so arrivals exceed
// the cluster's capacity, and with `shuffle` the arrival order is a seeded
// permutation. Deterministic: the same inputs and options give the same
// placements.
#ifndef GPURM_SIMULATOR_SIMULATOR_H_
#define GPURM_SIMULATOR_SIMULATOR_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/placement_policies.h"
#include "core/status.h"
#include "scheduler/scheduler.h"
#include "simulator/trace.h"

namespace gpurm::sim {

struct SimulationOptions {
  std::string policy{kDefaultPlacementPolicy};
  double inflation = 1.3;  // Arrivals = ceil(pods * inflation); 1 = the trace alone.
  bool shuffle = false;    // Seeded permutation of the arrivals; else trace order.
  uint64_t seed = 42;      // Inflation draws, shuffle, and the random policy.
  bool record_curve = false;
  bool record_placements = false;
};

struct CurvePoint {
  double arrived_share = 0;    // Arrived GPU demand / capacity (may exceed 1).
  double allocated_share = 0;  // Allocated GPU / capacity.
};

struct SimulationRun {
  std::string policy;
  int64_t arrivals = 0;
  // Allocated share of GPU capacity when the first pod could not be placed
  // (the final share if none failed).
  double allocated_share_at_first_failure = 0;
  double allocated_share_final = 0;
  // Capacity minus allocated GPUs when the arrived demand first reached
  // 100% of capacity; nullopt if it never did.
  std::optional<double> unallocated_gpus_at_full_arrival;
  int64_t pods_placed = 0;
  int64_t pods_failed = 0;
  double seconds = 0;
  std::vector<CurvePoint> curve;  // One point per arrival, when recorded.
  // Per arrival, the grants given (empty when it failed or needed no GPU),
  // when recorded.
  std::vector<std::optional<Placement>> placements;
};

// The arrival sequence for these options: trace pods, then the inflation
// draws, permuted when shuffling.
std::vector<TracePod> Arrivals(const std::vector<TracePod>& pods, const SimulationOptions& options);

// Replays the arrivals. kInvalidArgument for an unknown policy.
Result<SimulationRun> Simulate(const SimulatedCluster& cluster,
                               const std::vector<TracePod>& arrivals,
                               const SimulationOptions& options);

}  // namespace gpurm::sim

#endif  // GPURM_SIMULATOR_SIMULATOR_H_
