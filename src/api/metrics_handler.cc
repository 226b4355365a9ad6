#include "api/metrics_handler.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/dcgm_metrics.h"
#include "api/gpu_views.h"
#include "api/json_codec.h"
#include "api/responses.h"
#include "api/state_cache.h"
#include "monitor/prometheus_text.h"

namespace gpurm {
namespace {

using nlohmann::json;

// Appends one gauge family with a sample per GPU that has a value.
void GpuGauge(PrometheusText& out, const ClusterState& state, const char* name, const char* help,
              std::optional<double> (*value)(const NodeAvailability&, const GpuAvailability&)) {
  out.Family(name, "gauge", help);
  for (const NodeAvailability& node : state.nodes()) {
    for (const GpuAvailability& g : node.gpus) {
      const std::optional<double> v = value(node, g);
      if (!v) continue;
      if (g.gpu->is_mig_device()) {
        // "gpu" is its GPU's index; parent_uuid tells MIG devices apart
        // (their memory is part of their GPU's: sum with parent_uuid="").
        out.Sample(name,
                   {{"node", node.node->name},
                    {"gpu", std::to_string(g.gpu->index)},
                    {"uuid", g.gpu->uuid},
                    {"model", g.gpu->model.raw_name},
                    {"mig_profile", g.gpu->mig_profile},
                    {"parent_uuid", g.gpu->mig_parent_uuid}},
                   *v);
        continue;
      }
      out.Sample(name,
                 {{"node", node.node->name},
                  {"gpu", std::to_string(g.gpu->index)},
                  {"uuid", g.gpu->uuid},
                  {"model", g.gpu->model.raw_name}},
                 *v);
    }
  }
}

constexpr double kBytesPerMib = 1024.0 * 1024.0;

// The families that follow the manager's state, the inventory snapshot and
// the process accounting pass (everything but the live counters), with what
// they were built from.
struct StateMetrics {
  StateKey key;  // KeyForBuilding(), read before building.
  // The accounting pass they were built from (held, so that no later pass
  // can reuse its address); null when none.
  std::shared_ptr<const ProcessAccountBook::Entry> accounts;
  std::string text;
};

std::shared_ptr<const ProcessAccountBook::Entry> LatestAccounts(const ApiContext& context) {
  return context.process_accounts ? context.process_accounts->Latest() : nullptr;
}

// Writes the state families from the state now: gpurm_up, the per-GPU and
// per-node families, the accounting's, dcgm-exporter's and
// gpurm_allocations_active.
void WriteStateMetrics(const ApiContext& context,
                       const std::shared_ptr<const ProcessAccountBook::Entry>& accounts,
                       PrometheusText& out) {
  GpuManager& manager = *context.manager;
  const Status ready = manager.Readiness();
  out.Family("gpurm_up", "gauge",
             "1 when the manager is initialized (an inventory snapshot exists), else 0.");
  out.Sample("gpurm_up", {}, ready.ok() ? 1 : 0);
  if (auto state = manager.CurrentState(); state.ok()) {
    const ClusterState& cluster = **state;
    GpuGauge(out, cluster, "gpurm_gpu_utilization_ratio",
             "GPU busy ratio, 0..1; absent where the device gives none (MIG devices, GPUs in "
             "MIG mode).",
             [](const NodeAvailability&, const GpuAvailability& g) -> std::optional<double> {
               if (!g.gpu->utilization_available) return std::nullopt;
               return g.gpu->utilization;
             });
    GpuGauge(out, cluster, "gpurm_gpu_memory_used_bytes",
             "GPU memory in use as the device reports it (all processes).",
             [](const NodeAvailability&, const GpuAvailability& g) -> std::optional<double> {
               return static_cast<double>(g.gpu->memory_used_mib) * kBytesPerMib;
             });
    GpuGauge(out, cluster, "gpurm_gpu_memory_total_bytes", "GPU memory size.",
             [](const NodeAvailability&, const GpuAvailability& g) -> std::optional<double> {
               return static_cast<double>(g.gpu->memory_total_mib) * kBytesPerMib;
             });
    GpuGauge(out, cluster, "gpurm_gpu_memory_reserved_bytes",
             "GPU memory reserved by gpurm allocations (the whole GPU when exclusive).",
             [](const NodeAvailability&, const GpuAvailability& g) -> std::optional<double> {
               return static_cast<double>(ReservedMib(g)) * kBytesPerMib;
             });
    GpuGauge(
        out, cluster, "gpurm_gpu_temperature_celsius",
        "GPU temperature; absent when the GPU does not report it.",
        [](const NodeAvailability&, const GpuAvailability& g) { return g.gpu->temperature_c; });
    GpuGauge(out, cluster, "gpurm_gpu_power_watts",
             "GPU power draw; absent when the GPU does not report it.",
             [](const NodeAvailability&, const GpuAvailability& g) { return g.gpu->power_w; });
    GpuGauge(out, cluster, "gpurm_gpu_healthy", "1 when the GPU is healthy, 0 when not.",
             [](const NodeAvailability&, const GpuAvailability& g) -> std::optional<double> {
               return g.gpu->healthy ? 1 : 0;
             });
    GpuGauge(out, cluster, "gpurm_gpu_mig_mode",
             "1 when the GPU is in MIG mode (granted only as its MIG devices), else 0; absent "
             "for MIG devices.",
             [](const NodeAvailability&, const GpuAvailability& g) -> std::optional<double> {
               if (g.gpu->is_mig_device()) return std::nullopt;
               return g.gpu->mig_enabled ? 1 : 0;
             });
    GpuGauge(out, cluster, "gpurm_gpu_allocated",
             "1 when an active gpurm allocation holds the GPU (whole or a shared slice), else 0.",
             [](const NodeAvailability&, const GpuAvailability& g) -> std::optional<double> {
               return g.untouched() ? 0 : 1;
             });
    if (accounts) {
      out.Family("gpurm_gpu_foreign_processes", "gauge",
                 "Processes on the GPU outside gpurm: no allocation, or an allocation not "
                 "granted this GPU.");
      for (const NodeAvailability& node : cluster.nodes()) {
        for (const GpuAvailability& g : node.gpus) {
          const GpuAccount* account = accounts->Find(g.gpu->uuid);
          out.Sample("gpurm_gpu_foreign_processes",
                     {{"node", node.node->name},
                      {"gpu", std::to_string(g.gpu->index)},
                      {"uuid", g.gpu->uuid}},
                     account ? account->foreign_processes : 0);
        }
      }
      out.Family("gpurm_allocation_gpu_memory_used_bytes", "gauge",
                 "GPU memory used by the processes of an allocation on one GPU.");
      for (const GpuAccount& account : accounts->gpus) {
        for (const GpuAccount::AllocationUse& use : account.allocations) {
          out.Sample("gpurm_allocation_gpu_memory_used_bytes",
                     {{"allocation", use.allocation_id},
                      {"owner", use.owner},
                      {"node", account.node_name},
                      {"gpu", std::to_string(account.gpu_index)},
                      {"uuid", account.gpu_uuid}},
                     static_cast<double>(use.used_mib) * kBytesPerMib);
        }
      }
    }
    out.Family("gpurm_node_lost", "gauge",
               "1 while the node's agent does not answer the controller (its GPUs show their "
               "last values and are offered to nobody), else 0.");
    for (const Node& node : cluster.snapshot().nodes) {
      out.Sample("gpurm_node_lost", {{"node", node.name}}, node.lost() ? 1 : 0);
    }
    out.Family("gpurm_inventory_snapshot_timestamp_seconds", "gauge",
               "When the inventory snapshot these values come from was taken (Unix time).");
    out.Sample("gpurm_inventory_snapshot_timestamp_seconds", {},
               static_cast<double>(cluster.snapshot().taken_unix_ms) / 1000.0);
    if (context.dcgm_compatible_metrics) WriteDcgmCompatibleMetrics(cluster, out);
  }
  out.Family("gpurm_allocations_active", "gauge", "Active (not released or expired) allocations.");
  out.Sample("gpurm_allocations_active", {}, static_cast<double>(manager.ledger().CountActive()));
}

// The live families of one sample each, rendered once (they are written on
// every scrape).
struct LiveScalars {
  PrometheusScalar sampler_passes{"gpurm_sampler_passes_total", "counter",
                                  "Inventory sampling passes."};
  PrometheusScalar sampler_failures{
      "gpurm_sampler_failures_total", "counter",
      "Sampling passes whose provider call failed (the previous values were kept)."};
  PrometheusScalar sampler_cpu{"gpurm_sampler_cpu_seconds_total", "counter",
                               "CPU time the sampler thread spent in sampling passes."};
  PrometheusScalar sampler_last_pass{"gpurm_sampler_last_pass_duration_seconds", "gauge",
                                     "Elapsed time of the latest sampling pass."};
  PrometheusScalar events_published{"gpurm_events_published_total", "counter",
                                    "GPU change events published."};
  PrometheusScalar events_dropped{
      "gpurm_events_dropped_total", "counter",
      "Events dropped from the queues of subscribers that fell behind."};
  PrometheusScalar events_subscribers{"gpurm_events_subscribers", "gauge",
                                      "Open event subscriptions (SSE streams)."};
};

// Writes the live families, which change without the state: the sampler's,
// the event hub's and the HTTP request counters. Non-blocking (each reads
// its counters under a brief lock).
void WriteLiveMetrics(const ApiContext& context, PrometheusText& out) {
  static const LiveScalars kScalars;  // Immutable once built.
  if (context.sampler != nullptr) {
    const SamplerStats stats = context.sampler->stats();
    kScalars.sampler_passes.Write(out, static_cast<double>(stats.passes));
    kScalars.sampler_failures.Write(out, static_cast<double>(stats.failures));
    kScalars.sampler_cpu.Write(out, stats.cpu_seconds);
    kScalars.sampler_last_pass.Write(out, stats.last_pass_wall_seconds);
  }
  if (context.events != nullptr) {
    const EventHubStats stats = context.events->stats();
    kScalars.events_published.Write(out, static_cast<double>(stats.published));
    kScalars.events_dropped.Write(out, static_cast<double>(stats.dropped));
    kScalars.events_subscribers.Write(out, static_cast<double>(stats.subscribers));
  }
  if (context.http_metrics != nullptr) context.http_metrics->Write(out);
}

// The live families, now, followed by the state families of `state` (sent
// from it, uncopied). Live first: the few bytes written per request go with
// the answer's head in one write, and the large cached part ends the answer
// (Prometheus' text format does not order families).
HttpResponse MetricsAnswer(const ApiContext& context,
                           const std::shared_ptr<const StateMetrics>& state) {
  // About 3 KB with a dozen routes seen: written on every scrape, so grown once.
  PrometheusText live(8192);
  WriteLiveMetrics(context, live);
  HttpResponse response;
  response.content_type = kPrometheusContentType;
  response.body = live.Take();
  response.shared_suffix = std::shared_ptr<const std::string>(state, &state->text);
  return response;
}

// The cached state families (when built from the state now) and the live
// ones; non-blocking (the I/O thread's answer, Router::AddNonBlocking).
std::optional<HttpResponse> CachedMetrics(const ApiContext& context,
                                          const StateCache<StateMetrics>& cache) {
  const StateKey key = CurrentStateKey(*context.manager);
  const std::shared_ptr<const ProcessAccountBook::Entry> accounts = LatestAccounts(context);
  const std::shared_ptr<const StateMetrics> cached = cache.LoadCurrent(key);
  if (!cached || cached->accounts != accounts) return std::nullopt;
  return MetricsAnswer(context, cached);
}

// As CachedMetrics, else the state families built now (and cached once the
// inventory has a snapshot): they change with the manager's version, the
// inventory snapshot and the accounting pass, and rendering them per scrape
// was the endpoint's cost. The key is read before building, as /status does.
HttpResponse Metrics(const ApiContext& context, StateCache<StateMetrics>& cache) {
  if (std::optional<HttpResponse> cached = CachedMetrics(context, cache)) return std::move(*cached);
  const StateKey key = KeyForBuilding(*context.manager);
  const std::shared_ptr<const ProcessAccountBook::Entry> accounts = LatestAccounts(context);
  PrometheusText out;
  WriteStateMetrics(context, accounts, out);
  auto built = std::make_shared<const StateMetrics>(StateMetrics{key, accounts, out.Take()});
  if (key.inventory_generation != 0) cache.Store(built);
  return MetricsAnswer(context, built);
}

}  // namespace

void RegisterMetricsRoute(const ApiContext& context, Router& router) {
  const ApiContext* ctx = &context;
  auto cache = std::make_shared<StateCache<StateMetrics>>();
  router.AddNonBlocking(
      "GET", "/metrics", Access::kViewer,
      [ctx, cache](const HttpRequest&) { return CachedMetrics(*ctx, *cache); },
      [ctx, cache](const HttpRequest&) { return Metrics(*ctx, *cache); });
}

}  // namespace gpurm
