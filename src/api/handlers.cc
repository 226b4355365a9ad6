#include "api/handlers.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
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

#include "api/auth.h"
#include "api/dcgm_metrics.h"
#include "api/event_handlers.h"
#include "api/json_codec.h"
#include "api/plan_handlers.h"
#include "api/policy_handlers.h"
#include "api/responses.h"
#include "api/utilization_summary.h"
#include "core/clock.h"
#include "integrations/frameworks/plan.h"
#include "monitor/prometheus_text.h"

namespace gpurm {
namespace {

using nlohmann::json;

constexpr char kBase[] = "/api/v1/gpu";

bool IsUtf8(const std::string& text) {
  try {
    (void)json(text).dump();
    return true;
  } catch (const json::type_error&) {
    return false;
  }
}

// A GPU request body, and what the caller may ask for: /allocate,
// /validate and the framework plans refuse the same requests.
Result<ParsedGpuRequest> ParseRequestBody(const ApiContext& context, const HttpRequest& request) {
  Result<json> body = ParseJsonObject(request.body);
  if (!body.ok()) return body.status();
  Result<ParsedGpuRequest> parsed = ParseGpuRequest(*body);
  if (!parsed.ok()) return parsed;
  if (request.principal && request.principal->role != Role::kAdmin &&
      parsed->wait.priority > context.max_priority_without_admin) {
    return Status(StatusCode::kPermissionDenied,
                  "priority above " + std::to_string(context.max_priority_without_admin) +
                      " needs the admin role (\"" + request.principal->name + "\" has role " +
                      RoleName(request.principal->role) + ")",
                  "priority");
  }
  return parsed;
}

// kInvalidArgument naming where the owner came from when it is too long or
// not UTF-8 (it is stored with the allocation and in the audit log).
Status CheckOwnerName(const HttpRequest& request, const std::string& owner) {
  const char* field = request.Header("x-gpurm-owner").empty() ? "owner" : "X-Gpurm-Owner";
  if (owner.size() > kMaxOwnerLength) {
    return InvalidArgument("must be at most " + std::to_string(kMaxOwnerLength) + " bytes, got " +
                               std::to_string(owner.size()),
                           field);
  }
  if (!IsUtf8(owner)) return InvalidArgument("must be UTF-8 text", field);
  return Status::Ok();
}

// Parses an optional non-negative number query parameter.
Result<std::optional<double>> QueryNumber(const HttpRequest& request, const std::string& name) {
  auto it = request.query.find(name);
  if (it == request.query.end() || it->second.empty()) return std::optional<double>();
  char* end = nullptr;
  const double value = std::strtod(it->second.c_str(), &end);
  if (end == it->second.c_str() || *end != '\0' || !std::isfinite(value) || value < 0) {
    return InvalidArgument("expected a number >= 0, got \"" + it->second + "\"", name);
  }
  return std::optional<double>(value);
}

// Lists are answered in pages of at most kMaxPageSize entries (the default
// size too), each with a `next` link while more follow: a client that reads
// slowly then holds one page, never a whole history, in the daemon.
constexpr int kMaxPageSize = 1000;

// The query parameter `limit`: 1..kMaxPageSize, kMaxPageSize when absent.
Result<int> QueryLimit(const HttpRequest& request) {
  auto it = request.query.find("limit");
  if (it == request.query.end() || it->second.empty()) return kMaxPageSize;
  int64_t value = 0;
  const char* end = it->second.data() + it->second.size();
  const auto [ptr, ec] = std::from_chars(it->second.data(), end, value);
  if (ec != std::errc() || ptr != end || value < 1 || value > kMaxPageSize) {
    return InvalidArgument("expected an integer from 1 to " + std::to_string(kMaxPageSize) +
                               ", got \"" + it->second + "\"",
                           "limit");
  }
  return static_cast<int>(value);
}

// Percent-encodes a query value.
std::string QueryEscape(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(c);
    } else {
      out += {'%', kHex[u >> 4], kHex[u & 15]};
    }
  }
  return out;
}

