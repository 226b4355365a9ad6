// The scheduler framework's extension points, as in the Kubernetes
// scheduler framework: Filter plugins say whether a node can take a request
// ("fits", "not now", "never", or "error", with a reason), Score plugins rate
// a candidate in [0, 100], a policy combines a GPU chooser with weighted
// scores, and Reserve plugins apply a chosen placement to the ClusterState
// (and undo it when the caller could not record it).
//
// Everything here is a pure function of (request, ClusterState, options): no
// I/O, no clock, no hidden state; all plugins are immutable and thread-safe.
#ifndef GPURM_SCHEDULER_FRAMEWORK_H_
#define GPURM_SCHEDULER_FRAMEWORK_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/gpu_model.h"
#include "core/status.h"
#include "core/types.h"
#include "scheduler/cluster_state.h"

namespace gpurm {

class WorkloadMix;

// What a filter says about one node.
enum class FitCode {
  kFits,    // The node can take the request now.
  kNotNow,  // Not with what is free now (allocated, unhealthy, cordoned).
  kNever,   // Not as the node is built (type, memory size, capacity).
  kError,   // The plugin could not decide (inconsistent node data).
};
// "fits", "not_now", "never", "error".
const char* FitCodeName(FitCode code);

// Options of one decision beyond the GpuRequest itself.
struct ScheduleOptions {
  // CPU and host memory the request needs on each node it uses (trace pods);
  // only checked on nodes whose host resources are modelled.
  HostResources host;
  // The workload mix seen so far, for the fragmentation-aware policy;
  // nullptr = the request alone.
  const WorkloadMix* workload = nullptr;
  // Seed of the random policy (the same seed gives the same choice).
  uint64_t random_seed = 0;
  // Build per-node reasons and "would fit" when nothing fits (the trace
  // simulator turns this off: it only needs the yes/no).
  bool diagnose = true;
};

// A request normalised once per decision.
class SchedulingContext {
 public:
  // `avoid_outside_use`: exclusive requests may only take GPUs without
  // processes outside gpurm (the scheduler's first pass; see OutsideUse).
  SchedulingContext(const GpuRequest& request, const ScheduleOptions& options,
                    const ClusterState& state, bool avoid_outside_use = false);

  const GpuRequest& request() const { return request_; }
  const ScheduleOptions& options() const { return options_; }
  const ClusterState& state() const { return state_; }
  // A shared slice (memory_gb slice or a gpu_milli share) rather than whole GPUs.
  bool shared() const { return shared_; }
  // The compute share asked (1..999), 0 for whole GPUs and memory slices.
  int milli() const { return milli_; }
  // memory_gb in MiB (per GPU).
  int64_t need_mib() const { return need_mib_; }
  const HostResources& host() const { return options_.host; }
  // True in the pass that keeps exclusive grants off GPUs used by
  // processes outside gpurm.
  bool avoid_outside_use() const { return avoid_outside_use_; }
  // Memory a shared slice of this request reserves on `gpu`.
  int64_t SliceMib(const Gpu& gpu) const;
  // Does the GPU's model satisfy gpu_type (cached per model)?
  bool TypeMatches(const GpuAvailability& gpu) const;
  bool TypeIdMatches(uint32_t type_id) const;
  // A necessary condition of the filters, from a node's summary alone: false
  // means no node with this summary can take `gpus_needed` GPUs now.
  bool MayFit(const NodeSummary& node, int gpus_needed) const;
  // Can this GPU take (its part of) the request now?
  bool GpuEligibleNow(const GpuAvailability& gpu) const;
  // Could it ever (type, memory size, share granularity)?
  bool GpuPossibleEver(const GpuAvailability& gpu) const;
  // Does the GPU's model satisfy the gpu_type of options().workload's GPU
  // part `part` (cached per part and model)?
  bool PartTypeMatches(size_t part, const GpuAvailability& gpu) const;
  // Demand pressure on GPU type `type_id` from the model-constrained part of
  // options().workload: the sum, over the mix's GPU parts whose gpu_type
  // rules some model out, of the part's share of the mix's GPU demand times
  // the cluster's GPU count over the GPUs of the models it accepts. A part
  // whose demand share is larger than its models' share of the cluster
  // contributes more than 1. 0 without a workload or constrained parts.
  // Computed once per decision.
  double TypePressure(uint32_t type_id) const;
  // The same over every restriction on where a shape of the workload can
  // ever run: for each shape (GPU part and CPU / host memory) that some
  // build kind of node could never host -- too few GPUs of an accepted
  // model with enough memory, or too little CPU or host memory capacity --
  // its share of the mix's GPU demand times the cluster's GPU count over
  // the GPUs of the kinds that could, summed over the shapes `node`'s kind
  // can host. Plus a prior for whole-node tasks, seen or not: for each
  // multi-GPU build kind, 0.2 times its GPUs over the GPUs of the kinds at
  // least as large (GPUs, CPU, host memory), added to those kinds. Pure;
  // computed once per decision. `node` must be one of state().nodes().
  double NodePressure(const NodeAvailability& node) const;

