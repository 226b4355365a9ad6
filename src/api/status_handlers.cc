#include "api/status_handlers.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/gpu_views.h"
#include "api/json_codec.h"
#include "api/query_params.h"
#include "api/responses.h"
#include "api/state_cache.h"
#include "api/utilization_summary.h"
#include "core/clock.h"

namespace gpurm {
namespace {

using nlohmann::json;

// One row of /status's available_nodes and /nodes: a node's GPUs of one type.
struct NodeTypeGroup {
  const NodeAvailability* node = nullptr;
  std::string type;
  std::vector<const GpuAvailability*> gpus;
};

std::vector<NodeTypeGroup> GroupByNodeAndType(const ClusterState& state) {
  std::vector<NodeTypeGroup> groups;
  for (const NodeAvailability& node : state.nodes()) {
    std::map<std::string, size_t> index;
    for (const GpuAvailability& g : node.gpus) {
      // A GPU in MIG mode is not offered; its MIG devices are, by type.
      if (!g.gpu->allocatable_unit()) continue;
      const std::string type = GpuTypeLabel(*g.gpu);
      auto [it, inserted] = index.emplace(type, groups.size());
      if (inserted) groups.push_back(NodeTypeGroup{&node, type, {}});
      groups[it->second].gpus.push_back(&g);
    }
  }
  return groups;
}

bool Offerable(const NodeAvailability& node, const GpuAvailability& g) {
  return node.node->schedulable && g.gpu->healthy && g.gpu->allocatable_unit() && g.untouched();
}

// A GPU already shared by slices that still fits a shared slice of
// `slice_mib` (memory and compute share), as the scheduler would place one.
bool SliceFits(const NodeAvailability& node, const GpuAvailability& g, int64_t slice_mib) {
  return slice_mib > 0 && node.node->schedulable && g.gpu->healthy && !g.exclusively_held &&
         g.shared_holders > 0 && g.free_mib >= slice_mib &&
         SliceMilli(slice_mib, g.gpu->memory_total_mib) <= g.free_milli();
}

// Over the GPUs that report utilization; null when none does (MIG devices).
json MeanUtilization(const std::vector<const GpuAvailability*>& gpus) {
  double sum = 0;
  int reporting = 0;
  for (const GpuAvailability* g : gpus) {
    if (!g->gpu->utilization_available) continue;
    sum += g->gpu->utilization;
    ++reporting;
  }
  if (reporting == 0) return gpus.empty() ? json(0.0) : json(nullptr);
  return std::round(sum / static_cast<double>(reporting) * 1000.0) / 1000.0;
}

double MemoryPerGpuGb(const std::vector<const GpuAvailability*>& gpus) {
  int64_t most = 0;
  for (const GpuAvailability* g : gpus) most = std::max(most, g->gpu->memory_total_mib);
  return RoundGb(most);
}

// /health's answer, from the inventory's snapshot, notes and last error.
HttpResponse BuildHealth(const ApiContext& context) {
  GpuManager& manager = *context.manager;
  const Status ready = manager.Readiness();
  json notes = manager.inventory().Notes();
  if (!ready.ok()) {
    json body = ErrorJson(ready);
    body["status"] = "unavailable";
    body["ready"] = false;
    body["reason"] = ready.message();
    body["notes"] = std::move(notes);
    return JsonResponse(503, body);
  }
  auto snapshot = manager.inventory().Snapshot();
  const GpuCounts counts = CountGpus(*snapshot);
  json body{{"status", "ok"},
            {"ready", true},
            {"provider", manager.inventory().provider_name()},
            {"nodes", snapshot->nodes.size()},
            {"gpus", counts.gpus},
            {"mig_devices", counts.mig_devices},
            {"inventory_generation", snapshot->generation},
            {"inventory_taken_at", FormatIso8601(snapshot->taken_unix_ms)},
            {"notes", std::move(notes)}};
  const Status last_refresh = manager.inventory().LastError();
  if (!last_refresh.ok()) body["last_refresh_error"] = last_refresh.message();
  return JsonResponse(200, body);
}

// /health's answer with the Inventory::Changes() it was built from.
struct HealthAnswer {
  uint64_t inventory_changes = 0;  // Read before building.
  HttpResponse response;
};

// Answered on the server's I/O thread (Router::AddNonBlocking), so it reads
// only in-memory state and never blocks. The answer depends on the
// inventory alone (its snapshot, notes and last error), so it is rebuilt
// only when Inventory::Changes() moves.
HttpResponse Health(const ApiContext& context, StateCache<HealthAnswer>& cache) {
  const uint64_t changes = context.manager->inventory().Changes();
  std::shared_ptr<const HealthAnswer> answer = cache.Load();
  if (!answer || answer->inventory_changes != changes) {
    answer = std::make_shared<const HealthAnswer>(HealthAnswer{changes, BuildHealth(context)});
    cache.Store(answer);
  }
  return answer->response;
}

// /status's body serialised, split around the value of its "timestamp" (the
// time of the answer, so never cached), with the state it was built from.
struct StatusBody {
  StateKey key;      // KeyForBuilding(), read before building.
  std::string head;  // Up to and including the timestamp's opening quote.
  std::string tail;  // From its closing quote on.
};

// Builds /status's body from the manager's state now; `body` gets head and
// tail. The response's bytes are those of one json dump, so a cached answer
// is byte for byte what an uncached one would be.
Status BuildStatusBody(GpuManager& manager, StatusBody& body) {
  auto state = manager.CurrentState();
  if (!state.ok()) return state.status();
  int total_gpus = 0;
  int available_gpus = 0;
  int allocated_gpus = 0;
  // Counts are of what gpurm grants: whole GPUs and MIG devices, not GPUs in
  // MIG mode.
  int mig_devices = 0;
  for (const NodeAvailability& node : (*state)->nodes()) {
    for (const GpuAvailability& g : node.gpus) {
      if (g.gpu->is_mig_device()) ++mig_devices;
      if (!g.gpu->allocatable_unit()) continue;
      ++total_gpus;
      if (Offerable(node, g)) ++available_gpus;
      if (!g.untouched()) ++allocated_gpus;
    }
  }
  json available_nodes = json::array();
  for (const NodeTypeGroup& group : GroupByNodeAndType(**state)) {
    const int available = static_cast<int>(
        std::count_if(group.gpus.begin(), group.gpus.end(),
                      [&](const GpuAvailability* g) { return Offerable(*group.node, *g); }));
    if (available == 0) continue;
    available_nodes.push_back({{"node_name", group.node->node->name},
                               {"gpu_type", group.type},
                               {"available_gpus", available},
                               {"memory_per_gpu", MemoryPerGpuGb(group.gpus)},
                               {"utilization", MeanUtilization(group.gpus)}});
  }
  const json document{{"utilization", UtilizationSummaryJson(**state)},
                      {"available_nodes", std::move(available_nodes)},
                      {"total_nodes", (*state)->nodes().size()},
                      {"total_gpus", total_gpus},
                      {"available_gpus", available_gpus},
                      {"allocated_gpus", allocated_gpus},
                      {"mig_devices", mig_devices},
                      {"active_allocations", manager.ledger().CountActive()},
                      {"timestamp", ""}};
  std::string text = document.dump(-1, ' ', false, json::error_handler_t::replace);
  // Keys are serialised in order and "timestamp" is the last string-valued
  // top-level key (only numbers and the utilization object follow), so the
  // last match is the key, whatever the node names hold.
  constexpr std::string_view kTimestamp = R"("timestamp":")";
  const size_t at = text.rfind(kTimestamp);
  if (at == std::string::npos) return Internal("/status body without its timestamp");
  const size_t split = at + kTimestamp.size();
  body.tail = text.substr(split);
  text.resize(split);
  body.head = std::move(text);
  return Status::Ok();
}

// The answer with `body` (its head sent from it, uncopied), timestamped now.
HttpResponse StatusAnswer(const std::shared_ptr<const StatusBody>& body, const Clock& clock) {
  HttpResponse response;
  response.shared_prefix = std::shared_ptr<const std::string>(body, &body->head);
  response.body = FormatIso8601(clock.NowUnixMs()).append(body->tail);
  return response;
}

// The cached body, when it was built from the state now; non-blocking (the
// I/O thread's answer, Router::AddNonBlocking).
std::optional<HttpResponse> CachedStatus(const ApiContext& context,
                                         const StateCache<StatusBody>& cache) {
  const std::shared_ptr<const StatusBody> body =
      cache.LoadCurrent(CurrentStateKey(*context.manager));
  if (!body) return std::nullopt;
  return StatusAnswer(body, context.manager->clock());
}

// The cached body (as CachedStatus), else one built now and cached: the
// serialisation of ~100 KB at 1,000 nodes dominated the endpoint's time, yet
// the body changes only with the free state, the active allocations and the
// inventory snapshot. The key (KeyForBuilding) is read before anything is
// built and the new body stored under it, so a body may be newer than its
// key (then the next call rebuilds) but is never older than the state when
// its request arrived.
HttpResponse StatusEndpoint(const ApiContext& context, StateCache<StatusBody>& cache) {
  if (std::optional<HttpResponse> cached = CachedStatus(context, cache)) return std::move(*cached);
  GpuManager& manager = *context.manager;
  auto built = std::make_shared<StatusBody>();
  built->key = KeyForBuilding(manager);
  if (Status status = BuildStatusBody(manager, *built); !status.ok()) return ErrorResponse(status);
  std::shared_ptr<const StatusBody> body = std::move(built);
  cache.Store(body);
  return StatusAnswer(body, manager.clock());
}

// /nodes's body without a filter (no query), with the state it was built
// from; the filtered answers are built per request.
struct NodesBody {
  StateKey key;  // KeyForBuilding(), read before building.
  std::string json;
};

// The answer with `body`, sent from it uncopied.
HttpResponse NodesAnswer(const std::shared_ptr<const NodesBody>& body) {
  HttpResponse response;
  response.shared_prefix = std::shared_ptr<const std::string>(body, &body->json);
  return response;
}

HttpResponse BuildNodes(const ApiContext& context, const HttpRequest& request) {
  Result<std::optional<double>> min_memory = QueryNumber(request, "min_memory_gb");
  if (!min_memory.ok()) return ErrorResponse(min_memory.status());
  GpuRequest filter;
  if (auto it = request.query.find("gpu_type"); it != request.query.end()) {
    filter.gpu_type = it->second;
  }
  const int64_t min_mib = MibFromGb(min_memory->value_or(0));
  auto state = context.manager->CurrentState();
  if (!state.ok()) return ErrorResponse(state.status());
  json nodes = json::array();
  for (const NodeTypeGroup& group : GroupByNodeAndType(**state)) {
    if (!GpuTypeMatches(filter, *group.gpus.front()->gpu)) continue;
    int available = 0;
    int64_t max_free_mib = 0;
    json gpus = json::array();
    for (const GpuAvailability* g : group.gpus) {
      // With min_memory_gb, a shared GPU with that much free counts: a
      // request with shared: true fits there (as /validate says).
      if ((Offerable(*group.node, *g) && g->free_mib >= min_mib) ||
          SliceFits(*group.node, *g, min_mib)) {
        ++available;
      }
      if (!g->exclusively_held && g->gpu->healthy)
        max_free_mib = std::max(max_free_mib, g->free_mib);
      json temperature = g->gpu->temperature_c ? json(*g->gpu->temperature_c) : json();
      gpus.push_back({{"index", g->gpu->index},
                      {"uuid", g->gpu->uuid},
                      {"name", g->gpu->model.raw_name},
                      {"gpu_type", group.type},
                      {"memory_total_gb", RoundGb(g->gpu->memory_total_mib)},
                      {"memory_free_gb", RoundGb(g->free_mib)},
                      {"utilization", UtilizationJson(*g->gpu, g->gpu->utilization)},
                      {"temperature_c", std::move(temperature)},
                      {"healthy", g->gpu->healthy},
                      {"state", GpuStateName(*group.node, *g)}});
      if (g->gpu->is_mig_device()) {
        gpus.back()["mig_profile"] = g->gpu->mig_profile;
        gpus.back()["mig_parent_uuid"] = g->gpu->mig_parent_uuid;
      }
    }
    if (available == 0) continue;
    nodes.push_back({{"node_name", group.node->node->name},
                     {"gpu_type", group.type},
                     {"available_gpus", available},
                     {"memory_per_gpu", MemoryPerGpuGb(group.gpus)},
                     {"utilization", MeanUtilization(group.gpus)},
                     {"total_gpus", group.gpus.size()},
                     {"max_free_memory_gb", RoundGb(max_free_mib)},
                     {"gpus", std::move(gpus)}});
  }
  const size_t count = nodes.size();
  return JsonResponse(200, json{{"nodes", std::move(nodes)}, {"count", count}});
}

// The cached unfiltered answer, when the request has no query and the answer
// was built from the state now; non-blocking.
std::optional<HttpResponse> CachedNodes(const ApiContext& context, const HttpRequest& request,
                                        const StateCache<NodesBody>& cache) {
  if (!request.query.empty()) return std::nullopt;
  const std::shared_ptr<const NodesBody> body =
      cache.LoadCurrent(CurrentStateKey(*context.manager));
  if (!body) return std::nullopt;
  return NodesAnswer(body);
}

// As CachedNodes, else built now (and cached when unfiltered and a success),
// under the same rule as StatusEndpoint.
HttpResponse Nodes(const ApiContext& context, const HttpRequest& request,
                   StateCache<NodesBody>& cache) {
  if (!request.query.empty()) return BuildNodes(context, request);
  if (std::optional<HttpResponse> cached = CachedNodes(context, request, cache)) {
    return std::move(*cached);
  }
  const StateKey key = KeyForBuilding(*context.manager);
  HttpResponse response = BuildNodes(context, request);
  if (response.status != 200 || key.inventory_generation == 0) return response;
  auto body = std::make_shared<const NodesBody>(NodesBody{key, std::move(response.body)});
  cache.Store(body);
  return NodesAnswer(body);
}

}  // namespace