// The link to the page after `last`, keeping the request's other parameters.
std::string NextLink(const HttpRequest& request, const std::string& cursor) {
  std::string link = request.path + "?";
  for (const auto& [name, value] : request.query) {
    if (name != "after") link += QueryEscape(name) + "=" + QueryEscape(value) + "&";
  }
  return link + "after=" + QueryEscape(cursor);
}

Result<bool> QueryBool(const HttpRequest& request, const std::string& name) {
  auto it = request.query.find(name);
  if (it == request.query.end()) return false;
  if (it->second.empty() || it->second == "true" || it->second == "1") return true;
  if (it->second == "false" || it->second == "0") return false;
  return InvalidArgument("expected true or false, got \"" + it->second + "\"", name);
}

std::string TypeLabel(const Gpu& gpu) { return GpuTypeLabel(gpu); }

// A GPU's utilization, or null where the device gives none (MIG devices and
// GPUs in MIG mode): unavailable, never 0.
json UtilizationJson(const Gpu& gpu, double value) {
  return gpu.utilization_available ? json(value) : json(nullptr);
}

// Physical GPUs and MIG devices of a snapshot.
struct GpuCounts {
  size_t gpus = 0;
  size_t mig_devices = 0;
};
GpuCounts CountGpus(const InventorySnapshot& snapshot) {
  GpuCounts counts;
  for (const Node& node : snapshot.nodes) {
    for (const Gpu& gpu : node.gpus) ++(gpu.is_mig_device() ? counts.mig_devices : counts.gpus);
  }
  return counts;
}

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
      const std::string type = TypeLabel(*g.gpu);
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

const char* GpuStateName(const NodeAvailability& node, const GpuAvailability& g) {
  if (!g.gpu->healthy) return "unhealthy";
  if (!g.gpu->allocatable_unit()) return "mig";  // Granted by its MIG devices only.
  if (g.exclusively_held) return "allocated";
  if (g.shared_holders > 0) return "shared";
  return node.node->schedulable ? "free" : "cordoned";
}

// --- Handlers -------------------------------------------------------------

