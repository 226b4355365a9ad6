#include "cli/run_command.h"

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <random>
#include <stop_token>
#include <string_view>
#include <thread>
#include <utility>

#include "cli/cuda_guard.h"
#include "cli/json_view.h"
#include "cli/run_k8s.h"
#include "core/clock.h"
#include "guard/guard_config.h"
#include "integrations/launchers/local_node.h"
#include "integrations/launchers/process_runner.h"

namespace gpurm::cli {
namespace {

using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

// How often a waiting run asks again whether its request fits.
constexpr std::chrono::milliseconds kWaitPollInterval{2000};
// Release attempts when the daemon does not answer, and the pause between.
constexpr int kReleaseAttempts = 3;
constexpr std::chrono::milliseconds kReleaseRetryPause{500};
// Frames the CPU fallback's warning on the terminal.
constexpr char kCpuFallbackBanner[] =
    "************************************************************************";

// An environment value as the process sees it: strings verbatim, numbers
// and booleans as JSON writes them.
std::string EnvValue(const json& value) {
  if (value.is_string()) return value.get<std::string>();
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string SignalName(int signal) {
  const char* abbreviation = ::sigabbrev_np(signal);
  return abbreviation != nullptr ? std::string("SIG") + abbreviation
                                 : "signal " + std::to_string(signal);
}

std::string JoinCommand(const std::vector<std::string>& argv) {
  std::string text;
  for (const std::string& arg : argv) {
    if (!text.empty()) text += ' ';
    const bool plain = !arg.empty() && arg.find_first_of(" \t\n'\"\\$`") == std::string::npos;
    text += plain ? arg : "'" + arg + "'";
  }
  return text;
}

// The owner: --owner, else DefaultOwner() (as the Python package does).
std::string ResolveOwner(const RunFlags& flags) {
  return flags.request.owner ? *flags.request.owner : DefaultOwner();
}

// --log-dir, else $GPURM_LOG_DIR, else $XDG_STATE_HOME/gpurm/logs, else
// ~/.local/state/gpurm/logs: one place per user wherever the command is
// started from (the current directory would scatter a job's logs).
std::string ResolveLogDir(const RunFlags& flags) {
  if (!flags.log_dir.empty()) return flags.log_dir;
  const auto env = [](const char* name) -> std::string {
    const char* value = std::getenv(name);
    return value != nullptr ? value : "";
  };
  if (std::string dir = env("GPURM_LOG_DIR"); !dir.empty()) return dir;
  // XDG: relative values are invalid and ignored.
  if (std::string state = env("XDG_STATE_HOME"); state.starts_with('/')) {
    return state + "/gpurm/logs";
  }
  std::string home = env("HOME");
  if (home.empty()) {
    passwd entry{};
    passwd* found = nullptr;
    char buffer[4096];
    if (::getpwuid_r(::geteuid(), &entry, buffer, sizeof(buffer), &found) == 0 &&
        found != nullptr) {
      home = found->pw_dir;
    }
  }
  return (home.empty() ? std::string("/tmp/gpurm-") + std::to_string(::geteuid()) : home) +
         "/.local/state/gpurm/logs";
}

// Where output goes: the terminal (`out`/`err`) and training.log. All writes
// take one mutex, so the heartbeat thread's messages never split a chunk of
// the command's output. The log is opened with O_APPEND and written a whole
// record at a time: records of concurrent runs and of the command's relay
// (ProcessSpec::output_log_fd), which logs the command's output, interleave
// by line. Each record starts with the time and tag().
class RunOutput {
 public:
  RunOutput(std::ostream& out, std::ostream& err)
      : out_(out), err_(err), tag_(TagFor(std::nullopt)) {}
  ~RunOutput() {
    if (log_fd_ >= 0) ::close(log_fd_);
  }
  RunOutput(const RunOutput&) = delete;
  RunOutput& operator=(const RunOutput&) = delete;

  Status OpenLog(const std::string& dir) {
    std::error_code error;
    std::filesystem::create_directories(dir, error);
    if (error) return Unavailable("cannot create " + dir + ": " + error.message());
    path_ = (std::filesystem::path(dir) / "training.log").string();
    log_fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd_ < 0) return Unavailable("cannot open " + path_ + ": " + std::strerror(errno));
    return Status::Ok();
  }

  const std::string& log_path() const { return path_; }
  // The open log (-1 when there is none), for the command's relay.
  int log_fd() const { return log_fd_; }

  // "pid=<gpurm run's pid> alloc=<allocation id, or - without one>": what
  // tells the records of concurrent runs apart.
  static std::string TagFor(const std::optional<std::string>& allocation_id) {
    return "pid=" + std::to_string(::getpid()) + " alloc=" + allocation_id.value_or("-");
  }
  const std::string& tag() const { return tag_; }
  void SetAllocation(const std::string& id) {
    std::lock_guard<std::mutex> lock(mutex_);
    tag_ = TagFor(id);
  }

  // A chunk of the command's output, for the terminal (the relay logs it).
  void Child(OutputStream stream, std::string_view chunk) {
    std::lock_guard<std::mutex> lock(mutex_);
    std::ostream& terminal = stream == OutputStream::kStdout ? out_ : err_;
    // A closed terminal (EPIPE) leaves the stream failed; the log still
    // gets everything and the command is not disturbed.
    terminal.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    terminal.flush();
  }

  // One of gpurm run's own messages: "gpurm run: <text>" on stderr, and
  // "<time> <tag> gpurm run: <text>" in the log.
  void Note(const std::string& text) {
    std::lock_guard<std::mutex> lock(mutex_);
    err_ << "gpurm run: " << text << "\n";
    err_.flush();
    AppendToLog(FormatIso8601(SystemClock().NowUnixMs()) + " " + tag_ + " gpurm run: " + text +
                "\n");
  }

 private:
  void AppendToLog(std::string_view text) {
    while (log_fd_ >= 0 && !text.empty()) {
      const ssize_t n = ::write(log_fd_, text.data(), text.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        const std::string reason = std::strerror(errno);
        ::close(log_fd_);
        log_fd_ = -1;
        err_ << "gpurm run: writing " << path_ << " failed (" << reason
             << "); the rest of the output goes to the terminal only\n";
        return;
      }
      text.remove_prefix(static_cast<size_t>(n));
    }
  }

  std::mutex mutex_;
  std::ostream& out_;
  std::ostream& err_;
  std::string path_;
  int log_fd_ = -1;
  std::string tag_;
};

// Renews an allocation's lease every third of its TTL from its own thread,
// from construction until destruction (which joins the thread). A lost lease
// (expired or released elsewhere: 404/409) is reported once and ends the
// renewals; a daemon that does not answer is retried at the next tick.
class LeaseKeeper {
 public:
  LeaseKeeper(const HttpClient* client, std::string allocation_id, int64_t ttl_s, RunOutput* output)
      : client_(client),
        id_(std::move(allocation_id)),
        interval_(std::max<int64_t>(ttl_s * 1000 / 3, 100)),
        output_(output),
        thread_([this](std::stop_token stop) { Loop(stop); }) {}
  // std::jthread's destructor requests stop and joins; the stop callback of
  // condition_variable_any::wait_for wakes the loop at once.
  ~LeaseKeeper() = default;
  LeaseKeeper(const LeaseKeeper&) = delete;
  LeaseKeeper& operator=(const LeaseKeeper&) = delete;

