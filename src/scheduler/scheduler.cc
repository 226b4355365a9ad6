#include "scheduler/scheduler.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <numeric>
#include <utility>

#include "core/gpu_model.h"

namespace gpurm {
namespace {

std::string FormatGb(int64_t mib) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.1f GB", GbFromMib(mib));
  return buffer;
}

// The name a GPU is counted under in answers: canonical model, else raw name.
std::string TypeLabel(const Gpu& gpu) {
  return gpu.model.known() ? gpu.model.canonical : gpu.model.raw_name;
}

std::string RequestedTypeLabel(const GpuRequest& request) {
  return request.gpu_type.empty() ? std::string("GPU") : CanonicalGpuType(request.gpu_type);
}

// GPUs of a node grouped by NVLink island; GPUs without a group are each
// their own island, so grouping never pretends they are connected.
std::map<int, std::vector<size_t>> GroupByIsland(const NodeAvailability& node,
                                                 const std::vector<size_t>& gpus) {
  std::map<int, std::vector<size_t>> groups;
  for (size_t i : gpus) {
    const int group = node.gpus[i].gpu->nvlink_group;
    groups[group >= 0 ? group : -1 - static_cast<int>(i)].push_back(i);
  }
  return groups;
}

// Takes `count` GPUs for an exclusive multi-GPU request: from one island when
// one is large enough (the smallest such island when `best_fit`, the largest
// otherwise), else from the largest islands first so the job spans as few as
// possible.
std::vector<size_t> ChooseByIsland(const NodeAvailability& node,
                                   const std::vector<size_t>& eligible, int count, bool best_fit) {
  auto groups = GroupByIsland(node, eligible);
  std::vector<std::vector<size_t>*> ordered;
  for (auto& [id, members] : groups) ordered.push_back(&members);
  const size_t need = static_cast<size_t>(count);
  std::stable_sort(ordered.begin(), ordered.end(), [&](const auto* a, const auto* b) {
    const bool a_fits = a->size() >= need;
    const bool b_fits = b->size() >= need;
    if (a_fits != b_fits) return a_fits;
    if (a_fits && best_fit) return a->size() < b->size();
    return a->size() > b->size();
  });
  std::vector<size_t> chosen;
  for (const auto* members : ordered) {
    for (size_t i : *members) {
      if (chosen.size() == need) break;
      chosen.push_back(i);
    }
  }
  std::sort(chosen.begin(), chosen.end());
  return chosen;
}

bool SameIsland(const NodeAvailability& node, const std::vector<size_t>& chosen) {
  if (chosen.size() <= 1) return true;
  const int group = node.gpus[chosen.front()].gpu->nvlink_group;
  if (group < 0) return false;
  return std::all_of(chosen.begin(), chosen.end(),
                     [&](size_t i) { return node.gpus[i].gpu->nvlink_group == group; });
}

// Untouched GPUs left in each island after taking `chosen`, summed as the
// size of the largest intact island: what a future multi-GPU job can still get.
int LargestUntouchedIslandAfter(const NodeAvailability& node, const std::vector<size_t>& chosen) {
  std::vector<size_t> untouched;
  for (size_t i = 0; i < node.gpus.size(); ++i) {
    if (node.gpus[i].untouched() && std::find(chosen.begin(), chosen.end(), i) == chosen.end()) {
      untouched.push_back(i);
    }
  }
  int largest = 0;
  for (const auto& [id, members] : GroupByIsland(node, untouched)) {
    largest = std::max(largest, static_cast<int>(members.size()));
  }
  return largest;
}

// binpack: most-allocated / best fit. Fills partly used nodes, islands and
// GPUs first, keeping whole free GPUs and whole free nodes for large jobs.
class BinpackPolicy final : public PlacementPolicy {
 public:
  std::string_view name() const override { return "binpack"; }

