// The placement policies: GPU choosers, score plugins and their weighted
// combinations, plus the fragmentation-aware (FGD) and random policies.
#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <optional>
#include <utility>
#include <vector>

#include "core/placement_policies.h"
#include "scheduler/framework.h"
#include "scheduler/scheduler.h"
#include "scheduler/workload.h"

namespace gpurm {
namespace {

using Positions = std::vector<uint8_t>;

bool Contains(const Positions& chosen, size_t i) {
  if (i >= kMaxGpusPerNode) return false;
  return std::find(chosen.begin(), chosen.end(), static_cast<uint8_t>(i)) != chosen.end();
}

// Compute share (milli-GPU) the request takes on GPU `g` when chosen.
int TakenMilli(const SchedulingContext& context, const GpuAvailability& g) {
  if (!context.shared()) return g.free_milli();
  return std::min(g.free_milli(), SliceMilli(context.SliceMib(*g.gpu), g.gpu->memory_total_mib));
}

// Island of GPU `i`: its NVLink group, or a group of its own when it has none
// (grouping never pretends GPUs are connected).
int IslandOf(const NodeAvailability& node, size_t i) {
  const int group = node.gpus[i].gpu->nvlink_group;
  return group >= 0 ? group : -1 - static_cast<int>(i);
}

std::map<int, Positions> GroupByIsland(const NodeAvailability& node, const Positions& gpus) {
  std::map<int, Positions> groups;
  for (uint8_t i : gpus) groups[IslandOf(node, i)].push_back(i);
  return groups;
}

// Size of the largest island whose GPUs are all untouched after taking `chosen`.
int LargestUntouchedIslandAfter(const NodeAvailability& node, const Positions& chosen) {
  std::map<int, int> sizes;
  for (size_t i = 0; i < node.gpus.size(); ++i) {
    if (node.gpus[i].untouched() && !Contains(chosen, i)) ++sizes[IslandOf(node, i)];
  }
  int largest = 0;
  for (const auto& [island, size] : sizes) largest = std::max(largest, size);
  return largest;
}

// Takes `count` GPUs for an exclusive multi-GPU request: from one island when
// one is large enough (the smallest such island when `best_fit`, the largest
// otherwise), else from the largest islands first, preferring islands on one
// NUMA node, so the job spans as few as possible.
Positions ChooseByIsland(const NodeAvailability& node, const Positions& eligible, int count,
                         bool best_fit) {
  auto groups = GroupByIsland(node, eligible);
  std::vector<const Positions*> ordered;
  ordered.reserve(groups.size());
  for (const auto& [id, members] : groups) ordered.push_back(&members);
  const size_t need = static_cast<size_t>(count);
  std::stable_sort(ordered.begin(), ordered.end(), [&](const Positions* a, const Positions* b) {
    const bool a_fits = a->size() >= need;
    const bool b_fits = b->size() >= need;
    if (a_fits != b_fits) return a_fits;
    if (a_fits && best_fit) return a->size() < b->size();
    return a->size() > b->size();
  });
  Positions chosen;
  if (!ordered.empty() && ordered.front()->size() < need) {
    // No single island: try to stay on one NUMA node, largest islands first.
    std::map<int, Positions> by_numa;
    for (const Positions* island : ordered) {
      const int numa = node.gpus[island->front()].gpu->numa_node;
      if (numa < 0) continue;
      Positions& members = by_numa[numa];
      members.insert(members.end(), island->begin(), island->end());
    }
    const Positions* best = nullptr;
    for (const auto& [numa, members] : by_numa) {
      if (members.size() >= need && (best == nullptr || members.size() < best->size())) {
        best = &members;
      }
    }
    if (best != nullptr) {
      chosen.assign(best->begin(), best->begin() + static_cast<std::ptrdiff_t>(need));
      std::sort(chosen.begin(), chosen.end());
      return chosen;
    }
  }
  for (const Positions* members : ordered) {
    for (uint8_t i : *members) {
      if (chosen.size() == need) break;
      chosen.push_back(i);
    }
  }
  std::sort(chosen.begin(), chosen.end());
  return chosen;
}

// --- Choosers ---------------------------------------------------------------

// Best fit: partly used GPUs and islands first, keeping whole islands free.
Positions ChooseBestFit(const SchedulingContext& context, const NodeAvailability& node,
                        const Positions& eligible, int count) {
  if (count <= 0) return {};
  if (count > 1 && !context.shared()) return ChooseByIsland(node, eligible, count, true);
  struct Key {
    uint8_t position;
    bool untouched;
    int island_after;
    int free_milli;
    int64_t free_mib;
  };
  std::vector<Key> keys;
  keys.reserve(eligible.size());
  for (uint8_t i : eligible) {
    const GpuAvailability& g = node.gpus[i];
    keys.push_back(
        {i, g.untouched(), LargestUntouchedIslandAfter(node, {i}), g.free_milli(), g.free_mib});
  }
  std::stable_sort(keys.begin(), keys.end(), [](const Key& a, const Key& b) {
    if (a.untouched != b.untouched) return !a.untouched;  // Already shared first.
    if (a.island_after != b.island_after) return a.island_after > b.island_after;
    if (a.free_milli != b.free_milli) return a.free_milli < b.free_milli;
    return a.free_mib < b.free_mib;
  });
  Positions chosen;
  for (int k = 0; k < count; ++k) chosen.push_back(keys[static_cast<size_t>(k)].position);
  std::sort(chosen.begin(), chosen.end());
  return chosen;
}

// Emptiest first: balances load and heat.
Positions ChooseEmptiest(const SchedulingContext& context, const NodeAvailability& node,
                         const Positions& eligible, int count) {
  if (count <= 0) return {};
  if (count > 1 && !context.shared()) return ChooseByIsland(node, eligible, count, false);
  Positions order = eligible;
  std::stable_sort(order.begin(), order.end(), [&](uint8_t a, uint8_t b) {
    const GpuAvailability& ga = node.gpus[a];
    const GpuAvailability& gb = node.gpus[b];
    if (ga.free_milli() != gb.free_milli()) return ga.free_milli() > gb.free_milli();
    return ga.free_mib > gb.free_mib;
  });
  order.resize(static_cast<size_t>(count));
  std::sort(order.begin(), order.end());
  return order;
}

// --- Score plugins ---------------------------------------------------------

// GPU capacity allocated on the node after the placement, in milli-GPU.
class GpuAllocationScore final : public ScorePlugin {
 public:
  explicit GpuAllocationScore(bool most) : most_(most) {}
  std::string_view name() const override {
    return most_ ? "GpuMostAllocated" : "GpuLeastAllocated";
  }
  std::optional<double> Score(const SchedulingContext& context, const NodeAvailability& node,
                              const Positions& chosen) const override {
    if (node.gpus.empty()) return std::nullopt;
    int64_t used = 0;
    for (size_t i = 0; i < node.gpus.size(); ++i) {
      const GpuAvailability& g = node.gpus[i];
      used += kMilliPerGpu - g.free_milli();
      if (Contains(chosen, i)) used += TakenMilli(context, g);
    }
    const double fill =
        static_cast<double>(used) / static_cast<double>(kMilliPerGpu * node.gpus.size());
    return 100.0 * (most_ ? fill : 1.0 - fill);
  }

