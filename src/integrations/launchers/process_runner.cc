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

#include <algorithm>
#include <array>
#include <cstdint>
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

// --- The output relay (ProcessSpec::output_log_fd) -------------------------
// It runs in a forked copy of a launcher that may have had threads, so it
// keeps to system calls and arithmetic: no allocation, no locks, no stdio.

// How long Wait() keeps reading the relay once the command's group is gone:
// the last chunks pass through it. A process that left the group can keep
// the pipes (and so the relay) open forever, which is not waited for.
constexpr std::chrono::milliseconds kRelayDrainGrace{2000};
// The longest log record; a longer line is written as several records.
constexpr size_t kRelayRecordBytes = 16384;

// Writes all of `data` unless `fd` fails; false (leaving `fd` as it is) then.
bool WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// "2026-12-07T06:40:00.123Z" (24 characters) into `out`, from the real-time
// clock, with the civil-from-days algorithm (gmtime_r may take locks).
void FormatUtcNow(char* out) {
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  const int64_t seconds = now.tv_sec;
  int64_t days = seconds / 86400;
  int64_t of_day = seconds % 86400;
  if (of_day < 0) {
    of_day += 86400;
    --days;
  }
  days += 719468;
  const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const int64_t day_of_era = days - era * 146097;
  const int64_t year_of_era =
      (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
  const int64_t day_of_year =
      day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
  const int64_t mp = (5 * day_of_year + 2) / 153;
  const int64_t day = day_of_year - (153 * mp + 2) / 5 + 1;
  const int64_t month = mp < 10 ? mp + 3 : mp - 9;
  const int64_t year = year_of_era + era * 400 + (month <= 2 ? 1 : 0);
  const int64_t fields[] = {
      year, month, day, of_day / 3600, of_day % 3600 / 60, of_day % 60, now.tv_nsec / 1'000'000};
  const int widths[] = {4, 2, 2, 2, 2, 2, 3};
  const char after[] = {'-', '-', 'T', ':', ':', '.', 'Z'};
  char* at = out;
  for (size_t f = 0; f < 7; ++f) {
    int64_t value = fields[f];
    for (int digit = widths[f] - 1; digit >= 0; --digit) {
      at[digit] = static_cast<char>('0' + value % 10);
      value /= 10;
    }
    at += widths[f];
    *at++ = after[f];
  }
}

// One stream of the command as the relay handles it.
struct RelayStream {
  int in;             // The command's pipe; -1 at its end.
  int forward;        // To the launcher's Wait(); -1 once the launcher is gone.
  int own;            // The relay's inherited stdout/stderr, used from then on.
  const char* label;  // "out| " or "err| ".
  char line[kRelayRecordBytes];
  size_t length;  // Of the line so far (without its prefix).
};

// Writes `stream`'s line so far as one record (so appends by others never
// split it) and empties it.
void LogLine(RelayStream& stream, int& log_fd, const std::string& tag) {
  char record[kRelayRecordBytes + 512];
  FormatUtcNow(record);
  size_t size = 24;
  record[size++] = ' ';
  const size_t tag_size = std::min(tag.size(), size_t{400});
  std::memcpy(record + size, tag.data(), tag_size);
  size += tag_size;
  record[size++] = ' ';
  const size_t label_size = std::strlen(stream.label);
  std::memcpy(record + size, stream.label, label_size);
  size += label_size;
  std::memcpy(record + size, stream.line, stream.length);
  size += stream.length;
  record[size++] = '\n';
  stream.length = 0;
  if (log_fd >= 0 && !WriteAll(log_fd, record, size)) log_fd = -1;  // Full disk: relay only.
}

[[noreturn]] void RunRelay(RelayStream* streams, int log_fd, const std::string& tag) {
  ::setpgid(0, 0);  // Out of the launcher's group: what ends that group does not end it.
  // SIGTTOU: a background group writing to a terminal with `stty tostop`.
  for (int signal : {SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGTTOU}) ::signal(signal, SIG_IGN);
  char chunk[4096];
  while (streams[0].in >= 0 || streams[1].in >= 0) {
    std::array<pollfd, 2> fds = {pollfd{streams[0].in, POLLIN, 0},
                                 pollfd{streams[1].in, POLLIN, 0}};
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (size_t i = 0; i < 2; ++i) {
      RelayStream& stream = streams[i];
      if (fds[i].revents == 0 || stream.in < 0) continue;
      const ssize_t n = ::read(stream.in, chunk, sizeof(chunk));
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) {
        ::close(stream.in);
        stream.in = -1;
        if (stream.length > 0) LogLine(stream, log_fd, tag);
        if (stream.forward >= 0) ::close(stream.forward);
        stream.forward = -1;
        continue;
      }
      if (stream.forward >= 0 && !WriteAll(stream.forward, chunk, static_cast<size_t>(n))) {
        ::close(stream.forward);  // The launcher is gone: the terminal gets it now.
        stream.forward = -1;
      }
      if (stream.forward < 0) WriteAll(stream.own, chunk, static_cast<size_t>(n));
      for (ssize_t c = 0; c < n; ++c) {
        if (chunk[c] == '\n') {
          LogLine(stream, log_fd, tag);
          continue;
        }
        stream.line[stream.length++] = chunk[c];
        if (stream.length == sizeof(stream.line)) LogLine(stream, log_fd, tag);
      }
    }
  }
  ::_exit(0);
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
  std::unique_ptr<ChildProcess> child(new ChildProcess(pid, out_pipe[0], err_pipe[0]));
  if (spec.output_log_fd >= 0) {
    if (Status relay = child->StartRelay(spec.output_log_fd, spec.output_log_tag); !relay.ok()) {
      return relay;  // The destructor ends the command.
    }
  }
  for (int fd : {child->stdout_fd_, child->stderr_fd_}) {
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  }
  return child;
}

