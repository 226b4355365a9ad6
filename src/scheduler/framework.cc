#include "scheduler/framework.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

#include "core/gpu_model.h"
#include "scheduler/scheduler.h"
#include "scheduler/workload.h"

namespace gpurm {
namespace {

std::string FormatGb(int64_t mib) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.1f GB", GbFromMib(mib));
  return buffer;
}

std::string FormatCores(int64_t milli) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%g", static_cast<double>(milli) / 1000.0);
  return buffer;
}

std::string TypeLabel(const Gpu& gpu) { return GpuTypeLabel(gpu); }

std::string RequestedTypeLabel(const GpuRequest& request) {
  if (request.gpu_type.empty()) return "GPU";
  std::string label;
  size_t start = 0;
  while (start <= request.gpu_type.size()) {
    size_t end = request.gpu_type.find('|', start);
    if (end == std::string::npos) end = request.gpu_type.size();
    std::string part = request.gpu_type.substr(start, end - start);
    part.erase(0, part.find_first_not_of(' '));
    part.erase(part.find_last_not_of(' ') + 1);
    if (!part.empty()) {
      // A MIG profile is shown as written: canonicalising would drop it.
      label += (label.empty() ? "" : "|") + (NamesMigDevices(part) ? part : CanonicalGpuType(part));
    }
    start = end + 1;
  }
  return label;
}

// Cordoned or NotReady nodes take nothing now.
class NodeSchedulableFilter final : public FilterPlugin {
 public:
  std::string_view name() const override { return "NodeSchedulable"; }
  FitCode Filter(const SchedulingContext&, const NodeAvailability& node, int, NodeEvaluation&,
                 std::string* reason) const override {
    if (node.node->schedulable) return FitCode::kFits;
    if (reason) *reason = "node is not schedulable (cordoned or not ready)";
    return FitCode::kNotNow;
  }
};

// CPU and host memory, where the node's capacity is modelled.
class HostResourcesFilter final : public FilterPlugin {
 public:
  std::string_view name() const override { return "HostResources"; }
  FitCode Filter(const SchedulingContext& context, const NodeAvailability& node, int,
                 NodeEvaluation&, std::string* reason) const override {
    const HostResources& want = context.host();
    if (want.cpu_milli <= 0 && want.memory_mib <= 0) return FitCode::kFits;
    const HostResources& cap = node.host_capacity;
    if (!cap.CouldHold(want)) {
      if (reason) {
        *reason = "needs " + FormatCores(want.cpu_milli) + " CPU cores and " +
                  FormatGb(want.memory_mib) + " of host memory; the node has " +
                  FormatCores(cap.cpu_milli) + " cores and " + FormatGb(cap.memory_mib);
      }
      return FitCode::kNever;
    }
    if (want.cpu_milli > node.free_cpu_milli() || want.memory_mib > node.free_memory_mib()) {
      if (reason) {
        *reason = "needs " + FormatCores(want.cpu_milli) + " CPU cores and " +
                  FormatGb(want.memory_mib) + " of host memory; " +
                  FormatCores(node.free_cpu_milli()) + " cores and " +
                  FormatGb(node.free_memory_mib()) + " are free";
      }
      return FitCode::kNotNow;
    }
    return FitCode::kFits;
  }
};

// GPUs of the requested type with the memory (and share) asked.
class GpuFitFilter final : public FilterPlugin {
 public:
  std::string_view name() const override { return "GpuFit"; }
  FitCode Filter(const SchedulingContext& context, const NodeAvailability& node, int needed,
                 NodeEvaluation& evaluation, std::string* reason) const override {
    evaluation.eligible.clear();
    evaluation.possible_ever = 0;
    // GPUs of the type asked whose memory size the inventory does not know:
    // whether a memory need or a share fits them cannot be decided.
    int undecidable = 0;
    const bool sized = context.need_mib() > 0 || context.shared();
    const size_t gpus = std::min(node.gpus.size(), kMaxGpusPerNode);
    for (size_t i = 0; i < gpus; ++i) {
      const GpuAvailability& g = node.gpus[i];
      if (sized && g.gpu->memory_total_mib <= 0 && context.TypeMatches(g)) ++undecidable;
      if (!context.GpuPossibleEver(g)) continue;
      ++evaluation.possible_ever;
      if (context.GpuEligibleNow(g)) evaluation.eligible.push_back(static_cast<uint8_t>(i));
    }
    if (needed <= 0 || static_cast<int>(evaluation.eligible.size()) >= needed) {
      return FitCode::kFits;
    }
    FitCode code = evaluation.possible_ever < needed ? FitCode::kNever : FitCode::kNotNow;
    if (code == FitCode::kNever && evaluation.possible_ever + undecidable >= needed) {
      code = FitCode::kError;
    }
    if (reason) {
      *reason = Explain(context, node, needed, evaluation);
      if (undecidable > 0) {
        *reason += "; " + std::to_string(undecidable) +
                   " GPU(s) report no memory size (incomplete inventory data)";
      }
    }
    return code;
  }

