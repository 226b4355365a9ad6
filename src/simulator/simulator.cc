#include "simulator/simulator.h"

#include <chrono>
#include <cmath>
#include <utility>

#include "scheduler/framework.h"
#include "scheduler/workload.h"

namespace gpurm::sim {

std::vector<TracePod> Arrivals(const std::vector<TracePod>& pods,
                               const SimulationOptions& options) {
  std::vector<TracePod> arrivals = pods;
  if (pods.empty()) return arrivals;
  const double ratio = std::max(1.0, options.inflation);
  const size_t target = static_cast<size_t>(std::ceil(static_cast<double>(pods.size()) * ratio));
  uint64_t seed = MixSeed(options.seed ^ 0x1f1a7e5ULL);
  for (size_t i = pods.size(); i < target; ++i) {
    seed = MixSeed(seed);
    TracePod clone = pods[seed % pods.size()];
    clone.name += "-clone-" + std::to_string(i - pods.size());
    arrivals.push_back(std::move(clone));
  }
  if (options.shuffle) {
    uint64_t order = MixSeed(options.seed ^ 0x5eed0fULL);
    for (size_t i = arrivals.size(); i > 1; --i) {
      order = MixSeed(order);
      std::swap(arrivals[i - 1], arrivals[order % i]);
    }
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
  run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return run;
}

}  // namespace gpurm::sim
