// Scheduler: filter -> score -> choose, as in the Kubernetes scheduler
// framework. Decisions are pure functions of (request, ClusterState): the
// scheduler never touches the ledger, a vendor library or the clock.
// Reserving the chosen GPUs is the caller's job (the manager writes the
// placement to the ledger under its lock).
#ifndef GPURM_SCHEDULER_SCHEDULER_H_
#define GPURM_SCHEDULER_SCHEDULER_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "core/types.h"
#include "scheduler/cluster_state.h"

namespace gpurm {

// Why one node cannot take the request.
struct NodeReason {
  std::string node_name;
  std::string reason;
};

// What the cluster could give instead, so a refusal says what would fit.
struct WouldFit {
  // Most GPUs of the requested type one node can give now with the memory asked.
  int max_gpus_on_one_node = 0;
  // Most free memory on one GPU of the requested type now, in GB.
  double max_memory_gb_per_gpu = 0;
  // Canonical type (raw name when unknown) -> GPUs no allocation touches.
  std::map<std::string, int> gpu_types_available;
  std::string suggestion;  // One sentence; empty when nothing sensible fits.
};

struct Diagnosis {
  bool possible_now = false;
  bool possible_ever = false;
  std::string message;              // One-line summary.
  std::vector<NodeReason> reasons;  // Per node, for nodes that could not take it.
  WouldFit would_fit;
};

struct Placement {
  std::vector<GpuGrant> grants;  // Grouped by node, in GPU index order.
  std::string policy;
  int score = 0;  // 0..100, the policy's score of the chosen candidate.
};

struct ScheduleResult {
  std::optional<Placement> placement;  // Set when the request fits now.
  Diagnosis diagnosis;
};

// The placement policy extension point: which GPUs of a node to take and how
// good the result is. Implementations are stateless and thread-safe.
class PlacementPolicy {
 public:
  virtual ~PlacementPolicy() = default;
  virtual std::string_view name() const = 0;
  // Picks `count` GPUs among `eligible` (indexes into node.gpus, all passing
  // the filters, at least `count` of them).
  virtual std::vector<size_t> ChooseGpus(const GpuRequest& request, const NodeAvailability& node,
                                         const std::vector<size_t>& eligible, int count) const = 0;
  // Scores taking `chosen` on `node`: 0..100, higher is better.
  virtual int Score(const GpuRequest& request, const NodeAvailability& node,
                    const std::vector<size_t>& chosen) const = 0;
};

// Returns the policy called `name` ("binpack", "spread"), or nullptr.
const PlacementPolicy* FindPolicy(std::string_view name);
std::vector<std::string> PolicyNames();

// Checks a request's values (counts, ranges, combinations, policy name).
// kInvalidArgument with field() naming the request field.
Status ValidateRequest(const GpuRequest& request);

// Does `gpu` satisfy the request's gpu_type? Empty type matches every GPU;
// unknown models match when their raw name canonicalises to the same string.
bool GpuTypeMatches(const GpuRequest& request, const Gpu& gpu);

// Thread-safe: Schedule is const and keeps no state between calls.
class Scheduler {
 public:
  // `default_policy` must name a policy (checked by config validation);
  // an unknown name falls back to binpack.
  explicit Scheduler(std::string_view default_policy);

  // The request must have passed ValidateRequest. Places on one node; when
  // distributed_training is set and no single node fits, gangs the GPUs over
  // the fewest nodes with an equal count per node (all or nothing).
  ScheduleResult Schedule(const GpuRequest& request, const ClusterState& state) const;

  std::string_view default_policy() const { return default_policy_->name(); }

 private:
  const PlacementPolicy* default_policy_;
};

}  // namespace gpurm

#endif  // GPURM_SCHEDULER_SCHEDULER_H_
