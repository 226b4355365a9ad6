#include "monitor/change_detector.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "inventory/testing/scripted_provider.h"

namespace gpurm {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

InventorySnapshot Snapshot(std::vector<Node> nodes, int64_t unix_ms = 1000) {
  InventorySnapshot snapshot;
  snapshot.nodes = std::move(nodes);
  snapshot.taken_unix_ms = unix_ms;
  return snapshot;
}

class ChangeDetectorTest : public ::testing::Test {
 protected:
  // Baseline: two idle H100s, already reported.
  void SetUp() override {
    node_ = testing::H100Node("n1", 2);
    ASSERT_EQ(detector_.Update(Snapshot({node_})).size(), 2u);
  }
  std::vector<GpuEvent> Next() { return detector_.Update(Snapshot({node_}, 2000)); }
  Gpu& gpu0() { return node_.gpus[0]; }

  ChangeDetector detector_{0.05};
  Node node_;
};

TEST(ChangeDetectorFirstSnapshot, ReportsEveryGpuAsAdded) {
  ChangeDetector detector(0.05);
  const std::vector<GpuEvent> events = detector.Update(Snapshot({testing::H100Node("n1", 2)}));
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].type, GpuEventType::kAdded);
  EXPECT_EQ(events[0].gpu_uuid, "n1-gpu0");
  EXPECT_EQ(events[1].gpu_index, 1);
  EXPECT_EQ(events[1].node_name, "n1");
  EXPECT_EQ(events[1].model, "NVIDIA H100 80GB HBM3");
  EXPECT_FALSE(events[0].previous.has_value());
  EXPECT_STREQ(GpuEventTypeName(events[0].type), "gpu_added");
}

TEST_F(ChangeDetectorTest, NothingMovedNothingReported) { EXPECT_THAT(Next(), IsEmpty()); }

TEST_F(ChangeDetectorTest, SmallMovesAreNotEvents) {
  gpu0().utilization = 0.04;                       // 4 points of utilization.
  gpu0().memory_used_mib = 512 + 81559 * 4 / 100;  // 4% of memory.
  gpu0().temperature_c = 31;                       // 3.3% of 30 C.
  gpu0().power_w = 100;                            // 30 W of a 700 W limit: 4.3%.
  EXPECT_THAT(Next(), IsEmpty());
}

TEST_F(ChangeDetectorTest, ExactlyTheThresholdIsNotAnEvent) {
  gpu0().utilization = 0.05;
  EXPECT_THAT(Next(), IsEmpty());
}

TEST_F(ChangeDetectorTest, EachReadingBeyondTheThresholdIsNamed) {
  gpu0().utilization = 0.5;
  node_.gpus[1].temperature_c = 40;  // +33%.
  const std::vector<GpuEvent> events = Next();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].type, GpuEventType::kChange);
  EXPECT_THAT(events[0].changed, ElementsAre("utilization"));
  EXPECT_DOUBLE_EQ(events[0].current.utilization, 0.5);
  ASSERT_TRUE(events[0].previous.has_value());
  EXPECT_DOUBLE_EQ(events[0].previous->utilization, 0.0);
  EXPECT_EQ(events[0].unix_ms, 2000);
  EXPECT_THAT(events[1].changed, ElementsAre("temperature"));
  EXPECT_EQ(events[1].gpu_uuid, "n1-gpu1");
}

TEST_F(ChangeDetectorTest, MemoryIsJudgedAsAShareOfTotal) {
  gpu0().memory_used_mib = 512 + 81559 / 10;  // +10% of the GPU.
  gpu0().power_w = 140;                       // +70 W of 700 W = 10%.
  const std::vector<GpuEvent> events = Next();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_THAT(events[0].changed, ElementsAre("memory", "power"));
}

TEST_F(ChangeDetectorTest, PowerWithoutLimitIsRelativeToTheReportedValue) {
  for (Gpu& gpu : node_.gpus) gpu.power_limit_w.reset();
  gpu0().power_w = 73;  // +4.3% of 70 W.
  EXPECT_THAT(Next(), IsEmpty());
  gpu0().power_w = 74;  // +5.7% of 70 W.
  const std::vector<GpuEvent> events = Next();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_THAT(events[0].changed, ElementsAre("power"));
}

