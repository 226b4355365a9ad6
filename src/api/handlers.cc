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

#include "api/agent_handlers.h"
#include "api/auth.h"
#include "api/event_handlers.h"
#include "api/json_codec.h"
#include "api/metrics_handler.h"
#include "api/monitoring_handlers.h"
#include "api/plan_handlers.h"
#include "api/policy_handlers.h"
#include "api/query_params.h"
#include "api/responses.h"
#include "api/status_handlers.h"
#include "core/clock.h"
#include "integrations/frameworks/plan.h"

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
    json body = QueueEntryToJson(*result.queued, result.queue_position,
                                 manager.inventory().Snapshot().get());
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
      if (!result.diagnosis.blocked_by.empty()) body["blocked_by"] = result.diagnosis.blocked_by;
    }
    return JsonResponse(HttpStatusFor(result.status.code()), body);
  }
  const Allocation& allocation = *result.allocation;
  auto snapshot = manager.inventory().Snapshot();
  json allocation_json = AllocationToJson(allocation, snapshot.get());
  // The top-level grants say what the GPUs were like when chosen; the
  // allocation stays exactly what later reads return.
  json gpus = allocation_json["gpus"];
  AddOutsideUse(gpus, snapshot.get());
  json body{{"success", true},
            {"replayed", result.replayed},
            {"allocation_id", allocation.id},
            {"node_name", allocation_json["node_name"]},
            {"nodes", allocation_json["nodes"]},
            {"gpus", std::move(gpus)},
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
  const auto snapshot = context.manager->inventory().Snapshot();
  for (size_t i = start; i < end; ++i) {
    // Waiting entries come first, so a waiting entry's index is its position - 1.
    const bool is_waiting = queue[i].state == QueueState::kWaiting;
    entries.push_back(QueueEntryToJson(queue[i], is_waiting ? i + 1 : 0, snapshot.get()));
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
  json body = QueueEntryToJson(entry, position, context.manager->inventory().Snapshot().get());
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
  return JsonResponse(
      200,
      json{{"cancelled", entry->state == QueueState::kCancelled},
           {"entry", QueueEntryToJson(*entry, 0, context.manager->inventory().Snapshot().get())}});
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
            {"blocked_by", diagnosis.blocked_by.empty() ? json() : json(diagnosis.blocked_by)},
            {"reasons", DiagnosisReasonsToJson(diagnosis)},
            {"would_fit", WouldFitToJson(diagnosis.would_fit)}};
  if (preview.schedule.placement) {
    json gpus = json::array();
    for (const GpuGrant& grant : preview.schedule.placement->grants) {
      gpus.push_back(GrantToJson(grant));
    }
    AddOutsideUse(gpus, preview.snapshot.get());
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
  const auto snapshot = context.manager->inventory().Snapshot();
  for (const Allocation& a : page) allocations.push_back(AllocationToJson(a, snapshot.get()));
  const size_t count = allocations.size();
  return JsonResponse(
      200, json{{"allocations", std::move(allocations)}, {"count", count}, {"next", next}});
}

HttpResponse GetAllocation(const ApiContext& context, const HttpRequest& request) {
  Result<Allocation> allocation = context.manager->ledger().Get(request.path_params.at("id"));
  if (!allocation.ok()) return ErrorResponse(allocation.status());
  return JsonResponse(200,
                      AllocationToJson(*allocation, context.manager->inventory().Snapshot().get()));
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
  return JsonResponse(
      200, json{{"released", true},
                {"allocation",
                 AllocationToJson(*released, context.manager->inventory().Snapshot().get())}});
}

HttpResponse Heartbeat(const ApiContext& context, const HttpRequest& request) {
  const Status allowed = MayChangeAllocation(context, request, request.path_params.at("id"));
  if (!allowed.ok()) return ErrorResponse(allowed);
  Result<Allocation> renewed = context.manager->Heartbeat(request.path_params.at("id"));
  if (!renewed.ok()) return ErrorResponse(renewed.status());
  return JsonResponse(
      200, json{{"allocation",
                 AllocationToJson(*renewed, context.manager->inventory().Snapshot().get())}});
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
  return JsonResponse(
      200, json{{"released", json::array({released->id})},
                {"count", 1},
                {"allocation",
                 AllocationToJson(*released, context.manager->inventory().Snapshot().get())}});
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
  RegisterStatusRoutes(context, router);
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
  RegisterMonitoringRoutes(context, router);
  RegisterMetricsRoute(context, router);
  router.Add("GET", "/api/v1/openapi.json", Access::kPublic, bind(OpenApi));
  RegisterPolicyRoutes(context.manager, router);
  RegisterPlanRoutes(context.manager, router);
  RegisterEventRoutes(context, router);
  RegisterAgentRoutes(context, router);
}

}  // namespace gpurm
