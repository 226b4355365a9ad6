// JSON at the API edge: strict parsing of requests (every error names the
// field) and rendering of domain values. Nothing here throws.
#ifndef GPURM_API_JSON_CODEC_H_
#define GPURM_API_JSON_CODEC_H_

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "core/status.h"
#include "core/types.h"
#include "manager/manager.h"
#include "manager/queue.h"
#include "scheduler/scheduler.h"

namespace gpurm {

// Parses a body that must be a JSON object. kInvalidArgument on malformed JSON
// (field "body") or a non-object.
Result<nlohmann::json> ParseJsonObject(std::string_view body);

// A GPU request with its optional owner. Unknown fields and wrong types are
// kInvalidArgument naming the field; value ranges are checked by
// ValidateRequest in the scheduler.
struct ParsedGpuRequest {
  GpuRequest request;
  std::string owner;  // Empty when the body has none.
  // "wait", "wait_timeout_seconds" (default 300) and "priority" (POST /allocate).
  WaitOptions wait;
};
Result<ParsedGpuRequest> ParseGpuRequest(const nlohmann::json& body);

nlohmann::json RequestToJson(const GpuRequest& request);
nlohmann::json GrantToJson(const GpuGrant& grant);
// Adds to each grant of `gpus` (as GrantToJson writes them) what
// `snapshot` says about the GPU's use by processes outside gpurm:
// "outside_use_gb" and "access" -- "exclusive" (no one else uses the GPU),
// "exclusive_with_outside_processes" (no other gpurm allocation holds it, but
// processes outside gpurm use it) or "shared" (a slice).
void AddOutsideUse(nlohmann::json& gpus, const InventorySnapshot* snapshot);
// With "lost_nodes": the allocation's nodes that `snapshot` says are lost
// (their agents do not answer), for active allocations; nullptr = none known.
nlohmann::json AllocationToJson(const Allocation& allocation, const InventorySnapshot* snapshot);
nlohmann::json DiagnosisReasonsToJson(const Diagnosis& diagnosis);
nlohmann::json WouldFitToJson(const WouldFit& fit);
// A queue entry as GET /queue lists it; `position` is 1-based, 0 when not waiting.
nlohmann::json QueueEntryToJson(const QueueEntry& entry, size_t position,
                                const InventorySnapshot* snapshot);

// {"error": {"code", "message", "field"}}.
nlohmann::json ErrorJson(const Status& status);
// The HTTP status for a non-OK code.
int HttpStatusFor(StatusCode code);

// GB rounded to 2 decimals for display.
double RoundGb(int64_t mib);

}  // namespace gpurm

#endif  // GPURM_API_JSON_CODEC_H_
