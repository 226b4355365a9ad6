// Process management for launchers (`gpurm run`): start a command in its own
// process group with its output piped back, hand every chunk of output to a
// sink as it arrives, forward the launcher's termination signals to the
// command's whole group, and wait for it. No HTTP, no allocation logic.
//
// Signals. Wait() learns of signals and of the child's exit through a
// signalfd, which only sees signals that are blocked in every thread of the
// process (an unblocked thread would take the signal instead, with its
// default action). So the launcher creates a SignalBlock for SIGCHLD and the
// signals to forward *before it starts any thread*; threads started later
// inherit the mask. Linux only (signalfd, prctl).
//
// Typical use:
//   SignalBlock block({SIGCHLD, SIGINT, SIGTERM, SIGHUP, SIGPIPE});
//   Result<std::unique_ptr<ChildProcess>> child = ChildProcess::Spawn(spec);
//   Result<ProcessExit> exit = (*child)->Wait(sink, WaitOptions{});
//   return exit->ShellCode();
#ifndef GPURM_INTEGRATIONS_LAUNCHERS_PROCESS_RUNNER_H_
#define GPURM_INTEGRATIONS_LAUNCHERS_PROCESS_RUNNER_H_

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace gpurm {

// Blocks `signals` in the calling thread for the lifetime of the object;
// threads the caller starts meanwhile inherit the block. On destruction,
// signals of the set still pending are discarded (the caller has had its
// chance to take them with Take/WaitFor, or Wait() forwarded them) and the
// previous mask is restored. Not copyable; use from the thread that made it.
class SignalBlock {
 public:
  explicit SignalBlock(const std::vector<int>& signals);
  ~SignalBlock();
  SignalBlock(const SignalBlock&) = delete;
  SignalBlock& operator=(const SignalBlock&) = delete;

  // Waits up to `timeout` (zero: just looks) for one of the blocked signals
  // and consumes it. Returns the signal number, or 0 when none came.
  int WaitFor(std::chrono::milliseconds timeout) const;

 private:
  sigset_t blocked_;
  sigset_t previous_;
};

// What to start.
struct ProcessSpec {
  // argv[0] is looked up in PATH (as execvp does) unless it contains a '/'.
  std::vector<std::string> argv;
  // Changes to the launcher's environment: a value sets (or replaces) the
  // variable, nullopt removes it. Everything else is inherited.
  std::map<std::string, std::optional<std::string>> environment;
  // The launcher's stdin, or /dev/null. A child in a background process group
  // that reads a terminal is stopped (SIGTTIN), so launchers pass the
  // terminal only when they mean to.
  bool inherit_stdin = true;
  // Sent to the child if the launcher dies first (prctl PR_SET_PDEATHSIG), so
  // a SIGKILLed launcher does not leave the command running on GPUs it no
  // longer holds. 0: none. Only the direct child gets it; it is expected to
  // pass it on (a shell's or torchrun's children are its business).
  int parent_death_signal = SIGTERM;
  // Makes this process a child subreaper (prctl PR_SET_CHILD_SUBREAPER; it
  // stays one for its lifetime), so processes the command orphans are
  // reparented here instead of to init and Wait() reaps those still in the
  // command's group. Otherwise their zombies last until init reaps them,
  // which some container inits do slowly or never, and Wait() would wait
  // for them to be gone.
  bool reap_orphans = true;
  // When >= 0: an open file (O_APPEND) that gets the command's output too,
  // one record per line: "<UTC time, ms> <output_log_tag> out| <line>" (err|
  // for stderr). A relay process writes it and passes the output on to
  // Wait(). The relay outlives the launcher: if the launcher dies (SIGKILL),
  // the command's output still has a reader -- its SIGTERM handler can print
  // and finish -- and still reaches this file, and the terminal (the relay's
  // inherited stdout and stderr) instead of Wait(). It ignores SIGINT,
  // SIGTERM and SIGHUP, runs in its own process group, and exits once every
  // holder of the command's output has closed it. Spawn does not close the fd.
  int output_log_fd = -1;
  std::string output_log_tag;
};

enum class OutputStream { kStdout, kStderr };

// Receives the child's output in arrival order, one chunk (any size, not
// line-aligned) per call, on the thread running Wait().
using OutputSink = std::function<void(OutputStream stream, std::string_view chunk)>;

struct WaitOptions {
  // Signals that, when the launcher receives them, are sent on to the
  // child's process group. Each must be blocked (SignalBlock) before Spawn.
  std::vector<int> forward_signals = {SIGINT, SIGTERM, SIGHUP};
  // When the command (the group leader) has exited, processes it left behind
  // in its group would hold GPUs the launcher is about to give back: they get
  // SIGTERM, then SIGKILL after this long. Wait() returns once the group is
  // empty (or `leftover_grace` after the SIGKILL, for zombies nobody reaps),
  // having read all output still buffered in the pipes.
  std::chrono::milliseconds leftover_grace{5000};
  // Called on the waiting thread after each forwarded signal; may be empty.
  std::function<void(int signal)> on_forward;
};

struct ProcessExit {
  int exit_code = 0;           // The exit status when `signal` is 0.
  int signal = 0;              // The signal that ended the command; 0 if it exited.
  std::vector<int> forwarded;  // Signals forwarded while waiting, in order.

  // The shell's convention: the exit status, or 128 + the signal number.
  int ShellCode() const { return signal != 0 ? 128 + signal : exit_code; }
};

// A started command. Not copyable; one thread calls Wait().
class ChildProcess {
 public:
  // Forks and execs spec.argv as the leader of a new process group, with
  // stdout and stderr piped back, the signal mask emptied and SIGPIPE reset
  // to its default. Precondition: SIGCHLD is blocked (SignalBlock), so that
  // Wait() sees the exit. Errors: InvalidArgument for an empty argv;
  // NotFound when the program does not exist (the message names it);
  // PermissionDenied when it is not executable; Internal otherwise.
  static Result<std::unique_ptr<ChildProcess>> Spawn(const ProcessSpec& spec);

  // If Wait() has not returned: SIGKILLs the group and reaps the leader.
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }  // Also the process group id.

  // Sends `signal` to the whole process group.
  Status SignalGroup(int signal) const;

  // Pumps output into `sink` and forwards signals until the command has
  // exited and its output is read (see WaitOptions), then returns how it
  // ended. FailedPrecondition when SIGCHLD or a forwarded signal is not
  // blocked in the calling thread, or when called twice.
  Result<ProcessExit> Wait(const OutputSink& sink, const WaitOptions& options);

 private:
  ChildProcess(pid_t pid, int stdout_fd, int stderr_fd)
      : pid_(pid), stdout_fd_(stdout_fd), stderr_fd_(stderr_fd) {}

  // Starts the relay of ProcessSpec::output_log_fd between the command's
  // pipes (stdout_fd_, stderr_fd_) and new ones, which replace them here.
  Status StartRelay(int log_fd, const std::string& tag);

  pid_t pid_;
  int stdout_fd_;  // Read ends; -1 once closed.
  int stderr_fd_;
  pid_t relay_pid_ = -1;  // The output relay, when there is one.
  bool reaped_ = false;
};

}  // namespace gpurm

#endif  // GPURM_INTEGRATIONS_LAUNCHERS_PROCESS_RUNNER_H_
