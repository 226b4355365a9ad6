// Scheduler: filter -> score -> choose -> reserve, as in the Kubernetes
// scheduler framework (see framework.h for the plugin interfaces).
// Decisions are pure functions of (request, ClusterState, options): the
// scheduler never touches the ledger, a vendor library or the clock. The
// daemon (GpuManager) and the trace simulator run this same code.
//
// Policies: the list in core/placement_policies.h (binpack, the default;
// spread; topology; fragmentation-aware; random), implemented in policies.cc.
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
#include "scheduler/framework.h"
#include "scheduler/workload.h"

namespace gpurm {

// Why one node cannot take the request.
struct NodeReason {
  std::string node_name;
  std::string reason;
  FitCode code = FitCode::kNotNow;  // kNotNow, kNever or kError.
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
  // kFits, kNotNow (possible_ever), kNever, or kError (the request could not
  // be evaluated).
  FitCode code = FitCode::kNever;
  std::string message;  // One-line summary.
  // For a request possible ever but not now, what stands in its way:
  // "gpurm_allocations" (it fits once gpurm's allocations are released),
  // "outside_processes" (not even then: processes outside gpurm use the
  // GPUs it needs), "unavailable" (unhealthy GPUs or unschedulable nodes);
  // empty otherwise.
  std::string blocked_by;
  std::vector<NodeReason> reasons;  // Per node, for nodes that could not take it.
  WouldFit would_fit;
};

struct Placement {
  std::vector<GpuGrant> grants;  // Grouped by node, in GPU index order.
  // Nodes used (indexes into the ClusterState's nodes), ascending; also set
  // for a CPU-only request, which has no grants.
  std::vector<size_t> node_indexes;
  HostResources host_per_node;  // Host resources held on each of those nodes.
  std::string policy;
  int score = 0;  // 0..100, the policy's (mean) score of the chosen candidate(s).
  // Chosen GPUs with memory in use by processes outside gpurm: > 0 only when
  // no placement without them fits (the grant is then not really exclusive).
  int outside_use_gpus = 0;
};

struct ScheduleResult {
  std::optional<Placement> placement;  // Set when the request fits now.
  Diagnosis diagnosis;
};

// Returns the policy called `name`, or nullptr.
const PlacementPolicy* FindPolicy(std::string_view name);
// All policy names, in the order of kPlacementPolicies (the default first).
std::vector<std::string> PolicyNames();

// Checks a request's values (counts, ranges, combinations, policy name).
// kInvalidArgument with field() naming the request field.
Status ValidateRequest(const GpuRequest& request);

// Does `gpu` satisfy the request's gpu_type? Empty type matches every GPU;
// "A|B" matches either; each alternative matches as GpuTypePattern says (a
// bare family matches all of it, whole GPUs and MIG devices of that model; a
// named variant only that variant). An alternative naming MIG ("MIG",
// "A100 MIG", "A100 MIG 3g.40gb", "mig-3g.40gb", "nvidia.com/mig-3g.40gb",
// or a bare profile "3g.40gb") matches MIG devices only (of that model and
// profile when given).
bool GpuTypeMatches(const GpuRequest& request, const Gpu& gpu);

// Does some alternative of gpu_type name MIG devices (see GpuTypeMatches)?
bool NamesMigDevices(std::string_view gpu_type);

// May a MIG device serve this request? Only a request for one GPU (a CUDA
// process uses one MIG device), not a shared slice, that asks for memory
// (memory_gb > 0: any device with enough memory will do) or names MIG in
// gpu_type: a request for "1 H100" without a memory figure gets a whole GPU.
// A GPU in MIG mode is never granted whole (Gpu::allocatable_unit).
bool MigDeviceMayServe(const GpuRequest& request);

// Thread-safe: Schedule, Reserve and Unreserve keep no state between calls.
class Scheduler {
 public:
  // `default_policy` must name a policy (checked by config validation);
  // an unknown name falls back to kDefaultPlacementPolicy.
  explicit Scheduler(std::string_view default_policy);

  // The request must have passed ValidateRequest (gpu_count 0 is accepted
  // here for CPU-only trace pods). Places on one node; when
  // distributed_training is set and no single node fits, gangs the GPUs over
  // the fewest nodes with an equal count per node (all or nothing).
  // Ties between equally scored nodes go to the lowest node index.
  // Exclusive requests are first placed avoiding GPUs with processes outside
  // gpurm (the OutsideUse filter); only when that fails are those GPUs
  // considered, and the placement counts them (outside_use_gpus).
  ScheduleResult Schedule(const GpuRequest& request, const ClusterState& state,
                          const ScheduleOptions& options = {}) const;

  // Applies a placement computed on `state` (grants and host use). Fails
  // with kFailedPrecondition, changing nothing, when a GPU or node can no
  // longer take its part: nothing is ever oversubscribed.
  Status Reserve(const Placement& placement, ClusterState& state) const;
  // Undoes Reserve (or frees a placement whose allocation ended).
  void Unreserve(const Placement& placement, ClusterState& state) const;

  // For a request that does not fit now: the GPUs it is closest to getting
  // (free GPUs it could use on the node(s) that could host it and lack the
  // fewest; for a share, the GPUs with the most free capacity) as grants to
  // hold for it while it waits, so that requests behind it are placed only
  // around them: backfill that does not delay it. The grants are never
  // recorded; empty when nothing could ever host the request.
  std::vector<GpuGrant> HoldFor(const GpuRequest& request, const ClusterState& state,
                                const ScheduleOptions& options = {}) const;

  std::string_view default_policy() const { return default_policy_->name(); }
  const PlacementPolicy& PolicyFor(const GpuRequest& request) const;

 private:
  const PlacementPolicy* default_policy_;
};

}  // namespace gpurm

#endif  // GPURM_SCHEDULER_SCHEDULER_H_
