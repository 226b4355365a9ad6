#include "cli/top_command.h"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <utility>
#include <vector>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/json_view.h"
#include "cli/table.h"

namespace gpurm::cli {
namespace {

using nlohmann::json;

constexpr char kMonitoringPath[] = "/api/v1/gpu/monitoring?window=600";
constexpr size_t kSparklineSamples = 10;
constexpr int kBarWidth = 10;

// --- Text with ANSI colours -------------------------------------------------

std::string Paint(const std::string& text, const char* sgr, bool color) {
  if (!color || text.empty()) return text;
  return std::string("\x1b[") + sgr + "m" + text + "\x1b[0m";
}

// Width on screen: code points, not counting escape sequences.
size_t VisibleWidth(const std::string& text) {
  size_t width = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\x1b') {
      while (i < text.size() && text[i] != 'm') ++i;
      continue;
    }
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) ++width;
  }
  return width;
}

const char* LoadColour(double ratio) {
  if (ratio >= 0.8) return "31";  // Red.
  if (ratio >= 0.5) return "33";  // Yellow.
  return "32";                    // Green.
}

// "  7%", " 42%", "100%": fixed width, so what follows lines up.
std::string Percent(double ratio) {
  const std::string digits = std::to_string(std::lround(std::clamp(ratio, 0.0, 1.0) * 100.0));
  return std::string(3 - std::min<size_t>(3, digits.size()), ' ') + digits + "%";
}

// --- One GPU row ----------------------------------------------------------------

struct GpuRow {
  int index = 0;
  std::string model;
  double utilization = 0;
  double used_gb = 0;
  double reserved_gb = 0;
  double total_gb = 0;
  std::optional<double> temperature_c;
  std::optional<double> power_w;
  std::optional<double> power_limit_w;
  bool healthy = true;
  std::string health_reason;
  std::string state;
  std::vector<std::string> holders;
  // One line per process: "pid 4242  59.5 GB", then, when the daemon maps
  // processes to allocations, user, command, allocation (owner) and class.
  std::vector<std::string> processes;
  std::vector<double> history;  // Utilization, oldest first.
  // False where the device gives none (MIG devices, GPUs in MIG mode): shown
  // as "n/a", never as 0%.
  bool utilization_available = true;
  bool mig_mode = false;
  std::string mig_profile;          // Set on MIG devices.
  std::vector<GpuRow> mig_devices;  // Under a GPU in MIG mode.

  double memory_ratio() const { return total_gb > 0 ? used_gb / total_gb : 0.0; }
};

GpuRow ReadGpu(const json& gpu) {
  GpuRow row;
  row.index = static_cast<int>(Number(gpu, "index").value_or(0));
  row.model = String(gpu, "name", String(gpu, "gpu_type"));
  row.utilization = Number(gpu, "utilization").value_or(0);
  row.used_gb = Number(gpu, "memory_used_gb").value_or(0);
  row.reserved_gb = Number(gpu, "memory_reserved_gb").value_or(0);
  row.total_gb = Number(gpu, "memory_total_gb").value_or(0);
  row.temperature_c = Number(gpu, "temperature_c");
  row.power_w = Number(gpu, "power_w");
  row.power_limit_w = Number(gpu, "power_limit_w");
  row.healthy = Member(gpu, "healthy") != false;
  row.health_reason = String(gpu, "health_reason", "");
  row.state = String(gpu, "state", "");
  row.utilization_available = Member(gpu, "utilization_available") != false;
  row.mig_mode = Member(gpu, "mig_mode") == true;
  row.mig_profile = String(gpu, "mig_profile", "");
  if (!row.mig_profile.empty()) row.model = "└ MIG " + row.mig_profile;
  for (const json& mig : Array(gpu, "mig_devices")) row.mig_devices.push_back(ReadGpu(mig));
  for (const json& holder : Array(gpu, "allocations")) {
    std::string text = String(holder, "allocation_id");
    const std::string owner = String(holder, "owner", "");
    if (!owner.empty()) text += " (" + owner + ")";
    row.holders.push_back(std::move(text));
  }
  for (const json& process : Array(gpu, "processes")) {
    std::string line = "pid " +
                       std::to_string(static_cast<int64_t>(Number(process, "pid").value_or(0))) +
                       "  " + FormatGb(Number(process, "memory_used_gb").value_or(0)) + " GB";
    for (const char* field : {"user", "command"}) {
      const std::string value = String(process, field, "");
      if (!value.empty()) line += "  " + value;
    }
    const std::string allocation = String(process, "allocation_id", "");
    if (!allocation.empty()) {
      line += "  " + allocation;
      const std::string owner = String(process, "owner", "");
      if (!owner.empty()) line += " (" + owner + ")";
    }
    const std::string process_class = String(process, "class", "");
    if (!process_class.empty()) line += "  " + process_class;
    row.processes.push_back(std::move(line));
  }
  for (const json& sample : Array(gpu, "history")) {
    if (!row.utilization_available) break;
    row.history.push_back(Number(sample, "utilization").value_or(0));
  }
  if (row.history.size() > kSparklineSamples) {
    row.history.erase(row.history.begin(),
                      row.history.end() - static_cast<std::ptrdiff_t>(kSparklineSamples));
  }
  return row;
}

