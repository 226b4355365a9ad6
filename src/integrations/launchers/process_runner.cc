#include "integrations/launchers/process_runner.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <utility>

extern char** environ;  // POSIX: the launcher's environment, read before fork.

namespace gpurm {
namespace {

using Clock = std::chrono::steady_clock;

void CloseFd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

std::string Errno(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

// The child's environment: the launcher's, changed as `changes` says.
std::vector<std::string> ChildEnvironment(
    const std::map<std::string, std::optional<std::string>>& changes) {
  std::vector<std::string> result;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    const std::string name(text.substr(0, text.find('=')));
    if (changes.count(name) == 0) result.emplace_back(text);
  }
  for (const auto& [name, value] : changes) {
    if (value) result.push_back(name + "=" + *value);
  }
  return result;
}

std::vector<char*> Pointers(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  pointers.reserve(strings.size() + 1);
  for (std::string& text : strings) pointers.push_back(text.data());
  pointers.push_back(nullptr);
  return pointers;
}

// Runs in the forked child: only async-signal-safe calls until exec. On
// failure the errno goes to the parent through `error_fd` (close-on-exec, so
// a successful exec closes it and the parent reads end-of-file).
[[noreturn]] void ExecChild(char* const* argv, char* const* envp, int stdin_fd, int stdout_fd,
                            int stderr_fd, int error_fd, int death_signal, pid_t parent) {
  ::setpgid(0, 0);
  if (death_signal != 0) {
    ::prctl(PR_SET_PDEATHSIG, death_signal);
    // The parent may have died before prctl took effect.
    if (::getppid() != parent) ::_exit(127);
  }
  if (stdin_fd >= 0) ::dup2(stdin_fd, STDIN_FILENO);
  ::dup2(stdout_fd, STDOUT_FILENO);
  ::dup2(stderr_fd, STDERR_FILENO);
  // Ignored dispositions survive exec; the launcher may ignore SIGPIPE so its
  // own writes fail with EPIPE, but the command expects the default.
  ::signal(SIGPIPE, SIG_DFL);
  sigset_t none;
  ::sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::execvpe(argv[0], argv, envp);
  const int error = errno;
  ssize_t written = ::write(error_fd, &error, sizeof(error));
  (void)written;
  ::_exit(127);
}

bool IsBlocked(int signal) {
  sigset_t current;
  ::pthread_sigmask(SIG_BLOCK, nullptr, &current);
  return ::sigismember(&current, signal) == 1;
}

// Reads what `fd` has now into `sink`. Returns false (and closes `fd`) at
// end-of-file or on a read error; true when it would block.
bool ReadAvailable(int& fd, OutputStream stream, const OutputSink& sink) {
  std::array<char, 65536> buffer;
  while (true) {
    const ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n > 0) {
      sink(stream, std::string_view(buffer.data(), static_cast<size_t>(n)));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    CloseFd(fd);
    return false;
  }
}

bool GroupAlive(pid_t group) { return ::kill(-group, 0) == 0 || errno == EPERM; }

ProcessExit ExitFromStatus(int status) {
  ProcessExit exit;
  if (WIFSIGNALED(status)) {
    exit.signal = WTERMSIG(status);
  } else {
    exit.exit_code = WEXITSTATUS(status);
  }
  return exit;
}

}  // namespace

SignalBlock::SignalBlock(const std::vector<int>& signals) {
  ::sigemptyset(&blocked_);
  for (int signal : signals) ::sigaddset(&blocked_, signal);
  ::pthread_sigmask(SIG_BLOCK, &blocked_, &previous_);
}

SignalBlock::~SignalBlock() {
  while (WaitFor(std::chrono::milliseconds(0)) != 0) {
  }
  ::pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
}

int SignalBlock::WaitFor(std::chrono::milliseconds timeout) const {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - Clock::now());
    timespec wait{};
    if (left.count() > 0) {
      wait.tv_sec = static_cast<time_t>(left.count() / 1'000'000'000);
      wait.tv_nsec = static_cast<long>(left.count() % 1'000'000'000);
    }
    const int signal = ::sigtimedwait(&blocked_, nullptr, &wait);
    if (signal > 0) return signal;
    if (errno != EINTR || left.count() <= 0) return 0;
  }
}

Result<std::unique_ptr<ChildProcess>> ChildProcess::Spawn(const ProcessSpec& spec) {
  if (spec.argv.empty() || spec.argv.front().empty()) {
    return InvalidArgument("no command to run", "argv");
  }
  // Everything the child needs is built before fork: after it, in a process
  // that may have threads, only async-signal-safe calls are allowed.
  std::vector<std::string> argv_strings = spec.argv;
  std::vector<char*> argv = Pointers(argv_strings);
  std::vector<std::string> env_strings = ChildEnvironment(spec.environment);
  std::vector<char*> envp = Pointers(env_strings);

  int out_pipe[2] = {-1, -1};
  int err_pipe[2] = {-1, -1};
  int exec_pipe[2] = {-1, -1};
  int stdin_fd = -1;
  auto close_all = [&] {
    for (int* fd : {&out_pipe[0], &out_pipe[1], &err_pipe[0], &err_pipe[1], &exec_pipe[0],
                    &exec_pipe[1], &stdin_fd}) {
      CloseFd(*fd);
    }
  };
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0 ||
      ::pipe2(exec_pipe, O_CLOEXEC) != 0) {
    const Status error = Internal(Errno("pipe"));
    close_all();
    return error;
  }
  if (!spec.inherit_stdin) {
    stdin_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (stdin_fd < 0) {
      const Status error = Internal(Errno("open /dev/null"));
      close_all();
      return error;
    }
  }