void RegisterStatusRoutes(const ApiContext& context, Router& router) {
  const ApiContext* ctx = &context;
  // /health reads in-memory state only: always answered on the I/O thread,
  // never queued behind the workers (liveness must answer while they are
  // busy). /status and /nodes are answered there from their caches.
  auto health_cache = std::make_shared<StateCache<HealthAnswer>>();
  router.AddNonBlocking(
      "GET", "/api/v1/gpu/health", Access::kPublic,
      [ctx, health_cache](const HttpRequest&) -> std::optional<HttpResponse> {
        return Health(*ctx, *health_cache);
      },
      [ctx, health_cache](const HttpRequest&) { return Health(*ctx, *health_cache); });
  auto status_cache = std::make_shared<StateCache<StatusBody>>();
  router.AddNonBlocking(
      "GET", "/api/v1/gpu/status", Access::kViewer,
      [ctx, status_cache](const HttpRequest&) { return CachedStatus(*ctx, *status_cache); },
      [ctx, status_cache](const HttpRequest&) { return StatusEndpoint(*ctx, *status_cache); });
  auto nodes_cache = std::make_shared<StateCache<NodesBody>>();
  router.AddNonBlocking(
      "GET", "/api/v1/gpu/nodes", Access::kViewer,
      [ctx, nodes_cache](const HttpRequest& request) {
        return CachedNodes(*ctx, request, *nodes_cache);
      },
      [ctx, nodes_cache](const HttpRequest& request) {
        return Nodes(*ctx, request, *nodes_cache);
      });
}

}  // namespace gpurm
