// Kubernetes mode of `gpurm serve` (gpu_config.yaml `kubernetes.enabled`,
// docs/kubernetes.md): everything that replaces the single-machine parts
// when gpurm runs in a cluster, wired here so serve.cc stays a list of
// parts. Owns the API client, the cluster ledger (GpuAllocation objects),
// the Lease election and the Job tracker; hands out the inventory provider.
#ifndef GPURM_DAEMON_KUBERNETES_MODE_H_
#define GPURM_DAEMON_KUBERNETES_MODE_H_

#include <spdlog/spdlog.h>

#include <memory>

#include "api/jobs_handlers.h"
#include "api/router.h"
#include "config/config.h"
#include "inventory/provider.h"
#include "inventory/providers/kubernetes/kubernetes_provider.h"
#include "kube/client.h"
#include "kube/job.h"
#include "kube/leader_election.h"
#include "ledger/kubernetes_ledger.h"
#include "manager/manager.h"
#include "monitor/process_accounting.h"

namespace gpurm {

class KubernetesMode {
 public:
  // Connects (kubeconfig or the pod's service account) and opens the
  // ledger; errors say what to fix (unreachable, CRD missing, RBAC).
  static Result<std::unique_ptr<KubernetesMode>> Open(const Config& config, spdlog::logger* log);
  ~KubernetesMode();

  // The inventory provider (once).
  std::unique_ptr<InventoryProvider> TakeProvider();
  // Pod UID -> allocation, from the provider's pods, for process accounting
  // (monitor/process_accounting.h). Valid while the provider TakeProvider
  // handed out lives.
  PodAllocationLookup PodAllocations() const;
  Ledger* ledger() const { return ledger_.get(); }

  // Starts the election and the Job tracker and adds the Kubernetes
  // endpoints (api/jobs_handlers.h). `manager` must stay alive until Stop().
  void Serve(GpuManager* manager, Router& router);
  // Stops the tracker and the election, releasing the Lease if held.
  // Idempotent; call before the manager goes.
  void Stop();

 private:
  KubernetesMode() = default;

  const Config* config_ = nullptr;
  spdlog::logger* log_ = nullptr;
  std::string namespace_name_;
  std::unique_ptr<kube::KubeClient> client_;
  AgentPullOptions node_agent_pull_;              // For kubernetes.node_agent_selector.
  const KubernetesProvider* provider_ = nullptr;  // Owned by the Inventory once taken.
  std::unique_ptr<KubernetesLedger> ledger_;      // Before the elector: its on_acquired uses it.
  std::unique_ptr<kube::LeaderElector> elector_;
  std::unique_ptr<kube::JobTracker> tracker_;
  JobsContext jobs_;
};

}  // namespace gpurm

#endif  // GPURM_DAEMON_KUBERNETES_MODE_H_
