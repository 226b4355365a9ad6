#include "ledger/allocation_rules.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <string_view>
#include <unordered_set>

#include "codec/request_codec.h"

namespace gpurm {

Result<std::string> StorableRequestJson(const GpuRequest& request) {
  const nlohmann::json json = EncodeGpuRequest(request);
  for (const auto& [key, value] : json.items()) {
    if (value.is_number_float() && !std::isfinite(value.get<double>())) {
      return InvalidArgument("must be a finite number", "request." + key);
    }
  }
  if (Status readable = DecodeGpuRequest(json, FieldCase::kSnake, "request.").status();
      !readable.ok()) {
    return readable;
  }
  try {
    return json.dump();
  } catch (const nlohmann::json::exception& e) {
    return InvalidArgument(std::string("cannot be stored: ") + e.what(), "request");
  }
}

Status ValidateNewAllocation(const Allocation& allocation) {
  if (allocation.id.empty()) return InvalidArgument("must not be empty", "id");
  if (allocation.state != AllocationState::kActive) {
    return InvalidArgument("a new allocation must be active", "state");
  }
  if (allocation.ended_unix_ms != 0) {
    return InvalidArgument("must be 0 for an active allocation", "ended_unix_ms");
  }
  if (allocation.lease_expires_unix_ms < 0) {
    return InvalidArgument("must be >= 0", "lease_expires_unix_ms");
  }
  // CheckIntegrity's invariant: an active allocation holds at least one GPU.
  if (allocation.grants.empty()) {
    return InvalidArgument("an allocation needs at least one grant", "grants");
  }
  std::unordered_set<std::string_view> uuids;
  for (const GpuGrant& grant : allocation.grants) {
    if (grant.gpu_uuid.empty()) return InvalidArgument("must not be empty", "grants.gpu_uuid");
    if (grant.memory_mib < 0) return InvalidArgument("must be >= 0", "grants.memory_mib");
    if (!uuids.insert(grant.gpu_uuid).second) {
      return InvalidArgument("GPU " + grant.gpu_uuid + " is granted twice", "grants.gpu_uuid");
    }
  }
  return Status::Ok();
}

bool NewerFirst(const Allocation& a, const Allocation& b) {
  if (a.created_unix_ms != b.created_unix_ms) return a.created_unix_ms > b.created_unix_ms;
  return a.id > b.id;
}

bool ExpiredFirst(const Allocation& a, const Allocation& b) {
  if (a.lease_expires_unix_ms != b.lease_expires_unix_ms) {
    return a.lease_expires_unix_ms < b.lease_expires_unix_ms;
  }
  return a.id < b.id;
}

Status CheckGrantFits(const GpuGrant& grant, const GpuUse& use) {
  const bool conflict = grant.exclusive ? use.exclusive + use.shared > 0 : use.exclusive > 0;
  if (!conflict) return Status::Ok();
  return {StatusCode::kFailedPrecondition, "GPU " + grant.gpu_uuid + " is already held " +
                                               (use.exclusive > 0 ? "exclusively" : "shared") +
                                               " by another active allocation"};
}

}  // namespace gpurm
