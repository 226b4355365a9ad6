// AgentsProvider: a controller's inventory, pulled from one agent per server
// (agent_puller.h).
// An agent is a `gpurm serve` with local discovery on that server; it
// answers GET /api/v1/gpu/agent/snapshot with its node (codec/node_codec.h):
// its live GPUs, their health and samples, and each GPU process with the
// allocation its agent found for it. Each Discover pulls every agent at once
// (one libcurl multi transfer, each bounded by `request_timeout`), so a pass
// takes about as long as the slowest agent, never longer than the timeout.
//
// An agent that does not answer in time, answers an HTTP error, or answers
// something that is not a valid snapshot of the node it is configured as
// (garbage JSON, another node's name, a GPU another agent already
// reported) makes its node *lost*: Node::lost_reason says why and since
// when, the node is not schedulable, and it keeps the GPUs it last reported
// (marked stale, so no history sample is made up for them) so that the
// allocations on them stay visible. The next valid answer brings it back.
// Nothing an agent sends changes anything but its own node.
//
// Thread-compatible, as every provider: the Inventory calls Discover from one
// thread at a time.
#ifndef GPURM_INVENTORY_PROVIDERS_AGENTS_AGENTS_PROVIDER_H_
#define GPURM_INVENTORY_PROVIDERS_AGENTS_AGENTS_PROVIDER_H_

#include <memory>
#include <string>
#include <vector>

#include "core/clock.h"
#include "inventory/provider.h"
#include "inventory/providers/agents/agent_puller.h"

namespace gpurm {

struct AgentsProviderOptions {
  struct Agent {
    std::string name;  // The node name it must report.
    std::string url;   // API base, "http(s)://host:port".
  };
  std::vector<Agent> agents;
  AgentPullOptions pull;         // Token, CA, timeout; an agent whose pull fails is lost.
  const Clock* clock = nullptr;  // Required.
};

class AgentsProvider final : public InventoryProvider {
 public:
  explicit AgentsProvider(AgentsProviderOptions options);
  ~AgentsProvider() override;
  AgentsProvider(const AgentsProvider&) = delete;
  AgentsProvider& operator=(const AgentsProvider&) = delete;

  std::string name() const override { return "agents"; }
  // Never fails: an agent that cannot be read is a lost node and a note.
  Result<DiscoveryReport> Discover() override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gpurm

#endif  // GPURM_INVENTORY_PROVIDERS_AGENTS_AGENTS_PROVIDER_H_
