#include "api/monitoring_handlers.h"

#include <pwd.h>
#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
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
#include "api/utilization_summary.h"
#include "core/clock.h"

namespace gpurm {
namespace {

using nlohmann::json;

// Active allocations' grants by GPU UUID, for showing who holds each GPU.
std::map<std::string, json> HoldersByGpu(const GpuManager& manager) {
  AllocationFilter filter;
  filter.limit = std::numeric_limits<int>::max();
  std::map<std::string, json> holders;
  for (const Allocation& allocation : manager.ledger().List(filter)) {
    for (const GpuGrant& grant : allocation.grants) {
      json& list = holders[grant.gpu_uuid];
      if (list.is_null()) list = json::array();
      list.push_back({{"allocation_id", allocation.id},
                      {"owner", allocation.owner},
                      {"memory_gb", RoundGb(grant.memory_mib)},
                      {"exclusive", grant.exclusive}});
    }
  }
  return holders;
}

// The user name of a uid ("1000" when it has none; "" when unknown).
std::string UserName(int64_t uid) {
  if (uid < 0) return "";
  struct passwd entry;
  struct passwd* found = nullptr;
  std::vector<char> buffer(4096);
  if (::getpwuid_r(static_cast<uid_t>(uid), &entry, buffer.data(), buffer.size(), &found) == 0 &&
      found != nullptr) {
    return found->pw_name;
  }
  return std::to_string(uid);
}

// A GPU's processes: as the driver reports them, with what accounting found
// out about each (allocation, class) when `account` has them.
json ProcessesJson(const Gpu& gpu, const GpuAccount* account) {
  json processes = json::array();
  for (const GpuProcess& process : gpu.processes) {
    json entry{{"pid", process.pid}, {"memory_used_gb", RoundGb(process.memory_used_mib)}};
    const ProcessAccount* accounted = nullptr;
    if (account != nullptr) {
      for (const ProcessAccount& p : account->processes) {
        if (p.pid == process.pid) accounted = &p;
      }
    }
    if (accounted != nullptr) {
      entry["user"] = UserName(accounted->uid);
      entry["command"] = accounted->command;
      entry["allocation_id"] =
          accounted->allocation_id.empty() ? json() : json(accounted->allocation_id);
      entry["owner"] = accounted->owner.empty() ? json() : json(accounted->owner);
      entry["class"] = ProcessClassName(accounted->process_class);
      entry["reason"] = accounted->reason;
    } else {
      entry["user"] = "";
      entry["command"] = "";
      entry["allocation_id"] = json();
      entry["owner"] = json();
      entry["class"] = ProcessClassName(ProcessClass::kUnknown);
      entry["reason"] = "not accounted yet (the next sampling pass maps it)";
    }
    processes.push_back(std::move(entry));
  }
  return processes;
}

// Per allocation with processes on the GPU: memory used vs granted there.
json AllocationUsageJson(const GpuAccount* account) {
  json usage = json::array();
  if (account == nullptr) return usage;
  for (const GpuAccount::AllocationUse& use : account->allocations) {
    usage.push_back({{"allocation_id", use.allocation_id},
                     {"owner", use.owner},
                     {"used_gb", RoundGb(use.used_mib)},
                     {"granted_gb", RoundGb(use.granted_mib)},
                     {"over_grant", use.granted_mib > 0 && use.used_mib > use.granted_mib}});
  }
  return usage;
}

HttpResponse Monitoring(const ApiContext& context, const HttpRequest& request) {
  Result<std::optional<double>> window = QueryNumber(request, "window");
  if (!window.ok()) return ErrorResponse(window.status());
  Result<std::optional<double>> since = QueryNumber(request, "since");
  if (!since.ok()) return ErrorResponse(since.status());
  GpuManager& manager = *context.manager;
  const int64_t now = manager.clock().NowUnixMs();
  int64_t since_ms = now - static_cast<int64_t>(window->value_or(3600) * 1000);
  if (since->has_value()) since_ms = static_cast<int64_t>(**since * 1000);  // Unix seconds.
  // The same snapshot the scheduler would use, with what is held on it.
  auto state = manager.CurrentState();
  if (!state.ok()) return ErrorResponse(state.status());
  const InventorySnapshot& snapshot = (*state)->snapshot();
  std::map<std::string, json> holders = HoldersByGpu(manager);
  const std::shared_ptr<const ProcessAccountBook::Entry> accounts =
      context.process_accounts ? context.process_accounts->Latest() : nullptr;
  json nodes = json::array();
  for (const NodeAvailability& node : (*state)->nodes()) {
    json gpus = json::array();
    // MIG devices are listed under their GPU ("mig_devices"); one whose GPU
    // is not in the inventory (Kubernetes' MIG resources) stands alone.
    std::map<std::string, size_t> position;  // Physical GPU uuid -> index in gpus.
    for (const GpuAvailability& g : node.gpus) {
      const Gpu& gpu = *g.gpu;
      json history = json::array();
      for (const GpuSample& sample : manager.inventory().History(gpu.uuid, since_ms)) {
        history.push_back(
            {{"timestamp", FormatIso8601(sample.unix_ms)},
             {"utilization", sample.utilization_available ? json(sample.utilization) : json()},
             {"memory_used_gb", RoundGb(sample.memory_used_mib)},
             {"temperature_c", OptionalNumberJson(sample.temperature_c)},
             {"power_w", OptionalNumberJson(sample.power_w)}});
      }
      const GpuAccount* account = accounts ? accounts->Find(gpu.uuid) : nullptr;
      auto held = holders.find(gpu.uuid);
      json entry{{"index", gpu.index},
                 {"uuid", gpu.uuid},
                 {"gpu_type", GpuTypeLabel(gpu)},
                 {"name", gpu.model.raw_name},
                 {"state", GpuStateName(node, g)},
                 {"utilization", UtilizationJson(gpu, gpu.utilization)},
                 {"memory_utilization", UtilizationJson(gpu, gpu.memory_utilization)},
                 {"utilization_available", gpu.utilization_available},
                 {"memory_used_gb", RoundGb(gpu.memory_used_mib)},
                 {"memory_reserved_gb", RoundGb(ReservedMib(g))},
                 {"memory_total_gb", RoundGb(gpu.memory_total_mib)},
                 {"temperature_c", OptionalNumberJson(gpu.temperature_c)},
                 {"power_w", OptionalNumberJson(gpu.power_w)},
                 {"power_limit_w", OptionalNumberJson(gpu.power_limit_w)},
                 {"healthy", gpu.healthy},
                 {"health_reason", gpu.health_reason},
                 {"processes", ProcessesJson(gpu, account)},
                 {"foreign_processes", account ? account->foreign_processes : 0},
                 {"allocation_usage", AllocationUsageJson(account)},
                 {"allocations", held == holders.end() ? json::array() : held->second},
                 {"history", std::move(history)}};
      if (gpu.is_mig_device()) {
        entry["mig_profile"] = gpu.mig_profile;
        entry["mig_parent_uuid"] = gpu.mig_parent_uuid;
        if (auto parent = position.find(gpu.mig_parent_uuid); parent != position.end()) {
          gpus[parent->second]["mig_devices"].push_back(std::move(entry));
          continue;
        }
      } else {
        entry["mig_mode"] = gpu.mig_enabled;
        entry["mig_devices"] = json::array();
        position[gpu.uuid] = gpus.size();
      }
      gpus.push_back(std::move(entry));
    }
    json node_entry{
        {"node_name", node.node->name}, {"lost", node.node->lost()}, {"gpus", std::move(gpus)}};
    if (node.node->lost()) node_entry["lost_reason"] = node.node->lost_reason;
    nodes.push_back(std::move(node_entry));
  }
  return JsonResponse(200, json{{"timestamp", FormatIso8601(now)},
                                {"sampled_at", FormatIso8601(snapshot.taken_unix_ms)},
                                {"interval_seconds", context.monitor_interval_s},
                                {"utilization", UtilizationSummaryJson(**state)},
                                {"nodes", std::move(nodes)}});
}

// POST /monitoring/refresh: a sampling pass now, on the sampler thread (this
// worker only waits for it, and not for long).
constexpr std::chrono::seconds kRefreshWait{10};

HttpResponse RefreshMonitoring(const ApiContext& context, const HttpRequest&) {
  if (context.sampler == nullptr) {
    return ErrorResponse(Unavailable("on-demand sampling is not available in this server"));
  }
  const Status sampled = context.sampler->SampleNow(kRefreshWait);
  if (!sampled.ok()) return ErrorResponse(sampled);
  auto snapshot = context.manager->inventory().Snapshot();
  const GpuCounts counts = CountGpus(*snapshot);
  return JsonResponse(200, json{{"refreshed", true},
                                {"sampled_at", FormatIso8601(snapshot->taken_unix_ms)},
                                {"inventory_generation", snapshot->generation},
                                {"nodes", snapshot->nodes.size()},
                                {"gpus", counts.gpus},
                                {"mig_devices", counts.mig_devices}});
}

}  // namespace

void RegisterMonitoringRoutes(const ApiContext& context, Router& router) {
  const ApiContext* ctx = &context;
  router.Add("GET", "/api/v1/gpu/monitoring",
             [ctx](const HttpRequest& request) { return Monitoring(*ctx, request); });
  router.Add("POST", "/api/v1/gpu/monitoring/refresh",
             [ctx](const HttpRequest& request) { return RefreshMonitoring(*ctx, request); });
}

}  // namespace gpurm