  std::optional<double> UpperBound(const SchedulingContext& context, const NodeSummary& node,
                                   int count) const override {
    if (node.gpus == 0) return std::nullopt;
    // A whole GPU takes 1000; a share takes its milli; a memory slice takes
    // between 0 and 1000 depending on the GPU.
    const int64_t most_taken =
        context.milli() > 0 ? int64_t{context.milli()} * count : int64_t{kMilliPerGpu} * count;
    const int64_t least_taken =
        !context.shared() ? int64_t{kMilliPerGpu} * count : int64_t{context.milli()} * count;
    const double capacity = static_cast<double>(kMilliPerGpu) * node.gpus;
    const double fill = std::min(
        1.0, static_cast<double>(node.used_milli + (most_ ? most_taken : least_taken)) / capacity);
    return 100.0 * (most_ ? fill : 1.0 - fill);
  }

 private:
  const bool most_;
};

// CPU and host memory allocated after the placement, where modelled.
class HostAllocationScore final : public ScorePlugin {
 public:
  explicit HostAllocationScore(bool most) : most_(most) {}
  std::string_view name() const override {
    return most_ ? "HostMostAllocated" : "HostLeastAllocated";
  }
  std::optional<double> Score(const SchedulingContext& context, const NodeAvailability& node,
                              const Positions&) const override {
    return Fill(context, node.host_capacity, node.host_used);
  }
  // Exact: the score depends on the host resources alone.
  std::optional<double> UpperBound(const SchedulingContext& context, const NodeSummary& node,
                                   int) const override {
    return Fill(context, node.host_capacity, node.host_used);
  }

