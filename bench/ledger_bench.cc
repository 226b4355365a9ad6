// ledger_bench: what durability costs on this machine's disk.
//
// Measures, through OpenSqliteLedger (WAL, synchronous=FULL, one transaction
// per change; the daemon's ledger exactly as it is), how many allocations per
// second become durable:
//   * insert: one thread recording 1-GPU allocations back to back;
//   * end: the same thread releasing them;
//   * cycle: insert then end, as a job that allocates and releases;
//   * insert_threads: N threads inserting at once (the ledger serialises its
//     commits, so this shows whether concurrency buys anything);
//   * insert_cpu_busy: "insert" again while another thread keeps a CPU busy
//     (see below);
// and, as the ceiling any one-fsync-per-change design has on this disk, how
// many write+fdatasync round trips per second a plain file gets, with the
// machine otherwise idle and with a CPU kept busy. Then, through GpuManager
// (placement on 4,000 nodes x 8 GPUs, then the ledger; the daemon's path
// without HTTP), durable allocations per second with group commit:
//   * manager_1_client: one client allocating 1 GPU after another;
//   * manager_concurrent: --clients clients (default 64) doing the same at
//     once, so their writes share commits.
// Each op there is one allocation, answered after the commit that covers
// it (a phase also ends when the 32,000 GPUs are all allocated); "commits"
// and "changes_per_commit" count Ledger::Apply calls.
//
// Why the busy variants: on some virtual machines (the 2-core development VM
// among them) an fdatasync issued while every vCPU is idle completes only at
// the next timer tick (4 ms at HZ=250), however fast the disk; while any CPU
// is busy it completes in tens to hundreds of microseconds. A daemon taking a
// stream of allocations has busy CPUs (HTTP, JSON, placement), so the busy
// figures are the ones that predict it; the idle ones are the cost of a lone
// allocation on a quiet machine. Both are reported.
//
// Prints one JSON object on stdout:
//   {"dir", "seconds_per_phase", "fsync_per_s", "fsync_per_s_cpu_busy",
//    "insert": {"ops_per_s", "p50_us", "p99_us", "p999_us", "ops"},
//    "end": {...}, "cycle": {...}, "insert_threads": {..., "threads"},
//    "insert_cpu_busy": {...},
//    "manager_1_client": {..., "clients", "commits", "changes_per_commit"},
//    "manager_concurrent": {...}}
// (the fsync_per_s fields are null with --no-fsync-probe, which keeps a
// system-call trace of the bench to the ledger's own calls.)
// Usage: ledger_bench --dir DIR [--seconds S] [--threads N] [--clients N]
//                     [--no-fsync-probe]
// DIR must be on the disk under test (not tmpfs); the bench creates and
// removes its own subdirectory there.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/gpu_model.h"
#include "core/status.h"
#include "core/types.h"
#include "inventory/inventory.h"
#include "ledger/sqlite_ledger.h"
#include "manager/manager.h"

namespace gpurm {
namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string dir;
  double seconds = 3;
  int threads = 4;
  int clients = 64;
  bool fsync_probe = true;
};

// Per-operation latencies of one phase, in microseconds.
class Phase {
 public:
  void Add(double us) { latencies_us_.push_back(us); }
  void Merge(const Phase& other) {
    latencies_us_.insert(latencies_us_.end(), other.latencies_us_.begin(),
                         other.latencies_us_.end());
  }
  nlohmann::json ToJson(double elapsed_s) {
    std::sort(latencies_us_.begin(), latencies_us_.end());
    auto percentile = [this](double p) {
      if (latencies_us_.empty()) return 0.0;
      const size_t rank =
          static_cast<size_t>(p / 100.0 * static_cast<double>(latencies_us_.size()));
      return latencies_us_[std::min(rank, latencies_us_.size() - 1)];
    };
    const double ops = static_cast<double>(latencies_us_.size());
    return {{"ops", latencies_us_.size()},
            {"ops_per_s", elapsed_s > 0 ? ops / elapsed_s : 0.0},
            {"p50_us", percentile(50)},
            {"p99_us", percentile(99)},
            {"p999_us", percentile(99.9)}};
  }

