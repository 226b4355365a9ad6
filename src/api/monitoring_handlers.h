// GET /api/v1/gpu/monitoring (every GPU with its recent history, who holds
// it, and the cluster's utilization summary) and POST /monitoring/refresh (a
// sampling pass now), docs/api.md.
#ifndef GPURM_API_MONITORING_HANDLERS_H_
#define GPURM_API_MONITORING_HANDLERS_H_

#include "api/handlers.h"
#include "api/router.h"

namespace gpurm {

// Registers both routes. `context` must outlive the router.
void RegisterMonitoringRoutes(const ApiContext& context, Router& router);

}  // namespace gpurm

#endif  // GPURM_API_MONITORING_HANDLERS_H_