 private:
  const GpuRequest& request_;
  const ScheduleOptions& options_;
  const ClusterState& state_;
  bool shared_ = false;
  bool avoid_outside_use_ = false;
  int milli_ = 0;
  int64_t need_mib_ = 0;
  std::vector<std::string> wanted_types_;   // Canonical alternatives of gpu_type.
  bool cluster_has_mig_devices_ = false;    // Some GPU type is a MIG device's.
  mutable std::vector<int8_t> type_match_;  // By GPU type id: -1 unknown, 0, 1.
  // By part * type_count() + type id, filled on first use.
  mutable std::vector<int8_t> part_type_match_;
  mutable std::vector<double> type_pressure_;  // By type id, filled on first use.
  mutable std::vector<double> kind_pressure_;  // By build kind, filled on first use.
  // Does `type_id` satisfy the gpu_type of workload part `part`?
  bool PartTypeIdMatches(size_t part, uint32_t type_id) const;
};

// Per-node working data of one decision, filled by the filters.
struct NodeEvaluation {
  std::vector<uint8_t> eligible;  // GPU positions that can take the request now.
  int possible_ever = 0;          // GPUs that could ever take it.
};

class FilterPlugin {
 public:
  virtual ~FilterPlugin() = default;
  virtual std::string_view name() const = 0;
  // Decides for `node` and a need of `gpus_needed` GPUs on it. Writes a
  // one-line reason when the answer is not kFits and `reason` is non-null.
  virtual FitCode Filter(const SchedulingContext& context, const NodeAvailability& node,
                         int gpus_needed, NodeEvaluation& evaluation,
                         std::string* reason) const = 0;
};

class ScorePlugin {
 public:
  virtual ~ScorePlugin() = default;
  virtual std::string_view name() const = 0;
  // Rates taking `chosen` (GPU positions) on `node`: 0..100, higher is
  // better; nullopt to abstain (e.g. host resources not modelled).
  virtual std::optional<double> Score(const SchedulingContext& context,
                                      const NodeAvailability& node,
                                      const std::vector<uint8_t>& chosen) const = 0;
  // At least the score of any candidate of `count` GPUs on a node with this
  // summary; nullopt exactly when Score abstains on such nodes.
  virtual std::optional<double> UpperBound(const SchedulingContext&, const NodeSummary&,
                                           int /*count*/) const {
    return 100.0;
  }
};

// What a policy proposes for one node.
struct NodeCandidate {
  std::vector<uint8_t> gpus;  // Positions in node.gpus, ascending.
  double score = 0;           // 0..100.
  // Orders candidates of equal score (higher first) before the lower node
  // index does.
  double tie_break = 0;
};

// A placement policy: which GPUs of a node to take and how good that is.
class PlacementPolicy {
 public:
  virtual ~PlacementPolicy() = default;
  virtual std::string_view name() const = 0;
  // One sentence for docs and `gpurm simulate`.
  virtual std::string_view description() const = 0;
  // Picks `count` GPUs among `eligible` (at least `count`, all passing the
  // filters) and scores the result. count may be 0 (a CPU-only pod).
  virtual NodeCandidate Evaluate(const SchedulingContext& context, const NodeAvailability& node,
                                 const std::vector<uint8_t>& eligible, int count) const = 0;
  // True for the random baseline: the framework then picks uniformly among
  // feasible nodes (seeded) instead of by score.
  virtual bool uniform_random() const { return false; }
  // At least Evaluate's score on any node with this summary, so the
  // framework can skip nodes that cannot beat the best found; nullopt = no
  // bound (every feasible node is evaluated).
  virtual std::optional<double> ScoreUpperBound(const SchedulingContext&, const NodeSummary&,
                                                int /*count*/) const {
    return std::nullopt;
  }
};

struct Placement;

class ReservePlugin {
 public:
  virtual ~ReservePlugin() = default;
  virtual std::string_view name() const = 0;
  // Applies its part of `placement` to `state`; on error nothing of it is applied.
  virtual Status Reserve(const Placement& placement, ClusterState& state) const = 0;
  virtual void Unreserve(const Placement& placement, ClusterState& state) const = 0;
};

// The plugins every decision runs, in order: NodeSchedulable,
// HostResources, GpuFit, then OutsideUse, which (in a context that
// avoid_outside_use()) drops from the eligible GPUs of an exclusive request
// those with memory in use by processes outside gpurm. The scheduler runs a
// decision in that strict pass first and falls back to a pass without it
// only when nothing fits, so every policy leaves other people's work alone
// whenever it can.
const std::vector<const FilterPlugin*>& DefaultFilters();
const std::vector<const ReservePlugin*>& DefaultReservePlugins();

// Deterministic 64-bit mixing (SplitMix64), for seeded choices.
uint64_t MixSeed(uint64_t value);

}  // namespace gpurm

#endif  // GPURM_SCHEDULER_FRAMEWORK_H_