 private:
  std::vector<double> latencies_us_;
};

double MicrosSince(Clock::time_point start) {
  return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
}

// A 1-GPU exclusive allocation on a 1,000-node x 8-GPU cluster, as the
// daemon records one.
Allocation MakeAllocation(uint64_t serial) {
  Allocation allocation;
  char id[32];
  std::snprintf(id, sizeof(id), "alloc-%016llx", static_cast<unsigned long long>(serial));
  allocation.id = id;
  allocation.owner = "bench";
  allocation.request.gpu_count = 1;
  allocation.request.gpu_type = "A100";
  allocation.request.memory_gb = 40;
  allocation.created_unix_ms = 1700000000000 + static_cast<int64_t>(serial);
  GpuGrant& grant = allocation.grants.emplace_back();
  const uint64_t node = (serial / 8) % 1000;
  grant.gpu_index = static_cast<int>(serial % 8);
  grant.node_name = "node-" + std::to_string(node);
  grant.gpu_uuid = grant.node_name + "-gpu" + std::to_string(grant.gpu_index) + "-" +
                   std::to_string(serial);  // Unique: GPUs are never held twice.
  grant.memory_mib = 81920;
  return allocation;
}

// Runs `op(serial)` with serials taken from `serial` until `seconds` have
// passed or the serial reaches `limit`; returns the elapsed time.
double RunFor(double seconds, Phase& phase, std::atomic<uint64_t>& serial,
              const std::function<Status(uint64_t)>& op, uint64_t limit = UINT64_MAX) {
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration<double>(seconds);
  while (Clock::now() < deadline) {
    const uint64_t mine = serial.fetch_add(1);
    if (mine >= limit) break;
    const auto op_start = Clock::now();
    const Status status = op(mine);
    if (!status.ok()) {
      std::fprintf(stderr, "ledger_bench: %s\n", status.ToString().c_str());
      std::exit(1);
    }
    phase.Add(MicrosSince(op_start));
  }
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// write(4 KiB) + fdatasync round trips per second on a plain file in `dir`.
double FsyncPerSecond(const std::filesystem::path& dir, double seconds) {
  const std::string path = (dir / "fsync-probe").string();
  const int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    std::fprintf(stderr, "ledger_bench: cannot create %s: %s\n", path.c_str(),
                 std::strerror(errno));
    std::exit(1);
  }
  char block[4096];
  std::memset(block, 'x', sizeof(block));
  uint64_t count = 0;
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration<double>(seconds);
  while (Clock::now() < deadline) {
    if (::pwrite(fd, block, sizeof(block), static_cast<off_t>((count % 256) * sizeof(block))) !=
            static_cast<ssize_t>(sizeof(block)) ||
        ::fdatasync(fd) != 0) {
      std::fprintf(stderr, "ledger_bench: write/fdatasync failed: %s\n", std::strerror(errno));
      std::exit(1);
    }
    ++count;
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  ::close(fd);
  std::filesystem::remove(path);
  return static_cast<double>(count) / elapsed;
}

// Keeps one CPU busy (a spinning thread) for as long as it lives.
class CpuBusy {
 public:
  CpuBusy()
      : thread_([this] {
          while (!stop_.load(std::memory_order_relaxed)) {
          }
        }) {}
  ~CpuBusy() {
    stop_ = true;
    thread_.join();
  }
  CpuBusy(const CpuBusy&) = delete;
  CpuBusy& operator=(const CpuBusy&) = delete;

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

std::unique_ptr<Ledger> Open(const std::filesystem::path& path) {
  Result<std::unique_ptr<Ledger>> ledger = OpenSqliteLedger(path.string());
  if (!ledger.ok()) {
    std::fprintf(stderr, "ledger_bench: cannot open %s: %s\n", path.c_str(),
                 ledger.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(ledger).value();
}

// Forwards to a ledger, counting Apply calls (commits) and their changes.
class CountingLedger final : public LedgerWrapper {
 public:
  using LedgerWrapper::LedgerWrapper;
  std::vector<Result<Allocation>> Apply(const std::vector<LedgerChange>& changes) override {
    commits_.fetch_add(1);
    changes_.fetch_add(changes.size());
    return target()->Apply(changes);
  }

  uint64_t commits() const { return commits_.load(); }
  uint64_t changes() const { return changes_.load(); }

 private:
  std::atomic<uint64_t> commits_{0};
  std::atomic<uint64_t> changes_{0};
};

constexpr int kManagerNodes = 4000;

// Serves kManagerNodes nodes x 8 A100s.
class ClusterProvider final : public InventoryProvider {
 public:
  std::string name() const override { return "bench"; }
  Result<DiscoveryReport> Discover() override {
    DiscoveryReport report;
    for (int n = 0; n < kManagerNodes; ++n) {
      Node& node = report.nodes.emplace_back();
      node.name = "node-" + std::to_string(n);
      for (int g = 0; g < 8; ++g) {
        Gpu& gpu = node.gpus.emplace_back();
        gpu.index = g;
        gpu.uuid = node.name + "-gpu" + std::to_string(g);
        gpu.model = ParseGpuModel("NVIDIA A100-SXM4-80GB");
        gpu.memory_total_mib = 81920;
      }
    }
    return report;
  }
};

// `clients` threads allocating 1 GPU after another through a GpuManager on
// a fresh ledger in `dir`, for `seconds` or until every GPU is allocated.
nlohmann::json ManagerPhase(const std::filesystem::path& dir, double seconds, int clients);

int Run(const Options& options) {
  const std::filesystem::path root =
      std::filesystem::path(options.dir) / ("ledger-bench-" + std::to_string(::getpid()));
  std::filesystem::create_directories(root);
  nlohmann::json out{{"dir", options.dir}, {"seconds_per_phase", options.seconds}};
  out["fsync_per_s"] =
      options.fsync_probe ? nlohmann::json(FsyncPerSecond(root, options.seconds)) : nullptr;
  if (options.fsync_probe) {
    CpuBusy busy;
    out["fsync_per_s_cpu_busy"] = FsyncPerSecond(root, options.seconds);
  } else {
    out["fsync_per_s_cpu_busy"] = nullptr;
  }

  std::unique_ptr<Ledger> ledger = Open(root / "ledger.db");
  std::atomic<uint64_t> serial{0};

  Phase insert;
  const double insert_s = RunFor(options.seconds, insert, serial,
                                 [&](uint64_t s) { return ledger->Insert(MakeAllocation(s)); });
  out["insert"] = insert.ToJson(insert_s);

  // Release what was inserted, oldest first (at most all of it).
  std::atomic<uint64_t> to_end{0};
  Phase end;
  const double end_s = RunFor(
      options.seconds, end, to_end,
      [&](uint64_t s) {
        return ledger->End(MakeAllocation(s).id, AllocationState::kReleased, 1800000000000)
            .status();
      },
      serial.load());
  out["end"] = end.ToJson(end_s);

  Phase cycle;
  const double cycle_s = RunFor(options.seconds, cycle, serial, [&](uint64_t s) -> Status {
    const Allocation allocation = MakeAllocation(s);
    if (Status status = ledger->Insert(allocation); !status.ok()) return status;
    return ledger->End(allocation.id, AllocationState::kReleased, 1800000000000).status();
  });
  out["cycle"] = cycle.ToJson(cycle_s);  // One op = allocate + release (two commits).

  std::vector<Phase> per_thread(static_cast<size_t>(options.threads));
  std::vector<std::thread> threads;
  std::vector<double> elapsed(static_cast<size_t>(options.threads));
  for (int t = 0; t < options.threads; ++t) {
    threads.emplace_back([&, t] {
      elapsed[static_cast<size_t>(t)] =
          RunFor(options.seconds, per_thread[static_cast<size_t>(t)], serial,
                 [&](uint64_t s) { return ledger->Insert(MakeAllocation(s)); });
    });
  }
  for (std::thread& thread : threads) thread.join();
  Phase all;
  for (const Phase& phase : per_thread) all.Merge(phase);
  out["insert_threads"] = all.ToJson(*std::max_element(elapsed.begin(), elapsed.end()));
  out["insert_threads"]["threads"] = options.threads;

  Phase insert_busy;
  {
    CpuBusy busy;
    const double busy_s = RunFor(options.seconds, insert_busy, serial,
                                 [&](uint64_t s) { return ledger->Insert(MakeAllocation(s)); });
    out["insert_cpu_busy"] = insert_busy.ToJson(busy_s);
  }

  ledger.reset();
  out["manager_1_client"] = ManagerPhase(root / "manager-1", options.seconds, 1);
  out["manager_concurrent"] = ManagerPhase(root / "manager-n", options.seconds, options.clients);
  std::filesystem::remove_all(root);
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

nlohmann::json ManagerPhase(const std::filesystem::path& dir, double seconds, int clients) {
  std::unique_ptr<Ledger> sqlite = Open(dir / "ledger.db");
  CountingLedger ledger(sqlite.get());
  SystemClock clock;
  Inventory inventory(std::make_unique<ClusterProvider>(), &clock, 1);
  if (Status status = inventory.Refresh(); !status.ok()) {
    std::fprintf(stderr, "ledger_bench: %s\n", status.ToString().c_str());
    std::exit(1);
  }
  GpuManager manager(&inventory, &ledger, &clock, "binpack");
  GpuRequest request;
  request.gpu_count = 1;
  request.gpu_type = "A100";

  std::vector<Phase> per_client(static_cast<size_t>(clients));
  std::vector<double> elapsed(static_cast<size_t>(clients));
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(clients));
  std::atomic<uint64_t> serial{0};
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      const std::string owner = "client-" + std::to_string(c);
      elapsed[static_cast<size_t>(c)] = RunFor(
          seconds, per_client[static_cast<size_t>(c)], serial,
          [&](uint64_t) { return manager.Allocate(request, owner, "").status; }, kManagerNodes * 8);
    });
  }
  for (std::thread& thread : threads) thread.join();
  Phase all;
  for (const Phase& phase : per_client) all.Merge(phase);
  nlohmann::json out = all.ToJson(*std::max_element(elapsed.begin(), elapsed.end()));
  out["clients"] = clients;
  out["commits"] = ledger.commits();
  out["changes_per_commit"] = ledger.commits() > 0 ? static_cast<double>(ledger.changes()) /
                                                         static_cast<double>(ledger.commits())
                                                   : 0.0;
  return out;
}

}  // namespace
}  // namespace gpurm

int main(int argc, char** argv) {
  constexpr char kUsage[] =
      "usage: ledger_bench --dir DIR [--seconds S] [--threads N] [--clients N] "
      "[--no-fsync-probe]\n";
  gpurm::Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--dir" && has_value) {
      options.dir = argv[++i];
    } else if (arg == "--seconds" && has_value) {
      options.seconds = std::atof(argv[++i]);
    } else if (arg == "--threads" && has_value) {
      options.threads = std::atoi(argv[++i]);
    } else if (arg == "--clients" && has_value) {
      options.clients = std::atoi(argv[++i]);
    } else if (arg == "--no-fsync-probe") {
      options.fsync_probe = false;
    } else {
      std::fputs(kUsage, stderr);
      return 2;
    }
  }
  if (options.dir.empty() || options.seconds <= 0 || options.threads < 1 || options.clients < 1) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  return gpurm::Run(options);
}
