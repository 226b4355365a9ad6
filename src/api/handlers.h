// The REST API's handlers: plain functions of (request, manager) registered
// on a Router. They run on worker threads, never on I/O threads, and may
// block on the ledger.
#ifndef GPURM_API_HANDLERS_H_
#define GPURM_API_HANDLERS_H_

#include <string>

#include "api/router.h"
#include "manager/manager.h"
#include "monitor/event_hub.h"
#include "monitor/http_metrics.h"
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
  // /metrics also writes dcgm-exporter's series (api/dcgm_metrics.h);
  // server.dcgm_compatible_metrics.
  bool dcgm_compatible_metrics = false;
};

// Registers every /api/v1 endpoint and GET /metrics (docs/api.md). `context`
// must outlive the router.
void RegisterApiRoutes(const ApiContext& context, Router& router);

}  // namespace gpurm

#endif  // GPURM_API_HANDLERS_H_