  std::vector<size_t> ChooseGpus(const GpuRequest& request, const NodeAvailability& node,
                                 const std::vector<size_t>& eligible, int count) const override {
    if (count > 1 && !request.shared) return ChooseByIsland(node, eligible, count, true);
    // One GPU (or shared slices): the tightest fit that keeps intact islands.
    std::vector<size_t> order = eligible;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      const GpuAvailability& ga = node.gpus[a];
      const GpuAvailability& gb = node.gpus[b];
      if (ga.untouched() != gb.untouched()) return !ga.untouched();  // Already shared first.
      const int ia = LargestUntouchedIslandAfter(node, {a});
      const int ib = LargestUntouchedIslandAfter(node, {b});
      if (ia != ib) return ia > ib;
      return ga.free_mib < gb.free_mib;
    });
    order.resize(static_cast<size_t>(count));
    std::sort(order.begin(), order.end());
    return order;
  }

  int Score(const GpuRequest& /*request*/, const NodeAvailability& node,
            const std::vector<size_t>& chosen) const override {
    if (node.gpus.empty()) return 0;
    size_t touched_after = chosen.size();
    for (size_t i = 0; i < node.gpus.size(); ++i) {
      if (!node.gpus[i].untouched() && std::find(chosen.begin(), chosen.end(), i) == chosen.end()) {
        ++touched_after;
      }
    }
    const double fill = static_cast<double>(touched_after) / static_cast<double>(node.gpus.size());
    return static_cast<int>(std::lround(80.0 * fill)) + (SameIsland(node, chosen) ? 20 : 0);
  }
};

// spread: least allocated, the Kubernetes default. Balances load and heat by
// using the emptiest nodes and GPUs first.
class SpreadPolicy final : public PlacementPolicy {
 public:
  std::string_view name() const override { return "spread"; }

  std::vector<size_t> ChooseGpus(const GpuRequest& request, const NodeAvailability& node,
                                 const std::vector<size_t>& eligible, int count) const override {
    if (count > 1 && !request.shared) return ChooseByIsland(node, eligible, count, false);
    std::vector<size_t> order = eligible;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return node.gpus[a].free_mib > node.gpus[b].free_mib;
    });
    order.resize(static_cast<size_t>(count));
    std::sort(order.begin(), order.end());
    return order;
  }

  int Score(const GpuRequest& /*request*/, const NodeAvailability& node,
            const std::vector<size_t>& chosen) const override {
    if (node.gpus.empty()) return 0;
    int untouched_after = 0;
    for (size_t i = 0; i < node.gpus.size(); ++i) {
      if (node.gpus[i].untouched() && std::find(chosen.begin(), chosen.end(), i) == chosen.end()) {
        ++untouched_after;
      }
    }
    return static_cast<int>(
        std::lround(100.0 * untouched_after / static_cast<double>(node.gpus.size())));
  }
};

const BinpackPolicy kBinpack;
const SpreadPolicy kSpread;
const PlacementPolicy* const kPolicies[] = {&kBinpack, &kSpread};

// The filter stage for one node.
struct NodeFilterResult {
  std::vector<size_t> eligible;  // GPUs that can take (a slice of) the request now.
  std::string reason;            // Why fewer than needed are eligible; empty otherwise.
};

