#include "api/json_codec.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "codec/json_fields.h"
#include "codec/request_codec.h"
#include "core/clock.h"

namespace gpurm {
namespace {

using nlohmann::json;

json NullableIso(int64_t unix_ms) { return unix_ms > 0 ? json(FormatIso8601(unix_ms)) : json(); }

}  // namespace

Result<json> ParseJsonObject(std::string_view body) {
  // Keys seen in each object being parsed (innermost last), and the first
  // key repeated within one object.
  std::vector<std::set<std::string>> open_objects;
  std::optional<std::string> duplicate;
  const json::parser_callback_t find_duplicates = [&](int, json::parse_event_t event, json& value) {
    switch (event) {
      case json::parse_event_t::object_start:
        open_objects.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case json::parse_event_t::key:
        if (!open_objects.empty() && !open_objects.back().insert(value.get<std::string>()).second &&
            !duplicate) {
          duplicate = value.get<std::string>();
        }
        break;
      default:
        break;
    }
    return true;
  };
  json parsed = json::parse(body, find_duplicates, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    return InvalidArgument("body is not valid JSON", "body");
  }
  if (duplicate) {
    // Which copy would win differs between parsers (and between a check and
    // the code after it): refuse rather than guess.
    return InvalidArgument("the key is given more than once in one object", *duplicate);
  }
  if (!parsed.is_object()) {
    return InvalidArgument(std::string("expected a JSON object, got ") + JsonTypeName(parsed),
                           "body");
  }
  return parsed;
}

Result<ParsedGpuRequest> ParseGpuRequest(const json& body) {
  ParsedGpuRequest parsed;
  for (const auto& [key, value] : body.items()) {
    // The request's own fields go through the one request codec; the rest
    // are this endpoint's options.
    Status status = DecodeGpuRequestField(key, value, &parsed.request);
    if (status.code() != StatusCode::kNotFound) {
      if (!status.ok()) return status;
      continue;
    }
    if (value.is_null()) continue;  // null = keep the default.
    if (key == "owner") {
      if (!value.is_string()) return WrongType(key, "a string", value);
      if (value.get_ref<const std::string&>().size() > 256) {
        return InvalidArgument("must be at most 256 characters", key);
      }
      parsed.owner = value.get<std::string>();
    } else if (key == "wait") {
      if (!value.is_boolean()) return WrongType(key, "true or false", value);
      parsed.wait.wait = value.get<bool>();
    } else if (key == "wait_timeout_seconds") {
      if (!value.is_number()) return WrongType(key, "a number", value);
      const double seconds = value.get<double>();
      if (!(seconds > 0 && seconds <= kMaxWaitSeconds)) {
        return InvalidArgument("must be more than 0 and at most " + json(kMaxWaitSeconds).dump() +
                                   ", got " + value.dump(),
                               key);
      }
      parsed.wait.timeout_s = seconds;
    } else if (key == "priority") {
      Result<int64_t> priority = ReadInteger(key, value, kMinPriority, kMaxPriority);
      if (!priority.ok()) return priority.status();
      parsed.wait.priority = static_cast<int>(*priority);
    } else {
      std::string known;
      for (const std::string& name : GpuRequestFieldNames()) known += name + ", ";
      return InvalidArgument(
          "unknown field (known: " + known + "owner, wait, wait_timeout_seconds, priority)", key);
    }
  }
  return parsed;
}

json RequestToJson(const GpuRequest& request) { return EncodeGpuRequest(request); }

double RoundGb(int64_t mib) { return std::round(GbFromMib(mib) * 100.0) / 100.0; }

json GrantToJson(const GpuGrant& grant) {
  return json{{"node_name", grant.node_name},
              {"gpu_index", grant.gpu_index},
              {"gpu_uuid", grant.gpu_uuid},
              {"memory_gb", RoundGb(grant.memory_mib)},
              {"exclusive", grant.exclusive}};
}

void AddOutsideUse(json& gpus, const InventorySnapshot* snapshot) {
  for (json& grant : gpus) {
    int64_t outside_mib = 0;
    if (snapshot != nullptr) {
      const std::string uuid = grant.value("gpu_uuid", "");
      for (const Node& node : snapshot->nodes) {
        if (node.name != grant.value("node_name", "")) continue;
        for (const Gpu& gpu : node.gpus) {
          if (gpu.uuid == uuid) {
            outside_mib =
                std::max<int64_t>(0, gpu.memory_used_mib - gpu.memory_used_by_managed_mib);
          }
        }
      }
    }
    grant["outside_use_gb"] = RoundGb(outside_mib);
    grant["access"] = !grant.value("exclusive", true) ? "shared"
                      : outside_mib > 0               ? "exclusive_with_outside_processes"
                                                      : "exclusive";
  }
}

json AllocationToJson(const Allocation& allocation, const InventorySnapshot* snapshot) {
  const std::vector<std::string> nodes = allocation.NodeNames();
  json lost_nodes = json::array();
  if (snapshot != nullptr && allocation.state == AllocationState::kActive) {
    for (const Node& node : snapshot->nodes) {
      if (node.lost() && std::find(nodes.begin(), nodes.end(), node.name) != nodes.end()) {
        lost_nodes.push_back(node.name);
      }
    }
  }
  json gpus = json::array();
  for (const GpuGrant& grant : allocation.grants) gpus.push_back(GrantToJson(grant));
  return json{{"allocation_id", allocation.id},
              {"owner", allocation.owner},
              {"state", AllocationStateName(allocation.state)},
              {"node_name", nodes.empty() ? std::string() : nodes.front()},
              {"nodes", nodes},
              {"gpus", std::move(gpus)},
              {"request", RequestToJson(allocation.request)},
              {"created_at", FormatIso8601(allocation.created_unix_ms)},
              {"ended_at", NullableIso(allocation.ended_unix_ms)},
              {"lease_ttl_seconds", allocation.request.lease_ttl_s},
              {"lease_expires_at", NullableIso(allocation.lease_expires_unix_ms)},
              {"idempotency_key", allocation.idempotency_key},
              {"lost_nodes", std::move(lost_nodes)}};
}

json DiagnosisReasonsToJson(const Diagnosis& diagnosis) {
  json reasons = json::array();
  for (const NodeReason& reason : diagnosis.reasons) {
    reasons.push_back({{"node_name", reason.node_name},
                       {"reason", reason.reason},
                       {"status", FitCodeName(reason.code)}});
  }
  return reasons;
}

json QueueEntryToJson(const QueueEntry& entry, size_t position, const InventorySnapshot* snapshot) {
  return json{
      {"queue_id", entry.id},
      {"owner", entry.owner},
      {"state", QueueStateName(entry.state)},
      {"priority", entry.priority},
      {"position", position},
      {"request", RequestToJson(entry.request)},
      {"enqueued_at", FormatIso8601(entry.enqueued_unix_ms)},
      {"expires_at", FormatIso8601(entry.deadline_unix_ms)},
      {"ended_at", NullableIso(entry.ended_unix_ms)},
      {"message", entry.message},
      {"allocation_id", entry.allocation ? json(entry.allocation->id) : json()},
      {"allocation", entry.allocation ? AllocationToJson(*entry.allocation, snapshot) : json()}};
}

json WouldFitToJson(const WouldFit& fit) {
  return json{{"max_gpus_on_one_node", fit.max_gpus_on_one_node},
              {"max_memory_gb_per_gpu", fit.max_memory_gb_per_gpu},
              {"gpu_types_available", fit.gpu_types_available},
              {"suggestion", fit.suggestion}};
}

json ErrorJson(const Status& status) {
  return json{{"error",
               {{"code", StatusCodeName(status.code())},
                {"message", status.message()},
                {"field", status.field()}}}};
}

int HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kInvalidArgument:
      return 400;
    case StatusCode::kUnauthenticated:
      return 401;
    case StatusCode::kPermissionDenied:
      return 403;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kAlreadyExists:
    case StatusCode::kFailedPrecondition:
    case StatusCode::kUnschedulableNow:
    case StatusCode::kUnschedulableNever:
      return 409;
    // Storage full or a limit of the service: retry later, nothing changed.
    case StatusCode::kResourceExhausted:
    case StatusCode::kUnavailable:
      return 503;
    case StatusCode::kInternal:
      return 500;
  }
  return 500;
}

}  // namespace gpurm
