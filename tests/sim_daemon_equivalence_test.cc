// The trace simulator and the daemon share the scheduler: fed the same
// requests in the same order, GpuManager (the daemon's allocation service,
// on a static inventory and a SQLite ledger) and `gpurm simulate`'s
// Simulate() grant exactly the same GPUs, for every policy -- whole GPUs,
// milli-GPU shares, GPU-model constraints, and refusals once the cluster
// fills up.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "core/clock.h"
#include "inventory/inventory.h"
#include "inventory/providers/static/static_provider.h"
#include "ledger/sqlite_ledger.h"
#include "manager/manager.h"
#include "scheduler/framework.h"
#include "simulator/simulator.h"
#include "simulator/trace.h"
#include "support/daemon_process.h"

namespace gpurm {
namespace {

std::vector<sim::TraceNode> Nodes() {
  std::vector<sim::TraceNode> nodes;
  for (int n = 0; n < 12; ++n) {
    sim::TraceNode& node = nodes.emplace_back();
    node.name = "node-" + std::to_string(n);
    // CPU and host memory left unmodelled: the daemon does not track them.
    node.model = n % 3 == 0 ? "T4" : n % 3 == 1 ? "G2" : "V100M32";
    node.gpus = n % 3 == 0 ? 2 : 8;
  }
  return nodes;
}

// Whole GPUs (1, 2, 4, 8), shares of one GPU and model constraints, until
// well past the cluster's capacity.
std::vector<sim::TracePod> Pods() {
  std::vector<sim::TracePod> pods;
  uint64_t seed = 2024;
  for (int i = 0; i < 160; ++i) {
    seed = MixSeed(seed);
    sim::TracePod& pod = pods.emplace_back();
    pod.name = "pod-" + std::to_string(i);
    const int pick = static_cast<int>(seed % 10);
    static const int kMilli[] = {230, 320, 470, 650, 810};
    if (pick < 4) {
      pod.num_gpu = 1;
      pod.gpu_milli = kMilli[(seed >> 8) % 5];
    } else {
      pod.num_gpu = pick < 7 ? 1 : pick < 8 ? 2 : pick < 9 ? 4 : 8;
      pod.gpu_milli = 1000;
    }
    if ((seed >> 16) % 4 == 0) pod.gpu_spec = (seed >> 20) % 2 ? "T4" : "G2|V100M32";
  }
  return pods;
}

// The same nodes as the static provider's YAML.
std::string InventoryYaml(const sim::SimulatedCluster& cluster) {
  std::string yaml = "nodes:\n";
  for (const Node& node : cluster.snapshot->nodes) {
    yaml += "  - name: " + node.name + "\n    gpus:\n";
    yaml += "      - name: \"" + node.gpus.front().model.raw_name + "\"\n";
    yaml += "        count: " + std::to_string(node.gpus.size()) + "\n";
    yaml += "        memory_total_mb: " + std::to_string(node.gpus.front().memory_total_mib) + "\n";
  }
  return yaml;
}

TEST(SimDaemonEquivalenceTest, SameRequestsSameGpusForEveryPolicy) {
  const sim::SimulatedCluster cluster = sim::BuildCluster(Nodes());
  const std::vector<sim::TracePod> pods = Pods();
  const std::string dir = testing::MakeTempDir("gpurm-equivalence");
  std::ofstream(dir + "/inventory.yaml") << InventoryYaml(cluster);

  for (const std::string& policy : PolicyNames()) {
    SCOPED_TRACE(policy);
    // The simulator: trace order, no tuning; seed 0 so the random
    // policy's seeds are 0, 1, 2... as the daemon's decision counter.
    sim::SimulationOptions options;
    options.policy = policy;
    options.tuning = sim::Tuning::kNone;
    options.seed = 0;
    options.record_placements = true;
    Result<sim::SimulationRun> simulated = sim::Simulate(cluster, pods, options);
    ASSERT_TRUE(simulated.ok()) << simulated.status().ToString();

    // The daemon's allocation service with the same default policy.
    FakeClock clock;
    Inventory inventory(std::make_unique<StaticProvider>(dir + "/inventory.yaml", GpuMemorySpecs{}),
                        &clock, 4);
    ASSERT_TRUE(inventory.Refresh().ok());
    std::string ledger_path = dir;
    ledger_path += "/" + policy + ".db";
    Result<std::unique_ptr<Ledger>> ledger = OpenSqliteLedger(ledger_path);
    ASSERT_TRUE(ledger.ok()) << ledger.status().ToString();
    GpuManager manager(&inventory, ledger->get(), &clock, policy);

    int placed = 0;
    for (size_t i = 0; i < pods.size(); ++i) {
      AllocationResult daemon = manager.Allocate(sim::RequestFor(pods[i]), "equivalence", "");
      const std::optional<Placement>& expected = simulated->placements[i];
      ASSERT_EQ(daemon.allocation.has_value(), expected.has_value())
          << "pod " << i << ": daemon " << daemon.status.ToString();
      if (!expected) {
        EXPECT_TRUE(daemon.status.code() == StatusCode::kUnschedulableNow ||
                    daemon.status.code() == StatusCode::kUnschedulableNever)
            << "pod " << i << ": " << daemon.status.ToString();
        continue;
      }
      ++placed;
      ASSERT_EQ(daemon.allocation->grants.size(), expected->grants.size()) << "pod " << i;
      for (size_t g = 0; g < expected->grants.size(); ++g) {
        const GpuGrant& a = daemon.allocation->grants[g];
        const GpuGrant& b = expected->grants[g];
        EXPECT_EQ(a.node_name, b.node_name) << "pod " << i;
        EXPECT_EQ(a.gpu_index, b.gpu_index) << "pod " << i;
        EXPECT_EQ(a.gpu_uuid, b.gpu_uuid) << "pod " << i;
        EXPECT_EQ(a.memory_mib, b.memory_mib) << "pod " << i;
        EXPECT_EQ(a.exclusive, b.exclusive) << "pod " << i;
      }
    }
    EXPECT_EQ(placed, simulated->pods_placed);
    EXPECT_GT(simulated->pods_failed, 0) << "the sequence should fill the cluster";
    EXPECT_TRUE((*ledger)->CheckIntegrity().ok());
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace gpurm
