// The REST API's handlers: plain functions of (request, manager) registered
// on a Router. They run on worker threads, never on I/O threads, and may
// block on the ledger.
#ifndef GPURM_API_HANDLERS_H_
#define GPURM_API_HANDLERS_H_

#include <string>

#include "api/router.h"
#include "manager/manager.h"

namespace gpurm {

struct ApiContext {
  GpuManager* manager = nullptr;
  double monitor_interval_s = 30;  // Reported by /monitoring.
  std::string openapi_document;    // Served at /api/v1/openapi.json.
};

// Registers every /api/v1 endpoint (docs/api.md). `context` must outlive the router.
void RegisterApiRoutes(const ApiContext& context, Router& router);

}  // namespace gpurm

#endif  // GPURM_API_HANDLERS_H_