 private:
  std::optional<double> Fill(const SchedulingContext& context, const HostResources& capacity,
                             const HostResources& used) const {
    if (capacity.cpu_milli <= 0 && capacity.memory_mib <= 0) return std::nullopt;
    double sum = 0;
    int parts = 0;
    auto add = [&](int64_t total, int64_t in_use, int64_t want) {
      if (total <= 0) return;
      sum += std::min(1.0, static_cast<double>(in_use + want) / static_cast<double>(total));
      ++parts;
    };
    add(capacity.cpu_milli, used.cpu_milli, context.host().cpu_milli);
    add(capacity.memory_mib, used.memory_mib, context.host().memory_mib);
    const double fill = sum / parts;
    return 100.0 * (most_ ? fill : 1.0 - fill);
  }

  const bool most_;
};

// 100 when the chosen GPUs share an NVLink island (or are one GPU), 50 when
// they share a NUMA node, 0 otherwise.
class IslandLocalityScore final : public ScorePlugin {
 public:
  std::string_view name() const override { return "IslandLocality"; }
  std::optional<double> Score(const SchedulingContext&, const NodeAvailability& node,
                              const Positions& chosen) const override {
    if (chosen.size() <= 1) return 100.0;
    const Gpu& first = *node.gpus[chosen.front()].gpu;
    auto all = [&](auto same) {
      return std::all_of(chosen.begin(), chosen.end(),
                         [&](uint8_t i) { return same(*node.gpus[i].gpu); });
    };
    if (first.nvlink_group >= 0 &&
        all([&](const Gpu& g) { return g.nvlink_group == first.nvlink_group; })) {
      return 100.0;
    }
    if (first.numa_node >= 0 && all([&](const Gpu& g) { return g.numa_node == first.numa_node; })) {
      return 50.0;
    }
    return 0.0;
  }
};

// How much of the node's largest intact island survives the placement.
class IslandsKeptIntactScore final : public ScorePlugin {
 public:
  std::string_view name() const override { return "IslandsKeptIntact"; }
  std::optional<double> Score(const SchedulingContext&, const NodeAvailability& node,
                              const Positions& chosen) const override {
    const int before = LargestUntouchedIslandAfter(node, {});
    if (before == 0) return std::nullopt;
    return 100.0 * LargestUntouchedIslandAfter(node, chosen) / before;
  }
};

const GpuAllocationScore kGpuMostAllocated(true);
const GpuAllocationScore kGpuLeastAllocated(false);
const HostAllocationScore kHostMostAllocated(true);
const HostAllocationScore kHostLeastAllocated(false);
const IslandLocalityScore kIslandLocality;
const IslandsKeptIntactScore kIslandsKeptIntact;

// --- Policies --------------------------------------------------------------

using Chooser = Positions (*)(const SchedulingContext&, const NodeAvailability&, const Positions&,
                              int);

struct WeightedScore {
  const ScorePlugin* plugin;
  double weight;
};

// A chooser plus a weighted mean of bounded scores.
class WeightedPolicy final : public PlacementPolicy {
 public:
  WeightedPolicy(const PlacementPolicyInfo& info, Chooser chooser,
                 std::vector<WeightedScore> scores)
      : info_(info), chooser_(chooser), scores_(std::move(scores)) {}