void SortRows(std::vector<GpuRow>& rows, const std::string& key) {
  auto value = [&key](const GpuRow& row) -> double {
    if (key == "util") return row.utilization;
    if (key == "memory") return row.memory_ratio();
    if (key == "temp") return row.temperature_c.value_or(-1e9);
    return 0;
  };
  std::stable_sort(rows.begin(), rows.end(), [&](const GpuRow& a, const GpuRow& b) {
    const double va = value(a);
    const double vb = value(b);
    if (va != vb) return va > vb;
    return a.index < b.index;
  });
}

// "[###==     ]": used, then reserved beyond used, of the total.
std::string MemoryBar(const GpuRow& row) {
  if (row.total_gb <= 0) return "[" + std::string(kBarWidth, ' ') + "]";
  auto cells = [&row](double gb) {
    return static_cast<int>(
        std::lround(std::clamp(gb / row.total_gb, 0.0, 1.0) * static_cast<double>(kBarWidth)));
  };
  const int used = cells(row.used_gb);
  const int reserved = std::max(used, cells(row.reserved_gb));
  return "[" + std::string(static_cast<size_t>(used), '#') +
         std::string(static_cast<size_t>(reserved - used), '=') +
         std::string(static_cast<size_t>(kBarWidth - reserved), ' ') + "]";
}

std::vector<std::string> Cells(const GpuRow& row, bool color) {
  std::string util;
  if (!row.utilization_available) {
    // NVML reports no utilization for MIG devices nor for a GPU in MIG mode.
    util = row.mig_mode ? "n/a (MIG mode)" : row.mig_profile.empty() ? "n/a" : "n/a (MIG)";
  } else {
    util = Paint(Bar(row.utilization, kBarWidth), LoadColour(row.utilization), color) + " " +
           Percent(row.utilization);
    if (!row.history.empty()) util += " " + Sparkline(row.history);
  }
  const std::string memory = Paint(MemoryBar(row), LoadColour(row.memory_ratio()), color) + " " +
                             FormatGb(row.used_gb) + "/" + FormatGb(row.reserved_gb) + "/" +
                             FormatGb(row.total_gb) + " GB";
  std::string temperature = "-";
  if (row.temperature_c) {
    temperature = std::to_string(std::lround(*row.temperature_c)) + " C";
    if (*row.temperature_c >= 85) {
      temperature = Paint(temperature, "31", color);
    } else if (*row.temperature_c >= 75) {
      temperature = Paint(temperature, "33", color);
    }
  }
  std::string power = "-";
  if (row.power_w) {
    power = std::to_string(std::lround(*row.power_w));
    if (row.power_limit_w) power += "/" + std::to_string(std::lround(*row.power_limit_w));
    power += " W";
  }
  const std::string health =
      row.healthy ? Paint("ok", "32", color)
                  : Paint("UNHEALTHY" + (row.health_reason.empty() ? "" : ": " + row.health_reason),
                          "1;31", color);
  std::string holders;
  for (const std::string& holder : row.holders) holders += (holders.empty() ? "" : ", ") + holder;
  if (holders.empty()) {
    holders = row.state == "cordoned" || row.state == "lost" ? row.state
              : row.mig_mode                                 ? "(its MIG devices)"
                                                             : "-";
  }
  // A MIG device's row sits under its GPU's and shows no index of its own.
  return {row.mig_profile.empty() ? std::to_string(row.index) : "",
          row.model,
          util,
          memory,
          temperature,
          power,
          health,
          holders};
}

