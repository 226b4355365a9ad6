// How this daemon pulls agents' snapshots, from gpu_config.yaml: the
// controller section's token_file, ca_file and request_timeout_s, for both
// a controller's agents (controller.agents) and Kubernetes mode's node
// agents (kubernetes.node_agent_selector).
#ifndef GPURM_DAEMON_AGENT_PULL_OPTIONS_H_
#define GPURM_DAEMON_AGENT_PULL_OPTIONS_H_

#include "config/config.h"
#include "core/status.h"
#include "inventory/providers/agents/agent_puller.h"

namespace gpurm {

// Reads the token file once; an unreadable or empty one is
// kInvalidArgument naming controller.token_file.
Result<AgentPullOptions> AgentPullOptionsFrom(const Config& config);

}  // namespace gpurm

#endif  // GPURM_DAEMON_AGENT_PULL_OPTIONS_H_