 private:
  static std::string Explain(const SchedulingContext& context, const NodeAvailability& node,
                             int needed, const NodeEvaluation& evaluation) {
    const GpuRequest& request = context.request();
    const int64_t need_mib = context.need_mib();
    int matching = 0;
    int too_small = 0;
    int unhealthy = 0;
    int held = 0;
    int short_of_free_memory = 0;
    int blocked_outside = 0;
    int64_t most_free_of_outside_mib = 0;
    int short_of_share = 0;
    int in_mig_mode = 0;
    int64_t most_free_mib = 0;
    std::map<std::string, int> other_types;
    for (const GpuAvailability& g : node.gpus) {
      if (!context.TypeMatches(g)) {
        ++other_types[TypeLabel(*g.gpu)];
        continue;
      }
      ++matching;
      if (!g.gpu->allocatable_unit()) {
        ++in_mig_mode;
      } else if (!context.GpuPossibleEver(g)) {
        ++too_small;
      } else if (!g.gpu->healthy) {
        ++unhealthy;
      } else if (context.shared() ? g.exclusively_held : !g.untouched()) {
        ++held;
      } else if (!context.shared() && g.outside_use() && g.free_mib < need_mib) {
        ++blocked_outside;
        most_free_of_outside_mib = std::max(most_free_of_outside_mib, g.free_mib);
      } else if (g.free_mib < (context.shared() ? context.SliceMib(*g.gpu) : need_mib)) {
        ++short_of_free_memory;
        most_free_mib = std::max(most_free_mib, g.free_mib);
      } else if (!context.GpuEligibleNow(g)) {
        ++short_of_share;
      }
    }
    const std::string type = RequestedTypeLabel(request);
    if (matching == 0) {
      std::string has;
      for (const auto& [label, count] : other_types) {
        has += (has.empty() ? "" : ", ") + std::to_string(count) + " x " + label;
      }
      return "no " + type + " GPUs" + (has.empty() ? "" : " (has " + has + ")");
    }
    std::string text = std::to_string(evaluation.eligible.size()) + " of " +
                       std::to_string(needed) + " needed " + type + " GPUs available";
    std::string detail;
    auto add = [&detail](int count, const std::string& what) {
      if (count > 0) detail += (detail.empty() ? "" : ", ") + std::to_string(count) + " " + what;
    };
    add(held, context.shared() ? "held exclusively" : "already allocated");
    add(unhealthy, "unhealthy");
    add(in_mig_mode, "in MIG mode (only their MIG devices are granted)");
    if (context.milli() > 0) {
      add(too_small, "too small for a share or with less than " + FormatGb(need_mib) + " in total");
    } else {
      add(too_small, "with less than " + FormatGb(need_mib) + " in total");
    }
    add(blocked_outside, "blocked by processes outside gpurm (not enough free memory: at most " +
                             FormatGb(most_free_of_outside_mib) + " free of their use)");
    add(short_of_free_memory, "with not enough free memory (at most " + FormatGb(most_free_mib) +
                                  " free; the rest is used by other processes or slices)");
    add(short_of_share, "with less than " + std::to_string(context.milli()) +
                            "/1000 of the GPU free (shared by other slices)");
    if (!detail.empty()) text += ": " + detail;
    return text;
  }
};

