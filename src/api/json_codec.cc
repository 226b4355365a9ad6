#include "api/json_codec.h"

#include <cmath>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/clock.h"

namespace gpurm {
namespace {

using nlohmann::json;

const char* JsonTypeName(const json& value) {
  switch (value.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "an integer";
    case json::value_t::number_float:
      return "a number";
    case json::value_t::string:
      return "a string";
    case json::value_t::array:
      return "an array";
    case json::value_t::object:
      return "an object";
    default:
      return "an unsupported value";
  }
}

Status WrongType(const std::string& field, const char* expected, const json& value) {
  return InvalidArgument(std::string("expected ") + expected + ", got " + JsonTypeName(value),
                         field);
}

// A whole number that fits in int64, whether JSON wrote it as 2 or 2.0.
bool AsInteger(const json& value, int64_t* out) {
  if (value.is_number_integer()) {
    if (value.is_number_unsigned() && value.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
      return false;
    }
    *out = value.get<int64_t>();
    return true;
  }
  if (value.is_number_float()) {
    const double d = value.get<double>();
    if (std::isfinite(d) && std::floor(d) == d && std::fabs(d) < 9e15) {
      *out = static_cast<int64_t>(d);
      return true;
    }
  }
  return false;
}

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
  GpuRequest& r = parsed.request;
  // Each known field with the parser that stores it.
  using FieldParser = std::function<Status(const std::string&, const json&)>;
  auto integer = [](int64_t min, int64_t max, auto store) -> FieldParser {
    return [=](const std::string& field, const json& value) -> Status {
      const auto out_of_range = [&](const std::string& got) {
        return InvalidArgument("must be between " + std::to_string(min) + " and " +
                                   std::to_string(max) + ", got " + got,
                               field);
      };
      int64_t n = 0;
      if (!AsInteger(value, &n)) {
        // A whole number too large for 64 bits is out of range, not of type.
        if (value.is_number_unsigned() ||
            (value.is_number_float() && std::isfinite(value.get<double>()) &&
             std::floor(value.get<double>()) == value.get<double>())) {
          return out_of_range(value.dump());
        }
        if (value.is_number_float()) {
          return InvalidArgument("expected an integer, got " + value.dump(), field);
        }
        return WrongType(field, "an integer", value);
      }
      if (n < min || n > max) return out_of_range(std::to_string(n));
      store(n);
      return Status::Ok();
    };
  };
  auto number = [](double* target) -> FieldParser {
    return [=](const std::string& field, const json& value) -> Status {
      if (!value.is_number()) return WrongType(field, "a number", value);
      *target = value.get<double>();
      return Status::Ok();
    };
  };
  // A number in (0, max], e.g. a timeout.
  auto positive_number = [](double max, double* target) -> FieldParser {
    return [=](const std::string& field, const json& value) -> Status {
      if (!value.is_number()) return WrongType(field, "a number", value);
      const double d = value.get<double>();
      if (!(d > 0 && d <= max)) {
        return InvalidArgument(
            "must be more than 0 and at most " + json(max).dump() + ", got " + value.dump(), field);
      }
      *target = d;
      return Status::Ok();
    };
  };
  auto boolean = [](bool* target) -> FieldParser {
    return [=](const std::string& field, const json& value) -> Status {
      if (!value.is_boolean()) return WrongType(field, "true or false", value);
      *target = value.get<bool>();
      return Status::Ok();
    };
  };
  auto text = [](std::string* target) -> FieldParser {
    return [=](const std::string& field, const json& value) -> Status {
      if (!value.is_string()) return WrongType(field, "a string", value);
      if (value.get_ref<const std::string&>().size() > 256) {
        return InvalidArgument("must be at most 256 characters", field);
      }
      *target = value.get<std::string>();
      return Status::Ok();
    };
  };
  const std::map<std::string, FieldParser> fields = {
      {"gpu_count",
       integer(1, kMaxGpusPerRequest, [&r](int64_t n) { r.gpu_count = static_cast<int>(n); })},
      {"gpu_type", text(&r.gpu_type)},
      {"memory_gb", number(&r.memory_gb)},
      {"distributed_training", boolean(&r.distributed_training)},
      {"mixed_precision", boolean(&r.mixed_precision)},
      {"gpu_memory_fraction", number(&r.gpu_memory_fraction)},
      {"node_name", text(&r.node_name)},
      {"shared", boolean(&r.shared)},
      {"policy", text(&r.policy)},
      {"lease_ttl_seconds",
       integer(-1'000'000'000, 1'000'000'000, [&r](int64_t n) { r.lease_ttl_s = n; })},
      {"owner", text(&parsed.owner)},
      {"gpu_milli",
       integer(0, kMilliPerGpu, [&r](int64_t n) { r.gpu_milli = static_cast<int>(n); })},
      {"wait", boolean(&parsed.wait.wait)},
      {"wait_timeout_seconds", positive_number(kMaxWaitSeconds, &parsed.wait.timeout_s)},
      {"priority", integer(kMinPriority, kMaxPriority,
                           [&parsed](int64_t n) { parsed.wait.priority = static_cast<int>(n); })},
  };
  for (const auto& [key, value] : body.items()) {
    auto it = fields.find(key);
    if (it == fields.end()) {
      return InvalidArgument(
          "unknown field (known: gpu_count, gpu_type, memory_gb, "
          "distributed_training, mixed_precision, gpu_memory_fraction, "
          "node_name, shared, gpu_milli, policy, lease_ttl_seconds, owner, wait, "
          "wait_timeout_seconds, priority)",
          key);
    }
    if (value.is_null()) continue;  // null = keep the default.
    Status status = it->second(key, value);
    if (!status.ok()) return status;
  }
  return parsed;
}

json RequestToJson(const GpuRequest& request) {
  return json{{"gpu_count", request.gpu_count},
              {"gpu_type", request.gpu_type},
              {"memory_gb", request.memory_gb},
              {"distributed_training", request.distributed_training},
              {"mixed_precision", request.mixed_precision},
              {"gpu_memory_fraction", request.gpu_memory_fraction},
              {"node_name", request.node_name},
              {"shared", request.shared},
              {"gpu_milli", request.gpu_milli},
              {"policy", request.policy},
              {"lease_ttl_seconds", request.lease_ttl_s}};
}

double RoundGb(int64_t mib) { return std::round(GbFromMib(mib) * 100.0) / 100.0; }

json GrantToJson(const GpuGrant& grant) {
  return json{{"node_name", grant.node_name},
              {"gpu_index", grant.gpu_index},
              {"gpu_uuid", grant.gpu_uuid},
              {"memory_gb", RoundGb(grant.memory_mib)},
              {"exclusive", grant.exclusive}};
}

json AllocationToJson(const Allocation& allocation) {
  json gpus = json::array();
  for (const GpuGrant& grant : allocation.grants) gpus.push_back(GrantToJson(grant));
  const std::vector<std::string> nodes = allocation.NodeNames();
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
              {"idempotency_key", allocation.idempotency_key}};
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

json QueueEntryToJson(const QueueEntry& entry, size_t position) {
  return json{{"queue_id", entry.id},
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
              {"allocation", entry.allocation ? AllocationToJson(*entry.allocation) : json()}};
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
