// scheduler_bench: placement decisions per second and per-decision latency
// (p50/p99) on synthetic clusters of 100 to 10,000 nodes x 8 GPUs, per
// policy, with the daemon's incremental ClusterState; the whole-GPU workload
// also at 50,000 nodes, the end of the scaling curve, for every policy but
// random (filling 400,000 GPUs to the steady state takes a minute with
// random's ~300 us decisions; shares skip it too, to keep bench/run short).
//
// Each benchmark keeps the cluster in a steady state around 80% allocated:
// a stream of requests (1, 2, 4 and 8 whole GPUs; shares of one GPU in
// milli-GPU, as in the Alibaba trace) arrives; a decision is Schedule +
// Reserve; once the allocated share passes the target, the oldest placement
// is released (not timed: it is the ledger's End, not a decision).
//
// Output: Google Benchmark's, one entry per (workload, policy, nodes) with
// items_per_second = decisions/s, label = policy and the counters nodes,
// classes (node equivalence classes the scheduler evaluated), p50_us, p99_us.
//   build/bench/scheduler_bench --benchmark_filter='whole/binpack/10000'
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "core/gpu_model.h"
#include "scheduler/scheduler.h"
#include "scheduler/workload.h"

namespace gpurm {
namespace {

std::shared_ptr<const InventorySnapshot> SyntheticCluster(int nodes) {
  static const char* const kModels[] = {"NVIDIA A100-SXM4-80GB", "NVIDIA H100 80GB HBM3",
                                        "Tesla V100-SXM2-32GB"};
  auto snapshot = std::make_shared<InventorySnapshot>();
  snapshot->nodes.reserve(static_cast<size_t>(nodes));
  for (int n = 0; n < nodes; ++n) {
    Node& node = snapshot->nodes.emplace_back();
    node.name = "node-" + std::to_string(n);
    // Half A100, 30% H100, 20% V100.
    const char* model = kModels[n % 10 < 5 ? 0 : n % 10 < 8 ? 1 : 2];
    const GpuModel parsed = ParseGpuModel(model);
    for (int i = 0; i < 8; ++i) {
      Gpu& gpu = node.gpus.emplace_back();
      gpu.index = i;
      gpu.uuid = node.name + "-gpu" + std::to_string(i);
      gpu.model = parsed;
      gpu.memory_total_mib = MibFromGb(parsed.memory_gb.value_or(80));
      gpu.nvlink_group = i / 4;
      gpu.numa_node = i / 4;
    }
  }
  return snapshot;
}

// A deterministic request stream.
class Workload {
 public:
  explicit Workload(bool shares) : shares_(shares) {}
  GpuRequest Next() {
    seed_ = MixSeed(seed_);
    const int pick = static_cast<int>(seed_ % 100);
    GpuRequest request;
    request.gpu_type = (seed_ >> 8) % 5 == 0 ? "H100" : "";
    if (shares_ && pick < 30) {
      static const int kMilli[] = {230, 320, 470, 650, 810};
      request.gpu_milli = kMilli[(seed_ >> 16) % 5];
    } else if (pick < 65) {
      request.gpu_count = 1;
    } else if (pick < 82) {
      request.gpu_count = 2;
    } else if (pick < 94) {
      request.gpu_count = 4;
    } else {
      request.gpu_count = 8;
    }
    return request;
  }

 private:
  const bool shares_;
  uint64_t seed_ = 12345;
};

double Percentile(std::vector<double>& values, double p) {
  if (values.empty()) return 0;
  const size_t k =
      std::min(values.size() - 1, static_cast<size_t>(p * static_cast<double>(values.size())));
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(k), values.end());
  return values[k];
}

void BM_Decide(benchmark::State& bench, const std::string& policy, int nodes, bool shares) {
  const Scheduler scheduler(policy);
  ClusterState state(SyntheticCluster(nodes), {});
  WorkloadMix mix;
  Workload workload(shares);
  std::deque<Placement> held;
  const double capacity = nodes * 8.0 * kMilliPerGpu;
  double allocated = 0;
  auto demand = [](const Placement& p) {
    double milli = 0;
    for (const GpuGrant& g : p.grants) {
      milli += g.exclusive ? kMilliPerGpu : SliceMilli(g.memory_mib, 81920);
    }
    return milli;
  };
  auto release_oldest = [&] {
    allocated -= demand(held.front());
    scheduler.Unreserve(held.front(), state);
    held.pop_front();
  };
  uint64_t decisions = 0;
  auto decide = [&](std::vector<double>* latencies) {
    const GpuRequest request = workload.Next();
    mix.Record(request);
    ScheduleOptions options;
    options.workload = &mix;
    options.random_seed = decisions++;
    options.diagnose = false;
    const auto start = std::chrono::steady_clock::now();
    ScheduleResult result = scheduler.Schedule(request, state, options);
    if (result.placement) {
      if (!scheduler.Reserve(*result.placement, state).ok()) std::abort();
    }
    const auto end = std::chrono::steady_clock::now();
    if (latencies)
      latencies->push_back(std::chrono::duration<double, std::micro>(end - start).count());
    if (result.placement) {
      allocated += demand(*result.placement);
      held.push_back(std::move(*result.placement));
    }
    while (!held.empty() && (allocated > 0.8 * capacity || !result.placement)) {
      release_oldest();
      if (allocated <= 0.8 * capacity) break;
    }
  };
  // Fill to the steady state before measuring.
  while (allocated < 0.75 * capacity) decide(nullptr);
  std::vector<double> latencies;
  latencies.reserve(1 << 16);
  for (auto _ : bench) decide(&latencies);
  bench.SetItemsProcessed(static_cast<int64_t>(bench.iterations()));
  bench.SetLabel(policy);
  bench.counters["nodes"] = nodes;
  bench.counters["classes"] = static_cast<double>(state.live_classes().size());
  bench.counters["p50_us"] = Percentile(latencies, 0.50);
  bench.counters["p99_us"] = Percentile(latencies, 0.99);
}

void RegisterAll() {
  for (bool shares : {false, true}) {
    for (const std::string& policy : PolicyNames()) {
      for (int nodes : {100, 1000, 10000, 50000}) {
        if (nodes == 50000 && (shares || policy == "random")) continue;
        const std::string name =
            std::string(shares ? "shares" : "whole") + "/" + policy + "/" + std::to_string(nodes);
        benchmark::internal::Benchmark* bench =
            benchmark::RegisterBenchmark(name.c_str(), BM_Decide, policy, nodes, shares)
                ->Unit(benchmark::kMicrosecond);
        // Each run builds and fills its cluster again; at 50,000 nodes that
        // dominates, so it gets one run of a fixed length instead of
        // Google Benchmark's growing trial runs.
        if (nodes == 50000) {
          bench->Iterations(20000);
        } else {
          bench->MinTime(0.5);
        }
      }
    }
  }
}

}  // namespace
}  // namespace gpurm

int main(int argc, char** argv) {
  gpurm::RegisterAll();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