// Exclusive requests, in the strict pass: GPUs with processes outside
// gpurm are not eligible.
class OutsideUseFilter final : public FilterPlugin {
 public:
  std::string_view name() const override { return "OutsideUse"; }
  FitCode Filter(const SchedulingContext& context, const NodeAvailability& node, int needed,
                 NodeEvaluation& evaluation, std::string* reason) const override {
    if (!context.avoid_outside_use() || context.shared()) return FitCode::kFits;
    int dropped = 0;
    std::erase_if(evaluation.eligible, [&](uint8_t i) {
      const bool outside = node.gpus[i].outside_use();
      dropped += outside ? 1 : 0;
      return outside;
    });
    if (needed <= 0 || static_cast<int>(evaluation.eligible.size()) >= needed) {
      return FitCode::kFits;
    }
    if (reason) {
      *reason = std::to_string(dropped) + " GPU(s) with processes outside gpurm left alone";
    }
    return FitCode::kNotNow;
  }
};

// Holds the placement's GPUs (exclusively or as slices).
class GpuReservePlugin final : public ReservePlugin {
 public:
  std::string_view name() const override { return "GpuReserve"; }
  Status Reserve(const Placement& placement, ClusterState& state) const override {
    std::set<std::string_view> exclusive_seen;
    std::map<std::string_view, int64_t> shared_mib;
    for (const GpuGrant& grant : placement.grants) {
      auto where = state.FindGpu(grant.gpu_uuid);
      if (!where) {
        return Status(StatusCode::kFailedPrecondition,
                      "GPU " + grant.gpu_uuid + " is not in the inventory");
      }
      const GpuAvailability& g = state.nodes()[where->first].gpus[where->second];
      if (!g.gpu->allocatable_unit()) {
        return Status(StatusCode::kFailedPrecondition,
                      "GPU " + grant.gpu_uuid + " on " + grant.node_name +
                          " is in MIG mode: only its MIG devices are granted");
      }
      bool fits;
      if (grant.exclusive) {
        fits = g.untouched() && exclusive_seen.insert(grant.gpu_uuid).second &&
               shared_mib.count(grant.gpu_uuid) == 0;
      } else {
        int64_t& taken = shared_mib[grant.gpu_uuid];
        taken += grant.memory_mib;
        fits =
            !g.exclusively_held && exclusive_seen.count(grant.gpu_uuid) == 0 && taken <= g.free_mib;
      }
      if (!fits) {
        return Status(
            StatusCode::kFailedPrecondition,
            "GPU " + grant.gpu_uuid + " on " + grant.node_name + " can no longer take this grant");
      }
    }
    state.AddGrants(placement.grants);
    return Status::Ok();
  }
  void Unreserve(const Placement& placement, ClusterState& state) const override {
    state.RemoveGrants(placement.grants);
  }
};

// Holds CPU and host memory on each node used, where modelled.
class HostReservePlugin final : public ReservePlugin {
 public:
  std::string_view name() const override { return "HostReserve"; }
  Status Reserve(const Placement& placement, ClusterState& state) const override {
    const HostResources& want = placement.host_per_node;
    if (want.cpu_milli <= 0 && want.memory_mib <= 0) return Status::Ok();
    for (size_t n : placement.node_indexes) {
      if (n >= state.nodes().size()) {
        return Status(StatusCode::kFailedPrecondition, "placement names an unknown node");
      }
      const NodeAvailability& node = state.nodes()[n];
      if (want.cpu_milli > node.free_cpu_milli() || want.memory_mib > node.free_memory_mib()) {
        return Status(StatusCode::kFailedPrecondition,
                      "node " + node.node->name + " no longer has the CPU or host memory");
      }
    }
    for (size_t n : placement.node_indexes) state.AddHostUse(n, want);
    return Status::Ok();
  }
  void Unreserve(const Placement& placement, ClusterState& state) const override {
    const HostResources& want = placement.host_per_node;
    if (want.cpu_milli <= 0 && want.memory_mib <= 0) return;
    for (size_t n : placement.node_indexes) {
      if (n < state.nodes().size()) state.RemoveHostUse(n, want);
    }
  }
};

const NodeSchedulableFilter kNodeSchedulable;
const HostResourcesFilter kHostResources;
const GpuFitFilter kGpuFit;
const OutsideUseFilter kOutsideUse;
const GpuReservePlugin kGpuReserve;
const HostReservePlugin kHostReserve;

}  // namespace

