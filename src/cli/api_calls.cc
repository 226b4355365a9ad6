// The HTTP requests the client commands send (the Build*Call functions of
// commands.h) and the request body built from their flags.
#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <utility>

#include "cli/commands.h"

namespace gpurm::cli {
namespace {

using nlohmann::json;

constexpr char kApi[] = "/api/v1/gpu";

}  // namespace

std::string PercentEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string encoded;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      encoded += c;
    } else {
      encoded += '%';
      encoded += kHex[byte >> 4];
      encoded += kHex[byte & 0x0F];
    }
  }
  return encoded;
}

json BuildGpuRequestJson(const RequestFlags& flags) {
  json request = {{"gpu_count", flags.gpus}};
  if (flags.type) request["gpu_type"] = *flags.type;
  if (flags.memory_gb) request["memory_gb"] = *flags.memory_gb;
  if (flags.distributed) request["distributed_training"] = true;
  if (flags.mixed_precision) request["mixed_precision"] = true;
  if (flags.fraction) request["gpu_memory_fraction"] = *flags.fraction;
  if (flags.node) request["node_name"] = *flags.node;
  if (flags.shared) request["shared"] = true;
  if (flags.policy) request["policy"] = *flags.policy;
  if (flags.lease_ttl_seconds) request["lease_ttl_seconds"] = *flags.lease_ttl_seconds;
  if (flags.owner) request["owner"] = *flags.owner;
  return request;
}

std::string DefaultOwner() {
  const char* env = std::getenv("GPURM_OWNER");
  if (env != nullptr && env[0] != '\0') return env;
  passwd entry{};
  passwd* found = nullptr;
  char buffer[4096];
  if (::getpwuid_r(::geteuid(), &entry, buffer, sizeof(buffer), &found) == 0 && found != nullptr) {
    return found->pw_name;
  }
  return "";
}

ApiCall BuildAllocateCall(const RequestFlags& flags, const std::string& idempotency_key) {
  ApiCall call{"POST", std::string(kApi) + "/allocate", BuildGpuRequestJson(flags), {}};
  if (!idempotency_key.empty()) call.headers.emplace_back("Idempotency-Key", idempotency_key);
  return call;
}

ApiCall BuildValidateCall(const RequestFlags& flags) {
  return {"POST", std::string(kApi) + "/validate", BuildGpuRequestJson(flags), {}};
}

ApiCall BuildStatusCall() { return {"GET", std::string(kApi) + "/status", nullptr, {}}; }

ApiCall BuildNodesCall(const std::optional<std::string>& gpu_type,
                       const std::optional<double>& min_memory_gb) {
  std::string query;
  if (gpu_type) query += "gpu_type=" + PercentEncode(*gpu_type);
  if (min_memory_gb) {
    if (!query.empty()) query += '&';
    query += "min_memory_gb=" + PercentEncode(json(*min_memory_gb).dump());
  }
  return {"GET", std::string(kApi) + "/nodes" + (query.empty() ? "" : "?" + query), nullptr, {}};
}

ApiCall BuildAllocationsCall(bool all, const std::optional<std::string>& owner) {
  std::string query;
  if (all) query += "all=true";
  if (owner) {
    if (!query.empty()) query += '&';
    query += "owner=" + PercentEncode(*owner);
  }
  return {
      "GET", std::string(kApi) + "/allocations" + (query.empty() ? "" : "?" + query), nullptr, {}};
}

ApiCall BuildAllNodesCall() {
  return {"GET", std::string(kApi) + "/monitoring?window=0", nullptr, {}};
}

ApiCall BuildHeartbeatCall(const std::string& allocation_id) {
  return {"POST",
          std::string(kApi) + "/allocations/" + PercentEncode(allocation_id) + "/heartbeat",
          json::object(),
          {}};
}

ApiCall BuildPoliciesCall() { return {"GET", std::string(kApi) + "/policies", nullptr, {}}; }

Result<ApiCall> BuildReleaseCall(const ReleaseFlags& flags) {
  const bool by_id = !flags.allocation_id.empty();
  const bool by_node = flags.node.has_value() || flags.gpus.has_value();
  if (by_id && by_node) {
    return InvalidArgument("give an allocation ID or --node with --gpus, not both");
  }
  if (!by_id && !(flags.node && flags.gpus)) {
    return InvalidArgument("give an allocation ID, or --node NAME together with --gpus COUNT");
  }
  HttpHeaders headers;
  if (flags.owner) headers.emplace_back("X-Gpurm-Owner", *flags.owner);
  if (by_id) {
    return ApiCall{"DELETE",
                   std::string(kApi) + "/allocations/" + PercentEncode(flags.allocation_id),
                   nullptr, std::move(headers)};
  }
  json body = {{"node_name", *flags.node}, {"gpu_count", *flags.gpus}};
  if (flags.owner) body["owner"] = *flags.owner;
  return ApiCall{"POST", std::string(kApi) + "/release", std::move(body), std::move(headers)};
}

}  // namespace gpurm::cli
