// GET /api/v1/gpu/events: the monitor's GPU events as Server-Sent Events
// (docs/api.md), optionally for one node (?node=NAME). Each subscriber has a
// bounded queue; one that falls behind is told how many events it missed
// ("event: dropped") rather than slowing the others. The HTTP server's
// stream limits (per client, send timeout) apply.
#ifndef GPURM_API_EVENT_HANDLERS_H_
#define GPURM_API_EVENT_HANDLERS_H_

#include "api/handlers.h"
#include "api/router.h"

namespace gpurm {

// Registers GET /api/v1/gpu/events, served from context.events as it is at
// each request (null: 503). `context` must outlive the router.
void RegisterEventRoutes(const ApiContext& context, Router& router);

}  // namespace gpurm

#endif  // GPURM_API_EVENT_HANDLERS_H_
