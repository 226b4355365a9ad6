#include "scheduler/scheduler.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <utility>

#include "core/gpu_model.h"
#include "core/placement_policies.h"

namespace gpurm {
namespace {

std::string TypeLabel(const Gpu& gpu) { return GpuTypeLabel(gpu); }

std::string RequestedTypeLabel(const GpuRequest& request) {
  if (request.gpu_type.empty()) return "GPU";
  // A MIG profile is shown as written: canonicalising would drop it.
  if (NamesMigDevices(request.gpu_type)) return request.gpu_type;
  return CanonicalGpuType(request.gpu_type);
}

// "2 x T4", or "2 x A100 with 40.0 GB<memory_note> each" when the request
// asks for memory (a request that does not ask gets no "0.0 GB" in its messages).
std::string RequestShape(int count, const GpuRequest& request, const char* memory_note = "") {
  std::string text = std::to_string(count) + " x " + RequestedTypeLabel(request);
  if (request.memory_gb > 0) {
    char gb[64];
    std::snprintf(gb, sizeof(gb), " with %.1f GB%s each", request.memory_gb, memory_note);
    text += gb;
  }
  return text;
}

// A set of nodes evaluated once: an equivalence class of the ClusterState,
// or the single node a request names.
struct Group {
  const uint32_t* members = nullptr;  // Ascending node indexes.
  size_t size = 0;
  const NodeSummary* summary = nullptr;
  size_t first() const { return members[0]; }
};

std::vector<Group> GroupsFor(const ClusterState& state, const std::optional<uint32_t>& named,
                             const uint32_t* named_storage) {
  std::vector<Group> groups;
  if (named) {
    groups.push_back(Group{named_storage, 1, &state.class_summary(state.class_of(*named))});
    return groups;
  }
  groups.reserve(state.live_classes().size());
  for (uint32_t id : state.live_classes()) {
    const std::vector<uint32_t>& members = state.class_members(id);
    groups.push_back(Group{members.data(), members.size(), &state.class_summary(id)});
  }
  return groups;
}

// Runs the filters; true when all say kFits. With `reason`, runs them all and
// returns the most definitive code (never > error > not now) and the
// reasons joined.
FitCode RunFilters(const SchedulingContext& context, const NodeAvailability& node, int needed,
                   NodeEvaluation& evaluation, std::string* reason) {
  FitCode worst = FitCode::kFits;
  for (const FilterPlugin* filter : DefaultFilters()) {
    std::string why;
    const FitCode code =
        filter->Filter(context, node, needed, evaluation, reason != nullptr ? &why : nullptr);
    if (code == FitCode::kFits) continue;
    if (reason == nullptr) return code;
    if (!why.empty()) *reason += (reason->empty() ? "" : "; ") + why;
    auto rank = [](FitCode c) {
      return c == FitCode::kNever ? 3 : c == FitCode::kError ? 2 : c == FitCode::kNotNow ? 1 : 0;
    };
    if (rank(code) > rank(worst)) worst = code;
  }
  return worst;
}

struct Chosen {
  size_t node = 0;
  std::vector<uint8_t> gpus;
  double score = 0;
  NodeCandidate candidate;  // As evaluated (for ordering).
};

struct Scored {
  size_t group = 0;
  NodeCandidate candidate;
};

void AppendGrants(const SchedulingContext& context, const NodeAvailability& node,
                  const std::vector<uint8_t>& chosen, std::vector<GpuGrant>& grants) {
  for (uint8_t i : chosen) {
    const GpuAvailability& g = node.gpus[i];
    GpuGrant& grant = grants.emplace_back();
    grant.node_name = node.node->name;
    grant.gpu_index = g.gpu->index;
    grant.gpu_uuid = g.gpu->uuid;
    grant.exclusive = !context.shared();
    // Exclusive grants hold what was free of outside use: that is what the
    // job can really get, and what its framework is capped to.
    grant.memory_mib = context.shared() ? context.SliceMib(*g.gpu) : g.free_mib;
  }
}

// Per group of alike nodes, how many of a node's GPUs could take the request
// and how many nodes the group has.
using GroupCapacity = std::vector<std::pair<int, size_t>>;

// Does `capacity` take the request: all its GPUs on one node, or -- a
// distributed request not tied to a node -- split evenly over several?
bool CapacityTakes(const GpuRequest& request, const GroupCapacity& capacity) {
  const int count = request.gpu_count;
  auto nodes_with = [&](int at_least) {
    size_t nodes = 0;
    for (const auto& [fits, members] : capacity) nodes += fits >= at_least ? members : 0;
    return nodes;
  };
  if (nodes_with(count) > 0) return true;
  if (!request.distributed_training || !request.node_name.empty()) return false;
  for (int nodes = 2; nodes <= count; ++nodes) {
    if (count % nodes == 0 && nodes_with(count / nodes) >= static_cast<size_t>(nodes)) {
      return true;
    }
  }
  return false;
}

// Could the request ever fit this cluster as built (ignoring allocations,
// outside use, health and cordons)?
bool PossibleEver(const SchedulingContext& context, const ClusterState& state,
                  const std::vector<Group>& groups) {
  GroupCapacity capacity;  // GPUs that could fit.
  for (const Group& group : groups) {
    const NodeAvailability& node = state.nodes()[group.first()];
    if (!node.host_capacity.CouldHold(context.host())) continue;
    int fits = 0;
    for (const GpuAvailability& g : node.gpus) fits += context.GpuPossibleEver(g) ? 1 : 0;
    capacity.emplace_back(fits, group.size);
  }
  return CapacityTakes(context.request(), capacity);
}

WouldFit ComputeWouldFit(const SchedulingContext& context, const ClusterState& state,
                         const std::vector<Group>& groups) {
  const GpuRequest& request = context.request();
  WouldFit fit;
  int64_t most_free_mib = 0;
  size_t best_node = 0;
  for (const Group& group : groups) {
    const NodeAvailability& node = state.nodes()[group.first()];
    if (!node.node->schedulable) continue;
    int on_node = 0;
    for (const GpuAvailability& g : node.gpus) {
      if (!g.gpu->healthy || !g.gpu->allocatable_unit()) continue;
      if (g.untouched()) fit.gpu_types_available[TypeLabel(*g.gpu)] += static_cast<int>(group.size);
      if (!context.TypeMatches(g)) continue;
      const bool free_enough = context.shared() ? !g.exclusively_held : g.untouched();
      if (!free_enough) continue;
      most_free_mib = std::max(most_free_mib, g.free_mib);
      if (context.GpuEligibleNow(g)) ++on_node;
    }
    if (on_node > fit.max_gpus_on_one_node ||
        (on_node == fit.max_gpus_on_one_node && on_node > 0 && group.first() < best_node)) {
      fit.max_gpus_on_one_node = on_node;
      best_node = group.first();
    }
  }
  fit.max_memory_gb_per_gpu = std::floor(GbFromMib(most_free_mib) * 10.0) / 10.0;
  const std::string type = RequestedTypeLabel(request);
  char buffer[256];
  if (fit.max_gpus_on_one_node > 0) {
    fit.suggestion = RequestShape(fit.max_gpus_on_one_node, request) + " fit now on " +
                     state.nodes()[best_node].node->name;
  } else if (most_free_mib > 0 && request.memory_gb > 0) {
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

// What keeps a request that is possible ever from fitting now (see
// Diagnosis::blocked_by): would it fit, as PossibleEver counts, on the
// healthy GPUs of schedulable nodes if no allocation of gpurm's held any
// of them (memory used by processes outside gpurm still counted)?
std::string BlockedBy(const SchedulingContext& context, const ClusterState& state,
                      const std::vector<Group>& groups) {
  GroupCapacity capacity;  // GPUs free once released.
  bool outside_use = false;
  for (const Group& group : groups) {
    const NodeAvailability& node = state.nodes()[group.first()];
    if (!node.host_capacity.CouldHold(context.host())) continue;
    int fits = 0;
    for (const GpuAvailability& g : node.gpus) {
      if (!context.GpuPossibleEver(g)) continue;
      outside_use = outside_use || g.outside_use();
      if (!node.node->schedulable || !g.gpu->healthy) continue;
      const int64_t need = context.shared() ? context.SliceMib(*g.gpu) : context.need_mib();
      fits += g.usable_mib >= need ? 1 : 0;
    }
    capacity.emplace_back(fits, group.size);
  }
  if (CapacityTakes(context.request(), capacity)) return "gpurm_allocations";
  return outside_use ? "outside_processes" : "unavailable";
}

void Diagnose(const SchedulingContext& context, const ClusterState& state,
              const std::vector<Group>& groups, bool node_found, Diagnosis& diagnosis) {
  const GpuRequest& request = context.request();
  diagnosis.possible_ever = node_found && PossibleEver(context, state, groups);
  const int needed = request.gpu_count;
  struct GroupReason {
    FitCode code;
    std::string reason;
  };
  std::vector<GroupReason> group_reasons(groups.size());
  std::vector<std::pair<size_t, size_t>> node_to_group;  // (node, group) for listed nodes.
  for (size_t k = 0; k < groups.size(); ++k) {
    const NodeAvailability& node = state.nodes()[groups[k].first()];
    NodeEvaluation evaluation;
    std::string reason;
    FitCode code = RunFilters(context, node, needed, evaluation, &reason);
    if (code == FitCode::kFits) {
      // Fits alone but was not enough (a gang needs more nodes like it).
      code = FitCode::kNotNow;
      reason = std::to_string(evaluation.eligible.size()) + " of " + std::to_string(needed) +
               " needed GPUs available";
    }
    group_reasons[k] = {code, std::move(reason)};
    for (size_t m = 0; m < groups[k].size; ++m) node_to_group.emplace_back(groups[k].members[m], k);
  }
  std::sort(node_to_group.begin(), node_to_group.end());
  diagnosis.reasons.reserve(node_to_group.size());
  for (const auto& [node, group] : node_to_group) {
    const GroupReason& why = group_reasons[group];
    diagnosis.reasons.push_back({state.nodes()[node].node->name, why.reason, why.code});
  }
  diagnosis.would_fit = ComputeWouldFit(context, state, groups);
  diagnosis.code = diagnosis.possible_ever ? FitCode::kNotNow : FitCode::kNever;
  // Not decidable rather than impossible when some node could not tell.
  if (!diagnosis.possible_ever &&
      std::any_of(diagnosis.reasons.begin(), diagnosis.reasons.end(),
                  [](const NodeReason& r) { return r.code == FitCode::kError; })) {
    diagnosis.code = FitCode::kError;
  }
  if (!node_found) {
    diagnosis.message = "no node named \"" + request.node_name + "\"";
  } else if (!diagnosis.possible_ever) {
    diagnosis.message = "no " + std::string(request.node_name.empty() ? "" : "single node has ") +
                        RequestShape(request.gpu_count, request) + " exists in this cluster";
  } else {
    diagnosis.blocked_by = BlockedBy(context, state, groups);
    const char* why = diagnosis.blocked_by == "gpurm_allocations"
                          ? "; it fits once gpurm's allocations are released"
                      : diagnosis.blocked_by == "outside_processes"
                          ? "; it is blocked by processes outside gpurm "
                            "(releasing gpurm's allocations is not enough)"
                          : "; it fits once unhealthy GPUs recover or "
                            "nodes become schedulable again";
    diagnosis.message =
        RequestShape(request.gpu_count, request, " free") + " cannot be placed now" +
        (request.distributed_training ? " (not even across nodes)" : " on one node") + why;
  }
}

// Candidate order: higher score, then higher tie_break, then the lower
// node index.
bool Before(const NodeCandidate& a, size_t a_node, const NodeCandidate& b, size_t b_node) {
  if (a.score != b.score) return a.score > b.score;
  if (a.tie_break != b.tie_break) return a.tie_break > b.tie_break;
  return a_node < b_node;
}

// The best single node: classes that may fit are visited in order of the
// policy's score bound, and the search stops once no remaining class can
// beat the best candidate found (ties go to the lowest node index).
std::vector<Chosen> ChooseBestNode(const SchedulingContext& context, const PlacementPolicy& policy,
                                   const ClusterState& state, const std::vector<Group>& groups,
                                   int per_node) {
  struct Entry {
    double bound;
    size_t first;
    size_t group;
  };
  // Heap order: highest bound on top, then the lowest node index.
  auto lower = [](const Entry& a, const Entry& b) {
    if (a.bound != b.bound) return a.bound < b.bound;
    return a.first > b.first;
  };
  std::vector<Entry> heap;
  heap.reserve(groups.size());
  for (size_t k = 0; k < groups.size(); ++k) {
    if (!context.MayFit(*groups[k].summary, per_node)) continue;
    const std::optional<double> bound =
        policy.ScoreUpperBound(context, *groups[k].summary, per_node);
    heap.push_back({bound.value_or(std::numeric_limits<double>::infinity()), groups[k].first(), k});
  }
  std::make_heap(heap.begin(), heap.end(), lower);
  // Bounds and scores come from different arithmetic: stop only when a
  // bound is clearly below the best score.
  constexpr double kSlack = 1e-7;
  std::optional<Chosen> best;
  NodeEvaluation evaluation;
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), lower);
    const Entry entry = heap.back();
    heap.pop_back();
    if (best && entry.bound < best->score - kSlack) break;
    const NodeAvailability& node = state.nodes()[entry.first];
    if (RunFilters(context, node, per_node, evaluation, nullptr) != FitCode::kFits) continue;
    NodeCandidate candidate = policy.Evaluate(context, node, evaluation.eligible, per_node);
    if (!best || Before(candidate, entry.first, best->candidate, best->node)) {
      best = Chosen{entry.first, candidate.gpus, candidate.score, candidate};
    }
  }
  std::vector<Chosen> chosen;
  if (best) chosen.push_back(std::move(*best));
  return chosen;
}

// Picks `nodes` nodes able to take `per_node` GPUs each: best scores first,
// lowest node index among equals (or seeded uniform for the random policy).
std::vector<Chosen> ChooseNodes(const SchedulingContext& context, const PlacementPolicy& policy,
                                const ClusterState& state, const std::vector<Group>& groups,
                                int per_node, size_t nodes) {
  if (nodes == 1 && !policy.uniform_random()) {
    return ChooseBestNode(context, policy, state, groups, per_node);
  }
  std::vector<Scored> feasible;
  size_t feasible_nodes = 0;
  NodeEvaluation evaluation;
  for (size_t k = 0; k < groups.size(); ++k) {
    if (!context.MayFit(*groups[k].summary, per_node)) continue;
    const NodeAvailability& node = state.nodes()[groups[k].first()];
    if (RunFilters(context, node, per_node, evaluation, nullptr) != FitCode::kFits) continue;
    feasible_nodes += groups[k].size;
    if (policy.uniform_random()) {
      feasible.push_back({k, {}});
      continue;
    }
    feasible.push_back({k, policy.Evaluate(context, node, evaluation.eligible, per_node)});
  }
  std::vector<Chosen> chosen;
  if (feasible_nodes < nodes || feasible.empty()) return chosen;

  if (policy.uniform_random()) {
    // Draw `nodes` distinct nodes uniformly from the feasible ones, counted
    // in node index order so the draw does not depend on how the classes
    // happen to be stored.
    std::sort(feasible.begin(), feasible.end(), [&](const Scored& a, const Scored& b) {
      return groups[a.group].first() < groups[b.group].first();
    });
    uint64_t seed = MixSeed(context.options().random_seed);
    std::vector<std::pair<size_t, size_t>> picks;  // (group, member).
    if (nodes == 1) {
      size_t r = seed % feasible_nodes;
      for (const Scored& s : feasible) {
        if (r < groups[s.group].size) {
          picks.emplace_back(s.group, r);
          break;
        }
        r -= groups[s.group].size;
      }
    } else {
      std::vector<std::pair<size_t, size_t>> pool;
      for (const Scored& s : feasible) {
        for (size_t m = 0; m < groups[s.group].size; ++m) pool.emplace_back(s.group, m);
      }
      for (size_t i = 0; i < nodes; ++i) {
        seed = MixSeed(seed);
        std::swap(pool[i], pool[i + seed % (pool.size() - i)]);
        picks.push_back(pool[i]);
      }
    }
    for (const auto& [group, member] : picks) {
      const size_t n = groups[group].members[member];
      const NodeAvailability& node = state.nodes()[n];
      RunFilters(context, node, per_node, evaluation, nullptr);
      NodeCandidate candidate = policy.Evaluate(context, node, evaluation.eligible, per_node);
      chosen.push_back({n, candidate.gpus, candidate.score, candidate});
    }
  } else {
    std::stable_sort(feasible.begin(), feasible.end(), [&](const Scored& a, const Scored& b) {
      return Before(a.candidate, groups[a.group].first(), b.candidate, groups[b.group].first());
    });
    for (const Scored& s : feasible) {
      for (size_t m = 0; m < groups[s.group].size && chosen.size() < nodes; ++m) {
        chosen.push_back(
            {groups[s.group].members[m], s.candidate.gpus, s.candidate.score, s.candidate});
      }
      if (chosen.size() == nodes) break;
    }
  }
  std::sort(chosen.begin(), chosen.end(),
            [](const Chosen& a, const Chosen& b) { return a.node < b.node; });
  return chosen;
}

// One node, or for distributed training the fewest nodes with an equal
// share each (all or nothing).
std::vector<Chosen> ChooseAll(const SchedulingContext& context, const PlacementPolicy& policy,
                              const ClusterState& state, const std::vector<Group>& groups) {
  const GpuRequest& request = context.request();
  const int count = request.gpu_count;
  std::vector<Chosen> chosen = ChooseNodes(context, policy, state, groups, count, 1);
  if (chosen.empty() && request.distributed_training && count > 1 && request.node_name.empty()) {
    for (int node_count = 2; node_count <= count && chosen.empty(); ++node_count) {
      if (count % node_count != 0) continue;
      chosen = ChooseNodes(context, policy, state, groups, count / node_count,
                           static_cast<size_t>(node_count));
    }
  }
  return chosen;
}

}  // namespace

