// Kubernetes-mode endpoints (docs/kubernetes.md):
//   POST /api/v1/gpu/jobs    allocates GPUs and runs a batch/v1 Job on them
//   GET  /api/v1/gpu/leader  200 on the replica that places allocations, 503
//                            on the others (the Deployment's readiness probe,
//                            so the Service sends requests to the leader)
#ifndef GPURM_API_JOBS_HANDLERS_H_
#define GPURM_API_JOBS_HANDLERS_H_

#include <map>
#include <string>

#include "api/router.h"
#include "kube/client.h"
#include "kube/job.h"
#include "kube/leader_election.h"
#include "manager/manager.h"

namespace gpurm {

// What the Kubernetes handlers work with; everything must outlive the router.
struct JobsContext {
  GpuManager* manager = nullptr;
  const kube::KubeClient* client = nullptr;
  std::string namespace_name;  // Where Jobs are created.
  // gpu_config.yaml's gpu_resource and default_gpu_resource_name: the
  // resource a Job asks for when the granted GPUs do not name theirs.
  std::map<std::string, std::string> gpu_resource;
  std::string default_gpu_resource;
  kube::JobTracker* tracker = nullptr;           // May be null.
  const kube::LeaderElector* elector = nullptr;  // Null: this replica always leads.
};

// POST /api/v1/gpu/jobs: the body is a GPU request (as for /allocate) plus
//   "job": {"name": "resnet-1",          // optional; a DNS label, unique
//           "image": "...",              // required
//           "command": ["python", ...],  // required
//           "env": {"K": "V"},           // optional
//           "backoff_limit": 0}          // optional
// It allocates with idempotency key "k8s-job:<name>" (a retried submission
// holds GPUs once), creates the Job (and, for several nodes, its headless
// Service) in the namespace, and answers 201 with the Job and the
// allocation (200 when the Job already existed). The allocation is ended
// when the Job finishes or is deleted (kube::JobTracker); when creating the
// Job fails, it is ended at once.
void RegisterJobRoutes(const JobsContext& context, Router& router);

}  // namespace gpurm

#endif  // GPURM_API_JOBS_HANDLERS_H_
