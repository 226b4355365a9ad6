#include "scheduler/scheduler.h"

#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/gpu_model.h"

namespace gpurm {
namespace {

Gpu MakeGpu(const std::string& node, int index, const std::string& name, int64_t total_mib,
            int nvlink_group = -1, int64_t used_mib = 0) {
  Gpu gpu;
  gpu.index = index;
  gpu.uuid = node + "-gpu" + std::to_string(index);
  gpu.model = ParseGpuModel(name);
  gpu.memory_total_mib = total_mib;
  gpu.memory_used_mib = used_mib;
  gpu.nvlink_group = nvlink_group;
  return gpu;
}

Node MakeNode(const std::string& name, const std::string& gpu_name, int count, int64_t mib,
              int group_size = 0) {
  Node node;
  node.name = name;
  for (int i = 0; i < count; ++i) {
    node.gpus.push_back(MakeGpu(name, i, gpu_name, mib, group_size > 0 ? i / group_size : -1));
  }
  return node;
}

// The example cluster: 4 x V100-32GB, 8 x A100-80GB in two NVLink groups, 4 x T4.
std::shared_ptr<InventorySnapshot> ThreeNodeCluster() {
  auto snapshot = std::make_shared<InventorySnapshot>();
  snapshot->nodes.push_back(MakeNode("gpu-node-1", "Tesla V100-SXM2-32GB", 4, 32768));
  snapshot->nodes.push_back(MakeNode("gpu-node-2", "NVIDIA A100-SXM4-80GB", 8, 81920, 4));
  snapshot->nodes.push_back(MakeNode("gpu-node-3", "Tesla T4", 4, 16384));
  return snapshot;
}

GpuRequest Request(int count, const std::string& type, double memory_gb) {
  GpuRequest request;
  request.gpu_count = count;
  request.gpu_type = type;
  request.memory_gb = memory_gb;
  return request;
}

// Applies a placement to the grant list, as the manager does with the ledger.
void Hold(const ScheduleResult& result, std::vector<GpuGrant>& held) {
  ASSERT_TRUE(result.placement.has_value()) << result.diagnosis.message;
  for (const GpuGrant& grant : result.placement->grants) held.push_back(grant);
}

TEST(ValidateRequestTest, RejectsBadValuesNamingTheField) {
  struct Case {
    GpuRequest request;
    std::string field;
  };
  GpuRequest zero = Request(0, "V100", 1);
  GpuRequest negative_memory = Request(1, "V100", -1);
  GpuRequest fraction = Request(1, "V100", 1);
  fraction.gpu_memory_fraction = 1.5;
  GpuRequest shared_without_memory = Request(1, "V100", 0);
  shared_without_memory.shared = true;
  GpuRequest bad_policy = Request(1, "V100", 1);
  bad_policy.policy = "fastest";
  GpuRequest bad_lease = Request(1, "", 0);
  bad_lease.lease_ttl_s = -5;
  for (const Case& c : std::vector<Case>{{zero, "gpu_count"},
                                         {negative_memory, "memory_gb"},
                                         {fraction, "gpu_memory_fraction"},
                                         {shared_without_memory, "shared"},
                                         {bad_policy, "policy"},
                                         {bad_lease, "lease_ttl_seconds"}}) {
    const Status status = ValidateRequest(c.request);
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << c.field;
    EXPECT_EQ(status.field(), c.field);
  }
  EXPECT_TRUE(ValidateRequest(Request(2, "V100", 16)).ok());
}

TEST(SchedulerTest, PlacesOnTheOnlyNodeOfTheRequestedType) {
  ClusterState state(ThreeNodeCluster(), {});
  ScheduleResult result = Scheduler("binpack").Schedule(Request(2, "V100", 32), state);
  ASSERT_TRUE(result.placement);
  ASSERT_EQ(result.placement->grants.size(), 2u);
  for (const GpuGrant& grant : result.placement->grants) {
    EXPECT_EQ(grant.node_name, "gpu-node-1");
    EXPECT_TRUE(grant.exclusive);
    EXPECT_EQ(grant.memory_mib, 32768);
  }
  EXPECT_TRUE(result.diagnosis.possible_now);
}

TEST(SchedulerTest, MultiGpuJobStaysInsideOneNvlinkGroup) {
  auto snapshot = ThreeNodeCluster();
  std::vector<GpuGrant> held;
  // One A100 already taken in group 0: a 4-GPU job must use group 1 intact.
  held.push_back(GpuGrant{"gpu-node-2", 1, "gpu-node-2-gpu1", 81920, true});
  ClusterState state(snapshot, held);
  ScheduleResult result = Scheduler("binpack").Schedule(Request(4, "A100", 40), state);
  ASSERT_TRUE(result.placement);
  std::set<int> indices;
  for (const GpuGrant& grant : result.placement->grants) indices.insert(grant.gpu_index);
  EXPECT_EQ(indices, (std::set<int>{4, 5, 6, 7}));
}

TEST(SchedulerTest, BinpackKeepsWholeGroupsFreeForLargeJobs) {
  auto snapshot = ThreeNodeCluster();
  std::vector<GpuGrant> held;
  Scheduler scheduler("binpack");
  // Two single-GPU jobs land in the same NVLink group...
  Hold(scheduler.Schedule(Request(1, "A100", 10), ClusterState(snapshot, held)), held);
  Hold(scheduler.Schedule(Request(1, "A100", 10), ClusterState(snapshot, held)), held);
  std::set<int> groups;
  for (const GpuGrant& grant : held) groups.insert(grant.gpu_index / 4);
  EXPECT_EQ(groups.size(), 1u);
  // ...so a 4-GPU job still finds a whole group.
  ScheduleResult big = scheduler.Schedule(Request(4, "A100", 80), ClusterState(snapshot, held));
  EXPECT_TRUE(big.placement);
}

TEST(SchedulerTest, SpreadUsesTheEmptiestNode) {
  auto snapshot = std::make_shared<InventorySnapshot>();
  snapshot->nodes.push_back(MakeNode("a", "Tesla T4", 4, 16384));
  snapshot->nodes.push_back(MakeNode("b", "Tesla T4", 4, 16384));
  std::vector<GpuGrant> held = {GpuGrant{"a", 0, "a-gpu0", 16384, true}};
  ScheduleResult spread =
      Scheduler("spread").Schedule(Request(1, "T4", 8), ClusterState(snapshot, held));
  ASSERT_TRUE(spread.placement);
  EXPECT_EQ(spread.placement->grants[0].node_name, "b");
  ScheduleResult binpack =
      Scheduler("binpack").Schedule(Request(1, "T4", 8), ClusterState(snapshot, held));
  ASSERT_TRUE(binpack.placement);
  EXPECT_EQ(binpack.placement->grants[0].node_name, "a");
}

TEST(SchedulerTest, OutsideMemoryUseCountsAgainstFreeMemory) {
  auto snapshot = std::make_shared<InventorySnapshot>();
  Node node;
  node.name = "n";
  node.gpus.push_back(MakeGpu("n", 0, "Tesla V100-SXM2-32GB", 32768, -1, 20480));
  snapshot->nodes.push_back(node);
  ClusterState state(snapshot, {});
  ScheduleResult too_big = Scheduler("binpack").Schedule(Request(1, "V100", 16), state);
  EXPECT_FALSE(too_big.placement);
  EXPECT_EQ(too_big.diagnosis.possible_ever, true);
  EXPECT_DOUBLE_EQ(too_big.diagnosis.would_fit.max_memory_gb_per_gpu, 12.0);
  ASSERT_EQ(too_big.diagnosis.reasons.size(), 1u);
  EXPECT_NE(too_big.diagnosis.reasons[0].reason.find("not enough free memory"), std::string::npos);
  ScheduleResult fits = Scheduler("binpack").Schedule(Request(1, "V100", 12), state);
  ASSERT_TRUE(fits.placement);
  // An exclusive grant holds what was really free, not the nominal size.
  EXPECT_EQ(fits.placement->grants[0].memory_mib, 12288);
}

TEST(SchedulerTest, SharedSlicesNeverOversubscribeAGpu) {
  auto snapshot = std::make_shared<InventorySnapshot>();
  snapshot->nodes.push_back(MakeNode("n", "Tesla T4", 1, 16384));
  Scheduler scheduler("binpack");
  std::vector<GpuGrant> held;
  GpuRequest slice = Request(1, "T4", 5);
  slice.shared = true;
  for (int i = 0; i < 3; ++i) Hold(scheduler.Schedule(slice, ClusterState(snapshot, held)), held);
  ScheduleResult fourth = scheduler.Schedule(slice, ClusterState(snapshot, held));
  EXPECT_FALSE(fourth.placement) << "3 x 5 GB used of 16 GB; 5 more would oversubscribe";
  EXPECT_EQ(ClusterState(snapshot, held).nodes()[0].gpus[0].free_mib, 16384 - 3 * 5120);
  // A whole-GPU request cannot take a GPU that has slices.
  EXPECT_FALSE(scheduler.Schedule(Request(1, "T4", 0), ClusterState(snapshot, held)).placement);
}

TEST(SchedulerTest, SharedSliceCannotJoinAnExclusiveGpu) {
  auto snapshot = std::make_shared<InventorySnapshot>();
  snapshot->nodes.push_back(MakeNode("n", "Tesla T4", 1, 16384));
  std::vector<GpuGrant> held = {GpuGrant{"n", 0, "n-gpu0", 16384, true}};
  GpuRequest slice = Request(1, "T4", 1);
  slice.shared = true;
  EXPECT_FALSE(Scheduler("binpack").Schedule(slice, ClusterState(snapshot, held)).placement);
}

TEST(SchedulerTest, UnhealthyAndCordonedGpusAreNotOffered) {
  auto snapshot = std::make_shared<InventorySnapshot>();
  Node sick = MakeNode("sick", "Tesla T4", 1, 16384);
  sick.gpus[0].healthy = false;
  Node cordoned = MakeNode("cordoned", "Tesla T4", 1, 16384);
  cordoned.schedulable = false;
  snapshot->nodes = {sick, cordoned};
  ScheduleResult result =
      Scheduler("binpack").Schedule(Request(1, "T4", 0), ClusterState(snapshot, {}));
  EXPECT_FALSE(result.placement);
  EXPECT_TRUE(result.diagnosis.possible_ever);
  ASSERT_EQ(result.diagnosis.reasons.size(), 2u);
  EXPECT_NE(result.diagnosis.reasons[0].reason.find("unhealthy"), std::string::npos);
  EXPECT_NE(result.diagnosis.reasons[1].reason.find("not schedulable"), std::string::npos);
}

TEST(SchedulerTest, ImpossibleRequestsSayNeverAndWhatWouldFit) {
  ClusterState state(ThreeNodeCluster(), {});
  Scheduler scheduler("binpack");
  ScheduleResult no_type = scheduler.Schedule(Request(1, "H100", 0), state);
  EXPECT_FALSE(no_type.diagnosis.possible_ever);
  EXPECT_EQ(no_type.diagnosis.would_fit.gpu_types_available.at("A100"), 8);
  EXPECT_NE(no_type.diagnosis.reasons[0].reason.find("no H100 GPUs (has 4 x V100)"),
            std::string::npos)
      << no_type.diagnosis.reasons[0].reason;

  ScheduleResult too_much_memory = scheduler.Schedule(Request(1, "T4", 32), state);
  EXPECT_FALSE(too_much_memory.diagnosis.possible_ever);
  EXPECT_DOUBLE_EQ(too_much_memory.diagnosis.would_fit.max_memory_gb_per_gpu, 16.0);

  ScheduleResult too_many = scheduler.Schedule(Request(5, "V100", 0), state);
  EXPECT_FALSE(too_many.diagnosis.possible_ever);
  EXPECT_EQ(too_many.diagnosis.would_fit.max_gpus_on_one_node, 4);
}

TEST(SchedulerTest, BusyClusterSaysNotNowButEver) {
  auto snapshot = ThreeNodeCluster();
  std::vector<GpuGrant> held;
  for (int i = 0; i < 4; ++i) {
    held.push_back(GpuGrant{"gpu-node-1", i, "gpu-node-1-gpu" + std::to_string(i), 32768, true});
  }
  ScheduleResult result =
      Scheduler("binpack").Schedule(Request(1, "V100", 0), ClusterState(snapshot, held));
  EXPECT_FALSE(result.placement);
  EXPECT_FALSE(result.diagnosis.possible_now);
  EXPECT_TRUE(result.diagnosis.possible_ever);
  EXPECT_NE(result.diagnosis.reasons[0].reason.find("4 already allocated"), std::string::npos)
      << result.diagnosis.reasons[0].reason;
}

TEST(SchedulerTest, DistributedJobGangsAcrossNodesWithEqualShares) {
  auto snapshot = std::make_shared<InventorySnapshot>();
  for (const char* name : {"a", "b", "c"}) {
    snapshot->nodes.push_back(MakeNode(name, "NVIDIA H100 80GB HBM3", 4, 81559));
  }
  GpuRequest request = Request(8, "H100", 40);
  ScheduleResult single = Scheduler("binpack").Schedule(request, ClusterState(snapshot, {}));
  EXPECT_FALSE(single.placement) << "without distributed_training, 8 GPUs need one node";
  EXPECT_FALSE(single.diagnosis.possible_ever);

  request.distributed_training = true;
  ScheduleResult gang = Scheduler("binpack").Schedule(request, ClusterState(snapshot, {}));
  ASSERT_TRUE(gang.placement);
  std::map<std::string, int> per_node;
  for (const GpuGrant& grant : gang.placement->grants) ++per_node[grant.node_name];
  EXPECT_EQ(per_node.size(), 2u);
  for (const auto& [node, count] : per_node) EXPECT_EQ(count, 4) << node;
}

TEST(SchedulerTest, GangIsAllOrNothing) {
  auto snapshot = std::make_shared<InventorySnapshot>();
  snapshot->nodes.push_back(MakeNode("a", "Tesla T4", 2, 16384));
  snapshot->nodes.push_back(MakeNode("b", "Tesla T4", 2, 16384));
  std::vector<GpuGrant> held = {GpuGrant{"b", 0, "b-gpu0", 16384, true}};
  GpuRequest request = Request(4, "T4", 0);
  request.distributed_training = true;
  ScheduleResult result = Scheduler("binpack").Schedule(request, ClusterState(snapshot, held));
  EXPECT_FALSE(result.placement);
  EXPECT_TRUE(result.diagnosis.possible_ever);
}

TEST(SchedulerTest, NodeNameRestrictsPlacement) {
  ClusterState state(ThreeNodeCluster(), {});
  GpuRequest request = Request(1, "", 0);
  request.node_name = "gpu-node-3";
  ScheduleResult result = Scheduler("binpack").Schedule(request, state);
  ASSERT_TRUE(result.placement);
  EXPECT_EQ(result.placement->grants[0].node_name, "gpu-node-3");
  request.node_name = "nope";
  ScheduleResult missing = Scheduler("binpack").Schedule(request, state);
  EXPECT_FALSE(missing.placement);
  EXPECT_FALSE(missing.diagnosis.possible_ever);
  EXPECT_EQ(missing.diagnosis.message, "no node named \"nope\"");
}

TEST(SchedulerTest, ScoresAreBounded) {
  ClusterState state(ThreeNodeCluster(), {});
  for (const std::string& policy : PolicyNames()) {
    for (int count : {1, 2, 4, 8}) {
      ScheduleResult result = Scheduler(policy).Schedule(Request(count, "", 0), state);
      ASSERT_TRUE(result.placement) << policy << " " << count;
      EXPECT_GE(result.placement->score, 0);
      EXPECT_LE(result.placement->score, 100);
    }
  }
}

}  // namespace
}  // namespace gpurm