Status ValidateRequest(const GpuRequest& request) {
  if (request.gpu_count < 1) return InvalidArgument("must be >= 1", "gpu_count");
  if (request.gpu_count > kMaxGpuCount) {
    return InvalidArgument("must be <= " + std::to_string(kMaxGpuCount), "gpu_count");
  }
  if (!std::isfinite(request.memory_gb) || request.memory_gb < 0) {
    return InvalidArgument("must be a number >= 0 (GB per GPU)", "memory_gb");
  }
  if (request.memory_gb > 1e6) return InvalidArgument("must be <= 1000000 GB", "memory_gb");
  if (!std::isfinite(request.gpu_memory_fraction) || request.gpu_memory_fraction <= 0 ||
      request.gpu_memory_fraction > 1) {
    return InvalidArgument("must be in (0, 1]", "gpu_memory_fraction");
  }
  if (request.gpu_milli < 0 || request.gpu_milli > kMilliPerGpu) {
    return InvalidArgument("must be between 0 and 1000 (thousandths of one GPU)", "gpu_milli");
  }
  const bool share = request.gpu_milli > 0 && request.gpu_milli < kMilliPerGpu;
  if (share && request.gpu_count != 1) {
    return InvalidArgument("a share of a GPU (gpu_milli < 1000) needs gpu_count 1", "gpu_milli");
  }
  if (request.shared && request.memory_gb <= 0 && !share) {
    return InvalidArgument(
        "a shared request must ask for memory_gb > 0 (the slice it reserves) or gpu_milli",
        "shared");
  }
  if (NamesMigDevices(request.gpu_type)) {
    if (request.gpu_count != 1) {
      return InvalidArgument(
          "a MIG device is granted alone (a CUDA process uses one MIG device): ask for "
          "gpu_count 1 with a MIG gpu_type",
          "gpu_count");
    }
    if (request.shared || share) {
      return InvalidArgument("MIG devices are granted whole, never as shared slices", "shared");
    }
  }
  if (request.lease_ttl_s < 0) return InvalidArgument("must be >= 0", "lease_ttl_seconds");
  if (!request.policy.empty() && FindPolicy(request.policy) == nullptr) {
    return InvalidArgument(
        "unknown policy \"" + request.policy + "\" (known: " + PlacementPolicyNameList() + ")",
        "policy");
  }
  return Status::Ok();
}

