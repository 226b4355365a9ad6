#include "simulator/simulator.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>
#include <utility>

#include "scheduler/framework.h"
#include "scheduler/workload.h"

namespace gpurm::sim {

int64_t TotalGpuDemandMilli(const std::vector<TracePod>& pods) {
  int64_t total = 0;
  for (const TracePod& pod : pods) total += pod.GpuDemandMilli();
  return total;
}

namespace {

void Shuffle(std::vector<TracePod>& pods, uint64_t seed) {
  uint64_t order = MixSeed(seed ^ 0x5eed0fULL);
  for (size_t i = pods.size(); i > 1; --i) {
    order = MixSeed(order);
    std::swap(pods[i - 1], pods[order % i]);
  }
}

TracePod Clone(const TracePod& pod, size_t n) {
  TracePod clone = pod;
  clone.name += "-clone-" + std::to_string(n);
  return clone;
}

}  // namespace

std::vector<TracePod> Arrivals(const std::vector<TracePod>& pods, const SimulationOptions& options,
                               int64_t capacity_milli) {
  std::vector<TracePod> arrivals = pods;
  if (pods.empty() || options.tuning == Tuning::kNone) {
    if (options.shuffle) Shuffle(arrivals, options.seed);
    return arrivals;
  }
  uint64_t draw = MixSeed(options.seed ^ 0x1f1a7e5ULL);
  if (options.tuning == Tuning::kPodCount) {
    // The trace plus ceil(pods x ratio) - pods draws, then the whole
    // sequence permuted.
    const double ratio = std::max(1.0, options.ratio);
    const size_t target = static_cast<size_t>(std::ceil(static_cast<double>(pods.size()) * ratio));
    for (size_t i = pods.size(); i < target; ++i) {
      draw = MixSeed(draw);
      arrivals.push_back(Clone(pods[draw % pods.size()], i - pods.size()));
    }
    if (options.shuffle) Shuffle(arrivals, options.seed);
    return arrivals;
  }
  // The artifact's order of operations: the trace's order (or a seeded
  // permutation), then drop or append to reach the demand target.
  if (options.shuffle) Shuffle(arrivals, options.seed);
  const auto target = static_cast<int64_t>(
      std::floor(std::max(0.0, options.ratio) * static_cast<double>(capacity_milli)));
  int64_t total = TotalGpuDemandMilli(arrivals);
  if (total > target) {
    // Drop pods drawn at random (any shape, CPU-only included, as the
    // artifact does) until the total fits.
    while (total > target && !arrivals.empty()) {
      draw = MixSeed(draw);
      const size_t victim = draw % arrivals.size();
      total -= arrivals[victim].GpuDemandMilli();
      arrivals.erase(arrivals.begin() + static_cast<std::ptrdiff_t>(victim));
    }
    return arrivals;
  }
  // No GPU demand at all (only CPU-only pods): nothing to tune towards.
  if (TotalGpuDemandMilli(pods) == 0) return arrivals;
  // Append pods drawn from the trace until the next draw would pass the
  // target. (The artifact compares the draw's per-GPU share, so a
  // multi-GPU draw can overshoot there; here the total never passes it.)
  for (size_t n = 0;; ++n) {
    draw = MixSeed(draw);
    const TracePod& pick = pods[draw % pods.size()];
    if (total + pick.GpuDemandMilli() > target) break;
    total += pick.GpuDemandMilli();
    arrivals.push_back(Clone(pick, n));
  }
  return arrivals;
}

Result<SimulationRun> Simulate(const SimulatedCluster& cluster,
                               const std::vector<TracePod>& arrivals,
                               const SimulationOptions& options) {
  if (FindPolicy(options.policy) == nullptr) {
    return InvalidArgument("unknown policy \"" + options.policy + "\"", "policy");
  }
  const auto start = std::chrono::steady_clock::now();
  const Scheduler scheduler(options.policy);
  ClusterState state(cluster.snapshot, {}, cluster.host_capacity);
  WorkloadMix mix;
  SimulationRun run;
  run.policy = options.policy;
  run.arrivals = static_cast<int64_t>(arrivals.size());
  const double capacity = static_cast<double>(cluster.gpu_count) * kMilliPerGpu;
  int64_t arrived = 0;
  int64_t allocated = 0;
  bool failed_once = false;
  bool whole_node_failed = false;
  int whole_node_gpus = 0;
  for (const Node& node : cluster.snapshot->nodes) {
    whole_node_gpus = std::max(whole_node_gpus, static_cast<int>(node.gpus.size()));
  }
  if (options.record_curve) run.curve.reserve(arrivals.size());
  if (options.record_placements) run.placements.reserve(arrivals.size());

  for (size_t i = 0; i < arrivals.size(); ++i) {
    const TracePod& pod = arrivals[i];
    const GpuRequest request = RequestFor(pod);
    const HostResources host = HostDemandOf(pod);
    mix.Record(request, host);
    ScheduleOptions schedule_options;
    schedule_options.host = host;
    schedule_options.workload = &mix;
    schedule_options.random_seed = options.seed * 0x100000001b3ULL + i;
    schedule_options.diagnose = false;
    ScheduleResult result = scheduler.Schedule(request, state, schedule_options);
    bool placed = false;
    if (result.placement) {
      const Status reserved = scheduler.Reserve(*result.placement, state);
      if (!reserved.ok()) return Internal("placement not reservable: " + reserved.ToString());
      placed = true;
    }
    const int64_t demand = pod.GpuDemandMilli();
    arrived += demand;
    if (placed) {
      ++run.pods_placed;
      allocated += demand;
    } else {
      ++run.pods_failed;
      if (!failed_once) {
        failed_once = true;
        run.allocated_share_at_first_failure = static_cast<double>(allocated) / capacity;
      }
      if (!whole_node_failed && whole_node_gpus > 0 && pod.num_gpu >= whole_node_gpus) {
        whole_node_failed = true;
        run.allocated_share_at_first_whole_node_failure = static_cast<double>(allocated) / capacity;
      }
    }
    if (!run.unallocated_gpus_at_full_arrival) {
      // Shapes are counted until the arrived demand reaches capacity.
      const std::string by_gpus = pod.num_gpu == 0        ? "0"
                                  : demand < kMilliPerGpu ? "fractional"
                                                          : std::to_string(pod.num_gpu);
      RefusalCount& shape = run.refused_by_gpus[by_gpus];
      ++shape.arrived;
      if (!placed) ++shape.refused;
      if (pod.num_gpu > 0) {
        RefusalCount& model = run.refused_by_model[pod.gpu_spec.empty() ? "any" : pod.gpu_spec];
        ++model.arrived;
        if (!placed) ++model.refused;
      }
    }
    if (!run.unallocated_gpus_at_full_arrival && static_cast<double>(arrived) >= capacity) {
      run.unallocated_gpus_at_full_arrival = (capacity - static_cast<double>(allocated)) / 1000.0;
    }
    if (options.record_curve) {
      run.curve.push_back(
          {static_cast<double>(arrived) / capacity, static_cast<double>(allocated) / capacity});
    }
    if (options.record_placements) {
      run.placements.push_back(placed ? std::move(result.placement) : std::nullopt);
    }
  }
  run.allocated_share_final = static_cast<double>(allocated) / capacity;
  if (!failed_once) run.allocated_share_at_first_failure = run.allocated_share_final;
  if (!whole_node_failed) {
    run.allocated_share_at_first_whole_node_failure = run.allocated_share_final;
  }
  run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return run;
}

}  // namespace gpurm::sim