NodeFilterResult FilterNode(const GpuRequest& request, const NodeAvailability& node, int needed) {
  NodeFilterResult result;
  const int64_t need_mib = MibFromGb(request.memory_gb);
  if (!node.node->schedulable) {
    result.reason = "node is not schedulable (cordoned or not ready)";
    return result;
  }
  int matching = 0;
  int too_small = 0;
  int unhealthy = 0;
  int held = 0;
  int short_of_free_memory = 0;
  int64_t most_free_mib = 0;
  std::map<std::string, int> other_types;
  for (size_t i = 0; i < node.gpus.size(); ++i) {
    const GpuAvailability& g = node.gpus[i];
    if (!GpuTypeMatches(request, *g.gpu)) {
      ++other_types[TypeLabel(*g.gpu)];
      continue;
    }
    ++matching;
    if (g.gpu->memory_total_mib < need_mib) {
      ++too_small;
    } else if (!g.gpu->healthy) {
      ++unhealthy;
    } else if (request.shared ? g.exclusively_held : !g.untouched()) {
      ++held;
    } else if (g.free_mib < need_mib) {
      ++short_of_free_memory;
      most_free_mib = std::max(most_free_mib, g.free_mib);
    } else {
      result.eligible.push_back(i);
    }
  }
  if (static_cast<int>(result.eligible.size()) >= needed) return result;

  const std::string type = RequestedTypeLabel(request);
  if (matching == 0) {
    std::string has;
    for (const auto& [label, count] : other_types) {
      has += (has.empty() ? "" : ", ") + std::to_string(count) + " x " + label;
    }
    result.reason = "no " + type + " GPUs" + (has.empty() ? "" : " (has " + has + ")");
    return result;
  }
  result.reason = std::to_string(result.eligible.size()) + " of " + std::to_string(needed) +
                  " needed " + type + " GPUs available";
  std::string detail;
  auto add = [&detail](int count, const std::string& what) {
    if (count > 0) detail += (detail.empty() ? "" : ", ") + std::to_string(count) + " " + what;
  };
  add(held, request.shared ? "held exclusively" : "already allocated");
  add(unhealthy, "unhealthy");
  add(too_small, "with less than " + FormatGb(need_mib) + " in total");
  add(short_of_free_memory, "with not enough free memory (at most " + FormatGb(most_free_mib) +
                                " free; the rest is used by other processes or slices)");
  if (!detail.empty()) result.reason += ": " + detail;
  return result;
}

// Could the request ever fit this cluster as built (ignoring allocations,
// outside use, health and cordons)?
bool PossibleEver(const GpuRequest& request, const ClusterState& state) {
  const int64_t need_mib = MibFromGb(request.memory_gb);
  std::vector<int> capacity;
  for (const NodeAvailability& node : state.nodes()) {
    if (!request.node_name.empty() && node.node->name != request.node_name) continue;
    int fits = 0;
    for (const GpuAvailability& g : node.gpus) {
      if (GpuTypeMatches(request, *g.gpu) && g.gpu->memory_total_mib >= need_mib) ++fits;
    }
    capacity.push_back(fits);
  }
  const int count = request.gpu_count;
  if (std::any_of(capacity.begin(), capacity.end(), [&](int c) { return c >= count; })) {
    return true;
  }
  if (!request.distributed_training || !request.node_name.empty()) return false;
  for (int nodes = 2; nodes <= count; ++nodes) {
    if (count % nodes != 0) continue;
    const int per_node = count / nodes;
    if (std::count_if(capacity.begin(), capacity.end(), [&](int c) { return c >= per_node; }) >=
        nodes) {
      return true;
    }
  }
  return false;
}

WouldFit ComputeWouldFit(const GpuRequest& request, const ClusterState& state) {
  WouldFit fit;
  const int64_t need_mib = MibFromGb(request.memory_gb);
  int64_t most_free_mib = 0;
  std::string best_node;
  for (const NodeAvailability& node : state.nodes()) {
    if (!node.node->schedulable) continue;
    int on_node = 0;
    for (const GpuAvailability& g : node.gpus) {
      if (!g.gpu->healthy) continue;
      if (g.untouched()) ++fit.gpu_types_available[TypeLabel(*g.gpu)];
      if (!GpuTypeMatches(request, *g.gpu)) continue;
      const bool free_enough = request.shared ? !g.exclusively_held : g.untouched();
      if (!free_enough) continue;
      most_free_mib = std::max(most_free_mib, g.free_mib);
      if (g.free_mib >= need_mib) ++on_node;
    }
    if (on_node > fit.max_gpus_on_one_node) {
      fit.max_gpus_on_one_node = on_node;
      best_node = node.node->name;
    }
  }
  fit.max_memory_gb_per_gpu = std::floor(GbFromMib(most_free_mib) * 10.0) / 10.0;
  const std::string type = RequestedTypeLabel(request);
  char buffer[256];
  if (fit.max_gpus_on_one_node > 0) {
    std::snprintf(buffer, sizeof(buffer), "%d x %s with %.1f GB each fit now on %s",
                  fit.max_gpus_on_one_node, type.c_str(), request.memory_gb, best_node.c_str());
    fit.suggestion = buffer;
  } else if (most_free_mib > 0) {
    std::snprintf(buffer, sizeof(buffer),
                  "no %s has %.1f GB free now; at most %.1f GB per GPU is free (lower memory_gb)",
                  type.c_str(), request.memory_gb, fit.max_memory_gb_per_gpu);
    fit.suggestion = buffer;
  } else if (!fit.gpu_types_available.empty()) {
    std::string types;
    for (const auto& [label, count] : fit.gpu_types_available) {
      types += (types.empty() ? "" : ", ") + std::to_string(count) + " x " + label;
    }
    fit.suggestion = "free GPUs of other types: " + types;
  }
  return fit;
}