TEST_F(ChangeDetectorTest, SlowDriftIsReportedOnceItAddsUp) {
  // Three moves of 3 points each: none alone exceeds 5 points; the third
  // takes the total to 9 against the reported 0.
  gpu0().utilization = 0.03;
  EXPECT_THAT(Next(), IsEmpty());
  gpu0().utilization = 0.06;
  const std::vector<GpuEvent> second = Next();
  ASSERT_EQ(second.size(), 1u);
  EXPECT_DOUBLE_EQ(second[0].previous->utilization, 0.0);
  // The reference is now 0.06: another 3 points is again too small.
  gpu0().utilization = 0.09;
  EXPECT_THAT(Next(), IsEmpty());
}

TEST_F(ChangeDetectorTest, OnlyTheReadingsThatMovedTakeNewReferences) {
  gpu0().temperature_c = 31.4;  // Below the threshold: reference stays 30.
  gpu0().utilization = 0.5;
  ASSERT_EQ(Next().size(), 1u);
  gpu0().temperature_c = 31.6;  // 5.3% above 30: reported now.
  const std::vector<GpuEvent> events = Next();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_THAT(events[0].changed, ElementsAre("temperature"));
  EXPECT_DOUBLE_EQ(*events[0].previous->temperature_c, 30);
}

TEST_F(ChangeDetectorTest, ASensorThatStopsAnsweringIsAChange) {
  gpu0().temperature_c.reset();
  const std::vector<GpuEvent> events = Next();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_THAT(events[0].changed, ElementsAre("temperature"));
  EXPECT_FALSE(events[0].current.temperature_c.has_value());
}

TEST_F(ChangeDetectorTest, HealthTransitionsAreAlwaysReported) {
  gpu0().healthy = false;
  gpu0().health_reason = "XID 79: GPU has fallen off the bus";
  gpu0().utilization = 0.01;  // Below the threshold; rides along.
  std::vector<GpuEvent> events = Next();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, GpuEventType::kHealth);
  EXPECT_THAT(events[0].changed, ElementsAre("health"));
  EXPECT_FALSE(events[0].current.healthy);
  EXPECT_TRUE(events[0].previous->healthy);

  gpu0().health_reason = "double-bit ECC error";  // Still unhealthy, new reason.
  events = Next();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, GpuEventType::kHealth);

  gpu0().healthy = true;
  gpu0().health_reason.clear();
  events = Next();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_TRUE(events[0].current.healthy);

  // Even with a threshold no reading can exceed: health is no threshold matter.
  ChangeDetector strict(1.0);
  strict.Update(Snapshot({node_}));
  gpu0().healthy = false;
  EXPECT_EQ(strict.Update(Snapshot({node_})).size(), 1u);
}

TEST_F(ChangeDetectorTest, RemovedGpusAreReportedWithTheirLastValues) {
  node_.gpus.pop_back();
  std::vector<GpuEvent> events = Next();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, GpuEventType::kRemoved);
  EXPECT_EQ(events[0].gpu_uuid, "n1-gpu1");
  EXPECT_EQ(events[0].node_name, "n1");
  EXPECT_EQ(events[0].gpu_index, 1);
  EXPECT_DOUBLE_EQ(*events[0].current.temperature_c, 30);
  EXPECT_THAT(Next(), IsEmpty());

  // Coming back is an addition again.
  node_ = testing::H100Node("n1", 2);
  events = Next();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, GpuEventType::kAdded);
}

TEST(ChangeDetectorThreshold, NegativeIsClampedToZero) {
  ChangeDetector detector(-1);
  EXPECT_EQ(detector.threshold(), 0);
  Node node = testing::H100Node("n1", 1);
  detector.Update(Snapshot({node}));
  node.gpus[0].utilization = 0.001;
  EXPECT_EQ(detector.Update(Snapshot({node})).size(), 1u);
}

}  // namespace
}  // namespace gpurm