const char* FitCodeName(FitCode code) {
  switch (code) {
    case FitCode::kFits:
      return "fits";
    case FitCode::kNotNow:
      return "not_now";
    case FitCode::kNever:
      return "never";
    case FitCode::kError:
      return "error";
  }
  return "error";
}

SchedulingContext::SchedulingContext(const GpuRequest& request, const ScheduleOptions& options,
                                     const ClusterState& state, bool avoid_outside_use)
    : request_(request), options_(options), state_(state), avoid_outside_use_(avoid_outside_use) {
  milli_ = request.gpu_milli > 0 && request.gpu_milli < kMilliPerGpu ? request.gpu_milli : 0;
  shared_ = request.shared || milli_ > 0;
  need_mib_ = MibFromGb(request.memory_gb);
  size_t start = 0;
  while (!request.gpu_type.empty() && start <= request.gpu_type.size()) {
    size_t end = request.gpu_type.find('|', start);
    if (end == std::string::npos) end = request.gpu_type.size();
    std::string part = request.gpu_type.substr(start, end - start);
    part.erase(0, part.find_first_not_of(' '));
    part.erase(part.find_last_not_of(' ') + 1);
    if (!part.empty()) wanted_types_.emplace_back(part);
    start = end + 1;
  }
  type_match_.assign(state.type_count(), -1);
  for (uint32_t t = 0; t < state.type_count(); ++t) {
    cluster_has_mig_devices_ =
        cluster_has_mig_devices_ || state.type_representative(t).is_mig_device();
  }
}

int64_t SchedulingContext::SliceMib(const Gpu& gpu) const {
  if (milli_ <= 0) return need_mib_;
  return std::max(need_mib_, SliceMibForMilli(milli_, gpu.memory_total_mib));
}

bool SchedulingContext::TypeMatches(const GpuAvailability& g) const {
  return TypeIdMatches(g.type_id);
}

bool SchedulingContext::TypeIdMatches(uint32_t type_id) const {
  if (wanted_types_.empty() && !cluster_has_mig_devices_) return true;
  int8_t& cached = type_match_[type_id];
  if (cached < 0) {
    const Gpu& gpu = state_.type_representative(type_id);
    // MIG devices are of types of their own (ClusterState keys types by it).
    cached = GpuTypeMatches(request_, gpu) && (!gpu.is_mig_device() || MigDeviceMayServe(request_))
                 ? 1
                 : 0;
  }
  return cached == 1;
}

bool SchedulingContext::PartTypeMatches(size_t part, const GpuAvailability& g) const {
  return PartTypeIdMatches(part, g.type_id);
}

bool SchedulingContext::PartTypeIdMatches(size_t part, uint32_t type_id) const {
  const WorkloadMix::GpuPart& wanted = options_.workload->parts()[part];
  if (wanted.gpu_type.empty() && !cluster_has_mig_devices_) return true;
  const size_t types = state_.type_count();
  const size_t slot = part * types + type_id;
  if (part_type_match_.size() <= slot) {
    part_type_match_.resize(options_.workload->parts().size() * types, -1);
  }
  int8_t& cached = part_type_match_[slot];
  if (cached < 0) {
    GpuRequest probe;
    probe.gpu_type = wanted.gpu_type;
    probe.gpu_count = wanted.gpu_count;
    probe.gpu_milli = wanted.milli;
    probe.shared = wanted.shared;
    probe.memory_gb = GbFromMib(wanted.need_mib);
    const Gpu& gpu = state_.type_representative(type_id);
    cached =
        GpuTypeMatches(probe, gpu) && (!gpu.is_mig_device() || MigDeviceMayServe(probe)) ? 1 : 0;
  }
  return cached == 1;
}

