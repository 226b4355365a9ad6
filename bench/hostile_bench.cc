// hostile_bench: the real daemon under the attached load of hostile clients
// on one machine (docs/SECURITY.md, section 9): how fast GET /health
// answers while 2,000 idle connections (that never send a request) and 400
// slow readers (that ask for a full page of allocation history and never
// read it) are attached, and the daemon's resident memory before, during and
// after.
//
//   build/bench/hostile_bench [--history N] [--idle N] [--slow N] [--probes N]
//
// Loopback only; bounded in count (the flags, each capped) and in time (every
// socket operation has a deadline; the whole run gives up after 300 s). It
// starts `gpurm serve` itself (GPURM_BINARY_DIR or the build directory) on
// the example inventory with limits high enough that every hostile
// connection stays attached for the measurement: the figures are the
// server's worst case, not its eviction at work. /health is probed while the
// daemon builds the 400 pages (its workers busy) and, for the target, once
// its CPU time stops growing (the slow readers attached, holding what their
// sockets did not take). Prints one line per figure and a JSON summary line;
// target: /health p99 under 10 ms with the slow readers attached.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/loopback.h"

namespace {

using Clock = std::chrono::steady_clock;

std::string BinaryDir() {
  const char* dir = std::getenv("GPURM_BINARY_DIR");
  return dir != nullptr ? dir : GPURM_DEFAULT_BINARY_DIR;
}

// A connected loopback socket with 10 s send and receive deadlines; -1 on
// failure. `receive_buffer` > 0 shrinks the receive buffer (a slow reader).
int Connect(uint16_t port, int receive_buffer = 0) {
  return gpurm::testing::ConnectLoopback(port, {.timeout_s = 10, .receive_buffer = receive_buffer});
}

bool SendAll(int fd, const std::string& data) {
  return ::send(fd, data.data(), data.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(data.size());
}

// One request on a kept-alive connection; the status (0 on failure). Reads
// the Content-Length-delimited answer completely.
int Exchange(int fd, const std::string& request) {
  if (!SendAll(fd, request)) return 0;
  std::string data;
  char buffer[16384];
  size_t head_end = std::string::npos;
  while ((head_end = data.find("\r\n\r\n")) == std::string::npos) {
    const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) return 0;
    data.append(buffer, static_cast<size_t>(n));
  }
  const size_t length_at = data.find("Content-Length: ");
  const size_t length =
      length_at == std::string::npos ? 0 : std::strtoul(data.c_str() + length_at + 16, nullptr, 10);
  while (data.size() < head_end + 4 + length) {
    const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) return 0;
    data.append(buffer, static_cast<size_t>(n));
  }
  return std::atoi(data.c_str() + 9);
}

// CPU time (user + system) of `pid` in clock ticks.
int64_t CpuTicks(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const size_t after_name = text.rfind(')');
  if (after_name == std::string::npos) return 0;
  std::istringstream fields(text.substr(after_name + 2));
  std::string field;
  int64_t user = 0;
  int64_t system = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) user = std::stoll(field);
    if (i == 15) system = std::stoll(field);
  }
  return user + system;
}

std::string LoadAverage() {
  std::ifstream loadavg("/proc/loadavg");
  std::string one;
  loadavg >> one;
  return one;
}

struct Latencies {
  std::vector<double> ms;
  int failures = 0;
};

// `count` GET /health on `*control` (reconnected after a failure).
Latencies ProbeHealth(int* control, uint16_t port, const std::string& request, int count,
                      Clock::time_point give_up) {
  Latencies out;
  for (int i = 0; i < count && Clock::now() < give_up; ++i) {
    const auto start = Clock::now();
    const int status = Exchange(*control, request);
    out.ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    if (status != 200) {
      ++out.failures;
      ::close(*control);
      *control = Connect(port);
    }
  }
  return out;
}

int64_t ResidentMib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6)) / 1024;
  }
  return 0;
}

int Flag(int argc, char** argv, const char* name, int fallback, int cap) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return std::clamp(std::atoi(argv[i + 1]), 1, cap);
  }
  return fallback;
}

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t at = static_cast<size_t>(p * static_cast<double>(values.size() - 1) + 0.5);
  return values[at];
}

}  // namespace

