#include "inventory/inventory.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace gpurm {
namespace {

// A provider that answers what the test scripts: each Discover returns the
// next report (or error) of its script, then repeats the last one.
class ScriptedProvider final : public InventoryProvider {
 public:
  explicit ScriptedProvider(std::vector<Result<DiscoveryReport>> script)
      : script_(std::move(script)) {}
  std::string name() const override { return "scripted"; }
  Result<DiscoveryReport> Discover() override {
    const size_t at = std::min(next_, script_.size() - 1);
    ++next_;
    return script_[at];
  }

 private:
  std::vector<Result<DiscoveryReport>> script_;
  size_t next_ = 0;
};

// One node with GPUs `uuids`, each using `used_mib` at `utilization`.
DiscoveryReport Report(const std::vector<std::string>& uuids, int64_t used_mib = 1000,
                       double utilization = 0.5) {
  DiscoveryReport report;
  Node& node = report.nodes.emplace_back();
  node.name = "n1";
  for (const std::string& uuid : uuids) {
    Gpu& gpu = node.gpus.emplace_back();
    gpu.uuid = uuid;
    gpu.memory_total_mib = 81920;
    gpu.memory_used_mib = used_mib;
    gpu.utilization = utilization;
  }
  report.notes = {"scripted: " + std::to_string(uuids.size()) + " GPUs"};
  return report;
}

std::unique_ptr<Inventory> MakeInventory(std::vector<Result<DiscoveryReport>> script,
                                         const Clock* clock, size_t history = 3) {
  return std::make_unique<Inventory>(std::make_unique<ScriptedProvider>(std::move(script)), clock,
                                     history);
}

TEST(InventoryTest, PublishesEachRefreshAsANewGeneration) {
  FakeClock clock(1'000);
  auto inventory = MakeInventory({Report({"GPU-a"})}, &clock);
  EXPECT_EQ(inventory->Snapshot(), nullptr);
  EXPECT_EQ(inventory->provider_name(), "scripted");
  ASSERT_TRUE(inventory->Refresh().ok());
  const auto first = inventory->Snapshot();
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->generation, 1u);
  EXPECT_EQ(first->taken_unix_ms, 1'000);
  EXPECT_EQ(inventory->Notes(), std::vector<std::string>{"scripted: 1 GPUs"});
  clock.AdvanceMs(500);
  ASSERT_TRUE(inventory->Refresh().ok());
  EXPECT_EQ(inventory->Snapshot()->generation, 2u);
  EXPECT_EQ(inventory->Snapshot()->taken_unix_ms, 1'500);
  EXPECT_EQ(first->generation, 1u) << "a reader's snapshot never changes under it";
}

TEST(InventoryTest, AFailedRefreshKeepsThePreviousSnapshotAndSaysWhy) {
  FakeClock clock(1'000);
  auto inventory = MakeInventory({Report({"GPU-a"}), Unavailable("driver gone")}, &clock);
  ASSERT_TRUE(inventory->Refresh().ok());
  const Status failed = inventory->Refresh();
  EXPECT_EQ(failed.code(), StatusCode::kUnavailable);
  EXPECT_EQ(inventory->LastError().message(), "driver gone");
  ASSERT_NE(inventory->Snapshot(), nullptr);
  EXPECT_EQ(inventory->Snapshot()->generation, 1u);
}

TEST(InventoryTest, HistoryIsBoundedHoldsMeasurementsOnlyAndLeavesWithItsGpu) {
  FakeClock clock(0);
  DiscoveryReport stale = Report({"GPU-a", "GPU-b"}, 2000, 0.9);
  stale.stale_gpus = {"GPU-b"};
  auto inventory =
      MakeInventory({Report({"GPU-a", "GPU-b"}, 1000, 0.1), Report({"GPU-a", "GPU-b"}, 1000, 0.2),
                     Report({"GPU-a", "GPU-b"}, 1000, 0.3), stale, Report({"GPU-a"})},
                    &clock, /*history=*/3);
  for (int pass = 0; pass < 4; ++pass) {
    clock.AdvanceMs(1000);
    ASSERT_TRUE(inventory->Refresh().ok());
  }
  // Three kept of four; the stale pass added none for GPU-b.
  const std::vector<GpuSample> a = inventory->History("GPU-a", 0);
  ASSERT_EQ(a.size(), 3u);
  EXPECT_DOUBLE_EQ(a.front().utilization, 0.2);
  EXPECT_DOUBLE_EQ(a.back().utilization, 0.9);
  const std::vector<GpuSample> b = inventory->History("GPU-b", 0);
  ASSERT_EQ(b.size(), 3u);
  EXPECT_DOUBLE_EQ(b.back().utilization, 0.3);
  EXPECT_EQ(inventory->StaleGpus(), std::vector<std::string>{"GPU-b"});
  EXPECT_EQ(inventory->History("GPU-a", 4000).size(), 1u);
  clock.AdvanceMs(1000);
  ASSERT_TRUE(inventory->Refresh().ok());
  EXPECT_TRUE(inventory->History("GPU-b", 0).empty()) << "GPU-b is gone";
}

TEST(InventoryTest, ManagedUseIsPublishedAndCarriedOverUntilTheNextAccounting) {
  FakeClock clock(0);
  auto inventory = MakeInventory({Report({"GPU-a", "GPU-b"}, 3000)}, &clock);
  inventory->SetManagedUse({{"GPU-a", 1000}});  // Before any snapshot: kept for the first.
  ASSERT_TRUE(inventory->Refresh().ok());
  auto snapshot = inventory->Snapshot();
  EXPECT_EQ(snapshot->nodes[0].gpus[0].memory_used_by_managed_mib, 1000);
  EXPECT_EQ(snapshot->nodes[0].gpus[0].memory_free_of_outside_use_mib(), 81920 - 2000);
  EXPECT_EQ(snapshot->nodes[0].gpus[1].memory_used_by_managed_mib, 0);

  // A new finding republishes; the same finding again does not.
  inventory->SetManagedUse({{"GPU-a", 1000}, {"GPU-b", 99'999}});
  snapshot = inventory->Snapshot();
  EXPECT_EQ(snapshot->generation, 2u);
  EXPECT_EQ(snapshot->nodes[0].gpus[1].memory_used_by_managed_mib, 3000)
      << "never more than the GPU reports in use";
  inventory->SetManagedUse({{"GPU-a", 1000}, {"GPU-b", 99'999}});
  EXPECT_EQ(inventory->Snapshot()->generation, 2u);

  ASSERT_TRUE(inventory->Refresh().ok());
  snapshot = inventory->Snapshot();
  EXPECT_EQ(snapshot->generation, 3u);
  EXPECT_EQ(snapshot->nodes[0].gpus[0].memory_used_by_managed_mib, 1000) << "carried over";
}

}  // namespace
}  // namespace gpurm