  if (spec.reap_orphans) ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    const Status error = Internal(Errno("fork"));
    close_all();
    return error;
  }
  if (pid == 0) {
    ExecChild(argv.data(), envp.data(), stdin_fd, out_pipe[1], err_pipe[1], exec_pipe[1],
              spec.parent_death_signal, parent);
  }
  // Both sides set the group so that it exists before either goes on; after
  // the child's exec this one fails with EACCES, which is fine.
  ::setpgid(pid, pid);
  CloseFd(out_pipe[1]);
  CloseFd(err_pipe[1]);
  CloseFd(exec_pipe[1]);
  CloseFd(stdin_fd);

  int exec_errno = 0;
  ssize_t n = 0;
  do {
    n = ::read(exec_pipe[0], &exec_errno, sizeof(exec_errno));
  } while (n < 0 && errno == EINTR);
  CloseFd(exec_pipe[0]);
  if (n == static_cast<ssize_t>(sizeof(exec_errno))) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    close_all();
    const std::string message =
        "cannot run '" + spec.argv.front() + "': " + std::strerror(exec_errno);
    if (exec_errno == ENOENT) return NotFound(message);
    if (exec_errno == EACCES || exec_errno == EPERM) {
      return Status(StatusCode::kPermissionDenied, message);
    }
    return Internal(message);
  }
  for (int fd : {out_pipe[0], err_pipe[0]}) {
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  }
  return std::unique_ptr<ChildProcess>(new ChildProcess(pid, out_pipe[0], err_pipe[0]));
}