// Aligned columns whose cells may carry colour escapes.
std::string RenderColumns(const std::vector<std::string>& headers,
                          const std::vector<std::vector<std::string>>& rows,
                          const std::vector<std::vector<std::string>>& extra_lines) {
  std::vector<size_t> widths(headers.size());
  for (size_t c = 0; c < headers.size(); ++c) {
    widths[c] = VisibleWidth(headers[c]);
    for (const auto& row : rows) widths[c] = std::max(widths[c], VisibleWidth(row[c]));
  }
  auto line = [&widths](const std::vector<std::string>& cells) {
    std::string text = " ";
    for (size_t c = 0; c < cells.size(); ++c) {
      if (c > 0) text += "  ";
      const std::string padding(widths[c] - VisibleWidth(cells[c]), ' ');
      text += c == 0 ? padding + cells[c] : cells[c] + padding;  // Index right-aligned.
    }
    text.erase(text.find_last_not_of(' ') + 1);
    return text + "\n";
  };
  std::string out = line(headers);
  for (size_t r = 0; r < rows.size(); ++r) {
    out += line(rows[r]);
    for (const std::string& extra : extra_lines[r]) {
      out += std::string(widths[0] + 3, ' ') + extra + "\n";
    }
  }
  return out;
}

// --- Fetching ---------------------------------------------------------------------

struct Fetched {
  int exit_code = kExitOk;
  json body;          // The monitoring answer when exit_code is kExitOk.
  std::string error;  // Otherwise, what went wrong.
};

Fetched Fetch(const TopGlobals& globals) {
  HttpClientOptions options;
  options.base_url = globals.url;
  options.timeout = std::chrono::milliseconds(
      static_cast<int64_t>(std::min(globals.timeout_s, 86'400.0) * 1000.0));
  const HttpClient client(std::move(options));
  Result<HttpResponse> response = client.Get(kMonitoringPath);
  if (!response.ok()) return {kExitUnavailable, nullptr, response.status().message()};
  if (!response->body.is_object()) {
    return {kExitUnavailable, nullptr,
            "unexpected answer from " + client.base_url() + " (HTTP " +
                std::to_string(response->status) + "): " + response->raw_body.substr(0, 200)};
  }
  const int code = ExitCodeForHttpStatus(response->status);
  if (code != kExitOk) return {code, nullptr, RenderError(response->body)};
  return {kExitOk, std::move(response->body), ""};
}

bool NodeMatches(const json& body, const TopOptions& options) {
  if (!options.node) return true;
  for (const json& node : Array(body, "nodes")) {
    if (String(node, "node_name") == *options.node) return true;
  }
  return false;
}

// Puts a terminal into non-canonical mode without echo while it exists, so
// that a key reaches TopStopper as it is typed (no Enter needed); restores
// the previous settings when destroyed. Does nothing for a non-terminal.
class TerminalKeys {
 public:
  explicit TerminalKeys(int fd) : fd_(::isatty(fd) != 0 ? fd : -1) {
    if (fd_ < 0 || ::tcgetattr(fd_, &previous_) != 0) {
      fd_ = -1;
      return;
    }
    termios raw = previous_;
    raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);
    raw.c_cc[VMIN] = 1;
    raw.c_cc[VTIME] = 0;
    if (::tcsetattr(fd_, TCSANOW, &raw) != 0) fd_ = -1;
  }
  ~TerminalKeys() {
    if (fd_ >= 0) ::tcsetattr(fd_, TCSANOW, &previous_);
  }
  TerminalKeys(const TerminalKeys&) = delete;
  TerminalKeys& operator=(const TerminalKeys&) = delete;

  // The terminal's descriptor, -1 when keys are not read.
  int fd() const { return fd_; }

 private:
  int fd_;
  termios previous_{};
};

}  // namespace

TopStopper::TopStopper(int keys_fd) : keys_fd_(keys_fd) {
  sigemptyset(&set_);
  sigaddset(&set_, SIGINT);
  sigaddset(&set_, SIGTERM);
  sigaddset(&set_, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set_, &previous_);
  signal_fd_ = ::signalfd(-1, &set_, SFD_CLOEXEC | SFD_NONBLOCK);
}

TopStopper::~TopStopper() {
  if (signal_fd_ >= 0) ::close(signal_fd_);
  // A signal that arrived during the last frame is consumed, not re-raised.
  timespec zero{};
  while (sigtimedwait(&set_, nullptr, &zero) > 0) {
  }
  pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
}

bool TopStopper::Wait(double seconds) {
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            std::chrono::duration<double>(seconds));
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    std::array<pollfd, 2> fds = {pollfd{signal_fd_, POLLIN, 0}, pollfd{keys_fd_, POLLIN, 0}};
    const int ready = ::poll(fds.data(), fds.size(), static_cast<int>(left.count()));
    if (ready < 0 && errno != EINTR) return false;
    if (ready <= 0) continue;
    if (fds[0].revents != 0) return true;
    if (fds[1].revents != 0) {
      char keys[64];
      const ssize_t n = ::read(keys_fd_, keys, sizeof(keys));
      if (n <= 0 && !(n < 0 && errno == EINTR)) {
        keys_fd_ = -1;  // End of input: only signals stop it now (poll ignores -1).
        continue;
      }
      for (ssize_t i = 0; i < n; ++i) {
        if (keys[i] == 'q' || keys[i] == 'Q') return true;
      }
    }
  }
}

