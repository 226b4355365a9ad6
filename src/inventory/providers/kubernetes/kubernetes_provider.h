// KubernetesProvider: the cluster's GPU nodes as the API server describes
// them. Lists and watches Nodes and the Pods that are not finished (see
// kube/reflector.h) and turns them into gpurm Nodes:
// - GPUs: status.capacity of the extended resources in gpu_config.yaml's
//   gpu_resource map and the vendors' well-known names (nvidia.com/gpu,
//   amd.com/gpu, gpu.intel.com/i915, gpu.intel.com/xe, huawei.com/Ascend910,
//   huawei.com/Ascend310, huawei.com/npu). capacity - allocatable of them
//   are GPUs the device plugin reports unhealthy.
// - Model and memory from the labels the vendors' node labellers set:
//   NVIDIA GPU Feature Discovery (nvidia.com/gpu.product, nvidia.com/gpu.memory
//   in MiB), AMD's node labeller (amd.com/gpu.product-name, amd.com/gpu.vram
//   in GiB, "64G"), Intel's NFD rules (gpu.intel.com/product,
//   gpu.intel.com/memory.max: bytes of all the node's GPUs), the Ascend
//   device plugin (the resource name, or the accelerator=huawei-<model>
//   label); else the model's spec (gpu_memory_specs).
// - GPUs in use: the requests of pods bound to the node that have not
//   finished (Pending with a node, Running, Unknown), except pods of gpurm's
//   own Jobs (label gpurm.io/allocation), whose GPUs the ledger already
//   holds. The device plugin does not tell the API server which devices a
//   pod got, so gpurm marks the first GPUs of that resource on the node as
//   not offerable (healthy = false, health_reason naming the pods).
// - MIG: GPU Feature Discovery's mixed strategy offers each MIG profile as a
//   resource of its own ("nvidia.com/mig-3g.40gb"); each is read as MIG
//   devices (mig_profile "3g.40gb", model from "<resource>.product", memory
//   from "<resource>.memory" in MiB, no utilization). Which GPU a MIG device
//   is on is not published: a node's MIG devices share the parent uuid
//   "k8s:<node>:nvidia.com/gpu:mig" (no such GPU is listed). gpurm's Jobs
//   request that resource for a MIG grant.
// - Nodes cordoned (spec.unschedulable) or not Ready are listed but not
//   schedulable.
// GPU uuids are "k8s:<node>:<resource>:<n>", stable while the node's
// capacity is. Which of them a pod gets is the device plugin's choice when
// the pod starts (Node::device_plugin_assigns_gpus).
// - Live data from node agents (options.node_agent_selector): each Ready pod
//   of that selector in its namespace -- a `gpurm serve` with local
//   discovery on its node, the chart's DaemonSet -- is pulled every pass
//   (inventory/providers/agents/agent_puller.h) at its pod IP and the
//   container port named "http". Its whole GPUs, in index order, give the
//   node's GPUs in index order their live values: memory used, utilization,
//   temperature, power, clocks, ECC, XIDs, health and processes (with the
//   identity the agent found). Capacity, model and schedulability stay the
//   API server's (the device's model and memory fill in where no label or
//   spec gives them). A node without an answering agent
//   keeps the API server's view, with a note saying why.
#ifndef GPURM_INVENTORY_PROVIDERS_KUBERNETES_KUBERNETES_PROVIDER_H_
#define GPURM_INVENTORY_PROVIDERS_KUBERNETES_KUBERNETES_PROVIDER_H_

#include <chrono>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/gpu_model.h"
#include "inventory/provider.h"
#include "inventory/providers/agents/agent_puller.h"
#include "kube/client.h"
#include "kube/job.h"
#include "kube/reflector.h"

