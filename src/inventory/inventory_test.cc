#include "inventory/inventory.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "inventory/testing/scripted_provider.h"

namespace gpurm {
namespace {

using testing::H100Node;
using testing::Script;
using testing::ScriptedProvider;

// One node of `gpus` H100s, each using `used_mib` at `utilization`.
std::vector<Node> Nodes(int gpus, int64_t used_mib = 1000, double utilization = 0.5) {
  Node node = H100Node("n1", gpus);
  for (Gpu& gpu : node.gpus) {
    gpu.memory_used_mib = used_mib;
    gpu.utilization = utilization;
  }
  return {node};
}

std::unique_ptr<Inventory> MakeInventory(const std::shared_ptr<Script>& script, const Clock* clock,
                                         size_t history = 3) {
  return std::make_unique<Inventory>(std::make_unique<ScriptedProvider>(script), clock, history);
}

TEST(InventoryTest, PublishesEachRefreshAsANewGeneration) {
  FakeClock clock(1'000);
  auto script = std::make_shared<Script>();
  script->SetNodes(Nodes(1));
  auto inventory = MakeInventory(script, &clock);
  EXPECT_EQ(inventory->Snapshot(), nullptr);
  EXPECT_EQ(inventory->provider_name(), "scripted");
  ASSERT_TRUE(inventory->Refresh().ok());
  const auto first = inventory->Snapshot();
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->generation, 1u);
  EXPECT_EQ(first->taken_unix_ms, 1'000);
  EXPECT_EQ(inventory->Notes(), std::vector<std::string>{"scripted"});
  clock.AdvanceMs(500);
  ASSERT_TRUE(inventory->Refresh().ok());
  EXPECT_EQ(inventory->Snapshot()->generation, 2u);
  EXPECT_EQ(inventory->Snapshot()->taken_unix_ms, 1'500);
  EXPECT_EQ(first->generation, 1u) << "a reader's snapshot never changes under it";
}

TEST(InventoryTest, AFailedRefreshKeepsThePreviousSnapshotAndSaysWhy) {
  FakeClock clock(1'000);
  auto script = std::make_shared<Script>();
  script->SetNodes(Nodes(1));
  auto inventory = MakeInventory(script, &clock);
  ASSERT_TRUE(inventory->Refresh().ok());
  script->SetFailure("driver gone");
  const Status failed = inventory->Refresh();
  EXPECT_EQ(failed.code(), StatusCode::kUnavailable);
  EXPECT_EQ(inventory->LastError().message(), "driver gone");
  ASSERT_NE(inventory->Snapshot(), nullptr);
  EXPECT_EQ(inventory->Snapshot()->generation, 1u);
}

TEST(InventoryTest, HistoryIsBoundedHoldsMeasurementsOnlyAndLeavesWithItsGpu) {
  FakeClock clock(0);
  auto script = std::make_shared<Script>();
  auto inventory = MakeInventory(script, &clock, /*history=*/3);
  for (double utilization : {0.1, 0.2, 0.3, 0.9}) {
    // The last pass has stale values for n1-gpu1: no sample for it.
    if (utilization == 0.9) script->SetStale({"n1-gpu1"}, 0);
    script->SetNodes(Nodes(2, 1000, utilization));
    clock.AdvanceMs(1000);
    ASSERT_TRUE(inventory->Refresh().ok());
  }
  // Three kept of four; the stale pass added none for n1-gpu1.
  const std::vector<GpuSample> a = inventory->History("n1-gpu0", 0);
  ASSERT_EQ(a.size(), 3u);
  EXPECT_DOUBLE_EQ(a.front().utilization, 0.2);
  EXPECT_DOUBLE_EQ(a.back().utilization, 0.9);
  const std::vector<GpuSample> b = inventory->History("n1-gpu1", 0);
  ASSERT_EQ(b.size(), 3u);
  EXPECT_DOUBLE_EQ(b.back().utilization, 0.3);
  EXPECT_EQ(inventory->StaleGpus(), std::vector<std::string>{"n1-gpu1"});
  EXPECT_EQ(inventory->History("n1-gpu0", 4000).size(), 1u);
  script->SetStale({}, 0);
  script->SetNodes(Nodes(1));
  clock.AdvanceMs(1000);
  ASSERT_TRUE(inventory->Refresh().ok());
  EXPECT_TRUE(inventory->History("n1-gpu1", 0).empty()) << "n1-gpu1 is gone";
}

TEST(InventoryTest, ManagedUseIsPublishedAndCarriedOverUntilTheNextAccounting) {
  FakeClock clock(0);
  auto script = std::make_shared<Script>();
  script->SetNodes(Nodes(2, 3000));
  auto inventory = MakeInventory(script, &clock);
  inventory->SetManagedUse({{"n1-gpu0", 1000}});  // Before any snapshot: kept for the first.
  ASSERT_TRUE(inventory->Refresh().ok());
  auto snapshot = inventory->Snapshot();
  EXPECT_EQ(snapshot->nodes[0].gpus[0].memory_used_by_managed_mib, 1000);
  EXPECT_EQ(snapshot->nodes[0].gpus[0].memory_free_of_outside_use_mib(), 81559 - 2000);
  EXPECT_EQ(snapshot->nodes[0].gpus[1].memory_used_by_managed_mib, 0);

  // A new finding republishes; the same finding again does not.
  inventory->SetManagedUse({{"n1-gpu0", 1000}, {"n1-gpu1", 99'999}});
  snapshot = inventory->Snapshot();
  EXPECT_EQ(snapshot->generation, 2u);
  EXPECT_EQ(snapshot->nodes[0].gpus[1].memory_used_by_managed_mib, 3000)
      << "never more than the GPU reports in use";
  inventory->SetManagedUse({{"n1-gpu0", 1000}, {"n1-gpu1", 99'999}});
  EXPECT_EQ(inventory->Snapshot()->generation, 2u);

  ASSERT_TRUE(inventory->Refresh().ok());
  snapshot = inventory->Snapshot();
  EXPECT_EQ(snapshot->generation, 3u);
  EXPECT_EQ(snapshot->nodes[0].gpus[0].memory_used_by_managed_mib, 1000) << "carried over";
}

}  // namespace
}  // namespace gpurm