  std::string_view name() const override { return info_.name; }
  std::string_view description() const override { return info_.description; }

  NodeCandidate Evaluate(const SchedulingContext& context, const NodeAvailability& node,
                         const Positions& eligible, int count) const override {
    NodeCandidate candidate;
    candidate.gpus = chooser_(context, node, eligible, count);
    double sum = 0;
    double weights = 0;
    for (const WeightedScore& score : scores_) {
      std::optional<double> value = score.plugin->Score(context, node, candidate.gpus);
      if (!value) continue;
      sum += score.weight * std::clamp(*value, 0.0, 100.0);
      weights += score.weight;
    }
    candidate.score = weights > 0 ? sum / weights : 0.0;
    return candidate;
  }

  std::optional<double> ScoreUpperBound(const SchedulingContext& context, const NodeSummary& node,
                                        int count) const override {
    double sum = 0;
    double weights = 0;
    for (const WeightedScore& score : scores_) {
      std::optional<double> bound = score.plugin->UpperBound(context, node, count);
      if (!bound) continue;
      sum += score.weight * std::clamp(*bound, 0.0, 100.0);
      weights += score.weight;
    }
    return weights > 0 ? sum / weights : 0.0;
  }

 private:
  const PlacementPolicyInfo& info_;
  const Chooser chooser_;
  const std::vector<WeightedScore> scores_;
};

// Uniform among feasible nodes (the framework draws the node) and among the
// eligible GPUs of the drawn node, from the decision's seed.
class RandomPolicy final : public PlacementPolicy {
 public:
  std::string_view name() const override { return kRandomPolicy.name; }
  std::string_view description() const override { return kRandomPolicy.description; }
  bool uniform_random() const override { return true; }
  NodeCandidate Evaluate(const SchedulingContext& context, const NodeAvailability&,
                         const Positions& eligible, int count) const override {
    NodeCandidate candidate;
    Positions order = eligible;
    uint64_t seed = MixSeed(context.options().random_seed ^ 0x5bd1e995ULL);
    for (size_t i = order.size(); i > 1; --i) {
      seed = MixSeed(seed);
      std::swap(order[i - 1], order[seed % i]);
    }
    order.resize(static_cast<size_t>(std::max(0, count)));
    std::sort(order.begin(), order.end());
    candidate.gpus = std::move(order);
    candidate.score = 50.0;
    return candidate;
  }
};

// Fragmentation-aware placement after Fragmentation Gradient Descent (FGD,
// Weng et al., USENIX ATC'23). The fragmentation of a node for one task
// shape m of the workload mix is the free GPU capacity (milli-GPU) that
// tasks of shape m could not use if the node were filled with them: all of
// it when m cannot run there (GPU type, too few usable GPUs), else what
// remains after packing as many m-tasks as the node's GPUs *and* its free
// CPU and host memory allow (a 0.3 GPU remainder under 0.5 GPU tasks; GPUs
// left idle because 12-core tasks would find only 8 free cores). The node's
// expected fragmentation is the mix-weighted mean over shapes. Each request
// goes where that grows least -- it only changes on the node that takes the
// request -- trying every distinct GPU for a share.
//
// Counting how many tasks fit, rather than whether one does (the paper's
// measure), also sees fragmentation build up before it bites: a CPU-only pod
// on an 8-GPU node whose cores are all needed by its GPUs' tasks costs a
// GPU's worth of expected fragmentation there, and nothing on a node with
// cores to spare, so host resources are spent where they strand no GPU.
//
// Fragmentation alone does not see capacity contention between GPU models:
// taking a whole GPU leaves the rest of a node as usable as before wherever
// it is taken, and FGD's measure even rewards taking GPUs that many shapes
// cannot use -- which are the scarce models the constrained shapes need. So
// the growth also counts the capacity taken, weighted by its model's demand
// pressure (SchedulingContext::TypePressure): a model that tasks restricted
// to it want more of than it has is spent last. With no model-constrained
// shape in the mix the pressure is 0 everywhere and FGD is unchanged. A
// lighter node pressure does the same for every restriction on where a shape
// can run (SchedulingContext::NodePressure): the G3 nodes, the only ones
// with the 120 cores and 720 GB some 8-GPU pods need, are spent last.
class FragmentationAwarePolicy final : public PlacementPolicy {
 public:
  std::string_view name() const override { return kFragmentationAwarePolicy.name; }
  std::string_view description() const override { return kFragmentationAwarePolicy.description; }

