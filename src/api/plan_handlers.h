// Framework plans for GPUs already granted:
//   GET /api/v1/gpu/allocations/{id}/plan?framework=pytorch|tensorflow
// answers what POST /setup-pytorch or /setup-tensorflow answers (the same
// plan builder, src/integrations/frameworks/plan.cc), for the GPUs the
// allocation holds instead of those a request would get now. It is a read,
// with the access of GET /allocations/{id}. The Python package applies these
// plans; it has no builder of its own.
#ifndef GPURM_API_PLAN_HANDLERS_H_
#define GPURM_API_PLAN_HANDLERS_H_

#include <vector>

#include "api/router.h"
#include "core/types.h"
#include "integrations/frameworks/plan.h"
#include "inventory/inventory.h"
#include "manager/manager.h"

namespace gpurm {

// The plan input for `request` on `grants`, with each granted GPU as
// `snapshot` shows it. Grants whose GPU the snapshot lacks are left out (a
// null snapshot leaves all out): the plan then covers fewer GPUs, or the CPU.
PlanInput PlanInputFor(const GpuRequest& request, const std::vector<GpuGrant>& grants,
                       const InventorySnapshot* snapshot);

// Registers GET /api/v1/gpu/allocations/{id}/plan. `manager` must outlive
// the router.
void RegisterPlanRoutes(GpuManager* manager, Router& router);

}  // namespace gpurm

#endif  // GPURM_API_PLAN_HANDLERS_H_