namespace gpurm {

// The label gpurm puts on the Jobs it creates and their pods.
inline constexpr const char* kAllocationLabel = kube::kJobAllocationLabel;

struct KubernetesProviderOptions {
  // gpu_config.yaml's gpu_resource (vendor -> resource name).
  std::map<std::string, std::string> gpu_resource;
  GpuMemorySpecs memory_specs;
  int64_t watch_timeout_s = 300;
  double retry_delay_s = 1;
  // Node agents: a label selector of pods in `node_agent_namespace`; empty:
  // none are pulled.
  std::string node_agent_selector;
  std::string node_agent_namespace;
  std::string node_agent_scheme = "http";  // "http" or "https".
  AgentPullOptions node_agent_pull;
};

// One node agent's answer, for MergeNodeAgentAnswer.
struct NodeAgentAnswer {
  std::string pod;        // "namespace/name" of the agent's pod.
  std::string node_name;  // The node its pod runs on.
  AgentPull pull;
};

// Gives the node `answer` runs on the live values of its agent's snapshot,
// as KubernetesProvider describes; a problem (not answering, another node's
// snapshot, no such GPU node) is a note and changes no node; returns
// whether the node got the live values. Pure.
bool MergeNodeAgentAnswer(NodeAgentAnswer answer, DiscoveryReport* report);

// The agents among `pods` (as the API returns them): "namespace/name", node
// and url of each Running pod that is Ready, has an IP, a node and a
// container port named "http". Pure.
struct NodeAgentPod {
  std::string pod;
  std::string node_name;
  std::string url;
};
std::vector<NodeAgentPod> NodeAgentPods(const std::map<std::string, nlohmann::json>& pods,
                                        const std::string& scheme);

// The extended resource names the provider counts: the configured ones and
// the well-known ones, without duplicates, sorted.
std::vector<std::string> GpuResourceNames(const std::map<std::string, std::string>& gpu_resource);

// Builds the inventory from Node and Pod objects (as the API returns them;
// the reflectors' trimmed copies are enough). Pure, for tests.
DiscoveryReport BuildKubernetesInventory(const std::map<std::string, nlohmann::json>& nodes,
                                         const std::map<std::string, nlohmann::json>& pods,
                                         const KubernetesProviderOptions& options);

// The allocation of the pod with `pod_uid` among `pods`: the label gpurm
// puts on its Jobs' pods; nullopt for another pod or an unknown UID. Pure.
std::optional<std::string> AllocationOfPod(const std::map<std::string, nlohmann::json>& pods,
                                           const std::string& pod_uid);

// Thread-compatible, like every provider; the reflectors run on their own
// threads from construction to destruction.
class KubernetesProvider final : public InventoryProvider {
 public:
  // `client` must outlive the provider.
  KubernetesProvider(const kube::KubeClient* client, KubernetesProviderOptions options);
  std::string name() const override { return "kubernetes"; }
  // The cached nodes and pods, with the node agents' live data.
  // kUnavailable (with the API server's error) until nodes and pods have
  // been listed once.
  Result<DiscoveryReport> Discover() override;

  // Waits until both collections are listed and `predicate` holds for the
  // inventory they give, or `timeout` passes. For tests and start-up.
  bool WaitUntil(const std::function<bool(const DiscoveryReport&)>& predicate,
                 std::chrono::milliseconds timeout) const;

  // AllocationOfPod over the cached pods. Thread-safe (process accounting
  // asks from the sampler thread).
  std::optional<std::string> AllocationOfPod(const std::string& pod_uid) const;

  kube::ReflectorView nodes_view() const { return nodes_->View(); }
  kube::ReflectorView pods_view() const { return pods_->View(); }

 private:
  // Pulls the node agents the reflector lists and merges their answers.
  void MergeNodeAgents(DiscoveryReport* report);

  const KubernetesProviderOptions options_;
  std::unique_ptr<kube::Reflector> nodes_;
  std::unique_ptr<kube::Reflector> pods_;
  // Both set only with a node_agent_selector; used by Discover's thread.
  std::unique_ptr<kube::Reflector> node_agents_;
  std::unique_ptr<AgentPuller> node_agent_puller_;
};

}  // namespace gpurm

#endif  // GPURM_INVENTORY_PROVIDERS_KUBERNETES_KUBERNETES_PROVIDER_H_