namespace {

int RunTop(const TopGlobals& globals, const TopOptions& options, std::ostream& out,
           std::ostream& err, bool terminal) {
  const bool json_output = globals.output == "json";
  if (options.once) {
    Fetched fetched = Fetch(globals);
    if (fetched.exit_code != kExitOk) {
      err << (fetched.error.rfind("Error:", 0) == 0 ? "" : "gpurm: ") << fetched.error
          << (fetched.error.ends_with("\n") ? "" : "\n");
      return fetched.exit_code;
    }
    if (!NodeMatches(fetched.body, options)) {
      err << "gpurm top: no node named \"" << *options.node << "\"\n";
      return kExitRefused;
    }
    if (json_output) {
      out << fetched.body.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
    } else {
      out << RenderTopFrame(fetched.body, options, globals.url);
    }
    return kExitOk;
  }

  const bool full_screen = terminal && !json_output;
  // 'q' quits the full-screen view, as in top and nvitop.
  const TerminalKeys keys(full_screen ? STDIN_FILENO : -1);
  TopStopper stopper(keys.fd());
  if (full_screen) out << "\x1b[?1049h\x1b[?25l";  // Alternate screen, hide the cursor.
  do {
    Fetched fetched = Fetch(globals);
    std::string frame;
    if (json_output) {
      frame = fetched.exit_code == kExitOk
                  ? fetched.body.dump(-1, ' ', false, json::error_handler_t::replace) + "\n"
                  : "";
      if (fetched.exit_code != kExitOk) err << "gpurm: " << fetched.error << "\n";
    } else if (fetched.exit_code == kExitOk) {
      frame = RenderTopFrame(fetched.body, options, globals.url);
    } else {
      frame = "gpurm top - " + globals.url + "\n\n" + fetched.error +
              (fetched.error.ends_with("\n") ? "" : "\n") + "Retrying every " +
              FormatGb(options.interval_s) + " s; " + (keys.fd() >= 0 ? "q or Ctrl-C" : "Ctrl-C") +
              " to quit.\n";
    }
    if (full_screen) {
      out << "\x1b[H\x1b[2J" << frame << std::flush;
    } else {
      out << frame << (json_output ? "" : "\n") << std::flush;
    }
  } while (!stopper.Wait(options.interval_s));
  if (full_screen) out << "\x1b[?25h\x1b[?1049l" << std::flush;  // Back to the normal screen.
  return kExitOk;
}

}  // namespace

std::string Sparkline(const std::vector<double>& ratios) {
  static constexpr const char* kBlocks[] = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
  std::string line;
  for (const double ratio : ratios) {
    const double clamped = std::isnan(ratio) ? 0.0 : std::clamp(ratio, 0.0, 1.0);
    line += kBlocks[std::min<long>(7, std::lround(clamped * 7.0))];
  }
  return line;
}

