// The cluster at a glance: GET /api/v1/gpu/health (public; answered on the
// I/O thread, in-memory state only), /status and /nodes (docs/api.md; cached
// per manager version and inventory generation, api/state_cache.h, and
// answered on the I/O thread while the cache is current).
#ifndef GPURM_API_STATUS_HANDLERS_H_
#define GPURM_API_STATUS_HANDLERS_H_

#include "api/handlers.h"
#include "api/router.h"

namespace gpurm {

// Registers /health, /status and /nodes. `context` must outlive the router.
void RegisterStatusRoutes(const ApiContext& context, Router& router);

}  // namespace gpurm

#endif  // GPURM_API_STATUS_HANDLERS_H_