// Answered on the server's I/O thread (HttpServerOptions::inline_paths), so
// it reads only in-memory state and never blocks.
HttpResponse Health(const ApiContext& context, const HttpRequest&) {
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

// /status's body serialised, split around the value of its "timestamp" (the
// time of the answer, so never cached), with what it was built from.
struct StatusBody {
  uint64_t manager_version = 0;       // GpuManager::Version() read before building.
  uint64_t inventory_generation = 0;  // The inventory's latest snapshot then.
  std::string head;                   // Up to and including the timestamp's opening quote.
  std::string tail;                   // From its closing quote on.
};

// The last /status body, shared by the worker threads: the serialisation of
// ~100 KB at 1,000 nodes dominated the endpoint's time, yet the body changes
// only with the free state, the active allocations and the inventory
// snapshot. Concurrent misses may each build a body; the last store wins,
// which costs at most another miss, never a stale answer (a body is served
// only for exactly the version and generation it was stored under).
// A mutex held only to copy the pointer, not std::atomic<std::shared_ptr>:
// libstdc++ 12 implements that with a lock bit ThreadSanitizer cannot see,
// so every concurrent load and store was reported as a race.
class StatusCache {
 public:
  std::shared_ptr<const StatusBody> Load() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return body_;
  }
  void Store(std::shared_ptr<const StatusBody> body) {
    std::lock_guard<std::mutex> lock(mutex_);
    body_.swap(body);  // The old body is freed outside the lock, by `body`.
  }

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const StatusBody> body_;
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
                      {"active_allocations", manager.ledger().List(AllocationFilter{}).size()},
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

// Serves the cached body when neither the manager's version nor the
// inventory's snapshot changed since it was built. Both are read before
// anything is built, and a new body is stored under what was read first, so
// it may be newer than its key (then the next call rebuilds) but a body is
// never older than the state when its request arrived.
HttpResponse StatusEndpoint(const ApiContext& context, StatusCache& cache) {
  GpuManager& manager = *context.manager;
  const uint64_t version = manager.Version();
  const std::shared_ptr<const InventorySnapshot> snapshot = manager.inventory().Snapshot();
  const uint64_t generation = snapshot ? snapshot->generation : 0;
  std::shared_ptr<const StatusBody> body = cache.Load();
  if (!snapshot || !body || body->manager_version != version ||
      body->inventory_generation != generation) {
    auto built = std::make_shared<StatusBody>();
    built->manager_version = version;
    built->inventory_generation = generation;
    if (Status status = BuildStatusBody(manager, *built); !status.ok()) {
      return ErrorResponse(status);
    }
    body = std::move(built);
    cache.Store(body);
  }
  const std::string timestamp = FormatIso8601(manager.clock().NowUnixMs());
  HttpResponse response;
  response.body.reserve(body->head.size() + timestamp.size() + body->tail.size());
  response.body.append(body->head).append(timestamp).append(body->tail);
  return response;
}

HttpResponse Nodes(const ApiContext& context, const HttpRequest& request) {
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

HttpResponse Allocate(const ApiContext& context, const HttpRequest& request) {
  Result<ParsedGpuRequest> parsed = ParseRequestBody(context, request);
  if (!parsed.ok()) return ErrorResponse(parsed.status());
  const std::string owner = RequestOwner(request, parsed->owner);
  if (Status status = CheckOwnerName(request, owner); !status.ok()) return ErrorResponse(status);
  const std::string idempotency_key = request.Header("idempotency-key");
  if (idempotency_key.size() > 256) {
    return ErrorResponse(InvalidArgument("must be at most 256 characters", "Idempotency-Key"));
  }
  // Both are stored with the allocation and returned in every answer about it.
  if (!IsUtf8(idempotency_key)) {
    return ErrorResponse(InvalidArgument("must be UTF-8 text", "Idempotency-Key"));
  }
  GpuManager& manager = *context.manager;
  AllocationResult result = manager.Allocate(parsed->request, owner, idempotency_key, parsed->wait);
  if (result.status.ok() && result.queued) {
    // Waiting: answered at once (no worker is held while it waits); the
    // client polls the entry, which the manager grants when GPUs free up.
    json body = QueueEntryToJson(*result.queued, result.queue_position);
    body["success"] = false;
    body["queued"] = true;
    body["replayed"] = result.replayed;
    body["poll"] = std::string(kBase) + "/queue/" + result.queued->id;
    body["reasons"] = DiagnosisReasonsToJson(result.diagnosis);
    return JsonResponse(202, body);
  }
  if (!result.status.ok()) {
    json body = ErrorJson(result.status);
    body["success"] = false;
    if (result.status.field() == kOwnerCapField) {
      // Too many for this owner: the client's to fix by releasing one, so
      // 429 rather than the 503 of a full disk.
      body["limit"] = manager.max_allocations_per_owner();
      return JsonResponse(429, body);
    }
    if (result.status.field() == kQueuedCapField) {
      body["limit"] = manager.max_queued_per_owner();
      return JsonResponse(429, body);
    }
    if (result.status.field() == kQueuedGpuHoursCapField) {
      body["limit"] = manager.max_queued_gpu_hours_per_owner();
      return JsonResponse(429, body);
    }
    if (result.status.field() == kIdempotencyKeyField &&
        result.status.code() == StatusCode::kInvalidArgument) {
      // Well-formed, but the key already stands for another request: 422,
      // as payment APIs answer a reused idempotency key.
      return JsonResponse(422, body);
    }
    if (result.status.code() == StatusCode::kUnschedulableNow ||
        result.status.code() == StatusCode::kUnschedulableNever) {
      body["reasons"] = DiagnosisReasonsToJson(result.diagnosis);
      body["would_fit"] = WouldFitToJson(result.diagnosis.would_fit);
    }
    return JsonResponse(HttpStatusFor(result.status.code()), body);
  }
  const Allocation& allocation = *result.allocation;
  auto snapshot = manager.inventory().Snapshot();
  json allocation_json = AllocationToJson(allocation);
  json body{{"success", true},
            {"replayed", result.replayed},
            {"allocation_id", allocation.id},
            {"node_name", allocation_json["node_name"]},
            {"nodes", allocation_json["nodes"]},
            {"gpus", allocation_json["gpus"]},
            {"gpu_config",
             BuildGpuConfig(PlanInputFor(allocation.request, allocation.grants, snapshot.get()))},
            {"allocation", std::move(allocation_json)}};
  return JsonResponse(200, body);
}

// GET /queue[?all=true][&limit=N][&after=ID]: waiting requests in service
// order (and, with all, recently finished ones), a page at a time; `after`
// is the last queue_id of the previous page.
HttpResponse ListQueue(const ApiContext& context, const HttpRequest& request) {
  Result<bool> all = QueryBool(request, "all");
  if (!all.ok()) return ErrorResponse(all.status());
  Result<int> limit = QueryLimit(request);
  if (!limit.ok()) return ErrorResponse(limit.status());
  const std::vector<QueueEntry> queue = context.manager->Queue(*all);
  size_t start = 0;
  if (auto it = request.query.find("after"); it != request.query.end()) {
    const auto last = std::find_if(queue.begin(), queue.end(),
                                   [&](const QueueEntry& entry) { return entry.id == it->second; });
    if (last == queue.end()) {
      return ErrorResponse(InvalidArgument(
          "no queue entry " + it->second + " is listed any more; list again from the start",
          "after"));
    }
    start = static_cast<size_t>(last - queue.begin()) + 1;
  }
  const size_t waiting =
      static_cast<size_t>(std::count_if(queue.begin(), queue.end(), [](const QueueEntry& entry) {
        return entry.state == QueueState::kWaiting;
      }));
  const size_t end = std::min(queue.size(), start + static_cast<size_t>(*limit));
  json entries = json::array();
  for (size_t i = start; i < end; ++i) {
    // Waiting entries come first, so a waiting entry's index is its position - 1.
    const bool is_waiting = queue[i].state == QueueState::kWaiting;
    entries.push_back(QueueEntryToJson(queue[i], is_waiting ? i + 1 : 0));
  }
  const size_t count = entries.size();
  return JsonResponse(
      200,
      json{{"queue", std::move(entries)},
           {"count", count},
           {"waiting", waiting},
           {"next", end < queue.size() ? json(NextLink(request, queue[end - 1].id)) : json()}});
}

// GET /queue/{id}: one entry; once granted, with the allocation's gpu_config.
HttpResponse GetQueueEntry(const ApiContext& context, const HttpRequest& request) {
  auto found = context.manager->QueueEntryById(request.path_params.at("id"));
  if (!found.ok()) return ErrorResponse(found.status());
  const auto& [entry, position] = *found;
  json body = QueueEntryToJson(entry, position);
  if (entry.allocation) {
    auto snapshot = context.manager->inventory().Snapshot();
    body["gpu_config"] = BuildGpuConfig(
        PlanInputFor(entry.allocation->request, entry.allocation->grants, snapshot.get()));
  }
  return JsonResponse(200, body);
}

// DELETE /queue/{id}: stop waiting (a granted entry's allocation stays).
HttpResponse CancelQueueEntry(const ApiContext& context, const HttpRequest& request) {
  const std::string& id = request.path_params.at("id");
  if (auto found = context.manager->QueueEntryById(id); found.ok()) {
    const Status allowed = MayActOn(request, found->first.owner, "queue entry " + id);
    if (!allowed.ok()) return ErrorResponse(allowed);
  }
  Result<QueueEntry> entry = context.manager->CancelQueued(id);
  if (!entry.ok()) return ErrorResponse(entry.status());
  return JsonResponse(200, json{{"cancelled", entry->state == QueueState::kCancelled},
                                {"entry", QueueEntryToJson(*entry, 0)}});
}

HttpResponse Validate(const ApiContext& context, const HttpRequest& request) {
  Result<ParsedGpuRequest> parsed = ParseRequestBody(context, request);
  if (!parsed.ok()) return ErrorResponse(parsed.status());
  PreviewResult preview = context.manager->Preview(parsed->request);
  if (!preview.status.ok()) return ErrorResponse(preview.status);
  const Diagnosis& diagnosis = preview.schedule.diagnosis;
  json body{{"valid", diagnosis.possible_now},
            {"possible_now", diagnosis.possible_now},
            {"possible_ever", diagnosis.possible_ever},
            {"message", diagnosis.message},
            {"reasons", DiagnosisReasonsToJson(diagnosis)},
            {"would_fit", WouldFitToJson(diagnosis.would_fit)}};
  if (preview.schedule.placement) {
    json gpus = json::array();
    for (const GpuGrant& grant : preview.schedule.placement->grants) {
      gpus.push_back(GrantToJson(grant));
    }
    body["placement"] = {{"policy", preview.schedule.placement->policy},
                         {"score", preview.schedule.placement->score},
                         {"gpus", std::move(gpus)}};
  }
  return JsonResponse(200, body);
}

// /setup-tensorflow and /setup-pytorch: the plan for what the request would
// get now. Nothing is reserved.
HttpResponse FrameworkSetup(const ApiContext& context, const HttpRequest& request,
                            json (*build_plan)(const PlanInput&)) {
  Result<ParsedGpuRequest> parsed = ParseRequestBody(context, request);
  if (!parsed.ok()) return ErrorResponse(parsed.status());
  PreviewResult preview = context.manager->Preview(parsed->request);
  if (!preview.status.ok()) return ErrorResponse(preview.status);
  const bool fits = preview.schedule.placement.has_value();
  PlanInput input = fits ? PlanInputFor(parsed->request, preview.schedule.placement->grants,
                                        preview.snapshot.get())
                         : PlanInputFor(parsed->request, {}, nullptr);
  const std::string node_name = input.gpus.empty() ? "" : input.gpus.front().node_name;
  json body{{"success", fits},
            {"node_name", node_name},
            {"message", preview.schedule.diagnosis.message},
            {"plan", build_plan(input)}};
  if (!fits) body["reasons"] = DiagnosisReasonsToJson(preview.schedule.diagnosis);
  return JsonResponse(200, body);
}

HttpResponse ListAllocations(const ApiContext& context, const HttpRequest& request) {
  Result<bool> all = QueryBool(request, "all");
  if (!all.ok()) return ErrorResponse(all.status());
  Result<int> limit = QueryLimit(request);
  if (!limit.ok()) return ErrorResponse(limit.status());
  AllocationFilter filter;
  filter.include_ended = *all;
  filter.limit = *limit + 1;  // One more tells whether a next page exists.
  if (auto it = request.query.find("owner"); it != request.query.end()) filter.owner = it->second;
  if (auto it = request.query.find("after"); it != request.query.end()) {
    // The cursor: "<created_unix_ms>:<allocation_id>" of the previous page's last.
    const std::string& cursor = it->second;
    const size_t colon = cursor.find(':');
    const char* end = cursor.data() + (colon == std::string::npos ? 0 : colon);
    const auto [ptr, ec] = std::from_chars(cursor.data(), end, filter.after_created_unix_ms);
    if (colon == std::string::npos || ec != std::errc() || ptr != end ||
        colon + 1 == cursor.size()) {
      return ErrorResponse(InvalidArgument(
          "expected the cursor of a next link (<created_unix_ms>:<allocation_id>)", "after"));
    }
    filter.after_id = cursor.substr(colon + 1);
  }
  std::vector<Allocation> page = context.manager->ledger().List(filter);
  json next;
  if (page.size() > static_cast<size_t>(*limit)) {
    page.resize(static_cast<size_t>(*limit));
    next = NextLink(request, std::to_string(page.back().created_unix_ms) + ":" + page.back().id);
  }
  json allocations = json::array();
  for (const Allocation& a : page) allocations.push_back(AllocationToJson(a));
  const size_t count = allocations.size();
  return JsonResponse(
      200, json{{"allocations", std::move(allocations)}, {"count", count}, {"next", next}});
}

HttpResponse GetAllocation(const ApiContext& context, const HttpRequest& request) {
  Result<Allocation> allocation = context.manager->ledger().Get(request.path_params.at("id"));
  if (!allocation.ok()) return ErrorResponse(allocation.status());
  return JsonResponse(200, AllocationToJson(*allocation));
}

// kPermissionDenied when the request may not change allocation `id`; OK
// when it may, or when there is no such allocation (the manager's answer
// then says so). An allocation's owner never changes, so checking before
// acting is as good as checking while acting.
Status MayChangeAllocation(const ApiContext& context, const HttpRequest& request,
                           const std::string& id) {
  Result<Allocation> allocation = context.manager->ledger().Get(id);
  if (!allocation.ok()) return Status::Ok();
  return MayActOn(request, allocation->owner, "allocation " + id);
}

HttpResponse DeleteAllocation(const ApiContext& context, const HttpRequest& request) {
  const Status allowed = MayChangeAllocation(context, request, request.path_params.at("id"));
  if (!allowed.ok()) return ErrorResponse(allowed);
  Result<Allocation> released = context.manager->Release(request.path_params.at("id"));
  if (!released.ok()) return ErrorResponse(released.status());
  return JsonResponse(200, json{{"released", true}, {"allocation", AllocationToJson(*released)}});
}

HttpResponse Heartbeat(const ApiContext& context, const HttpRequest& request) {
  const Status allowed = MayChangeAllocation(context, request, request.path_params.at("id"));
  if (!allowed.ok()) return ErrorResponse(allowed);
  Result<Allocation> renewed = context.manager->Heartbeat(request.path_params.at("id"));
  if (!renewed.ok()) return ErrorResponse(renewed.status());
  return JsonResponse(200, json{{"allocation", AllocationToJson(*renewed)}});
}

HttpResponse Release(const ApiContext& context, const HttpRequest& request) {
  Result<json> body = ParseJsonObject(request.body);
  if (!body.ok()) return ErrorResponse(body.status());
  for (const auto& [key, value] : body->items()) {
    if (key != "allocation_id" && key != "node_name" && key != "gpu_count" && key != "owner") {
      return ErrorResponse(InvalidArgument(
          "unknown field (known: allocation_id, node_name, gpu_count, owner)", key));
    }
  }
  Result<Allocation> released = Status(StatusCode::kInternal, "unreached");
  if (body->contains("allocation_id")) {
    const json& id = (*body)["allocation_id"];
    if (!id.is_string() || id.get_ref<const std::string&>().empty()) {
      return ErrorResponse(InvalidArgument("expected a non-empty string", "allocation_id"));
    }
    const Status allowed = MayChangeAllocation(context, request, id.get<std::string>());
    if (!allowed.ok()) return ErrorResponse(allowed);
    released = context.manager->Release(id.get<std::string>());
  } else {
    const json node = body->value("node_name", json());
    const json count = body->value("gpu_count", json());
    if (!node.is_string() || node.get_ref<const std::string&>().empty()) {
      return ErrorResponse(InvalidArgument(
          "expected a non-empty string (or give allocation_id instead)", "node_name"));
    }
    if (!count.is_number_integer() || count.get<int64_t>() < 1) {
      return ErrorResponse(InvalidArgument("expected an integer >= 1", "gpu_count"));
    }
    const std::string body_owner = body->contains("owner") && (*body)["owner"].is_string()
                                       ? (*body)["owner"].get<std::string>()
                                       : "";
    released =
        context.manager->ReleaseOnNode(RequestOwner(request, body_owner), node.get<std::string>(),
                                       static_cast<int>(count.get<int64_t>()));
  }
  if (!released.ok()) return ErrorResponse(released.status());
  return JsonResponse(200, json{{"released", json::array({released->id})},
                                {"count", 1},
                                {"allocation", AllocationToJson(*released)}});
}

json OptionalNumber(const std::optional<double>& value) { return value ? json(*value) : json(); }

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

int64_t ReservedMib(const GpuAvailability& g) {
  return g.exclusively_held ? g.gpu->memory_total_mib : g.shared_reserved_mib;
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
             {"temperature_c", OptionalNumber(sample.temperature_c)},
             {"power_w", OptionalNumber(sample.power_w)}});
      }
      json processes = json::array();
      for (const GpuProcess& process : gpu.processes) {
        processes.push_back(
            {{"pid", process.pid}, {"memory_used_gb", RoundGb(process.memory_used_mib)}});
      }
      auto held = holders.find(gpu.uuid);
      json entry{{"index", gpu.index},
                 {"uuid", gpu.uuid},
                 {"gpu_type", TypeLabel(gpu)},
                 {"name", gpu.model.raw_name},
                 {"state", GpuStateName(node, g)},
                 {"utilization", UtilizationJson(gpu, gpu.utilization)},
                 {"memory_utilization", UtilizationJson(gpu, gpu.memory_utilization)},
                 {"utilization_available", gpu.utilization_available},
                 {"memory_used_gb", RoundGb(gpu.memory_used_mib)},
                 {"memory_reserved_gb", RoundGb(ReservedMib(g))},
                 {"memory_total_gb", RoundGb(gpu.memory_total_mib)},
                 {"temperature_c", OptionalNumber(gpu.temperature_c)},
                 {"power_w", OptionalNumber(gpu.power_w)},
                 {"power_limit_w", OptionalNumber(gpu.power_limit_w)},
                 {"healthy", gpu.healthy},
                 {"health_reason", gpu.health_reason},
                 {"processes", std::move(processes)},
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
    nodes.push_back({{"node_name", node.node->name}, {"gpus", std::move(gpus)}});
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

// --- GET /metrics ---------------------------------------------------------

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

HttpResponse Metrics(const ApiContext& context, const HttpRequest&) {
  GpuManager& manager = *context.manager;
  PrometheusText out;
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
    out.Family("gpurm_inventory_snapshot_timestamp_seconds", "gauge",
               "When the inventory snapshot these values come from was taken (Unix time).");
    out.Sample("gpurm_inventory_snapshot_timestamp_seconds", {},
               static_cast<double>(cluster.snapshot().taken_unix_ms) / 1000.0);
    if (context.dcgm_compatible_metrics) WriteDcgmCompatibleMetrics(cluster, out);
  }
  AllocationFilter filter;
  filter.limit = std::numeric_limits<int>::max();
  out.Family("gpurm_allocations_active", "gauge", "Active (not released or expired) allocations.");
  out.Sample("gpurm_allocations_active", {},
             static_cast<double>(manager.ledger().List(filter).size()));
  if (context.sampler != nullptr) {
    const SamplerStats stats = context.sampler->stats();
    out.Family("gpurm_sampler_passes_total", "counter", "Inventory sampling passes.");
    out.Sample("gpurm_sampler_passes_total", {}, static_cast<double>(stats.passes));
    out.Family("gpurm_sampler_failures_total", "counter",
               "Sampling passes whose provider call failed (the previous values were kept).");
    out.Sample("gpurm_sampler_failures_total", {}, static_cast<double>(stats.failures));
    out.Family("gpurm_sampler_cpu_seconds_total", "counter",
               "CPU time the sampler thread spent in sampling passes.");
    out.Sample("gpurm_sampler_cpu_seconds_total", {}, stats.cpu_seconds);
    out.Family("gpurm_sampler_last_pass_duration_seconds", "gauge",
               "Elapsed time of the latest sampling pass.");
    out.Sample("gpurm_sampler_last_pass_duration_seconds", {}, stats.last_pass_wall_seconds);
  }
  if (context.events != nullptr) {
    const EventHubStats stats = context.events->stats();
    out.Family("gpurm_events_published_total", "counter", "GPU change events published.");
    out.Sample("gpurm_events_published_total", {}, static_cast<double>(stats.published));
    out.Family("gpurm_events_dropped_total", "counter",
               "Events dropped from the queues of subscribers that fell behind.");
    out.Sample("gpurm_events_dropped_total", {}, static_cast<double>(stats.dropped));
    out.Family("gpurm_events_subscribers", "gauge", "Open event subscriptions (SSE streams).");
    out.Sample("gpurm_events_subscribers", {}, static_cast<double>(stats.subscribers));
  }
  if (context.http_metrics != nullptr) context.http_metrics->Write(out);
  HttpResponse response;
  response.content_type = kPrometheusContentType;
  response.body = out.Take();
  return response;
}

