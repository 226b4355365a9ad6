// `gpurm top`: a live terminal view of the GPUs, like nvitop, from the
// daemon's /api/v1/gpu/monitoring.
//
//   gpurm top [--interval S] [--once] [--node NAME] [--sort util|memory|temp|index]
//             [--color auto|always|never]
//
// Per node, per GPU: model, a utilization bar with a sparkline of recent
// samples, a memory bar (# used, = reserved by allocations beyond what is
// used) with used/reserved/total GB, temperature, power, health, the
// allocations holding it, and its compute processes when the driver reports
// them. Refreshes every --interval seconds (default 2) until Ctrl-C, or `q`
// on a terminal; there it draws in the alternate screen and restores the
// screen on exit.
// --once prints one frame and exits (exit codes as the other commands: 0, 1
// when the daemon refuses or --node matches no node, 3 when unreachable).
// With -o json it prints the monitoring JSON (once, or one line per refresh).
// Plain ANSI escapes; no curses.
#ifndef GPURM_CLI_TOP_COMMAND_H_
#define GPURM_CLI_TOP_COMMAND_H_

#include <signal.h>

#include <CLI/CLI.hpp>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>

namespace gpurm::cli {

// The global options top needs, read when it runs.
struct TopGlobals {
  std::string url;
  double timeout_s = 10.0;
  std::string output = "table";  // "table" or "json".
};

struct TopOptions {
  double interval_s = 2.0;
  bool once = false;
  std::optional<std::string> node;
  std::string sort = "index";  // "util", "memory", "temp" or "index".
  bool color = false;          // ANSI colours.
};

// Adds `top` to `app`. `globals` is called when the command runs, after
// parsing; the exit code goes to *exit_code. `out_is_terminal` says whether
// `out` is a terminal (alternate screen and colour with --color auto).
void RegisterTopCommand(CLI::App& app, int* exit_code, std::function<TopGlobals()> globals,
                        std::ostream& out, std::ostream& err, bool out_is_terminal);

// One frame from a /monitoring answer. `source` (the daemon URL) is shown in
// the title. GPUs are sorted per node: util, memory (used share) and temp
// highest first, index lowest first; ties by index. Pure; never throws.
std::string RenderTopFrame(const nlohmann::json& monitoring, const TopOptions& options,
                           const std::string& source);

// What ends the live view between frames. Blocks SIGINT, SIGTERM and SIGHUP
// while it exists, so that they end the wait instead of the process (which
// then restores the screen), and restores the previous mask when destroyed.
// Not copyable; use from the thread that made it.
class TopStopper {
 public:
  // `keys_fd`: where typed keys are read ('q' or 'Q' stops); -1 for none.
  explicit TopStopper(int keys_fd);
  ~TopStopper();
  TopStopper(const TopStopper&) = delete;
  TopStopper& operator=(const TopStopper&) = delete;

  // Waits up to `seconds`; true when a stop signal or a 'q' came. Other
  // keys are ignored; at the end of the keys' input only signals stop it.
  bool Wait(double seconds);

 private:
  int keys_fd_;
  int signal_fd_ = -1;
  sigset_t set_;
  sigset_t previous_;
};

// "▁▃▇": one block per value (ratios clamped to 0..1).
std::string Sparkline(const std::vector<double>& ratios);

}  // namespace gpurm::cli

#endif  // GPURM_CLI_TOP_COMMAND_H_
