// Jobs for allocations: the batch/v1 Job that runs a training command on the
// GPUs of one allocation, and the tracker that ends the allocation when its
// Job finishes or is deleted.
#ifndef GPURM_KUBE_JOB_H_
#define GPURM_KUBE_JOB_H_

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/status.h"
#include "kube/client.h"
#include "kube/reflector.h"

namespace gpurm::kube {

// The label on gpurm's Jobs, their pods and Services: the allocation id.
inline constexpr char kJobAllocationLabel[] = "gpurm.io/allocation";
// The allocation's idempotency key for a Job named N is kJobKeyPrefix + N:
// it ties the allocation to its Job across restarts and makes a retried
// job submission hold GPUs once.
inline constexpr char kJobKeyPrefix[] = "k8s-job:";

// Where a Job's image keeps the CUDA guard (src/guard): a training image
// copies it there from gpurm's image (docs/kubernetes.md). An image without
// it runs unguarded; the dynamic loader says so on stderr.
inline constexpr char kCudaGuardImagePath[] = "/usr/local/lib/gpurm/libgpurm_cuda_guard.so";

// What a Job runs and where.
struct JobSpec {
  std::string name;  // DNS-1123 label, <= 52 characters (Kubernetes' limit for Jobs).
  std::string namespace_name;
  std::string allocation_id;
  std::string owner;
  std::string image;
  std::vector<std::string> command;
  // Node name -> GPUs granted there (all equal for several nodes).
  std::map<std::string, int> gpus_per_node;
  std::string gpu_resource;  // "nvidia.com/gpu", "amd.com/gpu", ...
  // Environment of every pod, in order of insertion by name.
  std::map<std::string, std::string> environment;
  int master_port = 29500;
  int64_t backoff_limit = 0;  // Retries of failed pods; 0: a failure ends the Job.
};

// Checks the spec: a valid name, an image, a command, GPUs on at least one
// node, the same number on every node of a multi-node Job.
Status ValidateJobSpec(const JobSpec& spec);

// The Job: one pod pinned to the node by nodeSelector kubernetes.io/hostname
// for one node; for N nodes an Indexed Job of N pods, each on a different
// one of the nodes (required node affinity on kubernetes.io/hostname plus
// pod anti-affinity), reachable as <name>-<index>.<name> through the
// headless Service of BuildJobService, with MASTER_ADDR/MASTER_PORT/NNODES/
// NODE_RANK (from the completion index) for torchrun. Every pod limits
// `gpu_resource` to its node's GPUs and carries the allocation label. When
// the environment holds GPURM_CUDA_MEMORY_LIMITS_MB and no LD_PRELOAD, the
// pods preload the CUDA guard from kCudaGuardImagePath (an LD_PRELOAD in the
// environment, even empty, replaces it).
nlohmann::json BuildJob(const JobSpec& spec);
// The headless Service a multi-node Job's pods resolve each other by.
nlohmann::json BuildJobService(const JobSpec& spec);

// Finished (condition Complete, SuccessCriteriaMet, Failed or FailureTarget
// true): the Job's pods hold no GPU any more.
bool JobFinished(const nlohmann::json& job);

struct JobTrackerOptions {
  std::string namespace_name;
  // An allocation of a Job that is not in the cache is released only when
  // it is older than this (its Job may be being created).
  double grace_s = 30;
  double resync_s = 5;  // How often it checks when nothing changes.
  int64_t watch_timeout_s = 300;
  double retry_delay_s = 1;
};

// Tracks gpurm's Jobs (label gpurm.io/allocation) through a list-watch and
// tells `end` which allocations to end: those whose Job finished, or whose
// Job is gone. The allocations come from `active`: (allocation id,
// idempotency key, created unix ms) of every active allocation. Runs on a
// thread from Start() to destruction; `should_act` (e.g. "this replica
// leads") gates each pass.
class JobTracker {
 public:
  struct ActiveAllocation {
    std::string id;
    std::string idempotency_key;
    int64_t created_unix_ms = 0;
  };
  JobTracker(const KubeClient* client, JobTrackerOptions options,
             std::function<std::vector<ActiveAllocation>()> active,
             std::function<void(const std::string& allocation_id, const std::string& why)> end,
             std::function<bool()> should_act, std::function<int64_t()> now_unix_ms);
  ~JobTracker();
  JobTracker(const JobTracker&) = delete;
  JobTracker& operator=(const JobTracker&) = delete;

  void Start();
  // Records a Job this process just created, before the watch reports it.
  void Created(const nlohmann::json& job);
  // One pass: ends the allocations of finished and vanished Jobs. Returns
  // how many it ended.
  int Reconcile();

 private:
  void Run();

  const KubeClient* const client_;
  const JobTrackerOptions options_;
  const std::function<std::vector<ActiveAllocation>()> active_;
  const std::function<void(const std::string&, const std::string&)> end_;
  const std::function<bool()> should_act_;
  const std::function<int64_t()> now_unix_ms_;
  std::unique_ptr<Reflector> jobs_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace gpurm::kube

#endif  // GPURM_KUBE_JOB_H_