ChildProcess::~ChildProcess() {
  if (!reaped_) {
    ::kill(-pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  CloseFd(stdout_fd_);
  CloseFd(stderr_fd_);
}

Status ChildProcess::SignalGroup(int signal) const {
  if (::kill(-pid_, signal) != 0) {
    return Status(StatusCode::kFailedPrecondition, Errno("kill"));
  }
  return Status::Ok();
}

Result<ProcessExit> ChildProcess::Wait(const OutputSink& sink, const WaitOptions& options) {
  if (reaped_) return Status(StatusCode::kFailedPrecondition, "the command was already waited for");
  sigset_t watched;
  ::sigemptyset(&watched);
  ::sigaddset(&watched, SIGCHLD);
  for (int signal : options.forward_signals) ::sigaddset(&watched, signal);
  for (int signal = 1; signal < NSIG; ++signal) {
    if (::sigismember(&watched, signal) == 1 && !IsBlocked(signal)) {
      return Status(StatusCode::kFailedPrecondition,
                    "signal " + std::to_string(signal) + " is not blocked (use SignalBlock)");
    }
  }
  int signal_fd = ::signalfd(-1, &watched, SFD_CLOEXEC | SFD_NONBLOCK);
  if (signal_fd < 0) return Internal(Errno("signalfd"));

  std::optional<ProcessExit> exit;
  std::vector<int> forwarded;
  auto try_reap = [&]() -> Status {
    int status = 0;
    if (!reaped_) {
      // The leader by its pid: it may have left its group.
      pid_t reaped = 0;
      do {
        reaped = ::waitpid(pid_, &status, WNOHANG);
      } while (reaped < 0 && errno == EINTR);
      if (reaped == pid_) {
        reaped_ = true;
        exit = ExitFromStatus(status);
      } else if (reaped < 0) {
        // ECHILD: someone else reaped it (SIGCHLD set to SIG_IGN).
        reaped_ = true;
        return Internal(Errno("waitpid"));
      }
    }
    // Orphans of the command still in its group, adopted by this process as
    // a subreaper: reaped here, or their zombies would keep the group alive.
    while (true) {
      const pid_t reaped = ::waitpid(-pid_, &status, WNOHANG);
      if (reaped < 0 && errno == EINTR) continue;
      if (reaped <= 0) break;
      if (reaped == pid_) {  // The leader exited between the two calls.
        reaped_ = true;
        exit = ExitFromStatus(status);
      }
    }
    return Status::Ok();
  };

  Status status = try_reap();
  std::optional<Clock::time_point> term_sent;
  std::optional<Clock::time_point> kill_sent;
  while (status.ok()) {
    int timeout_ms = -1;
    if (exit) {
      // Done once the group is empty. Pipes still open then are held by
      // processes that left the group (setsid), which a launcher cannot
      // stop: what they have written is read, and no more is waited for.
      // Zombies that nobody reaps keep a group "alive": hence `stuck`.
      const auto now = Clock::now();
      const bool stuck = kill_sent && now - *kill_sent >= options.leftover_grace;
      if (!GroupAlive(pid_) || stuck) {
        if (stdout_fd_ >= 0) ReadAvailable(stdout_fd_, OutputStream::kStdout, sink);
        if (stderr_fd_ >= 0) ReadAvailable(stderr_fd_, OutputStream::kStderr, sink);
        break;
      }
      if (!term_sent) {
        ::kill(-pid_, SIGTERM);
        term_sent = now;
      } else if (!kill_sent && now - *term_sent >= options.leftover_grace) {
        ::kill(-pid_, SIGKILL);
        kill_sent = now;
      }
      timeout_ms = 50;
    }
    std::array<pollfd, 3> fds = {pollfd{signal_fd, POLLIN, 0}, pollfd{stdout_fd_, POLLIN, 0},
                                 pollfd{stderr_fd_, POLLIN, 0}};
    // poll ignores negative fds: closed pipes drop out by themselves.
    if (::poll(fds.data(), fds.size(), timeout_ms) < 0) {
      if (errno == EINTR) continue;
      status = Internal(Errno("poll"));
      break;
    }
    if (fds[1].revents != 0) ReadAvailable(stdout_fd_, OutputStream::kStdout, sink);
    if (fds[2].revents != 0) ReadAvailable(stderr_fd_, OutputStream::kStderr, sink);
    if (fds[0].revents == 0) continue;
    signalfd_siginfo info{};
    while (::read(signal_fd, &info, sizeof(info)) == static_cast<ssize_t>(sizeof(info))) {
      const int signal = static_cast<int>(info.ssi_signo);
      if (signal == SIGCHLD) {
        status = try_reap();
        continue;
      }
      ::kill(-pid_, signal);
      forwarded.push_back(signal);
      if (options.on_forward) options.on_forward(signal);
    }
  }
  CloseFd(signal_fd);
  if (!status.ok()) return status;
  exit->forwarded = std::move(forwarded);
  return *exit;
}

}  // namespace gpurm
