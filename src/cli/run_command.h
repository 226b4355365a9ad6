// `gpurm run`: runs a command (a training script) under a GPU allocation.
//
//   gpurm run [--gpus N --type T --memory-gb M --distributed --mixed-precision
//              --fraction F --shared --node X --anywhere --wait
//              [--wait-timeout S] --cpu-fallback|--no-cpu-fallback
//              --lease-ttl S --owner O --log-dir D] -- python train.py ...
//
// With --k8s (cli/run_k8s.h) it runs the command as a Kubernetes Job instead.
//
// 0. The command starts on this machine, so it may only get this machine's
//    GPUs. This machine is the node LocalNodeName() (integrations/launchers/local_node.h) names:
//    $GPURM_NODE_NAME, else the host name. The request asks for GPUs on it
//    (node_name) unless --anywhere; --node naming another machine is refused
//    (exit 1) before anything is sent (with --anywhere it is asked for, and
//    its grant refused as below). Before allocating, gpurm run reads the
//    daemon's nodes (BuildAllNodesCall) and exits 1, naming this machine,
//    the daemon and its nodes, when none is this machine. A grant on another
//    node (possible with --anywhere: one node elsewhere, or, with
//    --distributed, several nodes) is released at once and gpurm run exits 1
//    naming the nodes: it never starts a job away from its GPUs, and it does
//    not start jobs on other machines.
// 1. Allocates through POST /api/v1/gpu/allocate with a lease (--lease-ttl,
//    default 30 s) and one Idempotency-Key per run, so a retried request can
//    never hold GPUs twice. When nothing fits (409): with --wait it retries
//    every few seconds until it fits or --wait-timeout passes; then, or
//    without --wait, it runs the command on the CPU (CUDA_VISIBLE_DEVICES="",
//    with a framed warning on stderr) unless --no-cpu-fallback, which exits
//    1 instead. A request that can never be met in this cluster is neither
//    waited for nor run on the CPU: it exits 1 with the daemon's reasons.
// 2. Exports the allocation's gpu_config environment (visible devices,
//    CUDA_DEVICE_ORDER=PCI_BUS_ID, NCCL settings) plus GPURM_ALLOCATION_ID,
//    GPURM_URL, GPURM_NODE_NAME, GPURM_OWNER and GPURM_MEMORY_LIMIT_MB (the
//    framework's cap: gpu_memory_fraction x the granted memory), and
//    PYTHONUNBUFFERED=1 unless set, so output streams as it is printed.
//    On NVIDIA GPUs the CUDA guard (cli/cuda_guard.h) is preloaded
//    (LD_PRELOAD, before any inherited one) and holds the command to the
//    grant per device (GPURM_CUDA_MEMORY_LIMITS_MB); --no-guard leaves it
//    out and says so.
// 3. Starts the command in its own process group. With --distributed, a
//    command of the form `python SCRIPT.py ...` or `python -m MODULE ...`
//    (python, python3, python3.X, any directory) runs through torchrun, as
//    `python -c <kTorchrunLauncher> --standalone --nnodes=1
//    --nproc_per_node=N SCRIPT.py ...` with the same interpreter and N = the
//    GPUs allocated (1 on the CPU): the one-node torchrun_args of the PyTorch
//    plan. Any other command runs as given. The GPUs are this machine's
//    (step 0), so torchrun runs one node: this one.
// 4. Streams the command's stdout and stderr to the terminal and appends
//    them, with gpurm's own messages, to <log dir>/training.log, one record
//    per line: "<UTC time> pid=<gpurm run's pid> alloc=<id or -> out| <line>"
//    (err| for stderr, "gpurm run:" for its messages). Log dir: --log-dir,
//    else $GPURM_LOG_DIR, else $XDG_STATE_HOME/gpurm/logs, else
//    ~/.local/state/gpurm/logs; created if missing. The command's output
//    goes through a relay process (ProcessSpec::output_log_fd) that outlives
//    gpurm run.
// 5. Renews the lease every third of its TTL from a thread while the command
//    runs; forwards SIGINT, SIGTERM and SIGHUP to the command's process
//    group; when the command ends, ends what it left in its group, releases
//    the allocation (DELETE /allocations/{id}) and exits with the command's
//    exit code, or 128 + N when signal N killed it. If `gpurm run` itself is
//    SIGKILLed, the command gets SIGTERM (parent-death signal), whatever it
//    prints then still reaches the log through the relay, and the daemon
//    takes the GPUs back when the lease expires.
//
// gpurm run's own exit codes, when the command did not run to its end:
//   1 the request can never be met in this cluster; nothing is free now and
//     --no-cpu-fallback; the daemon has no node by this machine's name;
//     --node names another machine; or the GPUs granted are on another node
//     or on several (gpurm run starts processes on this machine only)
//   2 usage error, or the daemon rejected the request as invalid, or the
//     CUDA guard cannot be loaded (not found, or the plan's guard values are
//     invalid); the allocation is released and the command not started
//   3 daemon unreachable or failing (5xx), not waited for
//   126 the command cannot be executed; 127 the command was not found
//   128+N signal N arrived before the command started
// Only one allocation per run; the allocation is on one node: this one.
#ifndef GPURM_CLI_RUN_COMMAND_H_
#define GPURM_CLI_RUN_COMMAND_H_

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "cli/client.h"
#include "cli/commands.h"
#include "core/status.h"