  // Milli-GPU of expected growth per milli-GPU taken at pressure 1. For GPU
  // models any weight of 2 or more lets pressure override fragmentation
  // differences (at most about 1,000 per GPU taken); on the gpuspec33 trace
  // unallocated GPUs fall from 819 to about 345 for every weight from 2 to
  // 15, and to 538 at 0.3. Node pressure (all restrictions, CPU and host
  // memory included) keeps the few nodes that can take the largest pods
  // free until they are needed. With the host charge (a CPU-only pod on a
  // G3 spends G3 capacity) 2 leaves 2-3 fewer GPUs unallocated than 1 on
  // shuffled arrivals (4 seeds: default 263 / 265, multigpu50 178 / 181),
  // but 1.5 and 2 leave 70 more in trace order (default 348 / 275): 1. At
  // 4 it cost 5-20 GPUs on cpu050 and gpushare40.
  static constexpr double kTypePressureWeight = 4.0;
  static constexpr double kNodePressureWeight = 1.0;

  // The node's expected fragmentation (milli-GPU) under `mix` as it is now.
  static double NodeFragmentation(const SchedulingContext& context, const WorkloadMix& mix,
                                  const NodeAvailability& node) {
    Scratch scratch;
    return Fragmentation(context, mix, node, NodeState::Of(node), scratch);
  }

