// `gpurm run --k8s`: runs the command as a Kubernetes Job instead of on
// this machine (docs/kubernetes.md).
//
//   gpurm run --k8s --image IMAGE [--job-name NAME] [--env KEY=VALUE ...]
//             [--gpus N --type T ...] -- python train.py ...
//
// Sends POST /api/v1/gpu/jobs to a daemon in Kubernetes mode, which
// allocates and creates the Job pinned to the allocated node(s); the
// allocation is released when the Job ends. Prints the Job and the GPUs and
// exits; `kubectl logs -f job/NAME` follows it. Exit codes: 0 created (or
// already there), 1 nothing fits, 2 usage or invalid request, 3 daemon
// unreachable, failing, or not in Kubernetes mode.
#ifndef GPURM_CLI_RUN_K8S_H_
#define GPURM_CLI_RUN_K8S_H_

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/run_command.h"
#include "core/status.h"

namespace gpurm::cli {

struct KubernetesJobFlags {
  bool enabled = false;          // --k8s
  std::string image;             // --image
  std::string job_name;          // --job-name; empty: the daemon picks one
  std::vector<std::string> env;  // --env KEY=VALUE, repeatable
};

// Adds --k8s, --image, --job-name and --env to `run`; *flags must outlive it.
void AddKubernetesJobFlags(CLI::App* run, KubernetesJobFlags* flags);

// The POST /api/v1/gpu/jobs body: the GPU request of `request` (without a
// lease: a Job's allocation lasts as long as the Job) and the job.
// kInvalidArgument for a missing image or command or a malformed --env.
Result<nlohmann::json> BuildJobRequest(const RequestFlags& request, const KubernetesJobFlags& job,
                                       const std::vector<std::string>& command);

// Submits the Job; returns the exit code (see the top of this file).
int SubmitKubernetesJob(const RunFlags& flags, const KubernetesJobFlags& job,
                        const DaemonAddress& daemon, std::ostream& out, std::ostream& err);

}  // namespace gpurm::cli

#endif  // GPURM_CLI_RUN_K8S_H_
