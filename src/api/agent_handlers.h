// GET /api/v1/gpu/agent/snapshot: this daemon as one server's agent -- its
// node exactly as its inventory last saw it, each GPU process with the
// allocation this machine's process accounting found for it -- for a
// controller to pull (inventory/providers/agents, codec/node_codec.h).
// Needs the agent role or above when tokens are on.
#ifndef GPURM_API_AGENT_HANDLERS_H_
#define GPURM_API_AGENT_HANDLERS_H_

#include "api/handlers.h"
#include "api/router.h"

namespace gpurm {

// `context` must outlive the router.
void RegisterAgentRoutes(const ApiContext& context, Router& router);

}  // namespace gpurm

#endif  // GPURM_API_AGENT_HANDLERS_H_
