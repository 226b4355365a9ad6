// The cluster at a glance: GET /api/v1/gpu/health (public; answered on the
// I/O thread, in-memory state only), /status (cached per inventory and ledger
// generation) and /nodes (docs/api.md).
#ifndef GPURM_API_STATUS_HANDLERS_H_
#define GPURM_API_STATUS_HANDLERS_H_

#include "api/handlers.h"
#include "api/router.h"

namespace gpurm {

// Registers /health, /status and /nodes. `context` must outlive the router.
void RegisterStatusRoutes(const ApiContext& context, Router& router);

}  // namespace gpurm

#endif  // GPURM_API_STATUS_HANDLERS_H_