HttpResponse OpenApi(const ApiContext& context, const HttpRequest&) {
  HttpResponse response;
  response.body = context.openapi_document;
  return response;
}

}  // namespace

void RegisterApiRoutes(const ApiContext& context, Router& router) {
  const std::string base = kBase;
  const ApiContext* ctx = &context;
  auto bind = [ctx](HttpResponse (*handler)(const ApiContext&, const HttpRequest&)) {
    return [ctx, handler](const HttpRequest& request) { return handler(*ctx, request); };
  };
  // GET routes need a viewer, others a user (Router::Add), when tokens are
  // required; whose allocation a user may change is the handlers' check.
  router.Add("GET", base + "/health", Access::kPublic, bind(Health));
  router.Add("GET", base + "/status",
             [ctx, cache = std::make_shared<StatusCache>()](const HttpRequest&) {
               return StatusEndpoint(*ctx, *cache);
             });
  router.Add("GET", base + "/nodes", bind(Nodes));
  router.Add("POST", base + "/allocate", bind(Allocate));
  router.Add("POST", base + "/validate", bind(Validate));
  router.Add("POST", base + "/setup-tensorflow", [ctx](const HttpRequest& request) {
    return FrameworkSetup(*ctx, request, BuildTensorFlowPlan);
  });
  router.Add("POST", base + "/setup-pytorch", [ctx](const HttpRequest& request) {
    return FrameworkSetup(*ctx, request, BuildPyTorchPlan);
  });
  router.Add("GET", base + "/allocations", bind(ListAllocations));
  router.Add("GET", base + "/allocations/{id}", bind(GetAllocation));
  router.Add("DELETE", base + "/allocations/{id}", bind(DeleteAllocation));
  router.Add("POST", base + "/allocations/{id}/heartbeat", bind(Heartbeat));
  router.Add("POST", base + "/release", bind(Release));
  router.Add("GET", base + "/queue", bind(ListQueue));
  router.Add("GET", base + "/queue/{id}", bind(GetQueueEntry));
  router.Add("DELETE", base + "/queue/{id}", bind(CancelQueueEntry));
  router.Add("GET", base + "/monitoring", bind(Monitoring));
  router.Add("POST", base + "/monitoring/refresh", bind(RefreshMonitoring));
  router.Add("GET", "/metrics", bind(Metrics));
  router.Add("GET", "/api/v1/openapi.json", Access::kPublic, bind(OpenApi));
  RegisterPolicyRoutes(context.manager, router);
  RegisterPlanRoutes(context.manager, router);
  RegisterEventRoutes(context, router);
}

}  // namespace gpurm