 private:
  void Loop(std::stop_token stop) {
    bool failing = false;
    std::unique_lock<std::mutex> lock(mutex_);
    while (true) {
      // Only a stop request wakes it early: the predicate is never true.
      wake_.wait_for(lock, stop, interval_, [] { return false; });
      if (stop.stop_requested()) return;
      const ApiCall call = BuildHeartbeatCall(id_);
      Result<HttpResponse> response = client_->Post(call.path, call.body, call.headers);
      if (response.ok() && response->status >= 200 && response->status < 300) {
        if (failing) output_->Note("lease of " + id_ + " renewed again");
        failing = false;
      } else if (response.ok() && (response->status == 404 || response->status == 409)) {
        output_->Note("the lease of " + id_ + " has ended (" +
                      String(Member(response->body, "error"), "message", "") +
                      "): its GPUs are no longer reserved for this command");
        return;
      } else if (!failing) {
        failing = true;
        output_->Note("cannot renew the lease of " + id_ + " (" +
                      (response.ok() ? "HTTP " + std::to_string(response->status)
                                     : response.status().message()) +
                      "); retrying");
      }
    }
  }

  const HttpClient* client_;
  const std::string id_;
  const std::chrono::milliseconds interval_;
  RunOutput* output_;
  std::mutex mutex_;
  std::condition_variable_any wake_;
  std::jthread thread_;  // Last: starts after the members it uses exist.
};

// The end of an attempt to get GPUs.
struct Acquisition {
  // kBusy: the request could be met, but not now (the CPU fallback's case).
  enum class Kind { kAllocated, kBusy, kStop } kind = Kind::kStop;
  json answer;        // kAllocated: the /allocate answer; kBusy: the last refusal.
  int exit_code = 0;  // kStop: what gpurm run exits with.
};

std::string RefusalReason(const Result<HttpResponse>& response) {
  if (!response.ok()) return response.status().message();
  const std::string message = String(Member(response->body, "error"), "message", "");
  return message.empty() ? "HTTP " + std::to_string(response->status) : message;
}

// Releases `id`, retrying a daemon that does not answer a few times.
// `client` sends the owner (X-Gpurm-Owner) with every request.
void Release(const HttpClient& client, const std::string& id, int64_t ttl_s, RunOutput& output) {
  ReleaseFlags flags;
  flags.allocation_id = id;
  const Result<ApiCall> call = BuildReleaseCall(flags);
  std::string reason;
  for (int attempt = 0; attempt < kReleaseAttempts; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(kReleaseRetryPause);
    Result<HttpResponse> response = client.Delete(call->path, call->headers);
    if (response.ok() && response->status >= 200 && response->status < 300) {
      output.Note("released " + id);
      return;
    }
    reason = RefusalReason(response);
    if (response.ok() && response->status < 500) break;  // Retrying cannot help.
  }
  output.Note("could not release " + id + " (" + reason + "); the daemon takes its GPUs back " +
              std::to_string(ttl_s) + " s after the last lease renewal");
}

// What to tell the user of a machine the daemon at `url` does not manage.
std::string UnknownNodeMessage(const std::string& this_node, const std::string& url,
                               const std::vector<std::string>& nodes) {
  std::string listed;
  for (const std::string& node : nodes) listed += (listed.empty() ? "" : ", ") + node;
  return "this machine is node \"" + this_node + "\" ($GPURM_NODE_NAME, else the host name), " +
         "and the daemon at " + url +
         " has no node by that name (its nodes: " + (listed.empty() ? "none" : listed) +
         "); nothing was allocated and the command was not run. gpurm run starts the command on "
         "this machine, so it can only use this machine's GPUs: run it on one of those nodes, set "
         "GPURM_NODE_NAME if this machine is one of them under another name, or point --url at "
         "the daemon (or controller) that manages this machine";
}

// Allocates for `flags`, once the daemon is seen to manage the machine
// `this_node` names: GPUs of a daemon that does not could only be on other
// machines, so nothing is allocated then (exit 1).
Acquisition Acquire(const HttpClient& client, const RunFlags& flags, const std::string& this_node,
                    const SignalBlock& signals, RunOutput& output) {
  const ApiCall list_nodes = BuildAllNodesCall();
  const ApiCall call = BuildAllocateCall(flags.request, NewIdempotencyKey());
  const bool wait = flags.wait || flags.wait_timeout_s.has_value();
  const auto start = SteadyClock::now();
  const auto deadline = flags.wait_timeout_s
                            ? start + std::chrono::milliseconds(static_cast<int64_t>(
                                          std::min(*flags.wait_timeout_s, 1e9) * 1000.0))
                            : SteadyClock::time_point::max();
  std::string said;  // The last waiting reason reported.
  json last_refusal;
  bool this_node_known = false;
  while (true) {
    // Until the daemon has listed its nodes, the request is for that list.
    // Its failures are classified as those of /allocate, and mean the same:
    // no answer or 5xx is waited for with --wait, a 4xx is a refusal.
    Result<HttpResponse> response = this_node_known
                                        ? client.Post(call.path, call.body, call.headers)
                                        : client.Get(list_nodes.path, list_nodes.headers);
    const AllocateOutcome outcome = ClassifyAllocateAnswer(response);
    if (const int signal = signals.WaitFor(std::chrono::milliseconds(0)); signal != 0) {
      if (outcome == AllocateOutcome::kAllocated) {
        Release(client, String(response->body, "allocation_id", ""),
                flags.request.lease_ttl_seconds.value_or(0), output);
      }
      output.Note(SignalName(signal) + " before the command started; it was not run");
      return {Acquisition::Kind::kStop, nullptr, 128 + signal};
    }
    if (!this_node_known && response.ok() && response->status >= 200 && response->status < 300 &&
        response->body.is_object()) {
      const std::vector<std::string> nodes = NodeNames(response->body);
      if (std::ranges::find(nodes, this_node) == nodes.end()) {
        output.Note(UnknownNodeMessage(this_node, client.base_url(), nodes));
        return {Acquisition::Kind::kStop, nullptr, kExitRefused};
      }
      this_node_known = true;
      continue;
    }
    switch (outcome) {
      case AllocateOutcome::kAllocated:
        return {Acquisition::Kind::kAllocated, std::move(response->body), 0};
      case AllocateOutcome::kInvalid:
      case AllocateOutcome::kRefused:
        output.Note("the daemon refused the request:");
        output.Note(RenderError(response->body));
        return {Acquisition::Kind::kStop, nullptr,
                outcome == AllocateOutcome::kInvalid ? kExitUsage : kExitRefused};
      case AllocateOutcome::kNever:
        // Neither waiting nor the CPU would give the job what it asked for:
        // a typo in --type or --gpus should fail, not train for hours on the CPU.
        output.Note("the request can never be met in this cluster; the command was not run:");
        output.Note(RenderError(response->body));
        return {Acquisition::Kind::kStop, nullptr, kExitRefused};
      case AllocateOutcome::kBusy:
        last_refusal = response->body;
        if (!wait) return {Acquisition::Kind::kBusy, std::move(last_refusal), 0};
        break;
      case AllocateOutcome::kUnavailable:
        if (!wait) {
          output.Note("cannot allocate: " + RefusalReason(response));
          return {Acquisition::Kind::kStop, nullptr, kExitUnavailable};
        }
        break;
    }
    const std::string reason = RefusalReason(response);
    if (reason != said) {
      output.Note("waiting for GPUs: " + reason);
      said = reason;
    }
    const auto now = SteadyClock::now();
    if (now >= deadline) {
      output.Note(
          "gave up waiting after " +
          std::to_string(std::chrono::duration_cast<std::chrono::seconds>(now - start).count()) +
          " s (--wait-timeout)");
      if (last_refusal.is_null()) return {Acquisition::Kind::kStop, nullptr, kExitUnavailable};
      return {Acquisition::Kind::kBusy, std::move(last_refusal), 0};
    }
    const auto pause = std::min<SteadyClock::duration>(kWaitPollInterval, deadline - now);
    const int signal =
        signals.WaitFor(std::chrono::duration_cast<std::chrono::milliseconds>(pause));
    if (signal != 0) {
      output.Note(SignalName(signal) + " while waiting for GPUs; the command was not run");
      return {Acquisition::Kind::kStop, nullptr, 128 + signal};
    }
  }
}

std::string DescribeExit(const ProcessExit& exit) {
  if (exit.signal != 0) {
    return "the command was killed by " + SignalName(exit.signal) + " (exit code " +
           std::to_string(exit.ShellCode()) + ")";
  }
  return "the command exited with code " + std::to_string(exit.exit_code);
}

std::string DescribeGpus(const json& answer) {
  std::string node;
  std::string indices;
  for (const json& grant : Member(answer, "gpus")) {
    node = String(grant, "node_name", "");
    if (!indices.empty()) indices += ',';
    indices += EnvValue(Member(grant, "gpu_index"));
  }
  return node + ":" + indices;
}

}  // namespace

AllocateOutcome ClassifyAllocateAnswer(const Result<HttpResponse>& response) {
  if (!response.ok() || !response->body.is_object()) return AllocateOutcome::kUnavailable;
  const long status = response->status;
  if (status >= 200 && status < 300) {
    return Member(response->body, "allocation_id").is_string() ? AllocateOutcome::kAllocated
                                                               : AllocateOutcome::kUnavailable;
  }
  if (status == 400 || status == 413) return AllocateOutcome::kInvalid;
  if (status == 409) {
    const std::string code = String(Member(response->body, "error"), "code", "");
    if (code == "unschedulable_now") return AllocateOutcome::kBusy;
    if (code == "unschedulable_never") return AllocateOutcome::kNever;
  }
  if (status >= 400 && status < 500) return AllocateOutcome::kRefused;
  return AllocateOutcome::kUnavailable;
}

std::string NewIdempotencyKey() {
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  std::random_device random;
  const uint64_t bits = (static_cast<uint64_t>(random()) << 32) ^ random();
  char suffix[17];
  std::snprintf(suffix, sizeof(suffix), "%016llx", static_cast<unsigned long long>(bits));
  return "gpurm-run-" + std::string(host).substr(0, 64) + "-" + std::to_string(::getpid()) + "-" +
         suffix;
}

bool IsPythonScriptCommand(const std::vector<std::string>& command) {
  if (command.size() < 2) return false;
  const std::string program = std::filesystem::path(command[0]).filename().string();
  if (program.rfind("python", 0) != 0 ||
      program.find_first_not_of("0123456789.", 6) != std::string::npos) {
    return false;
  }
  const std::string& first = command[1];
  if (first == "-m") {
    return command.size() >= 3 && command[2] != "torch.distributed.run" &&
           command[2] != "torch.distributed.launch";
  }
  return first.size() > 3 && first.compare(first.size() - 3, 3, ".py") == 0;
}

// torchrun, with torch < 2.0's Std.from_str mended first. Python 3.11
// stopped listing an IntFlag's zero and multi-bit members when iterating it,
// which that from_str does to read torchrun's --redirects and --tee: their
// default "0" comes back as None and torchrun dies in to_map ("'NoneType'
// object has no attribute 'get'"; Debian's torch 1.13 on Python 3.11). The
// mended one builds the members by value, as the flags mean them; on a
// torch without the module (or the bug) it changes nothing.
const char kTorchrunLauncher[] =
    "import re, sys\n"
    "try:\n"
    "    from torch.distributed.elastic.multiprocessing import api\n"
    "    api.Std.from_str = classmethod(lambda cls, v: cls(int(v)) if re.fullmatch(r'\\d+', v)"
    " else {int(i): cls(int(s)) for i, s in (m.split(':') for m in v.split(','))})\n"
    "except (ImportError, AttributeError):\n"
    "    pass\n"
    "from torch.distributed.run import main\n"
    "sys.argv[0] = 'torchrun'\n"
    "main()\n";

std::vector<std::string> TorchrunCommand(const std::vector<std::string>& command,
                                         int nproc_per_node) {
  std::vector<std::string> argv = {
      command[0],     "-c",         kTorchrunLauncher,
      "--standalone", "--nnodes=1", "--nproc_per_node=" + std::to_string(nproc_per_node)};
  argv.insert(argv.end(), command.begin() + 1, command.end());
  return argv;
}

namespace {

// The command line: through torchrun when asked for distributed training of
// a python script.
std::vector<std::string> LaunchArgv(const RunFlags& flags, int nproc_per_node) {
  if (flags.request.distributed && IsPythonScriptCommand(flags.command)) {
    return TorchrunCommand(flags.command, nproc_per_node);
  }
  return flags.command;
}

void SetCommonEnvironment(LaunchPlan& plan, const std::string& url, const std::string& owner) {
  plan.environment["GPURM_URL"] = url;
  if (!owner.empty()) plan.environment["GPURM_OWNER"] = owner;
}

// Preloads the CUDA guard into a launch on granted GPUs, unless --no-guard.
Status GuardLaunch(const RunFlags& flags, LaunchPlan& plan, RunOutput& output) {
  if (!PlanHasCudaLimits(plan)) return Status::Ok();
  if (!flags.cuda_guard) {
    output.Note(
        "--no-guard: the CUDA guard is not loaded; the command's GPU memory is held to the grant "
        "only by its framework settings, which it may ignore");
    return Status::Ok();
  }
  Result<std::string> library = FindCudaGuardLibrary();
  if (!library.ok()) return library.status();
  return AddCudaGuard(plan, *library, std::getenv("LD_PRELOAD"));
}

// The nodes an /allocate answer grants GPUs on, each once, in the order
// named: by its grants, its plan's nodes and its node_name (any of them
// suffices; they agree in the daemon's answers).
std::vector<std::string> GrantedNodes(const json& answer) {
  std::vector<std::string> nodes;
  const auto add = [&nodes](const std::string& node) {
    if (!node.empty() && std::ranges::find(nodes, node) == nodes.end()) nodes.push_back(node);
  };
  for (const json& grant : Array(answer, "gpus")) add(String(grant, "node_name", ""));
  for (const json& node : Array(Member(answer, "gpu_config"), "nodes")) {
    add(String(node, "node_name", ""));
  }
  add(String(answer, "node_name", ""));
  return nodes;
}

}  // namespace

Result<RequestFlags> RequestFromThisNode(const RunFlags& flags, const std::string& this_node) {
  RequestFlags request = flags.request;
  if (flags.anywhere) return request;
  if (request.node && *request.node != this_node) {
    return Status(StatusCode::kFailedPrecondition,
                  "--node " + *request.node + " is not this machine, which is node " + this_node +
                      " ($GPURM_NODE_NAME, else the host name): gpurm run starts the command "
                      "here, so it can only use this machine's GPUs; run it on " +
                      *request.node + ", or set GPURM_NODE_NAME=" + *request.node +
                      " if that is this machine's name in the daemon's inventory");
  }
  request.node = this_node;
  return request;
}

std::vector<std::string> NodeNames(const json& monitoring) {
  std::vector<std::string> names;
  for (const json& node : Array(monitoring, "nodes")) {
    names.push_back(String(node, "node_name", ""));
  }
  return names;
}

Result<LaunchPlan> PlanGpuLaunch(const json& answer, const RunFlags& flags, const std::string& url,
                                 const std::string& owner, const std::string& this_node) {
  const std::string id = String(answer, "allocation_id", "");
  const json& config = Member(answer, "gpu_config");
  if (id.empty() || !config.is_object()) {
    return InvalidArgument("the /allocate answer has no allocation_id or gpu_config");
  }
  const std::vector<std::string> granted = GrantedNodes(answer);
  if (granted.empty()) return InvalidArgument("the /allocate answer names no node");
  std::string names;
  for (const std::string& node : granted) names += (names.empty() ? "" : " ") + node;
  if (granted.size() > 1) {
    return Status(StatusCode::kFailedPrecondition,
                  "the allocation spans " + std::to_string(granted.size()) + " nodes (" + names +
                      "): gpurm run starts processes on this machine (" + this_node +
                      ") only; ask for fewer GPUs or use `gpurm allocate` and start torchrun on "
                      "each node");
  }
  if (granted[0] != this_node) {
    return Status(StatusCode::kFailedPrecondition,
                  "the GPUs granted are on node " + granted[0] + ", not on this machine (" +
                      this_node +
                      "): starting a job on another machine is not supported by gpurm run; run "
                      "gpurm run on " +
                      granted[0] + ", or use Kubernetes mode (gpurm run --k8s)");
  }
  const json& nodes = Member(config, "nodes");
  const json& first = nodes.is_array() && !nodes.empty() ? nodes[0] : json();
  LaunchPlan plan;
  plan.allocation_id = id;
  plan.node_name = granted[0];

  const json& node_environment = Member(first, "environment");
  const json& environment =
      node_environment.is_object() ? node_environment : Member(config, "environment");
  if (environment.is_object()) {
    for (const auto& [name, value] : environment.items()) {
      plan.environment[name] = EnvValue(value);
    }
  }
  for (const json& warning : Member(config, "warnings")) {
    if (warning.is_string()) plan.warnings.push_back(warning.get<std::string>());
  }
  if (plan.environment.empty()) {
    // The plan names no device variables (a vendor gpurm cannot map): hide
    // every GPU rather than let the command use GPUs others hold.
    plan.environment["CUDA_VISIBLE_DEVICES"] = "";
    plan.environment["HIP_VISIBLE_DEVICES"] = "";
    plan.warnings.push_back(
        "no visible-device settings for these GPUs: the command runs on the CPU");
  }
  SetCommonEnvironment(plan, url, owner);
  plan.environment["GPURM_ALLOCATION_ID"] = id;
  plan.environment["GPURM_NODE_NAME"] = plan.node_name;
  const json& limit = Member(config, "memory_limit_mb");
  plan.environment["GPURM_MEMORY_LIMIT_MB"] =
      limit.is_number() ? std::optional<std::string>(EnvValue(limit)) : std::nullopt;
  // Limits inherited from an enclosing run would describe other GPUs.
  plan.environment.try_emplace(GPURM_ENV_CUDA_MEMORY_LIMITS_MB, std::nullopt);

  int nproc = 0;
  const json& declared = Member(Member(config, "distributed"), "nproc_per_node");
  if (declared.is_number_integer()) nproc = declared.get<int>();
  if (nproc < 1) nproc = static_cast<int>(Member(first, "gpu_indices").size());
  plan.argv = LaunchArgv(flags, std::max(nproc, 1));
  return plan;
}

LaunchPlan PlanCpuLaunch(const RunFlags& flags, const std::string& url, const std::string& owner,
                         const std::string& this_node) {
  LaunchPlan plan;
  // As the daemon's CPU plans: hidden from CUDA and from HIP.
  plan.environment["CUDA_VISIBLE_DEVICES"] = "";
  plan.environment["HIP_VISIBLE_DEVICES"] = "";
  SetCommonEnvironment(plan, url, owner);
  plan.environment["GPURM_NODE_NAME"] = this_node;
  // Inherited values (a run inside a run) would describe GPUs not held.
  plan.environment["GPURM_ALLOCATION_ID"] = std::nullopt;
  plan.environment["GPURM_MEMORY_LIMIT_MB"] = std::nullopt;
  plan.environment[GPURM_ENV_CUDA_MEMORY_LIMITS_MB] = std::nullopt;
  plan.argv = LaunchArgv(flags, 1);
  return plan;
}

int RunUnderAllocation(const RunFlags& flags, const DaemonAddress& daemon, std::ostream& out,
                       std::ostream& err) {
  if (flags.command.empty()) {
    err << "gpurm run: no command given: gpurm run [options] -- COMMAND [ARGS...]\n";
    return kExitUsage;
  }
  // Before any thread exists (libcurl's resolver, the lease keeper), so that
  // every thread inherits the block and the signals reach Wait() (see
  // process_runner.h). SIGPIPE: a closed terminal makes writes fail with
  // EPIPE instead of killing gpurm run while it holds GPUs.
  const SignalBlock signals({SIGCHLD, SIGINT, SIGTERM, SIGHUP, SIGPIPE});

  RunOutput output(out, err);
  if (Status opened = output.OpenLog(ResolveLogDir(flags)); !opened.ok()) {
    output.Note(opened.message() + "; output goes to the terminal only");
  }

  const std::string this_node = LocalNodeName();
  Result<RequestFlags> request = RequestFromThisNode(flags, this_node);
  if (!request.ok()) {
    output.Note(request.status().message() + "; the command was not run");
    return kExitRefused;
  }
  RunFlags effective = flags;
  effective.request = std::move(request).value();
  const std::string owner = ResolveOwner(flags);
  if (!owner.empty()) effective.request.owner = owner;
  const int64_t ttl_s = effective.request.lease_ttl_seconds.value_or(0);

  HttpClientOptions options;
  options.base_url = daemon.url;
  options.timeout = std::chrono::milliseconds(
      static_cast<int64_t>(std::clamp(daemon.timeout_s, 0.001, 86'400.0) * 1000.0));
  if (!owner.empty()) options.headers.emplace_back("X-Gpurm-Owner", owner);
  const HttpClient client(std::move(options));

  Acquisition acquired = Acquire(client, effective, this_node, signals, output);
  if (acquired.kind == Acquisition::Kind::kStop) return acquired.exit_code;

  LaunchPlan plan;
  if (acquired.kind == Acquisition::Kind::kAllocated) {
    Result<LaunchPlan> planned =
        PlanGpuLaunch(acquired.answer, effective, daemon.url, owner, this_node);
    const std::string id = String(acquired.answer, "allocation_id", "");
    if (!planned.ok()) {
      output.Note(planned.status().message() + "; the command was not run");
      Release(client, id, ttl_s, output);
      return kExitRefused;
    }
    plan = std::move(planned).value();
    output.SetAllocation(id);
    if (Status guarded = GuardLaunch(effective, plan, output); !guarded.ok()) {
      output.Note(guarded.message() + "; the command was not run (--no-guard runs it unguarded)");
      Release(client, id, ttl_s, output);
      return kExitUsage;
    }
    output.Note("allocated " + id + " (" + DescribeGpus(acquired.answer) + ", lease " +
                std::to_string(ttl_s) + " s, renewed while the command runs)");
  } else {
    const std::string reason = String(Member(acquired.answer, "error"), "message", "");
    if (!effective.cpu_fallback) {
      output.Note("no GPU is free now and --no-cpu-fallback is set; the command was not run");
      output.Note(RenderError(acquired.answer));
      return kExitRefused;
    }
    plan = PlanCpuLaunch(effective, daemon.url, owner, this_node);
    // Loud: a job that silently trains on the CPU wastes hours before anyone notices.
    output.Note(kCpuFallbackBanner);
    output.Note(
        "WARNING: NO GPU: the command runs on the CPU (CUDA_VISIBLE_DEVICES=\"\"): the "
        "GPUs asked for are busy now (" +
        reason + ")");
    output.Note("WARNING: --wait waits for them instead; --no-cpu-fallback exits 1 instead");
    output.Note(kCpuFallbackBanner);
  }
  for (const std::string& warning : plan.warnings) output.Note("warning: " + warning);
  if (std::getenv("PYTHONUNBUFFERED") == nullptr) plan.environment["PYTHONUNBUFFERED"] = "1";

  ProcessSpec spec;
  spec.argv = plan.argv;
  spec.environment = plan.environment;
  // The command runs in a background process group: reading a terminal
  // would stop it (SIGTTIN), so it gets the terminal only when stdin is not one.
  spec.inherit_stdin = ::isatty(STDIN_FILENO) == 0;
  spec.parent_death_signal = SIGTERM;
  // The command's output reaches training.log through a relay that outlives
  // gpurm run: killed with SIGKILL, gpurm run takes no pipe with it, so the
  // command's SIGTERM handler can still print and save its checkpoint.
  spec.output_log_fd = output.log_fd();
  spec.output_log_tag = output.tag();

  int exit_code = 0;
  {
    Result<std::unique_ptr<ChildProcess>> child = ChildProcess::Spawn(spec);
    if (!child.ok()) {
      output.Note(child.status().message());
      exit_code = child.status().code() == StatusCode::kNotFound ? 127 : 126;
    } else {
      output.Note("running " + JoinCommand(spec.argv) + " (pid " + std::to_string((*child)->pid()) +
                  ")");
      // Renewals stop (the keeper is destroyed) before the release below.
      std::optional<LeaseKeeper> keeper;
      if (!plan.allocation_id.empty() && ttl_s > 0) {
        keeper.emplace(&client, plan.allocation_id, ttl_s, &output);
      }
      WaitOptions wait;
      wait.on_forward = [&output](int signal) {
        output.Note("forwarded " + SignalName(signal) + " to the command");
      };
      Result<ProcessExit> exit = (*child)->Wait(
          [&output](OutputStream stream, std::string_view chunk) { output.Child(stream, chunk); },
          wait);
      if (exit.ok()) {
        output.Note(DescribeExit(*exit));
        exit_code = exit->ShellCode();
      } else {
        output.Note("lost track of the command: " + exit.status().message());
        exit_code = kExitRefused;
      }
    }
  }
  if (!plan.allocation_id.empty()) {
    RemoveCudaGuardLedger(plan.allocation_id);
    Release(client, plan.allocation_id, ttl_s, output);
  }
  return exit_code;
}

void RegisterRunCommand(CLI::App& app, int* exit_code, std::function<DaemonAddress()> daemon,
                        std::ostream& out, std::ostream& err) {
  auto flags = std::make_shared<RunFlags>();
  CLI::App* run = app.add_subcommand(
      "run", "Run a command under a GPU allocation: gpurm run [options] -- COMMAND [ARGS...]");
  run->fallthrough();  // Global options (--url, --timeout) may follow `run`.
  AddRequestFlags(run, &flags->request);
  run->get_option("--lease-ttl")
      ->description(
          "Lease in seconds, renewed while the command runs; if gpurm run is killed "
          "the GPUs come back this long after the last renewal (default 30)")
      ->check(CLI::Range(int64_t{1}, int64_t{86'400 * 365}));
  run->get_option("--owner")->description(
      "Owner of the allocation (default: $GPURM_OWNER, else your user name)");
  run->get_option("--node")->description(
      "The node to allocate on; without --k8s it must be this machine, which is the default "
      "(this machine's node name: $GPURM_NODE_NAME, else the host name)");
  run->add_flag("--anywhere", flags->anywhere,
                "Ask for GPUs on any node, not only this machine's; the command still runs only "
                "if they are granted here (else they are released at once and gpurm run exits 1)");
  run->add_flag("--wait", flags->wait, "When nothing fits, wait until it does");
  run->add_option_function<double>(
         "--wait-timeout",
         [flags](const double& seconds) {
           flags->wait_timeout_s = seconds;
           flags->wait = true;
         },
         "Wait at most this many seconds (implies --wait), then fall back as without --wait")
      ->check(CLI::PositiveNumber);
  run->add_flag("--cpu-fallback,!--no-cpu-fallback", flags->cpu_fallback,
                "When no GPU fits, run on the CPU (default) or exit 1");
  run->add_flag_callback(
      "--no-guard", [flags] { flags->cuda_guard = false; },
      "Do not preload the CUDA guard, which holds the command to its GPU memory grant");
  run->add_option("--log-dir", flags->log_dir,
                  "Where training.log is appended (default: $GPURM_LOG_DIR, else "
                  "$XDG_STATE_HOME/gpurm/logs, else ~/.local/state/gpurm/logs)");
  auto k8s = std::make_shared<KubernetesJobFlags>();
  AddKubernetesJobFlags(run, k8s.get());
  run->add_option("command", flags->command, "The command and its arguments, after --");
  run->footer(
      "The command runs on this machine, on this machine's GPUs: the daemon must have a node\n"
      "named as this machine ($GPURM_NODE_NAME, else the host name), and GPUs granted on\n"
      "another node are released and the command not run (exit 1).\n"
      "The command gets CUDA_VISIBLE_DEVICES and the rest of the allocation's environment, plus\n"
      "GPURM_ALLOCATION_ID, GPURM_URL, GPURM_NODE_NAME, GPURM_OWNER and GPURM_MEMORY_LIMIT_MB.\n"
      "On NVIDIA GPUs the CUDA guard (libgpurm_cuda_guard.so, LD_PRELOAD) refuses CUDA\n"
      "allocations past the grant per GPU (GPURM_CUDA_MEMORY_LIMITS_MB); --no-guard omits it.\n"
      "With --distributed, `python SCRIPT.py ...` runs through torchrun (torchrun\n"
      "--standalone --nnodes=1 --nproc_per_node=<GPUs>, started with the same python).\n"
      "Output goes to the terminal and to training.log in the log directory, each line\n"
      "with the time, gpurm run's pid and the allocation id. SIGINT, SIGTERM and SIGHUP\n"
      "are forwarded to the command; the allocation is released when it ends, and gpurm\n"
      "run exits with its exit code (128+N when killed by signal N). If gpurm run itself\n"
      "is killed (SIGKILL), the command gets SIGTERM, its output still reaches the log,\n"
      "and the daemon reclaims the GPUs when the lease (--lease-ttl, default 30 s)\n"
      "expires. With no GPU free now it runs on the CPU, and says so loudly; a request\n"
      "that can never be met in the cluster exits 1 with the reasons.");
  run->callback([flags, k8s, exit_code, daemon = std::move(daemon), &out, &err] {
    *exit_code = k8s->enabled ? SubmitKubernetesJob(*flags, *k8s, daemon(), out, err)
                              : RunUnderAllocation(*flags, daemon(), out, err);
  });
}

}  // namespace gpurm::cli