namespace gpurm::cli {

inline constexpr int64_t kDefaultRunLeaseTtlSeconds = 30;

// The daemon's address and request timeout (the global --url and --timeout).
struct DaemonAddress {
  std::string url = "http://127.0.0.1:8000";
  double timeout_s = 10.0;
};

struct RunFlags {
  RunFlags() { request.lease_ttl_seconds = kDefaultRunLeaseTtlSeconds; }

  RequestFlags request;                  // --gpus ... --lease-ttl, --owner
  bool anywhere = false;                 // --anywhere: no node_name pin
  bool wait = false;                     // --wait (implied by --wait-timeout)
  std::optional<double> wait_timeout_s;  // --wait-timeout; unset: no limit
  bool cpu_fallback = true;              // --cpu-fallback / --no-cpu-fallback
  std::string log_dir;                   // --log-dir; empty: $GPURM_LOG_DIR, else "logs"
  bool cuda_guard = true;                // --no-guard clears it
  std::vector<std::string> command;      // After "--".
};

// Adds the `run` subcommand to `app`. `daemon` is called when run runs, after
// parsing, for the global options' values. Exit code, output and error
// streams as for RegisterClientCommands (commands.h).
void RegisterRunCommand(CLI::App& app, int* exit_code, std::function<DaemonAddress()> daemon,
                        std::ostream& out, std::ostream& err);

// Does what `gpurm run` does (see the top of this file) and returns its exit
// code. Blocks SIGCHLD, SIGINT, SIGTERM, SIGHUP and SIGPIPE in the calling
// thread while it runs: call it before starting other threads, from the
// thread that should receive the signals.
int RunUnderAllocation(const RunFlags& flags, const DaemonAddress& daemon, std::ostream& out,
                       std::ostream& err);

// ---------------------------------------------------------------------------
// Pure building blocks, exposed for tests.

// What to start: the command line and the changes to the environment
// (nullopt: remove the variable).
struct LaunchPlan {
  std::vector<std::string> argv;
  std::map<std::string, std::optional<std::string>> environment;
  std::string allocation_id;  // Empty on the CPU.
  std::string node_name;      // The granted node (this machine's); empty on the CPU.
  std::vector<std::string> warnings;
};

// The request gpurm run sends from the machine `this_node` names: for GPUs
// on it (node_name), unless --anywhere. FailedPrecondition, naming both
// nodes, when --node names another machine and --anywhere is not given.
Result<RequestFlags> RequestFromThisNode(const RunFlags& flags, const std::string& this_node);

// The node names of a GET /monitoring answer (BuildAllNodesCall), in its order.
std::vector<std::string> NodeNames(const nlohmann::json& monitoring);

// The launch for a successful /allocate answer, on the machine `this_node`
// names. FailedPrecondition, naming the granted nodes, when the allocation
// spans several nodes or is on another node than `this_node`;
// InvalidArgument when the answer lacks the allocation id, gpu_config or a
// node name.
Result<LaunchPlan> PlanGpuLaunch(const nlohmann::json& answer, const RunFlags& flags,
                                 const std::string& url, const std::string& owner,
                                 const std::string& this_node);
// The launch on the CPU, with every GPU hidden. GPURM_NODE_NAME still names
// `this_node`: it says which machine the command is on, GPUs or not.
LaunchPlan PlanCpuLaunch(const RunFlags& flags, const std::string& url, const std::string& owner,
                         const std::string& this_node);

// True for `python[3[.X]] SCRIPT.py ...` and `python -m MODULE ...` (any
// directory), unless the module already is torch.distributed.run/launch.
bool IsPythonScriptCommand(const std::vector<std::string>& command);
// The Python program that TorchrunCommand runs with `python -c`: torchrun's
// entry point (torch.distributed.run's main), with the Std.from_str of
// torch < 2.0 mended for Python 3.11 and later (see run_command.cc).
extern const char kTorchrunLauncher[];
// `command` (a python script command) run through torchrun on one node.
std::vector<std::string> TorchrunCommand(const std::vector<std::string>& command,
                                         int nproc_per_node);

// How one /allocate attempt turned out.
enum class AllocateOutcome {
  kAllocated,    // 2xx with an allocation.
  kBusy,         // 409 unschedulable_now: may fit once GPUs are released.
  kNever,        // 409 unschedulable_never: cannot fit this cluster.
  kInvalid,      // 400 / 413: the request itself is wrong.
  kRefused,      // Any other 4xx.
  kUnavailable,  // No answer, 5xx, or not gpurm's JSON.
};
AllocateOutcome ClassifyAllocateAnswer(const Result<HttpResponse>& response);

// A key no other run will use: host, process id and 64 random bits.
std::string NewIdempotencyKey();

}  // namespace gpurm::cli

#endif  // GPURM_CLI_RUN_COMMAND_H_
