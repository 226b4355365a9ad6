// AgentPuller: reads GET /api/v1/gpu/agent/snapshot (codec/node_codec.h) of
// many agents at once. One libcurl multi transfer per Pull, each agent's
// bounded by `request_timeout`, so a pull takes about as long as the slowest
// agent and never longer than the timeout. Connections are kept from one
// pull to the next for agents pulled again (same url) and closed for those
// that are not.
//
// It only reads: what an answer means (a lost node, a node merged into the
// cluster's view) is its callers' business (AgentsProvider, the Kubernetes
// provider's node agents).
//
// Thread-compatible: one Pull at a time.
#ifndef GPURM_INVENTORY_PROVIDERS_AGENTS_AGENT_PULLER_H_
#define GPURM_INVENTORY_PROVIDERS_AGENTS_AGENT_PULLER_H_

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "codec/node_codec.h"
#include "core/gpu_model.h"

namespace gpurm {

inline constexpr char kAgentSnapshotPath[] = "/api/v1/gpu/agent/snapshot";

struct AgentPullOptions {
  std::string bearer_token;  // Sent to every agent; empty: none.
  std::string ca_file;       // Verifies https agents; empty: the system's CAs.
  // Whether an https agent's certificate must also name the host in its
  // url. Off for agents reached at pod IPs, which certificates rarely
  // name: the certificate must still be signed by `ca_file`.
  bool verify_host = true;
  std::chrono::milliseconds request_timeout{2000};
  // Largest answer read from one agent; a longer one is a problem.
  size_t max_answer_bytes = 16 << 20;
  GpuMemorySpecs memory_specs;  // For parsing the agents' GPU model names.
};

struct AgentPull {
  std::string url;  // API base, "http(s)://host:port", as asked.
  // Why the answer is not a snapshot ("not answering: ...", "answered HTTP
  // 401: ...", "answered an invalid snapshot: node.gpus[0].uuid: ..."); empty
  // when it is one, and then `report` holds it. Whether the snapshot is of
  // the node the caller expected is the caller's to check.
  std::string problem;
  AgentReport report;
};

class AgentPuller {
 public:
  explicit AgentPuller(AgentPullOptions options);
  ~AgentPuller();
  AgentPuller(const AgentPuller&) = delete;
  AgentPuller& operator=(const AgentPuller&) = delete;

  // One answer per url, in the order of `urls`.
  std::vector<AgentPull> Pull(const std::vector<std::string>& urls);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The host of "http(s)://host:port/...", without IPv6 brackets.
std::string HostOfUrl(const std::string& url);

}  // namespace gpurm

#endif  // GPURM_INVENTORY_PROVIDERS_AGENTS_AGENT_PULLER_H_