  NodeCandidate Evaluate(const SchedulingContext& context, const NodeAvailability& node,
                         const Positions& eligible, int count) const override {
    const WorkloadMix* mix = context.options().workload;
    WorkloadMix own;
    std::optional<ScheduleOptions> own_options;
    std::optional<SchedulingContext> own_context;
    const SchedulingContext* ctx = &context;
    if (mix == nullptr || mix->empty()) {
      // No GPU request seen yet: the mix is this request, or -- for a
      // CPU-only one -- a whole-GPU task with the cluster's mean CPU and
      // host memory per GPU, so that CPU-only work goes where it strands
      // the fewest GPUs.
      if (context.request().gpu_count > 0) {
        own.Record(context.request(), context.host());
      } else {
        GpuRequest one_gpu;
        own.Record(one_gpu, context.state().host_per_gpu());
      }
      own_options = context.options();
      own_options->workload = &own;
      own_context.emplace(context.request(), *own_options, context.state());
      ctx = &*own_context;
      mix = &own;
    }
    const bool gpu_seen =
        context.options().workload != nullptr && !context.options().workload->empty();
    Scratch scratch;
    const NodeState base = NodeState::Of(node);
    const double before = Fragmentation(*ctx, *mix, node, base, scratch);

    std::vector<Positions> candidates;
    if (count <= 0) {
      candidates.emplace_back();
    } else if (!context.shared()) {
      candidates.push_back(ChooseByIsland(node, eligible, count, true));
    } else if (count > 1) {
      candidates.push_back(ChooseBestFit(context, node, eligible, count));
    } else {
      // One candidate per distinct GPU condition (same model, free share,
      // free memory and use give the same outcome).
      std::vector<std::tuple<uint32_t, int, int64_t, bool>> seen;
      for (uint8_t i : eligible) {
        const GpuAvailability& g = node.gpus[i];
        auto key = std::make_tuple(g.type_id, g.free_milli(), g.free_mib, g.untouched());
        if (std::find(seen.begin(), seen.end(), key) != seen.end()) continue;
        seen.push_back(key);
        candidates.push_back({i});
      }
    }
    NodeCandidate best;
    double best_delta = 0;
    bool have = false;
    for (Positions& chosen : candidates) {
      NodeState after = base;
      after.Take(context, node, chosen);
      double delta = Fragmentation(*ctx, *mix, node, after, scratch) - before;
      const double node_pressure = kNodePressureWeight * ctx->NodePressure(node);
      int64_t gpu_taken = 0;
      for (uint8_t i : chosen) {
        const int taken = base.free_milli[i] - after.free_milli[i];
        gpu_taken += taken;
        delta +=
            taken * (kTypePressureWeight * ctx->TypePressure(node.gpus[i].type_id) + node_pressure);
      }
      // What a placement takes of a node under pressure is its largest
      // share of the node's GPUs, CPU or host memory: a CPU-only pod that
      // takes a third of a G3's cores spends a third of that G3 for the
      // pods only a whole G3 can host. Not before any GPU request has been
      // seen: then the mix is a guess, and charging the host resources of
      // the large nodes sends the first CPU-only pods to the small ones,
      // where they strand GPUs (trace order, cpu050: 277 unallocated with
      // the wait, 408 without). Nor on a node without free GPU capacity:
      // no GPU task can run there until some leave, so its host resources
      // strand nothing (cpu250, 10 seeds: 452 -> 408 unallocated, the first
      // whole-node refusal at 92% instead of 87%).
      const double host_taken = HostShare(context.host(), node.host_capacity) * kMilliPerGpu *
                                static_cast<double>(base.gpus);
      if (gpu_seen && node_pressure > 0 && base.HasFreeGpu() &&
          host_taken > static_cast<double>(gpu_taken)) {
        delta += (host_taken - static_cast<double>(gpu_taken)) * node_pressure;
      }
      if (!have || delta < best_delta) {
        have = true;
        best_delta = delta;
        best.gpus = std::move(chosen);
      }
    }
    // Bounded and monotone in -delta: 50 = no change in fragmentation.
    best.score = 100.0 / (1.0 + std::exp(best_delta / 1000.0));
    // Equal growth (often none): keep host resources where GPUs need them.
    NodeState after = base;
    after.Take(context, node, best.gpus);
    best.tie_break = after.HostHeadroom(context.state().host_per_gpu());
    return best;
  }

 private:
  // The larger of the CPU and host-memory shares of `capacity` that `host`
  // asks for; 0 where host resources are not modelled.
  static double HostShare(const HostResources& host, const HostResources& capacity) {
    double share = 0;
    if (capacity.cpu_milli > 0) {
      share = std::max(
          share, static_cast<double>(host.cpu_milli) / static_cast<double>(capacity.cpu_milli));
    }
    if (capacity.memory_mib > 0) {
      share = std::max(
          share, static_cast<double>(host.memory_mib) / static_cast<double>(capacity.memory_mib));
    }
    return std::min(1.0, share);
  }

  // The parts of a node's condition fragmentation depends on, copied so a
  // candidate can be applied without touching the ClusterState.
  struct NodeState {
    size_t gpus = 0;
    int free_milli[kMaxGpusPerNode];
    int64_t free_mib[kMaxGpusPerNode];
    bool untouched[kMaxGpusPerNode];
    bool exclusive[kMaxGpusPerNode];
    int64_t free_cpu = 0;
    int64_t free_memory = 0;