namespace {

char LowerChar(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlnumChar(char c) { return IsDigit(c) || (LowerChar(c) >= 'a' && LowerChar(c) <= 'z'); }

std::string Trimmed(std::string_view text, std::string_view junk) {
  const size_t begin = text.find_first_not_of(junk);
  if (begin == std::string_view::npos) return "";
  const size_t end = text.find_last_not_of(junk);
  return std::string(text.substr(begin, end - begin + 1));
}

// Reads digits at `at`; false when there are none.
bool Digits(std::string_view text, size_t* at) {
  const size_t start = *at;
  while (*at < text.size() && IsDigit(text[*at])) ++*at;
  return *at > start;
}

// "3g.40gb", "1c.3g.40gb", "1g.10gb+me" (lower case).
bool IsMigProfile(std::string_view lower) {
  size_t at = 0;
  if (!Digits(lower, &at)) return false;
  if (lower.substr(at, 2) == "c.") {
    at += 2;
    if (!Digits(lower, &at)) return false;
  }
  if (lower.substr(at, 2) != "g.") return false;
  at += 2;
  if (!Digits(lower, &at) || lower.substr(at, 2) != "gb") return false;
  at += 2;
  return at == lower.size() || lower[at] == '+';
}

// A gpu_type alternative that names MIG devices: "MIG", "H100 MIG",
// "A100 MIG 3g.40gb", "mig-3g.40gb", "nvidia.com/mig-3g.40gb",
// "NVIDIA-A100-SXM4-80GB-MIG-3g.40gb" or a bare profile "3g.40gb".
struct MigTypeName {
  std::string family;   // As written; empty = any GPU model.
  std::string profile;  // Lower case; empty = any profile.
};

std::optional<MigTypeName> ReadMigTypeName(std::string_view part) {
  std::string lower;
  for (char c : part) lower += LowerChar(c);
  constexpr std::string_view kResourcePrefix = "nvidia.com/";
  size_t offset = 0;
  if (lower.rfind(kResourcePrefix, 0) == 0) offset = kResourcePrefix.size();
  const std::string_view lower_view = lower;
  for (size_t i = offset; i + 3 <= lower.size(); ++i) {
    if (lower.compare(i, 3, "mig") != 0) continue;
    if (i > offset && IsAlnumChar(lower[i - 1])) continue;
    if (i + 3 < lower.size() && IsAlnumChar(lower[i + 3])) continue;
    MigTypeName name;
    name.family = Trimmed(part.substr(offset, i - offset), " -_");
    name.profile = Trimmed(lower_view.substr(i + 3), " -_");
    return name;
  }
  const std::string bare = Trimmed(lower_view.substr(offset), " ");
  if (IsMigProfile(bare)) return MigTypeName{"", bare};
  return std::nullopt;
}

// Calls `visit` with each non-empty '|' alternative of gpu_type, trimmed,
// until it returns true.
template <typename Visit>
bool AnyAlternative(std::string_view gpu_type, Visit visit) {
  size_t start = 0;
  while (start <= gpu_type.size()) {
    size_t end = gpu_type.find('|', start);
    if (end == std::string_view::npos) end = gpu_type.size();
    const std::string part = Trimmed(gpu_type.substr(start, end - start), " ");
    if (!part.empty() && visit(part)) return true;
    start = end + 1;
  }
  return false;
}

}  // namespace

bool NamesMigDevices(std::string_view gpu_type) {
  return AnyAlternative(gpu_type,
                        [](const std::string& part) { return ReadMigTypeName(part).has_value(); });
}

bool MigDeviceMayServe(const GpuRequest& request) {
  const bool share = request.gpu_milli > 0 && request.gpu_milli < kMilliPerGpu;
  if (request.gpu_count != 1 || request.shared || share) return false;
  return request.memory_gb > 0 || NamesMigDevices(request.gpu_type);
}

bool GpuTypeMatches(const GpuRequest& request, const Gpu& gpu) {
  if (request.gpu_type.empty()) return true;
  const std::string have =
      gpu.model.known() ? gpu.model.canonical : CanonicalGpuType(gpu.model.raw_name);
  std::string profile;
  for (char c : gpu.mig_profile) profile += LowerChar(c);
  return AnyAlternative(request.gpu_type, [&](const std::string& part) {
    if (const std::optional<MigTypeName> mig = ReadMigTypeName(part)) {
      if (!gpu.is_mig_device()) return false;
      if (!mig->profile.empty() && mig->profile != profile) return false;
      return mig->family.empty() || CanonicalGpuType(mig->family) == have;
    }
    return GpuTypePattern(part).Matches(gpu.model, GbFromMib(gpu.memory_total_mib));
  });
}

Scheduler::Scheduler(std::string_view default_policy)
    : default_policy_(FindPolicy(default_policy) ? FindPolicy(default_policy)
                                                 : FindPolicy(kDefaultPlacementPolicy)) {}

const PlacementPolicy& Scheduler::PolicyFor(const GpuRequest& request) const {
  const PlacementPolicy* policy = request.policy.empty() ? nullptr : FindPolicy(request.policy);
  return policy != nullptr ? *policy : *default_policy_;
}

ScheduleResult Scheduler::Schedule(const GpuRequest& request, const ClusterState& state,
                                   const ScheduleOptions& options) const {
  const PlacementPolicy& policy = PolicyFor(request);
  const SchedulingContext context(request, options, state);
  ScheduleResult result;

  std::optional<uint32_t> named;
  uint32_t named_storage = 0;
  bool node_found = true;
  if (!request.node_name.empty()) {
    std::optional<size_t> index = state.FindNode(request.node_name);
    node_found = index.has_value();
    if (index) {
      named = static_cast<uint32_t>(*index);
      named_storage = *named;
    }
  }
  const std::vector<Group> groups =
      node_found ? GroupsFor(state, named, &named_storage) : std::vector<Group>();

  std::vector<Chosen> chosen;
  if (!context.shared() && state.outside_use_gpu_count() > 0) {
    // Leave GPUs that others work on alone whenever the request fits without them.
    const SchedulingContext strict(request, options, state, /*avoid_outside_use=*/true);
    chosen = ChooseAll(strict, policy, state, groups);
  }
  if (chosen.empty()) chosen = ChooseAll(context, policy, state, groups);

  if (!chosen.empty()) {
    Placement placement;
    placement.policy = std::string(policy.name());
    placement.host_per_node = options.host;
    double score_sum = 0;
    for (const Chosen& c : chosen) {
      for (uint8_t i : c.gpus) {
        placement.outside_use_gpus += state.nodes()[c.node].gpus[i].outside_use() ? 1 : 0;
      }
      AppendGrants(context, state.nodes()[c.node], c.gpus, placement.grants);
      placement.node_indexes.push_back(c.node);
      score_sum += c.score;
    }
    placement.score = static_cast<int>(
        std::lround(std::clamp(score_sum / static_cast<double>(chosen.size()), 0.0, 100.0)));
    result.placement = std::move(placement);
    Diagnosis& diagnosis = result.diagnosis;
    diagnosis.possible_now = true;
    diagnosis.possible_ever = true;
    diagnosis.code = FitCode::kFits;
    diagnosis.message = "fits now";
    return result;
  }

  Diagnosis& diagnosis = result.diagnosis;
  if (!options.diagnose) {
    diagnosis.possible_ever = node_found;
    diagnosis.code = FitCode::kNotNow;
    diagnosis.message = "does not fit now";
    return result;
  }
  Diagnose(context, state, groups, node_found, diagnosis);
  return result;
}

std::vector<GpuGrant> Scheduler::HoldFor(const GpuRequest& request, const ClusterState& state,
                                         const ScheduleOptions& options) const {
  const SchedulingContext context(request, options, state);
  const HostResources& want = context.host();
  struct Candidate {
    uint32_t class_id;
    int possible;                // GPUs that could ever take it.
    std::vector<uint8_t> holds;  // Positions worth holding, best first.
  };
  std::vector<Candidate> candidates;
  int most_possible = 0;
  for (uint32_t id : state.live_classes()) {
    const NodeAvailability& node = state.nodes()[state.class_members(id).front()];
    if (!node.node->schedulable) continue;
    if (!node.host_capacity.CouldHold(want)) continue;
    Candidate candidate{id, 0, {}};
    for (size_t i = 0; i < node.gpus.size() && i < kMaxGpusPerNode; ++i) {
      const GpuAvailability& g = node.gpus[i];
      if (!context.GpuPossibleEver(g)) continue;
      ++candidate.possible;
      const bool holdable =
          context.shared() ? g.gpu->healthy && !g.exclusively_held : context.GpuEligibleNow(g);
      if (holdable) candidate.holds.push_back(static_cast<uint8_t>(i));
    }
    if (candidate.possible == 0) continue;
    std::stable_sort(candidate.holds.begin(), candidate.holds.end(), [&](uint8_t a, uint8_t b) {
      return node.gpus[a].free_milli() > node.gpus[b].free_milli();
    });
    most_possible = std::max(most_possible, candidate.possible);
    candidates.push_back(std::move(candidate));
  }
  // The fewest nodes that could ever host it, with an equal share each.
  const int count = std::max(1, request.gpu_count);
  int per_node = 0;
  size_t nodes = 0;
  for (int node_count = 1; node_count <= count; ++node_count) {
    if (count % node_count != 0 || count / node_count > most_possible) continue;
    if (node_count > 1 && (!request.distributed_training || !request.node_name.empty())) break;
    const int per = count / node_count;
    size_t able = 0;
    for (const Candidate& c : candidates) {
      if (c.possible >= per) able += state.class_members(c.class_id).size();
    }
    if (able >= static_cast<size_t>(node_count)) {
      per_node = per;
      nodes = static_cast<size_t>(node_count);
      break;
    }
  }
  std::vector<GpuGrant> holds;
  if (nodes == 0) return holds;
  std::vector<const Candidate*> order;
  for (const Candidate& c : candidates) {
    if (c.possible >= per_node) order.push_back(&c);
  }
  std::stable_sort(order.begin(), order.end(), [&](const Candidate* a, const Candidate* b) {
    const size_t ha = std::min(a->holds.size(), static_cast<size_t>(per_node));
    const size_t hb = std::min(b->holds.size(), static_cast<size_t>(per_node));
    if (ha != hb) return ha > hb;
    return state.class_members(a->class_id).front() < state.class_members(b->class_id).front();
  });
  size_t taken = 0;
  for (const Candidate* c : order) {
    for (uint32_t n : state.class_members(c->class_id)) {
      if (!request.node_name.empty() && state.nodes()[n].node->name != request.node_name) continue;
      if (taken == nodes) break;
      ++taken;
      const NodeAvailability& node = state.nodes()[n];
      for (size_t k = 0; k < c->holds.size() && k < static_cast<size_t>(per_node); ++k) {
        const GpuAvailability& g = node.gpus[c->holds[k]];
        if (context.shared() && g.free_mib <= 0) continue;
        holds.push_back(
            GpuGrant{node.node->name, g.gpu->index, g.gpu->uuid, g.free_mib, !context.shared()});
      }
    }
    if (taken == nodes) break;
  }
  return holds;
}

Status Scheduler::Reserve(const Placement& placement, ClusterState& state) const {
  const std::vector<const ReservePlugin*>& plugins = DefaultReservePlugins();
  for (size_t i = 0; i < plugins.size(); ++i) {
    Status status = plugins[i]->Reserve(placement, state);
    if (!status.ok()) {
      while (i-- > 0) plugins[i]->Unreserve(placement, state);
      return status;
    }
  }
  return Status::Ok();
}

void Scheduler::Unreserve(const Placement& placement, ClusterState& state) const {
  const std::vector<const ReservePlugin*>& plugins = DefaultReservePlugins();
  for (auto it = plugins.rbegin(); it != plugins.rend(); ++it) (*it)->Unreserve(placement, state);
}

}  // namespace gpurm