double SchedulingContext::NodePressure(const NodeAvailability& node) const {
  const WorkloadMix* mix = options_.workload;
  if (mix == nullptr || mix->empty()) return 0;
  const std::vector<NodeAvailability>& nodes = state_.nodes();
  if (&node < nodes.data() || &node >= nodes.data() + nodes.size()) return 0;
  if (kind_pressure_.empty()) {
    const size_t kinds = state_.build_kind_count();
    kind_pressure_.assign(kinds, 0.0);
    int64_t cluster_gpus = 0;
    for (uint32_t k = 0; k < kinds; ++k) {
      cluster_gpus += state_.build_kind_size(k) *
                      static_cast<int64_t>(nodes[state_.build_kind_node(k)].gpus.size());
    }
    const std::vector<WorkloadMix::GpuPart>& parts = mix->parts();
    auto demand_of = [&](const WorkloadMix::Shape& shape) {
      const WorkloadMix::GpuPart& part = parts[shape.part];
      return shape.count * (part.milli > 0 ? part.milli / double{kMilliPerGpu}
                                           : static_cast<double>(part.gpu_count));
    };
    double total_demand = 0;
    for (const WorkloadMix::Shape& shape : mix->shapes()) total_demand += demand_of(shape);
    std::vector<char> hosts(kinds, 0);
    for (const WorkloadMix::Shape& shape : mix->shapes()) {
      const WorkloadMix::GpuPart& part = parts[shape.part];
      int64_t accepted = 0;
      for (uint32_t k = 0; k < kinds; ++k) {
        const NodeAvailability& kind = nodes[state_.build_kind_node(k)];
        int usable = 0;
        for (const GpuAvailability& g : kind.gpus) {
          if (PartTypeIdMatches(shape.part, g.type_id) &&
              g.gpu->memory_total_mib >= part.need_mib) {
            ++usable;
          }
        }
        const HostResources& capacity = kind.host_capacity;
        hosts[k] = usable >= std::max(1, part.gpu_count) &&
                   (capacity.cpu_milli <= 0 || capacity.cpu_milli >= shape.host.cpu_milli) &&
                   (capacity.memory_mib <= 0 || capacity.memory_mib >= shape.host.memory_mib);
        if (hosts[k]) accepted += state_.build_kind_size(k) * usable;
      }
      if (accepted == 0 || accepted >= cluster_gpus || total_demand <= 0) continue;
      const double pressure = demand_of(shape) / total_demand * static_cast<double>(cluster_gpus) /
                              static_cast<double>(accepted);
      for (uint32_t k = 0; k < kinds; ++k) {
        if (hosts[k]) kind_pressure_[k] += pressure;
      }
    }
    // A prior for the largest pods, seen or not yet: every multi-GPU node
    // build kind could be asked for a whole-node task (all its GPUs, its
    // CPU and host memory). Such a task can only run on the kinds at least
    // as large, so they carry its pressure as for a shape of the mix
    // requesting kWholeNodePrior of the demand in proportion to the kind's
    // GPUs. The rarest, largest nodes (39 G3 in the openb cluster, the only
    // hosts of its 120-core 8-GPU pods) are then spent last even before a
    // pod that needs them has arrived: in trace order the first whole-node
    // pod is refused at 95% of capacity instead of 19%.
    constexpr double kWholeNodePrior = 0.2;
    for (uint32_t w = 0; w < kinds; ++w) {
      const NodeAvailability& whole = nodes[state_.build_kind_node(w)];
      const int64_t gpus = static_cast<int64_t>(whole.gpus.size());
      if (gpus < 2) continue;
      int64_t accepted = 0;
      for (uint32_t k = 0; k < kinds; ++k) {
        const NodeAvailability& kind = nodes[state_.build_kind_node(k)];
        const HostResources& capacity = kind.host_capacity;
        hosts[k] = static_cast<int64_t>(kind.gpus.size()) >= gpus &&
                   capacity.cpu_milli >= whole.host_capacity.cpu_milli &&
                   capacity.memory_mib >= whole.host_capacity.memory_mib;
        if (hosts[k]) {
          accepted += state_.build_kind_size(k) * static_cast<int64_t>(kind.gpus.size());
        }
      }
      if (accepted == 0 || accepted >= cluster_gpus) continue;
      const double pressure = kWholeNodePrior *
                              static_cast<double>(state_.build_kind_size(w) * gpus) /
                              static_cast<double>(accepted);
      for (uint32_t k = 0; k < kinds; ++k) {
        if (hosts[k]) kind_pressure_[k] += pressure;
      }
    }
  }
  return kind_pressure_[state_.build_kind_of(static_cast<size_t>(&node - nodes.data()))];
}