    static NodeState Of(const NodeAvailability& node) {
      NodeState s;
      s.gpus = std::min(node.gpus.size(), kMaxGpusPerNode);
      for (size_t i = 0; i < s.gpus; ++i) {
        const GpuAvailability& g = node.gpus[i];
        // An unhealthy GPU's capacity is nobody's: leave it out.
        const bool usable = g.gpu->healthy && g.gpu->allocatable_unit() && node.node->schedulable;
        s.free_milli[i] = usable ? g.free_milli() : 0;
        s.free_mib[i] = usable ? g.free_mib : 0;
        s.untouched[i] = usable && g.untouched();
        s.exclusive[i] = !usable || g.exclusively_held;
      }
      s.free_cpu = node.free_cpu_milli();
      s.free_memory = node.free_memory_mib();
      return s;
    }

    void Take(const SchedulingContext& context, const NodeAvailability& node,
              const Positions& chosen) {
      for (uint8_t i : chosen) {
        const GpuAvailability& g = node.gpus[i];
        if (context.shared()) {
          const int64_t slice = context.SliceMib(*g.gpu);
          free_mib[i] = std::max<int64_t>(0, free_mib[i] - slice);
          free_milli[i] = std::max(0, free_milli[i] - SliceMilli(slice, g.gpu->memory_total_mib));
        } else {
          free_mib[i] = 0;
          free_milli[i] = 0;
          exclusive[i] = true;
        }
        untouched[i] = false;
      }
      if (free_cpu != INT64_MAX) free_cpu -= context.host().cpu_milli;
      if (free_memory != INT64_MAX) free_memory -= context.host().memory_mib;
    }

    bool HasFreeGpu() const {
      return std::any_of(free_milli, free_milli + gpus, [](int milli) { return milli > 0; });
    }

    // Free CPU and host memory per free GPU, in units of the cluster's mean
    // per GPU (the smaller of the two); 0 when host resources are not
    // modelled. Higher: the node's free GPUs are less likely to be stranded
    // for want of host resources.
    double HostHeadroom(const HostResources& mean_per_gpu) const {
      int64_t free_gpu_milli = 0;
      for (size_t i = 0; i < gpus; ++i) free_gpu_milli += free_milli[i];
      const double free_gpus = std::max(1.0, static_cast<double>(free_gpu_milli) / kMilliPerGpu);
      std::optional<double> headroom;
      auto consider = [&](int64_t free, int64_t mean) {
        if (free == INT64_MAX || mean <= 0) return;
        const double ratio = static_cast<double>(free) / free_gpus / static_cast<double>(mean);
        headroom = headroom ? std::min(*headroom, ratio) : ratio;
      };
      consider(free_cpu, mean_per_gpu.cpu_milli);
      consider(free_memory, mean_per_gpu.memory_mib);
      return headroom.value_or(0.0);
    }
  };

  // Per GPU part of the mix: how many tasks the node's GPUs could take, and
  // the capacity (milli-GPU) one task uses.
  struct Scratch {
    std::vector<int64_t> gpu_tasks;
    std::vector<int64_t> per_task;
  };

