// The agent protocol's JSON form of a node: what an agent (a `gpurm serve`
// on one server, with local discovery) reports of its machine and what a
// controller reads back into the very same Node -- every GPU field, MIG
// devices, health, and each GPU process with the identity the agent found
// for it (GpuProcess::Identity). A GPU's model travels as its raw name; the
// reader parses it with its own memory specs, as every other provider does.
//
// Decoding is strict: unknown keys, wrong types, out-of-range numbers and
// strings over 4,096 bytes are kInvalidArgument naming the field
// ("node.gpus[2].memory_total_mib"), so a confused or hostile agent cannot
// slip a half-read node into the inventory.
//
// Thread-safety: every function is safe to call concurrently.
#ifndef GPURM_CODEC_NODE_CODEC_H_
#define GPURM_CODEC_NODE_CODEC_H_

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/gpu_model.h"
#include "core/status.h"
#include "core/types.h"

namespace gpurm {

// The protocol's version; an answer of another version is refused.
inline constexpr int kAgentProtocolVersion = 1;

// One agent's answer (GET /api/v1/gpu/agent/snapshot).
struct AgentReport {
  Node node;
  int64_t taken_unix_ms = 0;            // When the agent's snapshot was taken.
  std::vector<std::string> stale_gpus;  // UUIDs whose values are old (DiscoveryReport).
  std::vector<std::string> notes;       // The agent's discovery notes.
};

nlohmann::json EncodeAgentReport(const AgentReport& report);

// `memory_specs`: the reader's, for parsing GPU model names.
Result<AgentReport> DecodeAgentReport(const nlohmann::json& document,
                                      const GpuMemorySpecs& memory_specs);

}  // namespace gpurm

#endif  // GPURM_CODEC_NODE_CODEC_H_
