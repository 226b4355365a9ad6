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
#include <string>
#include <vector>

namespace gpurm::testing {

class SleepingChild {
 public:
  explicit SleepingChild(std::vector<std::string> environment) {
    pid_ = ::fork();
    if (pid_ == 0) {
      std::vector<char*> env;
      for (std::string& entry : environment) env.push_back(entry.data());
      env.push_back(nullptr);
      char* argv[] = {const_cast<char*>("/bin/sleep"), const_cast<char*>("600"), nullptr};
      ::execve("/bin/sleep", argv, env.data());
      ::_exit(127);
    }
    // Until exec, /proc shows the test's own environment.
    for (;;) {
      std::ifstream comm("/proc/" + std::to_string(pid_) + "/comm");
      std::string name;
      if (std::getline(comm, name) && name == "sleep") break;
      ::usleep(1000);
    }
  }
  ~SleepingChild() { Kill(); }
  // Ends and reaps it: its pid leaves /proc.
  void Kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  int64_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

}  // namespace gpurm::testing

#endif  // GPURM_TESTS_SUPPORT_SLEEPING_CHILD_H_
