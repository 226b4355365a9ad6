// monitor_bench: what live monitoring costs, with 8 and 64 GPUs.
//
//   build/bench/monitor_bench
//
// sampler_pass/N      One sampling pass of the Sampler thread (provider call,
//                     snapshot publication, history append, change detection
//                     and event fan-out to one subscriber) over N GPUs, with
//                     the history ring full (an hour at the default 30 s).
//                     Time is the sampler thread's own CPU time per pass
//                     (manual time); the counter cpu_ns_per_gpu divides it by
//                     N. The provider is scripted (a copy of N GPUs), so this
//                     is gpurm's own cost: a vendor library's calls come on
//                     top (NVML: a few microseconds per field per GPU).
// process_accounting/N/P  One process accounting pass (monitor/
//                     process_accounting.h) over N GPUs with P processes
//                     each, in steady state (environments already read):
//                     the /proc reads per process and the classification.
//                     CPU time of the calling thread per pass (manual time)
//                     and per process (cpu_ns_per_process); it runs after
//                     each sampling pass, on the sampler thread.
// local_pass/N        The same pass through the real local discovery
//                     (LocalProvider, NVML back end, one sampling worker per
//                     GPU and the per-GPU deadline) over N GPUs of the fake
//                     libnvidia-ml.so.1 of tests/fakes: CPU time of the
//                     sampler thread plus the workers, per pass and per GPU
//                     (cpu_ns_per_gpu). The fake answers from memory, so this
//                     is gpurm's cost, thread hand-offs included. Needs the
//                     test build's gpurm_fake_nvml.
// history_memory/N    Heap an hour of history (120 samples per GPU) takes,
//                     from malloc's own accounting: history_KiB and per GPU.
// daemon_rss/N        VmRSS of the real `gpurm serve` with a static inventory
//                     of N GPUs (8 per node) once its history is full (120
//                     on-demand samples, as many as an hour at the default
//                     interval keeps) and /metrics and /monitoring were
//                     scraped: rss_MiB. Needs the gpurm binary of the same
//                     build tree ($GPURM_BINARY_DIR overrides).
#include <benchmark/benchmark.h>
#include <malloc.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "inventory/inventory.h"
#include "inventory/providers/local/local_provider.h"
#include "inventory/testing/scripted_provider.h"
#include "monitor/event_hub.h"
#include "monitor/process_accounting.h"
#include "monitor/sampler.h"
#include "support/loopback.h"