struct Candidate {
  size_t node = 0;  // Index into state.nodes().
  std::vector<size_t> gpus;
  int score = 0;
};

void AppendGrants(const GpuRequest& request, const NodeAvailability& node,
                  const std::vector<size_t>& chosen, std::vector<GpuGrant>& grants) {
  for (size_t i : chosen) {
    const GpuAvailability& g = node.gpus[i];
    GpuGrant& grant = grants.emplace_back();
    grant.node_name = node.node->name;
    grant.gpu_index = g.gpu->index;
    grant.gpu_uuid = g.gpu->uuid;
    grant.exclusive = !request.shared;
    // Exclusive grants hold what was free of outside use: that is what the
    // job can really get, and what its framework is capped to.
    grant.memory_mib = request.shared ? MibFromGb(request.memory_gb) : g.free_mib;
  }
}

}  // namespace

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

Status ValidateRequest(const GpuRequest& request) {
  if (request.gpu_count < 1) return InvalidArgument("must be >= 1", "gpu_count");
  if (request.gpu_count > 4096) return InvalidArgument("must be <= 4096", "gpu_count");
  if (!std::isfinite(request.memory_gb) || request.memory_gb < 0) {
    return InvalidArgument("must be a number >= 0 (GB per GPU)", "memory_gb");
  }
  if (request.memory_gb > 1e6) return InvalidArgument("must be <= 1000000 GB", "memory_gb");
  if (!std::isfinite(request.gpu_memory_fraction) || request.gpu_memory_fraction <= 0 ||
      request.gpu_memory_fraction > 1) {
    return InvalidArgument("must be in (0, 1]", "gpu_memory_fraction");
  }
  if (request.shared && request.memory_gb <= 0) {
    return InvalidArgument("a shared request must ask for memory_gb > 0 (the slice it reserves)",
                           "shared");
  }
  if (request.lease_ttl_s < 0) return InvalidArgument("must be >= 0", "lease_ttl_seconds");
  if (!request.policy.empty() && FindPolicy(request.policy) == nullptr) {
    std::string known;
    for (const std::string& name : PolicyNames()) known += (known.empty() ? "" : ", ") + name;
    return InvalidArgument("unknown policy \"" + request.policy + "\" (known: " + known + ")",
                           "policy");
  }
  return Status::Ok();
}

bool GpuTypeMatches(const GpuRequest& request, const Gpu& gpu) {
  if (request.gpu_type.empty()) return true;
  const std::string wanted = CanonicalGpuType(request.gpu_type);
  if (gpu.model.known()) return gpu.model.canonical == wanted;
  return CanonicalGpuType(gpu.model.raw_name) == wanted;
}

Scheduler::Scheduler(std::string_view default_policy)
    : default_policy_(FindPolicy(default_policy) ? FindPolicy(default_policy) : &kBinpack) {}

