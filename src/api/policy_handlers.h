// The placement policies the daemon offers:
//   GET /api/v1/gpu/policies -> {"policies": [{"name", "description"}],
//                                "default": "<server.policy>"}
// from core/placement_policies.h, the list the scheduler implements. The CLI,
// the web dashboard and the Python client read it instead of keeping lists
// of their own.
#ifndef GPURM_API_POLICY_HANDLERS_H_
#define GPURM_API_POLICY_HANDLERS_H_

#include "api/router.h"
#include "manager/manager.h"

namespace gpurm {

// Registers GET /api/v1/gpu/policies (viewer access, like every GET).
// `manager` (whose scheduler knows the configured default) must outlive the
// router.
void RegisterPolicyRoutes(const GpuManager* manager, Router& router);

}  // namespace gpurm

#endif  // GPURM_API_POLICY_HANDLERS_H_
