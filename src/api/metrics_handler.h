// GET /metrics: the Prometheus exposition of GPUs, allocations, the queue,
// the sampler and HTTP traffic (docs/api.md), plus dcgm-exporter's series
// when server.dcgm_compatible_metrics is on (api/dcgm_metrics.h).
#ifndef GPURM_API_METRICS_HANDLER_H_
#define GPURM_API_METRICS_HANDLER_H_

#include "api/handlers.h"
#include "api/router.h"

namespace gpurm {

// Registers GET /metrics. `context` must outlive the router.
void RegisterMetricsRoute(const ApiContext& context, Router& router);

}  // namespace gpurm

#endif  // GPURM_API_METRICS_HANDLER_H_