double SchedulingContext::TypePressure(uint32_t type_id) const {
  const WorkloadMix* mix = options_.workload;
  if (mix == nullptr || mix->empty()) return 0;
  if (type_pressure_.empty()) {
    const size_t types = state_.type_count();
    type_pressure_.assign(types, 0.0);
    int64_t cluster_gpus = 0;
    for (uint32_t t = 0; t < types; ++t) cluster_gpus += state_.type_gpu_count(t);
    const std::vector<WorkloadMix::GpuPart>& parts = mix->parts();
    std::vector<double> demand(parts.size(), 0.0);
    double total_demand = 0;
    for (const WorkloadMix::Shape& shape : mix->shapes()) {
      const WorkloadMix::GpuPart& part = parts[shape.part];
      const double per_task =
          part.milli > 0 ? part.milli / double{kMilliPerGpu} : static_cast<double>(part.gpu_count);
      demand[shape.part] += shape.count * per_task;
      total_demand += shape.count * per_task;
    }
    for (size_t p = 0; p < parts.size() && total_demand > 0; ++p) {
      if (parts[p].gpu_type.empty() || demand[p] <= 0) continue;
      int64_t accepted = 0;
      for (uint32_t t = 0; t < types; ++t) {
        if (PartTypeIdMatches(p, t)) accepted += state_.type_gpu_count(t);
      }
      if (accepted == 0 || accepted == cluster_gpus) continue;
      const double pressure = demand[p] / total_demand * static_cast<double>(cluster_gpus) /
                              static_cast<double>(accepted);
      for (uint32_t t = 0; t < types; ++t) {
        if (PartTypeIdMatches(p, t)) type_pressure_[t] += pressure;
      }
    }
  }
  return type_id < type_pressure_.size() ? type_pressure_[type_id] : 0.0;
}

bool SchedulingContext::MayFit(const NodeSummary& node, int gpus_needed) const {
  if (!node.schedulable) return false;
  const HostResources& want = options_.host;
  if (node.host_capacity.cpu_milli > 0 &&
      want.cpu_milli > node.host_capacity.cpu_milli - node.host_used.cpu_milli) {
    return false;
  }
  if (node.host_capacity.memory_mib > 0 &&
      want.memory_mib > node.host_capacity.memory_mib - node.host_used.memory_mib) {
    return false;
  }
  if (gpus_needed <= 0) return true;
  if (node.type_id >= 0 && !TypeIdMatches(static_cast<uint32_t>(node.type_id))) return false;
  if (node.max_free_mib < need_mib_) return false;
  if (!shared_) return node.untouched >= gpus_needed;
  return node.shareable >= gpus_needed && node.max_free_milli >= milli_;
}

bool SchedulingContext::GpuPossibleEver(const GpuAvailability& g) const {
  // A GPU in MIG mode is never granted whole; its MIG devices are.
  if (!g.gpu->allocatable_unit() || !TypeMatches(g)) return false;
  if (g.gpu->memory_total_mib < need_mib_) return false;
  // A share is accounted as a memory slice; below 1001 MiB the slice could
  // not represent every share exactly.
  if (milli_ > 0 && g.gpu->memory_total_mib <= kMilliPerGpu) return false;
  return true;
}

bool SchedulingContext::GpuEligibleNow(const GpuAvailability& g) const {
  if (!GpuPossibleEver(g) || !g.gpu->healthy) return false;
  if (!shared_) return g.untouched() && g.free_mib >= need_mib_;
  if (g.exclusively_held) return false;
  const int64_t slice = SliceMib(*g.gpu);
  if (g.free_mib < slice) return false;
  return milli_ <= 0 || g.free_milli() >= SliceMilli(slice, g.gpu->memory_total_mib);
}

const std::vector<const FilterPlugin*>& DefaultFilters() {
  static const std::vector<const FilterPlugin*> filters = {&kNodeSchedulable, &kHostResources,
                                                           &kGpuFit, &kOutsideUse};
  return filters;
}

const std::vector<const ReservePlugin*>& DefaultReservePlugins() {
  static const std::vector<const ReservePlugin*> plugins = {&kGpuReserve, &kHostReserve};
  return plugins;
}

uint64_t MixSeed(uint64_t value) {
  value += 0x9e3779b97f4a7c15ULL;
  value = (value ^ (value >> 30)) * 0xbf58476d1ce4e5b9ULL;
  value = (value ^ (value >> 27)) * 0x94d049bb133111ebULL;
  return value ^ (value >> 31);
}

}  // namespace gpurm