  static double Fragmentation(const SchedulingContext& context, const WorkloadMix& mix,
                              const NodeAvailability& node, const NodeState& s, Scratch& scratch) {
    int64_t total_free = 0;
    for (size_t i = 0; i < s.gpus; ++i) total_free += s.free_milli[i];
    // No free GPU capacity, or no GPU request seen yet: nothing to fragment.
    if (total_free == 0 || mix.total() <= 0) return 0;
    const std::vector<WorkloadMix::GpuPart>& parts = mix.parts();
    scratch.gpu_tasks.assign(parts.size(), 0);
    scratch.per_task.assign(parts.size(), 0);
    for (size_t p = 0; p < parts.size(); ++p) {
      const WorkloadMix::GpuPart& part = parts[p];
      int64_t tasks = 0;
      int64_t per_task = 0;
      int whole = 0;
      for (size_t i = 0; i < s.gpus; ++i) {
        if (s.free_milli[i] == 0) continue;
        const GpuAvailability& g = node.gpus[i];
        if (!context.PartTypeMatches(p, g)) continue;
        if (!part.shared) {
          if (s.untouched[i] && s.free_mib[i] >= part.need_mib) ++whole;
          continue;
        }
        if (s.exclusive[i]) continue;
        const int64_t total_mib = g.gpu->memory_total_mib;
        const int64_t slice = part.milli > 0
                                  ? std::max(part.need_mib, SliceMibForMilli(part.milli, total_mib))
                                  : part.need_mib;
        if (slice <= 0) continue;
        const int milli = part.milli > 0 ? part.milli : SliceMilli(slice, total_mib);
        if (milli <= 0) continue;
        tasks += std::min<int64_t>(s.free_milli[i] / milli, s.free_mib[i] / slice);
        per_task = per_task == 0 ? milli : std::min<int64_t>(per_task, milli);
      }
      if (!part.shared) {
        tasks = whole / std::max(1, part.gpu_count);
        per_task = int64_t{kMilliPerGpu} * part.gpu_count;
      }
      scratch.gpu_tasks[p] = tasks;
      scratch.per_task[p] = per_task;
    }
    double weighted = 0;
    for (const WorkloadMix::Shape& shape : mix.shapes()) {
      int64_t tasks = scratch.gpu_tasks[shape.part];
      if (shape.host.cpu_milli > 0 && s.free_cpu != INT64_MAX) {
        tasks = std::min(tasks, std::max<int64_t>(0, s.free_cpu) / shape.host.cpu_milli);
      }
      if (shape.host.memory_mib > 0 && s.free_memory != INT64_MAX) {
        tasks = std::min(tasks, std::max<int64_t>(0, s.free_memory) / shape.host.memory_mib);
      }
      const int64_t usable = std::min(total_free, tasks * scratch.per_task[shape.part]);
      weighted += shape.count * static_cast<double>(total_free - usable);
    }
    return weighted / mix.total();
  }
};

const WeightedPolicy kBinpack(kBinpackPolicy, ChooseBestFit,
                              {{&kGpuMostAllocated, 8},
                               {&kIslandLocality, 2},
                               {&kHostMostAllocated, 2}});
const WeightedPolicy kSpread(kSpreadPolicy, ChooseEmptiest,
                             {{&kGpuLeastAllocated, 8}, {&kHostLeastAllocated, 2}});
const WeightedPolicy kTopology(kTopologyPolicy, ChooseBestFit,
                               {{&kIslandLocality, 6},
                                {&kIslandsKeptIntact, 2},
                                {&kGpuMostAllocated, 2}});
const FragmentationAwarePolicy kFragmentationAware;
const RandomPolicy kRandom;
// In the order of kPlacementPolicies (core/placement_policies.h), which names
// and describes them; scheduler_test checks that the two agree.
const PlacementPolicy* const kPolicies[] = {&kBinpack, &kSpread, &kTopology, &kFragmentationAware,
                                            &kRandom};
static_assert(
    std::size(kPolicies) == kPlacementPolicies.size(),
    "every policy of core/placement_policies.h has an implementation here, and only those");

}  // namespace

double ExpectedFragmentation(const SchedulingContext& context, const NodeAvailability& node) {
  const WorkloadMix* mix = context.options().workload;
  if (mix == nullptr) return 0;
  return FragmentationAwarePolicy::NodeFragmentation(context, *mix, node);
}

const PlacementPolicy* FindPolicy(std::string_view name) {
  for (const PlacementPolicy* policy : kPolicies) {
    if (policy->name() == name) return policy;
  }
  return nullptr;
}

std::vector<std::string> PolicyNames() {
  std::vector<std::string> names;
  for (const PlacementPolicy* policy : kPolicies) names.emplace_back(policy->name());
  return names;
}

}  // namespace gpurm