ScheduleResult Scheduler::Schedule(const GpuRequest& request, const ClusterState& state) const {
  const PlacementPolicy* policy =
      request.policy.empty() ? default_policy_ : FindPolicy(request.policy);
  if (policy == nullptr) policy = default_policy_;
  ScheduleResult result;
  Diagnosis& diagnosis = result.diagnosis;
  diagnosis.possible_ever = PossibleEver(request, state);

  const auto& nodes = state.nodes();
  std::vector<NodeFilterResult> filtered(nodes.size());
  std::optional<Candidate> best;
  bool node_found = request.node_name.empty();
  for (size_t n = 0; n < nodes.size(); ++n) {
    if (!request.node_name.empty() && nodes[n].node->name != request.node_name) continue;
    node_found = true;
    filtered[n] = FilterNode(request, nodes[n], request.gpu_count);
    if (static_cast<int>(filtered[n].eligible.size()) < request.gpu_count) continue;
    Candidate candidate{
        n, policy->ChooseGpus(request, nodes[n], filtered[n].eligible, request.gpu_count)};
    candidate.score = policy->Score(request, nodes[n], candidate.gpus);
    if (!best || candidate.score > best->score) best = std::move(candidate);
  }

  std::vector<Candidate> chosen;
  if (best) {
    chosen.push_back(std::move(*best));
  } else if (request.distributed_training && request.gpu_count > 1 && request.node_name.empty()) {
    // Gang: the fewest nodes with an equal share each, all or nothing.
    for (int node_count = 2; node_count <= request.gpu_count && chosen.empty(); ++node_count) {
      if (request.gpu_count % node_count != 0) continue;
      const int per_node = request.gpu_count / node_count;
      std::vector<Candidate> candidates;
      for (size_t n = 0; n < nodes.size(); ++n) {
        if (static_cast<int>(filtered[n].eligible.size()) < per_node) continue;
        Candidate candidate{n,
                            policy->ChooseGpus(request, nodes[n], filtered[n].eligible, per_node)};
        candidate.score = policy->Score(request, nodes[n], candidate.gpus);
        candidates.push_back(std::move(candidate));
      }
      if (static_cast<int>(candidates.size()) < node_count) continue;
      std::stable_sort(candidates.begin(), candidates.end(),
                       [](const Candidate& a, const Candidate& b) { return a.score > b.score; });
      candidates.resize(static_cast<size_t>(node_count));
      std::sort(candidates.begin(), candidates.end(),
                [](const Candidate& a, const Candidate& b) { return a.node < b.node; });
      chosen = std::move(candidates);
    }
  }

  if (!chosen.empty()) {
    Placement placement;
    placement.policy = std::string(policy->name());
    int score_sum = 0;
    for (const Candidate& candidate : chosen) {
      AppendGrants(request, nodes[candidate.node], candidate.gpus, placement.grants);
      score_sum += candidate.score;
    }
    placement.score = score_sum / static_cast<int>(chosen.size());
    result.placement = std::move(placement);
    diagnosis.possible_now = true;
    diagnosis.possible_ever = true;
    diagnosis.message = "fits now";
    return result;
  }

  for (size_t n = 0; n < nodes.size(); ++n) {
    if (!filtered[n].reason.empty()) {
      diagnosis.reasons.push_back({nodes[n].node->name, filtered[n].reason});
    } else if (nodes[n].node->schedulable && !filtered[n].eligible.empty()) {
      diagnosis.reasons.push_back(
          {nodes[n].node->name, std::to_string(filtered[n].eligible.size()) + " of " +
                                    std::to_string(request.gpu_count) + " needed GPUs available"});
    }
  }
  diagnosis.would_fit = ComputeWouldFit(request, state);
  const std::string type = RequestedTypeLabel(request);
  char buffer[256];
  if (!node_found) {
    diagnosis.possible_ever = false;
    diagnosis.message = "no node named \"" + request.node_name + "\"";
  } else if (!diagnosis.possible_ever) {
    std::snprintf(buffer, sizeof(buffer), "no %s%d x %s with %.1f GB each exists in this cluster",
                  request.node_name.empty() ? "" : "single node has ", request.gpu_count,
                  type.c_str(), request.memory_gb);
    diagnosis.message = buffer;
  } else {
    std::snprintf(buffer, sizeof(buffer),
                  "%d x %s with %.1f GB free each cannot be placed now%s; it fits once GPUs are "
                  "released",
                  request.gpu_count, type.c_str(), request.memory_gb,
                  request.distributed_training ? " (not even across nodes)" : " on one node");
    diagnosis.message = buffer;
  }
  return result;
}

}  // namespace gpurm