namespace gpurm {
namespace {

using testing::ConnectLoopback;
using testing::FreeLoopbackPort;

constexpr double kIntervalS = 30;         // monitor_update_interval's default.
constexpr size_t kHistoryCapacity = 120;  // One hour at that interval.
constexpr int kGpusPerNode = 8;

std::vector<Node> Cluster(int gpus) {
  std::vector<Node> nodes;
  for (int n = 0; n * kGpusPerNode < gpus; ++n) {
    nodes.push_back(testing::H100Node("node-" + std::to_string(n), kGpusPerNode));
  }
  return nodes;
}

// Readings that move like a busy cluster's: each pass, a quarter of the GPUs
// change utilization by more than the threshold (events), the rest jitter
// below it.
void Perturb(std::vector<Node>& nodes, int64_t pass) {
  int i = 0;
  for (Node& node : nodes) {
    for (Gpu& gpu : node.gpus) {
      const bool moves = (i + pass) % 4 == 0;
      gpu.utilization = moves ? ((pass / 4) % 2 == 0 ? 0.9 : 0.1) : gpu.utilization + 0.001;
      gpu.memory_used_mib = 512 + (pass % 7) * 16;
      gpu.temperature_c = 40 + static_cast<double>(pass % 3) * 0.1;
      ++i;
    }
  }
}

// Bytes malloc has handed out and not taken back.
int64_t HeapInUse() {
  const struct mallinfo2 info = mallinfo2();
  return static_cast<int64_t>(info.uordblks + info.hblkhd);
}

void BM_SamplerPass(benchmark::State& state) {
  const int gpus = static_cast<int>(state.range(0));
  auto script = std::make_shared<testing::Script>();
  std::vector<Node> nodes = Cluster(gpus);
  script->SetNodes(nodes);
  FakeClock clock;
  Inventory inventory(std::make_unique<testing::ScriptedProvider>(script), &clock,
                      kHistoryCapacity);
  EventHub hub;
  auto subscriber = hub.Subscribe();
  Sampler sampler(&inventory, &clock, &hub, SamplerOptions{kIntervalS, 0.05});
  sampler.Start();
  int64_t pass = 0;
  // Fill the history ring first: the steady state drops one sample per GPU
  // per pass.
  for (size_t i = 0; i < kHistoryCapacity; ++i) {
    Perturb(nodes, ++pass);
    script->SetNodes(nodes);
    sampler.SampleNow();
    subscriber->Poll();
  }
  uint64_t events = 0;
  for (auto _ : state) {
    Perturb(nodes, ++pass);
    script->SetNodes(nodes);
    clock.AdvanceMs(static_cast<int64_t>(kIntervalS * 1000));
    const double cpu_before = sampler.stats().cpu_seconds;
    sampler.SampleNow();
    state.SetIterationTime(sampler.stats().cpu_seconds - cpu_before);
    events += subscriber->Poll().events.size();
  }
  const SamplerStats stats = sampler.stats();
  state.counters["gpus"] = gpus;
  state.counters["cpu_ns_per_gpu"] =
      benchmark::Counter(static_cast<double>(gpus), benchmark::Counter::kIsIterationInvariantRate |
                                                        benchmark::Counter::kInvert);
  state.counters["events_per_pass"] =
      static_cast<double>(events) / static_cast<double>(state.iterations());
  state.counters["history_samples"] =
      static_cast<double>(inventory.History("node-0-gpu0", 0).size());
  benchmark::DoNotOptimize(stats);
}
BENCHMARK(BM_SamplerPass)->Name("sampler_pass")->Arg(8)->Arg(64)->UseManualTime();

// Reads /proc/self for every pid: the file reads a pass really does (stat
// and status per process and pass; environ once per new process), for as
// many distinct pids as the pass reports.
class SelfProcReader final : public ProcReader {
 public:
  Result<ProcStat> Stat(int64_t) const override { return real_.Stat(::getpid()); }
  Result<std::string> Environ(int64_t) const override { return real_.Environ(::getpid()); }
  Result<std::string> Cgroup(int64_t) const override { return real_.Cgroup(::getpid()); }

