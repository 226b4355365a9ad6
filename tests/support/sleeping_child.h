// SleepingChild: a real process of the test (`sleep 600` with exactly the
// given environment) for the fake vendor libraries to report on a GPU, so
// that process accounting reads a real /proc/<pid>/environ.
#ifndef GPURM_TESTS_SUPPORT_SLEEPING_CHILD_H_
#define GPURM_TESTS_SUPPORT_SLEEPING_CHILD_H_

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

namespace gpurm::testing {

class SleepingChild {
 public:
  // `ignore_sigterm`: it ignores SIGTERM (the disposition survives exec),
  // so only SIGKILL ends it.
  explicit SleepingChild(std::vector<std::string> environment, bool ignore_sigterm = false) {
    pid_ = ::fork();
    if (pid_ == 0) {
      if (ignore_sigterm) ::signal(SIGTERM, SIG_IGN);
      std::vector<char*> env;
      for (std::string& entry : environment) env.push_back(entry.data());
      env.push_back(nullptr);
      char* argv[] = {const_cast<char*>("/bin/sleep"), const_cast<char*>("600"), nullptr};
      ::execve("/bin/sleep", argv, env.data());
      ::_exit(127);
    }
    // Until the exec is complete /proc shows the test's own environment, or
    // none: the kernel names the process "sleep" before it places the new
    // environment. Wait for both.
    std::string expected;  // As /proc shows it: NUL-terminated entries.
    for (const std::string& entry : environment) expected += entry + '\0';
    const std::string proc = "/proc/" + std::to_string(pid_);
    for (;;) {
      std::ifstream comm(proc + "/comm");
      std::string name;
      std::ifstream environ(proc + "/environ", std::ios::binary);
      const std::string shown((std::istreambuf_iterator<char>(environ)),
                              std::istreambuf_iterator<char>());
      if (std::getline(comm, name) && name == "sleep" && shown == expected) break;
      ::usleep(1000);
    }
  }
  ~SleepingChild() { Kill(); }
  // Ends and reaps it: its pid leaves /proc.
  void Kill() {
    if (pid_ <= 0 || reaped_) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    reaped_ = true;
  }
  // The signal that ended it (0: it exited), reaping it; nullopt while it runs.
  std::optional<int> EndedBySignal() {
    if (!reaped_) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) != pid_) return std::nullopt;
      reaped_ = true;
      ended_by_ = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    }
    return ended_by_;
  }
  int64_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  int ended_by_ = 0;
};

}  // namespace gpurm::testing

#endif  // GPURM_TESTS_SUPPORT_SLEEPING_CHILD_H_