int main(int argc, char** argv) {
  const int history = Flag(argc, argv, "--history", 2000, 20000);
  const int idle_count = Flag(argc, argv, "--idle", 2000, 5000);
  const int slow_count = Flag(argc, argv, "--slow", 400, 1000);
  const int probes = Flag(argc, argv, "--probes", 500, 10000);
  const auto give_up = Clock::now() + std::chrono::seconds(300);

  // Room for every connection, here and in the daemon (it inherits this).
  rlimit files{};
  ::getrlimit(RLIMIT_NOFILE, &files);
  files.rlim_cur = files.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &files);
  if (files.rlim_cur < static_cast<rlim_t>(idle_count + slow_count + 256)) {
    std::fprintf(stderr, "hostile_bench: the open-file limit (%llu) is too low\n",
                 static_cast<unsigned long long>(files.rlim_cur));
    return 1;
  }

  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    ("gpurm-hostile-bench-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const int connections = idle_count + slow_count + 64;
  std::ofstream(dir / "gpu_config.yaml")
      << "log_level: \"WARNING\"\nserver:\n  max_connections: " << connections
      << "\n  first_request_timeout_s: 120\n  request_timeout_s: 120\n  reserved_connections: 8\n";
  const uint16_t port = gpurm::testing::FreeLoopbackPort();
  std::vector<std::string> args = {BinaryDir() + "/gpurm",
                                   "serve",
                                   "--config",
                                   (dir / "gpu_config.yaml").string(),
                                   "--inventory",
                                   std::string(GPURM_SOURCE_DIR) + "/examples/cluster-3node.yaml",
                                   "--listen",
                                   "127.0.0.1:" + std::to_string(port),
                                   "--data-dir",
                                   (dir / "data").string(),
                                   "--log-dir",
                                   (dir / "logs").string()};
  std::vector<char*> exec_argv;
  for (std::string& arg : args) exec_argv.push_back(arg.data());
  exec_argv.push_back(nullptr);
  const pid_t daemon = ::fork();
  if (daemon == 0) {
    ::execv(exec_argv[0], exec_argv.data());
    std::_Exit(127);
  }
  const std::string host = "Host: 127.0.0.1:" + std::to_string(port) + "\r\n";
  const std::string health = "GET /api/v1/gpu/health HTTP/1.1\r\n" + host + "\r\n";
  int control = -1;
  for (int attempt = 0; attempt < 600 && control < 0; ++attempt) {
    control = Connect(port);
    if (control >= 0 && Exchange(control, health) != 200) {
      ::close(control);
      control = -1;
    }
    if (control < 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const auto stop = [&](int code) {
    ::kill(daemon, SIGTERM);
    ::waitpid(daemon, nullptr, 0);
    std::filesystem::remove_all(dir);
    return code;
  };
  if (control < 0) {
    std::fprintf(stderr, "hostile_bench: the daemon did not become ready\n");
    return stop(1);
  }

  // History: allocations made and released, so that a full page of
  // /allocations?all=true is as large as a page gets.
  const std::string allocate_body = R"({"gpu_type": "T4"})";
  const std::string allocate =
      "POST /api/v1/gpu/allocate HTTP/1.1\r\n" + host +
      "Content-Type: application/json\r\nContent-Length: " + std::to_string(allocate_body.size()) +
      "\r\n\r\n" + allocate_body;
  const std::string release_body = R"({"node_name": "gpu-node-3", "gpu_count": 1})";
  const std::string release =
      "POST /api/v1/gpu/release HTTP/1.1\r\n" + host +
      "Content-Type: application/json\r\nContent-Length: " + std::to_string(release_body.size()) +
      "\r\n\r\n" + release_body;
  for (int i = 0; i < history && Clock::now() < give_up; ++i) {
    if (Exchange(control, allocate) != 200 || Exchange(control, release) != 200) {
      std::fprintf(stderr, "hostile_bench: building the history failed at %d\n", i);
      return stop(1);
    }
  }
  const int64_t rss_before = ResidentMib(daemon);

  std::vector<int> idle;
  for (int i = 0; i < idle_count && Clock::now() < give_up; ++i) {
    const int fd = Connect(port);
    if (fd >= 0) idle.push_back(fd);
  }
  // Slow readers: a 4 KiB receive buffer, a full page asked for, nothing read.
  const std::string page = "GET /api/v1/gpu/allocations?all=true HTTP/1.1\r\n" + host + "\r\n";
  std::vector<int> slow;
  for (int i = 0; i < slow_count && Clock::now() < give_up; ++i) {
    const int fd = Connect(port, 4096);
    if (fd >= 0 && SendAll(fd, page)) slow.push_back(fd);
  }
  // While the daemon builds the 400 pages (its workers busy)...
  const Latencies building = ProbeHealth(&control, port, health, probes / 5, give_up);
  // ...and once it has written what the sockets take and only holds the
  // connections: its CPU time stops growing (bounded wait).
  for (int64_t before = -1, now = CpuTicks(daemon); before != now && Clock::now() < give_up;) {
    before = now;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    now = CpuTicks(daemon);
  }
  const int64_t rss_during = ResidentMib(daemon);
  // A new probe connection: the old one may have outlived idle_timeout_s.
  ::close(control);
  control = Connect(port);
  const Latencies attached = ProbeHealth(&control, port, health, probes, give_up);
  const std::vector<double>& latencies_ms = attached.ms;
  const int failures = attached.failures;
  // A fresh connection too, as a monitoring probe makes one.
  const auto fresh_start = Clock::now();
  const int fresh = Connect(port);
  const int fresh_status = fresh >= 0 ? Exchange(fresh, health) : 0;
  const double fresh_ms =
      std::chrono::duration<double, std::milli>(Clock::now() - fresh_start).count();
  if (fresh >= 0) ::close(fresh);

  for (const int fd : slow) ::close(fd);
  for (const int fd : idle) ::close(fd);
  std::this_thread::sleep_for(std::chrono::seconds(3));
  const int64_t rss_after = ResidentMib(daemon);

  if (latencies_ms.empty()) {
    std::fprintf(stderr, "hostile_bench: out of time before probing\n");
    return stop(1);
  }
  const double p50 = Percentile(latencies_ms, 0.50);
  const double p99 = Percentile(latencies_ms, 0.99);
  const double worst = *std::max_element(latencies_ms.begin(), latencies_ms.end());
  std::printf("history: %d allocations; attached: %zu idle connections, %zu slow readers\n",
              history, idle.size(), slow.size());
  std::printf(
      "/health on a kept-alive connection: p50 %.2f ms, p99 %.2f ms, max %.2f ms "
      "(%zu probes, %d not 200)\n",
      p50, p99, worst, latencies_ms.size(), failures);
  std::printf(
      "/health while the 400 pages were being built: p50 %.2f ms, p99 %.2f ms (%zu probes, "
      "%d not 200)\n",
      Percentile(building.ms, 0.5), Percentile(building.ms, 0.99), building.ms.size(),
      building.failures);
  std::printf("/health on a new connection: %d in %.2f ms\n", fresh_status, fresh_ms);
  std::printf("load average (1 min) at the end: %s\n", LoadAverage().c_str());
  std::printf("daemon RSS: %lld MiB before, %lld MiB with the slow readers, %lld MiB after\n",
              static_cast<long long>(rss_before), static_cast<long long>(rss_during),
              static_cast<long long>(rss_after));
  std::printf(
      "{\"history\": %d, \"idle\": %zu, \"slow\": %zu, \"health_p50_ms\": %.3f, "
      "\"health_p99_ms\": %.3f, \"health_max_ms\": %.3f, \"health_failures\": %d, "
      "\"fresh_connection_status\": %d, \"fresh_connection_ms\": %.3f, \"rss_mib_before\": %lld, "
      "\"rss_mib_during\": %lld, \"rss_mib_after\": %lld, \"building_p99_ms\": %.3f, "
      "\"target_p99_ms\": 10}\n",
      history, idle.size(), slow.size(), p50, p99, worst, failures, fresh_status, fresh_ms,
      static_cast<long long>(rss_before), static_cast<long long>(rss_during),
      static_cast<long long>(rss_after), Percentile(building.ms, 0.99));
  ::close(control);
  return stop(0);
}
