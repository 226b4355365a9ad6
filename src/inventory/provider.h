// InventoryProvider: one back end that finds nodes and GPUs (a static file,
// this machine's vendor libraries, Kubernetes). Providers never fail the
// daemon: what they cannot see they explain in `notes`.
#ifndef GPURM_INVENTORY_PROVIDER_H_
#define GPURM_INVENTORY_PROVIDER_H_

#include <string>
#include <vector>

#include "core/status.h"
#include "core/types.h"

namespace gpurm {

struct DiscoveryReport {
  std::vector<Node> nodes;
  // Human-readable findings, one per back end or problem, e.g.
  // "nvidia: libnvidia-ml.so.1 not found". Shown in /health and the log.
  std::vector<std::string> notes;
  // UUIDs of GPUs whose values are not from this call but older (their
  // sampling timed out; they are reported unhealthy, with the reason): the
  // inventory adds no history sample for them.
  std::vector<std::string> stale_gpus;
  // CPU time the provider's own threads spent on this call (the sampling
  // workers), which the calling thread's CPU clock does not see.
  double worker_cpu_seconds = 0;
};

// Thread-compatible: the Inventory calls Discover from one thread at a time.
// Discover's time must be bounded even when a vendor call hangs (the sampler
// waits for it): LocalProvider bounds it with a per-GPU deadline.
class InventoryProvider {
 public:
  virtual ~InventoryProvider() = default;
  // Short name for logs and /health: "static", "local", "kubernetes".
  virtual std::string name() const = 0;
  // Returns the current nodes with their GPUs' latest values. An error means
  // the provider could not answer at all (e.g. unreadable file); a provider
  // that merely finds no GPUs returns OK with an explaining note.
  virtual Result<DiscoveryReport> Discover() = 0;
};

}  // namespace gpurm

#endif  // GPURM_INVENTORY_PROVIDER_H_
