// The REST API's handlers: plain functions of (request, manager) registered
// on a Router. They run on worker threads and may block on the ledger;
// routes added with Router::AddNonBlocking (/health, and /status, /nodes and
// /metrics from their caches) are also tried on I/O threads first, by
// functions that never block.
#ifndef GPURM_API_HANDLERS_H_
#define GPURM_API_HANDLERS_H_

#include <string>

#include "api/router.h"
#include "manager/manager.h"
#include "monitor/event_hub.h"
#include "monitor/http_metrics.h"
#include "monitor/process_accounting.h"
#include "monitor/sampler.h"

namespace gpurm {

// What the handlers work with. Everything must outlive the router; the
// monitoring members may be null (their endpoints then answer 503 or leave
// their metrics out).
struct ApiContext {
  GpuManager* manager = nullptr;
  double monitor_interval_s = 30;             // Reported by /monitoring.
  std::string openapi_document;               // Served at /api/v1/openapi.json.
  EventHub* events = nullptr;                 // Source of /api/v1/gpu/events.
  Sampler* sampler = nullptr;                 // On-demand refresh; its counters go to /metrics.
  const HttpMetrics* http_metrics = nullptr;  // Request counters for /metrics.
  // The latest process accounting pass (who uses which GPU, under which
  // allocation) for /monitoring and /metrics; nullptr = not accounted.
  const ProcessAccountBook* process_accounts = nullptr;
  // The highest priority a caller below the admin role may ask for (with
  // tokens on; server.max_priority_without_admin). Beyond: 403.
  int max_priority_without_admin = kMaxPriority;
  // /metrics also writes dcgm-exporter's series (api/dcgm_metrics.h);
  // server.dcgm_compatible_metrics.
  bool dcgm_compatible_metrics = false;
};

// The longest owner name accepted (X-Gpurm-Owner or the body's owner).
inline constexpr size_t kMaxOwnerLength = 128;

// Registers every /api/v1 endpoint (those of policy_handlers.h and
// plan_handlers.h included) and GET /metrics (docs/api.md). `context` must
// outlive the router.
void RegisterApiRoutes(const ApiContext& context, Router& router);

}  // namespace gpurm

#endif  // GPURM_API_HANDLERS_H_