Status ChildProcess::StartRelay(int log_fd, const std::string& tag) {
  int out_pipe[2] = {-1, -1};
  int err_pipe[2] = {-1, -1};
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) {
    const Status error = Internal(Errno("pipe"));
    for (int* fd : {&out_pipe[0], &out_pipe[1], &err_pipe[0], &err_pipe[1]}) CloseFd(*fd);
    return error;
  }
  // Made before fork: the relay allocates nothing.
  auto streams = std::make_unique<RelayStream[]>(2);
  streams[0] = RelayStream{stdout_fd_, out_pipe[1], STDOUT_FILENO, "out| ", {}, 0};
  streams[1] = RelayStream{stderr_fd_, err_pipe[1], STDERR_FILENO, "err| ", {}, 0};
  const pid_t relay = ::fork();
  if (relay < 0) {
    const Status error = Internal(Errno("fork"));
    for (int* fd : {&out_pipe[0], &out_pipe[1], &err_pipe[0], &err_pipe[1]}) CloseFd(*fd);
    return error;
  }
  if (relay == 0) {
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    RunRelay(streams.get(), log_fd, tag);
  }
  relay_pid_ = relay;
  CloseFd(out_pipe[1]);
  CloseFd(err_pipe[1]);
  CloseFd(stdout_fd_);  // The relay reads the command's pipes now.
  CloseFd(stderr_fd_);
  stdout_fd_ = out_pipe[0];
  stderr_fd_ = err_pipe[0];
  return Status::Ok();
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
  std::optional<Clock::time_point> drain_until;  // Reading the relay after the group ended.
  while (status.ok()) {
    int timeout_ms = -1;
    if (exit) {
      // Done once the group is empty. Pipes still open then are held by
      // processes that left the group (setsid), which a launcher cannot
      // stop: what they have written is read, and no more is waited for.
      // Zombies that nobody reaps keep a group "alive": hence `stuck`.
      // Through a relay the last chunks may still be on their way: it is
      // read until it closes its ends, for at most kRelayDrainGrace.
      const auto now = Clock::now();
      const bool stuck = kill_sent && now - *kill_sent >= options.leftover_grace;
      if (!GroupAlive(pid_) || stuck) {
        const bool relay_open = relay_pid_ > 0 && (stdout_fd_ >= 0 || stderr_fd_ >= 0);
        if (relay_open && !drain_until) drain_until = now + kRelayDrainGrace;
        if (!relay_open || now >= *drain_until) {
          if (stdout_fd_ >= 0) ReadAvailable(stdout_fd_, OutputStream::kStdout, sink);
          if (stderr_fd_ >= 0) ReadAvailable(stderr_fd_, OutputStream::kStderr, sink);
          break;
        }
      } else if (!term_sent) {
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
  if (relay_pid_ > 0) {
    // At the end of its input the relay exits at once: wait for it then.
    // Otherwise (a process outside the group holds the command's output)
    // it stays, and init reaps it once this process is gone.
    const bool relay_done = stdout_fd_ < 0 && stderr_fd_ < 0;
    int relay_status = 0;
    pid_t reaped = 0;
    do {
      reaped = ::waitpid(relay_pid_, &relay_status, relay_done ? 0 : WNOHANG);
    } while (reaped < 0 && errno == EINTR);
    if (reaped == relay_pid_) relay_pid_ = -1;
  }
  if (!status.ok()) return status;
  exit->forwarded = std::move(forwarded);
  return *exit;
}

}  // namespace gpurm