std::string RenderTopFrame(const json& monitoring, const TopOptions& options,
                           const std::string& source) {
  const bool color = options.color;
  std::string out = Paint("gpurm top", "1", color) + " - " + source + " - " +
                    String(monitoring, "timestamp") + "\n";
  int gpus = 0;
  int mig_devices = 0;
  int allocated = 0;
  int shared = 0;
  int unhealthy = 0;
  int utilization_gpus = 0;
  double utilization = 0;
  double used = 0;
  double reserved = 0;
  double total = 0;
  std::string body;
  size_t nodes_shown = 0;
  for (const json& node : Array(monitoring, "nodes")) {
    const std::string name = String(node, "node_name");
    if (options.node && name != *options.node) continue;
    ++nodes_shown;
    std::vector<GpuRow> rows;
    for (const json& gpu : Array(node, "gpus")) rows.push_back(ReadGpu(gpu));
    SortRows(rows, options.sort);
    std::vector<std::vector<std::string>> cells;
    std::vector<std::vector<std::string>> extra;
    size_t node_mig_devices = 0;
    // A GPU's MIG devices follow it. Memory totals are the GPUs' (a MIG
    // device's memory is part of its GPU's); reservations are the units'.
    // `nested`: a MIG device listed under its GPU (whose memory holds it).
    auto add = [&](const GpuRow& row, bool nested) {
      const bool mig_device = !row.mig_profile.empty();
      mig_device ? ++mig_devices : ++gpus;
      allocated += row.state == "allocated" ? 1 : 0;
      shared += row.state == "shared" ? 1 : 0;
      unhealthy += row.healthy ? 0 : 1;
      if (row.utilization_available) {
        utilization += row.utilization;
        ++utilization_gpus;
      }
      if (!nested) {
        used += row.used_gb;
        total += row.total_gb;
      }
      reserved += row.reserved_gb;
      cells.push_back(Cells(row, color));
      extra.push_back(row.processes);
    };
    size_t node_gpus = 0;
    for (const GpuRow& row : rows) {
      add(row, false);
      // A MIG device whose GPU is not listed (Kubernetes) stands alone.
      ++(row.mig_profile.empty() ? node_gpus : node_mig_devices);
      for (const GpuRow& mig : row.mig_devices) {
        add(mig, true);
        ++node_mig_devices;
      }
    }
    rows.clear();
    body += "\n" + Paint(name, "1", color) + "  " + std::to_string(node_gpus) + " GPU(s)";
    if (node_mig_devices > 0) body += ", " + std::to_string(node_mig_devices) + " MIG device(s)";
    body += "\n";
    if (cells.empty()) {
      body += " (no GPUs)\n";
      continue;
    }
    body += RenderColumns({"GPU", "MODEL", "UTIL", "MEMORY used/reserved/total", "TEMP", "POWER",
                           "HEALTH", "HELD BY"},
                          cells, extra);
  }
  const double interval = Number(monitoring, "interval_seconds").value_or(0);
  std::string mean_utilization =
      utilization_gpus > 0 ? Percent(utilization / utilization_gpus) : std::string("n/a");
  mean_utilization.erase(0, mean_utilization.find_first_not_of(' '));
  out += "Sampled " + String(monitoring, "sampled_at") + " (every " + FormatGb(interval) +
         " s); sorted by " + options.sort + "\n";
  out += std::to_string(gpus) + " GPU(s)" +
         (mig_devices > 0 ? " and " + std::to_string(mig_devices) + " MIG device(s)" : "") +
         " on " + std::to_string(nodes_shown) + " node(s): " + std::to_string(allocated) +
         " allocated, " + std::to_string(shared) + " shared, " + std::to_string(unhealthy) +
         " unhealthy; utilization " + mean_utilization + "; memory used " + FormatGb(used) +
         " / reserved " + FormatGb(reserved) + " / total " + FormatGb(total) + " GB\n";
  if (nodes_shown == 0) {
    return out + "\n" +
           (options.node ? "No node named \"" + *options.node + "\".\n" : "No nodes.\n");
  }
  return out + body + "\nMemory bar: # used, = reserved by allocations beyond what is used.\n";
}

void RegisterTopCommand(CLI::App& app, int* exit_code, std::function<TopGlobals()> globals,
                        std::ostream& out, std::ostream& err, bool out_is_terminal) {
  struct State {
    TopOptions options;
    std::string color = "auto";
  };
  auto state = std::make_shared<State>();
  CLI::App* top = app.add_subcommand("top",
                                     "Live view of GPUs: utilization, memory, health, "
                                     "allocations (like nvitop)");
  top->fallthrough();
  top->add_option("--interval", state->options.interval_s, "Seconds between refreshes")
      ->check(CLI::Range(0.1, 86'400.0))
      ->capture_default_str();
  top->add_flag("--once", state->options.once, "Print one frame and exit");
  top->add_option_function<std::string>(
      "--node", [state](const std::string& node) { state->options.node = node; }, "Only this node");
  top->add_option("--sort", state->options.sort, "Order of GPUs on each node")
      ->check(CLI::IsMember({"util", "memory", "temp", "index"}))
      ->capture_default_str();
  top->add_option("--color", state->color, "ANSI colours")
      ->check(CLI::IsMember({"auto", "always", "never"}))
      ->capture_default_str();
  top->callback([state, exit_code, globals = std::move(globals), &out, &err, out_is_terminal] {
    TopOptions options = state->options;
    options.color = state->color == "always" || (state->color == "auto" && out_is_terminal &&
                                                 std::getenv("NO_COLOR") == nullptr);
    *exit_code = RunTop(globals(), options, out, err, out_is_terminal);
  });
}

}  // namespace gpurm::cli