 private:
  LinuxProcReader real_;
};

void BM_ProcessAccounting(benchmark::State& state) {
  const int gpus = static_cast<int>(state.range(0));
  const int per_gpu = static_cast<int>(state.range(1));
  InventorySnapshot snapshot;
  snapshot.nodes = Cluster(gpus);
  std::vector<AccountedAllocation> allocations;
  int64_t pid = 100000;
  for (Node& node : snapshot.nodes) {
    for (Gpu& gpu : node.gpus) {
      AccountedAllocation& allocation = allocations.emplace_back();
      allocation.id = "alloc-" + gpu.uuid;
      allocation.granted_mib[gpu.uuid] = gpu.memory_total_mib;
      gpu.processes.clear();
      for (int p = 0; p < per_gpu; ++p) gpu.processes.push_back({pid++, 256});
    }
  }
  const SelfProcReader reader;
  ProcessAccountant accountant(&reader);
  size_t accounted = accountant.Account(snapshot, allocations).size();  // Warm the cache.
  auto thread_cpu_s = [] {
    timespec now{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
    return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) / 1e9;
  };
  for (auto _ : state) {
    const double before = thread_cpu_s();
    accounted += accountant.Account(snapshot, allocations).size();
    state.SetIterationTime(thread_cpu_s() - before);
  }
  benchmark::DoNotOptimize(accounted);
  state.counters["processes"] = gpus * per_gpu;
  state.counters["cpu_ns_per_process"] = benchmark::Counter(
      static_cast<double>(gpus * per_gpu),
      benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}
// process_accounting/64/20: the issue's 64 GPUs x 20 processes.
BENCHMARK(BM_ProcessAccounting)
    ->Name("process_accounting")
    ->Args({8, 4})
    ->Args({64, 20})
    ->UseManualTime();

void BM_HistoryMemory(benchmark::State& state) {
  const int gpus = static_cast<int>(state.range(0));
  for (auto _ : state) {
    auto script = std::make_shared<testing::Script>();
    std::vector<Node> nodes = Cluster(gpus);
    FakeClock clock;
    Inventory inventory(std::make_unique<testing::ScriptedProvider>(script), &clock,
                        kHistoryCapacity);
    script->SetNodes(nodes);
    inventory.Refresh();
    const int64_t before = HeapInUse();
    for (size_t i = 1; i < kHistoryCapacity; ++i) {
      clock.AdvanceMs(static_cast<int64_t>(kIntervalS * 1000));
      inventory.Refresh();
    }
    const double grown_kib = static_cast<double>(HeapInUse() - before) / 1024.0;
    state.counters["history_KiB"] = grown_kib;
    state.counters["KiB_per_gpu"] = grown_kib / gpus;
  }
}
BENCHMARK(BM_HistoryMemory)->Name("history_memory")->Arg(8)->Arg(64)->Iterations(1);

// --- The real daemon --------------------------------------------------------

std::string BinaryDir() {
  const char* dir = std::getenv("GPURM_BINARY_DIR");
  return dir != nullptr ? dir : GPURM_DEFAULT_BINARY_DIR;
}

// One HTTP/1.0 exchange; returns the status code, 0 when nothing answered.
int HttpStatus(uint16_t port, const std::string& method, const std::string& path) {
  const int fd = ConnectLoopback(port);
  if (fd < 0) return 0;
  int status = 0;
  const std::string request = method + " " + path + " HTTP/1.0\r\nContent-Length: 0\r\n\r\n";
  if (::write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
    std::string answer;
    char buffer[65536];
    ssize_t n = 0;
    while ((n = ::read(fd, buffer, sizeof(buffer))) > 0) answer.append(buffer, n);
    if (answer.size() > 12) status = std::atoi(answer.c_str() + 9);
  }
  ::close(fd);
  return status;
}

int64_t ResidentKibOf(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  }
  return 0;
}

// A fake NVML machine file of `gpus` busy H100s (tests/fakes/machines/README.md).
void WriteNvmlMachine(const std::filesystem::path& path, int gpus) {
  std::ofstream out(path);
  out << R"({"nvml_version": "12.550.54.15", "driver_version": "550.54.15", "gpus": [)";
  for (int i = 0; i < gpus; ++i) {
    char bus_id[32];
    std::snprintf(bus_id, sizeof(bus_id), "00000000:%02X:00.0", i + 1);
    out << (i == 0 ? "" : ",") << R"({"name": "NVIDIA H100 80GB HBM3", "uuid": "GPU-bench-)" << i
        << R"(", "bus_id": ")" << bus_id
        << R"(", "memory_total_mib": 81559, "memory_free_mib": 40000, "memory_reserved_mib": 512,
      "utilization_gpu": 50, "utilization_memory": 20, "temperature_c": 40, "power_mw": 300000,
      "power_limit_mw": 700000, "sm_clock_mhz": 1980, "ecc_double_bit": 0, "mig": false,
      "processes": [{"pid": )"
        << 1000 + i << R"(, "used_mib": 40000}]})";
  }
  out << "]}\n";
}

void BM_LocalPass(benchmark::State& state) {
  const int gpus = static_cast<int>(state.range(0));
  const std::string library = BinaryDir() + "/tests/fakes/nvml/libnvidia-ml.so.1";
  if (!std::filesystem::exists(library)) {
    state.SkipWithError(("no fake NVML at " + library + "; build gpurm_fake_nvml").c_str());
    return;
  }
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() /
      ("gpurm-local-bench-" + std::to_string(::getpid()) + "-" + std::to_string(gpus));
  std::filesystem::create_directories(dir / "sys" / "bus" / "pci" / "devices");
  WriteNvmlMachine(dir / "nvml.json", gpus);
  ::setenv("GPURM_FAKE_NVML_MACHINE", (dir / "nvml.json").c_str(), 1);
  FakeClock clock;
  LocalProviderOptions options;
  options.sysfs_root = dir.string();
  options.nvml_libraries = {library};
  options.rocm_smi_libraries = {"/nonexistent/librocm_smi64.so.1"};
  options.level_zero_libraries = {"/nonexistent/libze_loader.so.1"};
  options.dcmi_libraries = {"/nonexistent/libdcmi.so"};
  options.clock = &clock;
  {
    Inventory inventory(std::make_unique<LocalProvider>("bench", GpuMemorySpecs{}, options), &clock,
                        kHistoryCapacity);
    EventHub hub;
    Sampler sampler(&inventory, &clock, &hub, SamplerOptions{kIntervalS, 0.05});
    sampler.Start();
    sampler.SampleNow();  // Discovery happens here, outside the measurement.
    for (auto _ : state) {
      clock.AdvanceMs(static_cast<int64_t>(kIntervalS * 1000));
      const double cpu_before = sampler.stats().cpu_seconds;
      sampler.SampleNow();
      state.SetIterationTime(sampler.stats().cpu_seconds - cpu_before);
    }
    const std::shared_ptr<const InventorySnapshot> snapshot = inventory.Snapshot();
    if (snapshot == nullptr || snapshot->nodes.at(0).gpus.size() != static_cast<size_t>(gpus)) {
      state.SkipWithError("the fake NVML did not serve the scripted GPUs");
    }
  }
  ::unsetenv("GPURM_FAKE_NVML_MACHINE");
  std::filesystem::remove_all(dir);
  state.counters["gpus"] = gpus;
  state.counters["cpu_ns_per_gpu"] =
      benchmark::Counter(static_cast<double>(gpus), benchmark::Counter::kIsIterationInvariantRate |
                                                        benchmark::Counter::kInvert);
}
BENCHMARK(BM_LocalPass)->Name("local_pass")->Arg(8)->Arg(64)->UseManualTime();

void BM_DaemonRss(benchmark::State& state) {
  const int gpus = static_cast<int>(state.range(0));
  const std::string binary = BinaryDir() + "/gpurm";
  if (!std::filesystem::exists(binary)) {
    state.SkipWithError(("no daemon at " + binary + "; build the gpurm target").c_str());
    return;
  }
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() /
      ("gpurm-monitor-bench-" + std::to_string(::getpid()) + "-" + std::to_string(gpus));
  std::filesystem::create_directories(dir);
  {
    std::ofstream inventory(dir / "inventory.yaml");
    inventory << "nodes:\n";
    for (int n = 0; n * kGpusPerNode < gpus; ++n) {
      inventory << "  - name: node-" << n << "\n    gpus:\n"
                << "      - name: \"NVIDIA H100 80GB HBM3\"\n        count: " << kGpusPerNode
                << "\n        utilization: 0.5\n        temperature_c: 40\n        power_w: 300\n";
    }
    std::ofstream(dir / "gpu_config.yaml")
        << "monitor_update_interval: 30\nlog_level: \"WARNING\"\n";
  }
  for (auto _ : state) {
    const uint16_t port = FreeLoopbackPort();
    if (port == 0) {
      state.SkipWithError("no free loopback port");
      break;
    }
    std::vector<std::string> args = {binary,        "serve",
                                     "--config",    (dir / "gpu_config.yaml").string(),
                                     "--inventory", (dir / "inventory.yaml").string(),
                                     "--listen",    "127.0.0.1:" + std::to_string(port),
                                     "--data-dir",  (dir / "data").string(),
                                     "--log-dir",   (dir / "logs").string()};
    std::vector<char*> argv;
    argv.reserve(args.size() + 1);
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::execv(argv[0], argv.data());
      std::_Exit(127);
    }
    bool ready = false;
    for (int attempt = 0; attempt < 300 && !ready; ++attempt) {
      ready = HttpStatus(port, "GET", "/api/v1/gpu/health") == 200;
      if (!ready) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (!ready) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      state.SkipWithError("the daemon did not become ready");
      break;
    }
    for (size_t i = 0; i < kHistoryCapacity; ++i) {
      HttpStatus(port, "POST", "/api/v1/gpu/monitoring/refresh");
    }
    HttpStatus(port, "GET", "/metrics");
    HttpStatus(port, "GET", "/api/v1/gpu/monitoring");
    state.counters["rss_MiB"] = static_cast<double>(ResidentKibOf(pid)) / 1024.0;
    ::kill(pid, SIGTERM);
    ::waitpid(pid, nullptr, 0);
  }
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_DaemonRss)
    ->Name("daemon_rss")
    ->Arg(8)
    ->Arg(64)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace gpurm

BENCHMARK_MAIN();
