#include "scheduler/scheduler.h"

#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/gpu_model.h"
#include "core/placement_policies.h"

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
  EXPECT_NE(too_big.diagnosis.reasons[0].reason.find("blocked by processes outside gpurm"),
            std::string::npos);
  EXPECT_EQ(too_big.diagnosis.blocked_by, "outside_processes");
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
  held.reserve(4);
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

TEST(SchedulerTest, MessagesNameMemoryOnlyWhenTheRequestAsksForIt) {
  ClusterState state(ThreeNodeCluster(), {});
  Scheduler scheduler("binpack");
  ScheduleResult too_many = scheduler.Schedule(Request(5, "V100", 0), state);
  EXPECT_EQ(too_many.diagnosis.message, "no 5 x V100 exists in this cluster");
  EXPECT_EQ(too_many.diagnosis.would_fit.suggestion, "4 x V100 fit now on gpu-node-1");
  ScheduleResult with_memory = scheduler.Schedule(Request(5, "V100", 16), state);
  EXPECT_EQ(with_memory.diagnosis.message, "no 5 x V100 with 16.0 GB each exists in this cluster");
}

// A type naming a variant gets that variant only; the bare family gets any.
TEST(SchedulerTest, TypeNamingAVariantMatchesOnlyThatVariant) {
  auto snapshot = std::make_shared<InventorySnapshot>();
  snapshot->nodes.push_back(MakeNode("a100-40", "NVIDIA A100-PCIE-40GB", 2, 40960));
  snapshot->nodes.push_back(MakeNode("a100-80", "NVIDIA A100-SXM4-80GB", 2, 81920));
  snapshot->nodes.push_back(MakeNode("v100s", "Tesla V100S-PCIE-32GB", 2, 32510));
  ClusterState state(snapshot, {});
  Scheduler scheduler("binpack");
  const auto node_of = [&](const char* type) {
    ScheduleResult result = scheduler.Schedule(Request(2, type, 0), state);
    return result.placement ? result.placement->grants.front().node_name : std::string("none");
  };
  EXPECT_EQ(node_of("A100-40GB"), "a100-40");
  EXPECT_EQ(node_of("A100-80GB"), "a100-80");
  EXPECT_EQ(node_of("A100-SXM4"), "a100-80");
  EXPECT_EQ(node_of("V100S"), "v100s");
  EXPECT_EQ(node_of("V100"), "none");
  GpuRequest distributed = Request(4, "A100", 0);
  distributed.distributed_training = true;  // 2 + 2 A100s of both sizes, across nodes.
  EXPECT_TRUE(scheduler.Schedule(distributed, state).placement.has_value());
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

namespace gpurm {
namespace {

std::shared_ptr<InventorySnapshot> Nodes(int nodes, int gpus_per_node, const std::string& model,
                                         int64_t mib) {
  auto snapshot = std::make_shared<InventorySnapshot>();
  for (int n = 0; n < nodes; ++n) {
    snapshot->nodes.push_back(MakeNode("n" + std::to_string(n), model, gpus_per_node, mib));
  }
  return snapshot;
}

GpuRequest Share(int milli) {
  GpuRequest request = Request(1, "", 0);
  request.gpu_milli = milli;
  return request;
}

// Reserves the placement (must fit) and returns it.
Placement Place(const Scheduler& scheduler, const GpuRequest& request, ClusterState& state,
                const ScheduleOptions& options = {}) {
  ScheduleResult result = scheduler.Schedule(request, state, options);
  EXPECT_TRUE(result.placement) << result.diagnosis.message;
  if (!result.placement) return {};
  EXPECT_TRUE(scheduler.Reserve(*result.placement, state).ok());
  return *result.placement;
}

TEST(PolicyTest, EveryPolicyIsRegistered) {
  EXPECT_EQ(PolicyNames(), (std::vector<std::string>{"binpack", "spread", "topology",
                                                     "fragmentation-aware", "random"}));
  for (const std::string& name : PolicyNames()) {
    ASSERT_NE(FindPolicy(name), nullptr) << name;
    EXPECT_FALSE(FindPolicy(name)->description().empty());
  }
  // The implementations are the catalog's, in its order, with its descriptions.
  ASSERT_EQ(PolicyNames().size(), kPlacementPolicies.size());
  for (size_t i = 0; i < kPlacementPolicies.size(); ++i) {
    EXPECT_EQ(PolicyNames()[i], kPlacementPolicies[i].name);
    EXPECT_EQ(FindPolicy(kPlacementPolicies[i].name)->description(),
              kPlacementPolicies[i].description);
  }
  EXPECT_EQ(PolicyNames().front(), kDefaultPlacementPolicy);
  EXPECT_EQ(FindPolicy("fastest"), nullptr);
  EXPECT_EQ(Scheduler("nonsense").default_policy(), "binpack");
}

TEST(SliceTest, MilliAndMemorySlicesRoundTrip) {
  for (int64_t total : {1001, 1024, 15360, 16384, 32510, 81920}) {
    for (int milli = 1; milli < 1000; ++milli) {
      ASSERT_EQ(SliceMilli(SliceMibForMilli(milli, total), total), milli) << total;
    }
  }
  EXPECT_EQ(SliceMilli(16384, 16384), 1000);
  EXPECT_EQ(SliceMilli(0, 16384), 0);
}

TEST(ValidateRequestTest, GpuShares) {
  GpuRequest share = Share(470);
  EXPECT_TRUE(ValidateRequest(share).ok());
  share.gpu_count = 2;
  EXPECT_EQ(ValidateRequest(share).field(), "gpu_milli");
  EXPECT_EQ(ValidateRequest(Share(1001)).field(), "gpu_milli");
  EXPECT_EQ(ValidateRequest(Share(-1)).field(), "gpu_milli");
  GpuRequest whole = Share(1000);
  whole.gpu_count = 4;
  EXPECT_TRUE(ValidateRequest(whole).ok()) << "1000 milli is a whole GPU";
  GpuRequest shared_share = Share(300);
  shared_share.shared = true;
  EXPECT_TRUE(ValidateRequest(shared_share).ok()) << "a share needs no memory_gb";
}

TEST(SharingTest, SharesPackAGpuWithoutOversubscribing) {
  ClusterState state(Nodes(1, 2, "Tesla T4", 16384), {});
  Scheduler scheduler("binpack");
  Placement first = Place(scheduler, Share(470), state);
  ASSERT_EQ(first.grants.size(), 1u);
  EXPECT_FALSE(first.grants[0].exclusive);
  EXPECT_EQ(first.grants[0].memory_mib, SliceMibForMilli(470, 16384));
  // Binpack puts the second share next to the first...
  Placement second = Place(scheduler, Share(470), state);
  EXPECT_EQ(second.grants[0].gpu_uuid, first.grants[0].gpu_uuid);
  // ...and the third, which no longer fits there (940 + 470 > 1000), elsewhere.
  Placement third = Place(scheduler, Share(470), state);
  EXPECT_NE(third.grants[0].gpu_uuid, first.grants[0].gpu_uuid);
  const GpuAvailability& shared = state.nodes()[0].gpus[0];
  EXPECT_EQ(shared.shared_milli, 940);
  EXPECT_EQ(shared.free_milli(), 60);
  // Neither a whole GPU nor a 100-milli share fits beside 3 x 470 on 2 GPUs
  // with 60 and 530 free... the 100 does (on the second), a whole GPU never.
  EXPECT_FALSE(scheduler.Schedule(Request(1, "T4", 0), state).placement);
  Placement small = Place(scheduler, Share(60), state);
  EXPECT_EQ(small.grants[0].gpu_uuid, first.grants[0].gpu_uuid) << "best fit fills the remnant";
  EXPECT_EQ(state.nodes()[0].gpus[0].free_milli(), 0);
  ScheduleResult none = scheduler.Schedule(Share(600), state);
  EXPECT_FALSE(none.placement);
  EXPECT_EQ(none.diagnosis.code, FitCode::kNotNow);
  // The ledger's view (grants only) rebuilds the same shares.
  std::vector<GpuGrant> grants;
  for (const Placement* p : {&first, &second, &third, &small}) {
    grants.insert(grants.end(), p->grants.begin(), p->grants.end());
  }
  ClusterState rebuilt(state.snapshot_ptr(), grants);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(rebuilt.nodes()[0].gpus[i].shared_milli, state.nodes()[0].gpus[i].shared_milli);
    EXPECT_EQ(rebuilt.nodes()[0].gpus[i].free_mib, state.nodes()[0].gpus[i].free_mib);
  }
}

TEST(SharingTest, ExclusiveGpusTakeNoShares) {
  ClusterState state(Nodes(1, 1, "Tesla T4", 16384), {});
  Scheduler scheduler("spread");
  Placement whole = Place(scheduler, Request(1, "T4", 0), state);
  EXPECT_TRUE(whole.grants[0].exclusive);
  EXPECT_FALSE(scheduler.Schedule(Share(10), state).placement);
  scheduler.Unreserve(whole, state);
  EXPECT_TRUE(scheduler.Schedule(Share(10), state).placement);
}

TEST(SchedulerTest, GpuTypeAlternatives) {
  ClusterState state(ThreeNodeCluster(), {});
  GpuRequest request = Request(4, "T4|V100", 0);
  ScheduleResult result = Scheduler("binpack").Schedule(request, state);
  ASSERT_TRUE(result.placement);
  EXPECT_NE(result.placement->grants[0].node_name, "gpu-node-2");
  request.gpu_type = "H100|MI250X";
  EXPECT_EQ(Scheduler("binpack").Schedule(request, state).diagnosis.code, FitCode::kNever);
}

TEST(SchedulerTest, HostResourcesSayNeverOrNotNow) {
  auto snapshot = Nodes(2, 2, "Tesla T4", 16384);
  ClusterState state(snapshot, {}, {{16000, 65536}, {64000, 262144}});
  Scheduler scheduler("binpack");
  ScheduleOptions big;
  big.host = {32000, 1024};
  GpuRequest one = Request(1, "T4", 0);
  Placement placed = Place(scheduler, one, state, big);
  EXPECT_EQ(placed.node_indexes, (std::vector<size_t>{1})) << "only n1 has 32 cores";
  EXPECT_EQ(state.nodes()[1].host_used.cpu_milli, 32000);
  // n1 now has 32 of 64 cores: one more fits, a third does not (not now),
  // and 100 cores never fit.
  Place(scheduler, one, state, big);
  ScheduleResult busy = scheduler.Schedule(one, state, big);
  EXPECT_FALSE(busy.placement);
  EXPECT_EQ(busy.diagnosis.code, FitCode::kNotNow);
  ASSERT_EQ(busy.diagnosis.reasons.size(), 2u);
  EXPECT_EQ(busy.diagnosis.reasons[0].code, FitCode::kNever);
  EXPECT_NE(busy.diagnosis.reasons[0].reason.find("CPU cores"), std::string::npos);
  EXPECT_EQ(busy.diagnosis.reasons[1].code, FitCode::kNotNow);
  ScheduleOptions huge;
  huge.host = {100000, 0};
  EXPECT_EQ(scheduler.Schedule(one, state, huge).diagnosis.code, FitCode::kNever);
}

TEST(SchedulerTest, CpuOnlyRequestsUseHostResourcesOnly) {
  ClusterState state(Nodes(2, 1, "Tesla T4", 16384), {}, {{8000, 0}, {8000, 0}});
  Scheduler scheduler("spread");
  ScheduleOptions options;
  options.host = {6000, 0};
  GpuRequest cpu_only = Request(0, "", 0);
  Placement a = Place(scheduler, cpu_only, state, options);
  Placement b = Place(scheduler, cpu_only, state, options);
  EXPECT_TRUE(a.grants.empty());
  EXPECT_NE(a.node_indexes, b.node_indexes) << "spread balances CPU";
  EXPECT_FALSE(scheduler.Schedule(cpu_only, state, options).placement);
  EXPECT_EQ(state.nodes()[0].UntouchedGpuCount(), 1);
}

TEST(SchedulerTest, TopologyKeepsJobsInsideOneIslandOrNumaNode) {
  auto snapshot = std::make_shared<InventorySnapshot>();
  Node node = MakeNode("dgx", "NVIDIA A100-SXM4-80GB", 8, 81920);
  for (int i = 0; i < 8; ++i) node.gpus[i].numa_node = i / 4;  // No NVLink info.
  snapshot->nodes.push_back(node);
  std::vector<GpuGrant> held = {GpuGrant{"dgx", 0, "dgx-gpu0", 81920, true},
                                GpuGrant{"dgx", 5, "dgx-gpu5", 81920, true}};
  ClusterState state(snapshot, held);
  GpuRequest three = Request(3, "A100", 0);
  three.policy = "topology";
  ScheduleResult result = Scheduler("binpack").Schedule(three, state);
  ASSERT_TRUE(result.placement);
  std::set<int> numa;
  for (const GpuGrant& grant : result.placement->grants) numa.insert(grant.gpu_index / 4);
  EXPECT_EQ(numa.size(), 1u) << "3 GPUs fit on one NUMA node";
  EXPECT_EQ(result.placement->policy, "topology");
}

TEST(FragmentationAwareTest, KeepsRoomForTheCommonShape) {
  // Two single-GPU nodes: one GPU has 600 free, the other is empty. The mix
  // is mostly 0.6-GPU tasks; a 0.4 task arrives.
  auto snapshot = Nodes(2, 1, "Tesla T4", 16384);
  ClusterState state(snapshot, {GpuGrant{"n0", 0, "n0-gpu0", SliceMibForMilli(400, 16384), false}});
  ASSERT_EQ(state.nodes()[0].gpus[0].free_milli(), 600);
  WorkloadMix mix;
  for (int i = 0; i < 10; ++i) mix.Record(Share(600));
  mix.Record(Share(400));
  ScheduleOptions options;
  options.workload = &mix;
  // Best fit squeezes it into the 600 remnant, leaving 200 nobody uses...
  ScheduleResult binpack = Scheduler("binpack").Schedule(Share(400), state, options);
  ASSERT_TRUE(binpack.placement);
  EXPECT_EQ(binpack.placement->grants[0].node_name, "n0");
  // ...FGD puts it on the empty GPU, keeping the 600 slot for a 0.6 task.
  ScheduleResult fgd = Scheduler("fragmentation-aware").Schedule(Share(400), state, options);
  ASSERT_TRUE(fgd.placement);
  EXPECT_EQ(fgd.placement->grants[0].node_name, "n1");
  EXPECT_GT(fgd.placement->score, 50) << "fragmentation falls";
}

TEST(FragmentationAwareTest, SpendsHostResourcesWhereTheyStrandNoGpu) {
  // n0: 2 GPUs, 24 cores (exactly what two 12-core GPU tasks need);
  // n1: 2 GPUs, 96 cores. A CPU-only pod should go to n1.
  ClusterState state(Nodes(2, 2, "Tesla T4", 16384), {}, {{24000, 0}, {96000, 0}});
  WorkloadMix mix;
  for (int i = 0; i < 5; ++i) mix.Record(Request(1, "", 0), {12000, 0});
  ScheduleOptions options;
  options.workload = &mix;
  options.host = {4000, 0};
  ScheduleResult result =
      Scheduler("fragmentation-aware").Schedule(Request(0, "", 0), state, options);
  ASSERT_TRUE(result.placement);
  EXPECT_EQ(result.placement->node_indexes, (std::vector<size_t>{1}));
}

TEST(FragmentationAwareTest, WithoutHistoryCpuOnlyWorkAvoidsCpuTightNodes) {
  // No GPU request seen yet: the policy assumes whole-GPU tasks with the
  // cluster's mean CPU per GPU (30 cores here), which n0 could not feed.
  ClusterState state(Nodes(2, 2, "Tesla T4", 16384), {}, {{24000, 0}, {96000, 0}});
  WorkloadMix empty;
  ScheduleOptions options;
  options.workload = &empty;
  options.host = {4000, 0};
  ScheduleResult result =
      Scheduler("fragmentation-aware").Schedule(Request(0, "", 0), state, options);
  ASSERT_TRUE(result.placement);
  EXPECT_EQ(result.placement->node_indexes, (std::vector<size_t>{1}));
  EXPECT_GE(result.placement->score, 0);
  EXPECT_LE(result.placement->score, 100);
}

TEST(FragmentationAwareTest, CpuOnlyWorkSparesTheLargestNodes) {
  // n0: 2 GPUs, 128 cores, the only node a task taking all of it could run
  // on (the whole-node prior); n1: 2 GPUs, 96 cores. Both feed the mix's
  // 4-core GPU tasks after a 16-core CPU-only pod, so fragmentation ties,
  // and host headroom alone would pick n0. The node pressure charges the
  // 16 of n0's 128 cores the pod would take: it goes to n1.
  ClusterState state(Nodes(2, 2, "Tesla T4", 16384), {}, {{128000, 0}, {96000, 0}});
  WorkloadMix mix;
  for (int i = 0; i < 4; ++i) mix.Record(Request(1, "", 0), {4000, 0});
  ScheduleOptions options;
  options.workload = &mix;
  options.host = {16000, 0};
  const GpuRequest cpu_only = Request(0, "", 0);
  EXPECT_DOUBLE_EQ(SchedulingContext(cpu_only, options, state).NodePressure(state.nodes()[0]), 0.2);
  ScheduleResult result = Scheduler("fragmentation-aware").Schedule(cpu_only, state, options);
  ASSERT_TRUE(result.placement);
  EXPECT_EQ(result.placement->node_indexes, (std::vector<size_t>{1}));

  // Once n0's GPUs are all held no GPU task can run there: its cores strand
  // nothing, the node pressure does not charge them, and the pod takes them.
  ClusterState full(
      Nodes(2, 2, "Tesla T4", 16384),
      {GpuGrant{"n0", 0, "n0-gpu0", 16384, true}, GpuGrant{"n0", 1, "n0-gpu1", 16384, true}},
      {{128000, 0}, {96000, 0}});
  result = Scheduler("fragmentation-aware").Schedule(cpu_only, full, options);
  ASSERT_TRUE(result.placement);
  EXPECT_EQ(result.placement->node_indexes, (std::vector<size_t>{0}));
}

// ExpectedFragmentation of node 0 of `state` under `mix`.
double FragmentationOf(const ClusterState& state, const WorkloadMix& mix) {
  ScheduleOptions options;
  options.workload = &mix;
  const GpuRequest probe = Request(1, "", 0);
  const SchedulingContext context(probe, options, state);
  return ExpectedFragmentation(context, state.nodes()[0]);
}

TEST(FragmentationMeasureTest, SharedRemaindersCountWhatNoTaskOfTheShapeCanUse) {
  // GPU 0 holds a 0.4 share (0.6 free), GPU 1 is empty: 1,600 free.
  ClusterState state(Nodes(1, 2, "Tesla T4", 16384),
                     {GpuGrant{"n0", 0, "n0-gpu0", SliceMibForMilli(400, 16384), false}});
  WorkloadMix mix;
  for (int i = 0; i < 3; ++i) mix.Record(Share(500));
  mix.Record(Request(1, "", 0));
  // 0.5 tasks: one on GPU 0, two on GPU 1, 100 left over. Whole GPUs: only
  // GPU 1, so GPU 0's 600 is fragment. (3 x 100 + 1 x 600) / 4.
  EXPECT_DOUBLE_EQ(FragmentationOf(state, mix), 225.0);
}

TEST(FragmentationMeasureTest, ANodeWithoutTheCpuATaskNeedsIsAllFragment) {
  // 2 idle GPUs, 16 cores of which 12 are used: 4 free.
  ClusterState state(Nodes(1, 2, "Tesla T4", 16384), {}, {{16000, 0}});
  state.AddHostUse(0, {12000, 0});
  WorkloadMix mix;
  mix.Record(Request(1, "", 0), {8000, 0});  // No 8-core task fits: 2,000.
  mix.Record(Request(1, "", 0), {2000, 0});  // Two 2-core tasks fit: 0.
  EXPECT_DOUBLE_EQ(FragmentationOf(state, mix), 1000.0);
}

TEST(FragmentationMeasureTest, AModelTheShapeRulesOutIsAllFragment) {
  ClusterState state(Nodes(1, 2, "Tesla T4", 16384), {});
  WorkloadMix mix;
  mix.Record(Request(1, "A100", 0));  // Cannot use T4s: 2,000.
  mix.Record(Request(1, "T4", 0));    // 0.
  mix.Record(Request(1, "", 0));      // 0.
  EXPECT_DOUBLE_EQ(FragmentationOf(state, mix), 2000.0 / 3.0);
}

TEST(FragmentationMeasureTest, MultiGpuShapesNeedThatManyUntouchedGpus) {
  // 4 GPUs, GPU 0 holds a 0.3 share: 3,700 free, 3 untouched GPUs.
  ClusterState state(Nodes(1, 4, "Tesla T4", 16384),
                     {GpuGrant{"n0", 0, "n0-gpu0", SliceMibForMilli(300, 16384), false}});
  WorkloadMix mix;
  mix.Record(Request(2, "", 0));  // One 2-GPU task: 3,700 - 2,000 = 1,700.
  mix.Record(Request(4, "", 0));  // None: 3,700.
  mix.Record(Share(700));         // One per GPU: 3,700 - 4 x 700 = 900.
  EXPECT_DOUBLE_EQ(FragmentationOf(state, mix), (1700.0 + 3700.0 + 900.0) / 3.0);
}

TEST(FragmentationMeasureTest, NoWorkloadOrNoFreeGpuMeansNoFragmentation) {
  ClusterState state(Nodes(1, 1, "Tesla T4", 16384), {GpuGrant{"n0", 0, "n0-gpu0", 0, true}});
  WorkloadMix mix;
  mix.Record(Request(1, "", 0));
  EXPECT_DOUBLE_EQ(FragmentationOf(state, mix), 0.0);
  ClusterState idle(Nodes(1, 1, "Tesla T4", 16384), {});
  const GpuRequest probe = Request(1, "", 0);
  const ScheduleOptions no_workload;
  EXPECT_DOUBLE_EQ(
      ExpectedFragmentation(SchedulingContext(probe, no_workload, idle), idle.nodes()[0]), 0.0);
}

// n0: 2 x T4, n1: 4 x V100; the mix wants as many T4-only as V100-only tasks.
ClusterState ContendedModels() {
  auto snapshot = Nodes(1, 2, "Tesla T4", 16384);
  snapshot->nodes.push_back(MakeNode("n1", "Tesla V100-SXM2-32GB", 4, 32768));
  return ClusterState(snapshot, {});
}

TEST(FragmentationAwareTest, TypePressureIsDemandShareOverCapacityShare) {
  ClusterState state = ContendedModels();
  WorkloadMix mix;
  for (int i = 0; i < 2; ++i) mix.Record(Request(1, "T4", 0));
  for (int i = 0; i < 2; ++i) mix.Record(Request(1, "V100", 0));
  mix.Record(Request(1, "", 0));
  ScheduleOptions options;
  options.workload = &mix;
  const GpuRequest request = Request(1, "", 0);
  const SchedulingContext context(request, options, state);
  // T4-only: 2/5 of the demand on 2/6 of the GPUs; V100-only: 2/5 on 4/6.
  EXPECT_DOUBLE_EQ(context.TypePressure(state.nodes()[0].gpus[0].type_id), 1.2);
  EXPECT_DOUBLE_EQ(context.TypePressure(state.nodes()[1].gpus[0].type_id), 0.6);
  const ScheduleOptions no_workload;
  EXPECT_DOUBLE_EQ(SchedulingContext(request, no_workload, state).TypePressure(0), 0.0);
}

TEST(FragmentationAwareTest, NodePressureWeighsShapesOnlySomeNodesCanEverHost) {
  // n0: 2 GPUs, 64 cores; n1: 2 GPUs, 16 cores (two build kinds).
  ClusterState state(Nodes(2, 2, "Tesla T4", 16384), {}, {{64000, 0}, {16000, 0}});
  WorkloadMix mix;
  mix.Record(Request(2, "", 0), {48000, 0});  // Only n0's kind can host it.
  for (int i = 0; i < 6; ++i) mix.Record(Share(500), {1000, 0});
  ScheduleOptions options;
  options.workload = &mix;
  const GpuRequest request = Share(500);
  const SchedulingContext context(request, options, state);
  // The 2-GPU shape: 2 of 5 GPUs of demand on 2 of the 4 GPUs. The shares
  // fit every kind and add nothing. The whole-node prior: a task taking all
  // of n0 (2 GPUs, 64 cores) fits n0's kind alone, 0.2 x its 2 GPUs over
  // the 2 that accept it; one taking all of n1 fits both kinds: nothing.
  EXPECT_DOUBLE_EQ(context.NodePressure(state.nodes()[0]), 0.4 * 4 / 2 + 0.2 * 2 / 2);
  EXPECT_DOUBLE_EQ(context.NodePressure(state.nodes()[1]), 0.0);
  const ScheduleOptions no_workload;
  EXPECT_DOUBLE_EQ(SchedulingContext(request, no_workload, state).NodePressure(state.nodes()[0]),
                   0.0);
}

TEST(FragmentationAwareTest, UnconstrainedWorkSparesTheScarcerModel) {
  // Fragmentation alone ties (either node's GPU is fragment for the other
  // model's tasks) and the lower index, the scarce T4s, would win.
  ClusterState state = ContendedModels();
  WorkloadMix mix;
  for (int i = 0; i < 2; ++i) mix.Record(Request(1, "T4", 0));
  for (int i = 0; i < 2; ++i) mix.Record(Request(1, "V100", 0));
  mix.Record(Request(1, "", 0));
  ScheduleOptions options;
  options.workload = &mix;
  const ScheduleResult result =
      Scheduler("fragmentation-aware").Schedule(Request(1, "", 0), state, options);
  ASSERT_TRUE(result.placement);
  EXPECT_EQ(result.placement->grants[0].node_name, "n1");
}

TEST(SchedulerTest, NodesThatCannotTellSayError) {
  auto snapshot = Nodes(1, 2, "Tesla T4", 16384);
  Node unknown = MakeNode("mystery", "Tesla T4", 2, 0);  // No memory size reported.
  snapshot->nodes.push_back(unknown);
  ClusterState state(snapshot, {});
  ScheduleResult result = Scheduler("binpack").Schedule(Request(1, "T4", 20), state);
  EXPECT_FALSE(result.placement);
  EXPECT_EQ(result.diagnosis.code, FitCode::kError);
  ASSERT_EQ(result.diagnosis.reasons.size(), 2u);
  EXPECT_EQ(result.diagnosis.reasons[0].code, FitCode::kNever) << "16 GB T4s never hold 20 GB";
  EXPECT_EQ(result.diagnosis.reasons[1].code, FitCode::kError);
  EXPECT_NE(result.diagnosis.reasons[1].reason.find("no memory size"), std::string::npos)
      << result.diagnosis.reasons[1].reason;
}

TEST(RandomPolicyTest, SeededAndUniformOverFeasibleNodes) {
  ClusterState state(Nodes(4, 2, "Tesla T4", 16384), {});
  Scheduler scheduler("random");
  std::map<std::string, int> hits;
  for (uint64_t seed = 0; seed < 400; ++seed) {
    ScheduleOptions options;
    options.random_seed = seed;
    ScheduleResult a = scheduler.Schedule(Request(1, "", 0), state, options);
    ScheduleResult b = scheduler.Schedule(Request(1, "", 0), state, options);
    ASSERT_TRUE(a.placement && b.placement);
    EXPECT_EQ(a.placement->grants[0].gpu_uuid, b.placement->grants[0].gpu_uuid) << "seeded";
    ++hits[a.placement->grants[0].node_name];
  }
  ASSERT_EQ(hits.size(), 4u);
  for (const auto& [node, count] : hits) EXPECT_GT(count, 50) << node;
}

// The incremental state must always equal a state rebuilt from the grants
// (what the daemon does from the ledger), and its node classes must hold
// exactly the nodes in the same condition.
TEST(ClusterStateTest, IncrementalUpdatesEqualARebuild) {
  auto snapshot = std::make_shared<InventorySnapshot>();
  for (int n = 0; n < 12; ++n) {
    snapshot->nodes.push_back(MakeNode("n" + std::to_string(n),
                                       n % 3 == 0 ? "Tesla T4" : "NVIDIA A100-SXM4-80GB",
                                       n % 2 == 0 ? 4 : 8, n % 3 == 0 ? 16384 : 81920, 4));
  }
  ClusterState state(snapshot, {});
  const std::vector<std::string> policies = PolicyNames();
  std::vector<Placement> held;
  uint64_t seed = 7;
  for (int step = 0; step < 400; ++step) {
    seed = MixSeed(seed);
    if (!held.empty() && seed % 3 == 0) {
      const size_t victim = (seed >> 8) % held.size();
      Scheduler("binpack").Unreserve(held[victim], state);
      held.erase(held.begin() + static_cast<std::ptrdiff_t>(victim));
    } else {
      GpuRequest request = (seed >> 4) % 2 == 0 ? Share(static_cast<int>(100 + (seed >> 12) % 800))
                                                : Request(1 << ((seed >> 12) % 4), "", 0);
      request.distributed_training = request.gpu_count == 8;
      Scheduler scheduler(policies[(seed >> 20) % policies.size()]);
      ScheduleOptions options;
      options.random_seed = seed;
      ScheduleResult result = scheduler.Schedule(request, state, options);
      if (result.placement) {
        ASSERT_TRUE(scheduler.Reserve(*result.placement, state).ok());
        held.push_back(*result.placement);
      }
    }
    std::vector<GpuGrant> grants;
    for (const Placement& p : held) grants.insert(grants.end(), p.grants.begin(), p.grants.end());
    ClusterState rebuilt(snapshot, grants);
    for (size_t n = 0; n < state.nodes().size(); ++n) {
      for (size_t i = 0; i < state.nodes()[n].gpus.size(); ++i) {
        const GpuAvailability& a = state.nodes()[n].gpus[i];
        const GpuAvailability& b = rebuilt.nodes()[n].gpus[i];
        ASSERT_EQ(a.free_mib, b.free_mib) << step;
        ASSERT_EQ(a.exclusively_held, b.exclusively_held) << step;
        ASSERT_EQ(a.shared_holders, b.shared_holders) << step;
        ASSERT_EQ(a.shared_milli, b.shared_milli) << step;
        ASSERT_LE(a.shared_milli, 1000) << "never oversubscribed";
      }
    }
    size_t members = 0;
    for (uint32_t id : state.live_classes()) {
      const std::vector<uint32_t>& nodes = state.class_members(id);
      ASSERT_FALSE(nodes.empty());
      ASSERT_TRUE(std::is_sorted(nodes.begin(), nodes.end()));
      for (uint32_t n : nodes) ASSERT_EQ(state.class_of(n), id);
      members += nodes.size();
    }
    ASSERT_EQ(members, state.nodes().size());
    ASSERT_EQ(state.live_classes().size(), rebuilt.live_classes().size()) << step;
  }
}

TEST(ReserveTest, RefusesWhatNoLongerFits) {
  ClusterState state(Nodes(1, 1, "Tesla T4", 16384), {});
  Scheduler scheduler("binpack");
  ScheduleResult a = scheduler.Schedule(Request(1, "", 0), state);
  ScheduleResult b = scheduler.Schedule(Request(1, "", 0), state);  // Same GPU.
  ASSERT_TRUE(a.placement && b.placement);
  ASSERT_TRUE(scheduler.Reserve(*a.placement, state).ok());
  const Status second = scheduler.Reserve(*b.placement, state);
  EXPECT_EQ(second.code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(state.nodes()[0].gpus[0].exclusively_held);
}

}  // namespace
}  // namespace gpurm

namespace gpurm {
namespace {

// A DGX-H100-like node: GPUs 0-1 whole; GPU 2 in MIG mode with a 3g.40gb and
// two 1g.10gb; GPU 3 in MIG mode with a 2g.20gb. MIG devices follow their GPU
// with its index, as the inventory lists them.
std::shared_ptr<InventorySnapshot> MigNode() {
  auto snapshot = std::make_shared<InventorySnapshot>();
  Node node;
  node.name = "dgx";
  const std::string h100 = "NVIDIA H100 80GB HBM3";
  auto mig = [&](int parent, const std::string& profile, int64_t mib, int n) {
    Gpu gpu = MakeGpu("dgx", parent, h100 + " MIG " + profile, mib);
    gpu.uuid = "MIG-" + std::to_string(parent) + "-" + std::to_string(n);
    gpu.mig_parent_uuid = "dgx-gpu" + std::to_string(parent);
    gpu.mig_profile = profile;
    gpu.utilization_available = false;
    return gpu;
  };
  for (int i = 0; i < 4; ++i) {
    node.gpus.push_back(MakeGpu("dgx", i, h100, 81559));
    node.gpus.back().mig_enabled = i >= 2;
    if (i == 2) {
      node.gpus.push_back(mig(2, "3g.40gb", 40320, 0));
      node.gpus.push_back(mig(2, "1g.10gb", 9984, 1));
      node.gpus.push_back(mig(2, "1g.10gb", 9984, 2));
    }
    if (i == 3) node.gpus.push_back(mig(3, "2g.20gb", 20096, 0));
  }
  snapshot->nodes.push_back(node);
  return snapshot;
}

std::vector<std::string> GrantedUuids(const ScheduleResult& result) {
  std::vector<std::string> uuids;
  if (!result.placement) return uuids;
  for (const GpuGrant& grant : result.placement->grants) uuids.push_back(grant.gpu_uuid);
  return uuids;
}

TEST(MigTypeTest, FamilyNamesMatchBothProfilesOnlyMigDevices) {
  const auto snapshot = MigNode();
  const Gpu& whole = snapshot->nodes[0].gpus[0];
  const Gpu& mig = snapshot->nodes[0].gpus[3];  // 3g.40gb.
  EXPECT_EQ(GpuTypeLabel(mig), "H100 MIG 3g.40gb");
  EXPECT_EQ(GpuTypeLabel(whole), "H100");
  for (const std::string type :
       {"H100", "h100", "MIG", "H100 MIG", "H100 MIG 3g.40gb", "3g.40gb", "mig-3g.40gb",
        "nvidia.com/mig-3g.40gb", "NVIDIA-H100-80GB-HBM3-MIG-3g.40gb", "T4|3g.40gb"}) {
    EXPECT_TRUE(GpuTypeMatches(Request(1, type, 0), mig)) << type;
  }
  for (const std::string type : {"A100 MIG 3g.40gb", "1g.10gb", "mig-1g.10gb", "T4"}) {
    EXPECT_FALSE(GpuTypeMatches(Request(1, type, 0), mig)) << type;
  }
  EXPECT_TRUE(GpuTypeMatches(Request(1, "H100", 0), whole));
  for (const std::string type : {"MIG", "H100 MIG", "3g.40gb", "mig-3g.40gb"}) {
    EXPECT_FALSE(GpuTypeMatches(Request(1, type, 0), whole)) << type;
  }
  EXPECT_TRUE(NamesMigDevices("V100|a100-mig-1g.5gb"));
  EXPECT_FALSE(NamesMigDevices("H100|A100-80GB"));
}

TEST(MigSchedulingTest, AGpuInMigModeIsNeverGrantedWhole) {
  ClusterState state(MigNode(), {});
  Scheduler scheduler("binpack");
  // Four whole H100s wanted, two exist whole; the two in MIG mode never count.
  ScheduleResult four = scheduler.Schedule(Request(4, "H100", 0), state);
  EXPECT_FALSE(four.placement);
  EXPECT_FALSE(four.diagnosis.possible_ever);
  ASSERT_EQ(four.diagnosis.reasons.size(), 1u);
  EXPECT_NE(four.diagnosis.reasons[0].reason.find("2 in MIG mode"), std::string::npos)
      << four.diagnosis.reasons[0].reason;
  // Without a memory figure, one H100 is a whole one.
  ScheduleResult one = scheduler.Schedule(Request(1, "H100", 0), state);
  EXPECT_EQ(GrantedUuids(one), std::vector<std::string>{"dgx-gpu0"});
  // A grant naming a GPU in MIG mode is refused at reservation.
  Placement whole;
  whole.grants.push_back(GpuGrant{"dgx", 2, "dgx-gpu2", 81559, true});
  whole.node_indexes = {0};
  const Status reserved = scheduler.Reserve(whole, state);
  EXPECT_EQ(reserved.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(reserved.message().find("MIG mode"), std::string::npos);
}

TEST(MigSchedulingTest, MemoryOrProfilePlacesOnMigDevices) {
  Scheduler scheduler("binpack");
  std::vector<GpuGrant> held;
  // Best fit: 8 GB goes to a 1g.10gb, 15 GB to the 2g.20gb, 30 GB to the 3g.40gb.
  for (const auto& [gb, uuid] : std::vector<std::pair<double, std::string>>{
           {8, "MIG-2-1"}, {15, "MIG-3-0"}, {30, "MIG-2-0"}, {8, "MIG-2-2"}}) {
    ClusterState state(MigNode(), held);
    ScheduleResult result = scheduler.Schedule(Request(1, "", gb), state);
    ASSERT_EQ(GrantedUuids(result), std::vector<std::string>{uuid}) << gb << " GB";
    const GpuGrant& grant = result.placement->grants[0];
    EXPECT_TRUE(grant.exclusive);
    EXPECT_EQ(grant.gpu_index, uuid == "MIG-3-0" ? 3 : 2);  // The parent's index.
    // The whole MIG device's memory, as the device reports it.
    EXPECT_EQ(grant.memory_mib,
              state.nodes()[0].gpus[state.FindGpu(uuid)->second].gpu->memory_total_mib);
    Hold(result, held);
  }
  // All MIG devices are held: 8 GB now takes a whole GPU.
  ClusterState state(MigNode(), held);
  EXPECT_EQ(GrantedUuids(scheduler.Schedule(Request(1, "", 8), state)),
            std::vector<std::string>{"dgx-gpu0"});
  // A profile names MIG devices only: none is free now, but one could be.
  ScheduleResult profile = scheduler.Schedule(Request(1, "1g.10gb", 0), state);
  EXPECT_FALSE(profile.placement);
  EXPECT_TRUE(profile.diagnosis.possible_ever);
  // Released, the profile gets its device.
  std::erase_if(held, [](const GpuGrant& g) { return g.gpu_uuid == "MIG-2-2"; });
  EXPECT_EQ(GrantedUuids(scheduler.Schedule(Request(1, "H100 MIG 1g.10gb", 0),
                                            ClusterState(MigNode(), held))),
            std::vector<std::string>{"MIG-2-2"});
}

// Whatever the policy, one-GPU 8 GB requests take the four MIG devices and
// the two whole GPUs, and never a GPU in MIG mode.
TEST(MigSchedulingTest, EveryPolicyGrantsMigDevicesAndNeverTheirGpu) {
  for (const std::string& policy : PolicyNames()) {
    SCOPED_TRACE(policy);
    Scheduler scheduler(policy);
    std::vector<GpuGrant> held;
    for (int i = 0; i < 10; ++i) {
      ScheduleResult result = scheduler.Schedule(Request(1, "", 8), ClusterState(MigNode(), held));
      if (!result.placement) break;
      Hold(result, held);
    }
    std::set<std::string> uuids;
    for (const GpuGrant& grant : held) uuids.insert(grant.gpu_uuid);
    EXPECT_EQ(uuids, (std::set<std::string>{"dgx-gpu0", "dgx-gpu1", "MIG-2-0", "MIG-2-1", "MIG-2-2",
                                            "MIG-3-0"}));
  }
}

TEST(MigSchedulingTest, MigDevicesServeOneGpuRequestsOnly) {
  ClusterState state(MigNode(), {});
  Scheduler scheduler("binpack");
  // Two GPUs with 8 GB each: whole GPUs (a CUDA process uses one MIG device).
  EXPECT_EQ(GrantedUuids(scheduler.Schedule(Request(2, "", 8), state)),
            (std::vector<std::string>{"dgx-gpu0", "dgx-gpu1"}));
  // A shared slice never lands on a MIG device.
  GpuRequest shared = Request(1, "", 8);
  shared.shared = true;
  for (const std::string& uuid : GrantedUuids(scheduler.Schedule(shared, state))) {
    EXPECT_EQ(uuid.rfind("MIG-", 0), std::string::npos) << uuid;
  }
  // Naming MIG with more than one GPU, or shared, is refused with the field.
  Status two = ValidateRequest(Request(2, "mig-1g.10gb", 0));
  EXPECT_EQ(two.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(two.field(), "gpu_count");
  GpuRequest shared_mig = Request(1, "3g.40gb", 8);
  shared_mig.shared = true;
  EXPECT_EQ(ValidateRequest(shared_mig).field(), "shared");
  EXPECT_TRUE(ValidateRequest(Request(1, "H100 MIG 3g.40gb", 0)).ok());
  // More memory than any MIG device has: a whole GPU.
  EXPECT_EQ(GrantedUuids(scheduler.Schedule(Request(1, "", 60), state)),
            std::vector<std::string>{"dgx-gpu0"});
  // What fits lists MIG devices by type.
  ScheduleResult none = scheduler.Schedule(Request(1, "A100", 0), state);
  EXPECT_EQ(none.diagnosis.would_fit.gpu_types_available["H100 MIG 1g.10gb"], 2);
  EXPECT_EQ(none.diagnosis.would_fit.gpu_types_available["H100"], 2);
}

// The demo inventory: gpu-node-2 GPU 0 runs an outside job (20 GB), GPU 4 a
// CUDA context (512 MB); the other six A100s are idle.
std::shared_ptr<InventorySnapshot> ClusterWithOutsideJob() {
  auto snapshot = ThreeNodeCluster();
  snapshot->nodes[1].gpus[0].memory_used_mib = 20480;
  snapshot->nodes[1].gpus[4].memory_used_mib = 512;
  return snapshot;
}

TEST(OutsideUseTest, EveryPolicyLeavesGpusWithOutsideProcessesAlone) {
  for (const std::string& policy : PolicyNames()) {
    ClusterState state(ClusterWithOutsideJob(), {});
    EXPECT_EQ(state.outside_use_gpu_count(), 2);
    GpuRequest request = Request(1, "A100", 0);
    request.policy = policy;
    const ScheduleResult result = Scheduler(kDefaultPlacementPolicy).Schedule(request, state);
    ASSERT_TRUE(result.placement.has_value()) << policy;
    ASSERT_EQ(result.placement->grants.size(), 1u);
    const int index = result.placement->grants[0].gpu_index;
    EXPECT_NE(index, 0) << policy;
    EXPECT_NE(index, 4) << policy;
    EXPECT_EQ(result.placement->outside_use_gpus, 0) << policy;
    EXPECT_EQ(result.placement->grants[0].memory_mib, 81920) << policy;
  }
}

TEST(OutsideUseTest, TakesAGpuWithOutsideUseOnlyWhenNothingElseFitsAndSaysSo) {
  ClusterState state(ClusterWithOutsideJob(), {});
  const Scheduler scheduler(kDefaultPlacementPolicy);
  // Six clean A100s fit six GPUs; seven need one with outside use.
  const ScheduleResult six = scheduler.Schedule(Request(6, "A100", 0), state);
  ASSERT_TRUE(six.placement.has_value());
  EXPECT_EQ(six.placement->outside_use_gpus, 0);
  for (const GpuGrant& grant : six.placement->grants) {
    EXPECT_NE(grant.gpu_index, 0);
    EXPECT_NE(grant.gpu_index, 4);
  }
  const ScheduleResult seven = scheduler.Schedule(Request(7, "A100", 0), state);
  ASSERT_TRUE(seven.placement.has_value());
  int busy_taken = 0;
  for (const GpuGrant& grant : seven.placement->grants) {
    busy_taken += grant.gpu_index == 0 || grant.gpu_index == 4 ? 1 : 0;
  }
  EXPECT_GE(busy_taken, 1);
  EXPECT_EQ(seven.placement->outside_use_gpus, busy_taken);
  // A memory need only the busy GPU's remaining memory cannot meet.
  std::vector<GpuGrant> held;
  for (int i = 1; i < 8; ++i) {
    if (i == 4) continue;
    held.push_back({"gpu-node-2", i, "gpu-node-2-gpu" + std::to_string(i), 81920, true});
  }
  ClusterState busy(ClusterWithOutsideJob(), held);
  const ScheduleResult one = scheduler.Schedule(Request(1, "A100", 70), busy);
  ASSERT_TRUE(one.placement.has_value());
  EXPECT_EQ(one.placement->grants[0].gpu_index, 4);
  EXPECT_EQ(one.placement->outside_use_gpus, 1);
}

TEST(OutsideUseTest, SharedSlicesAreNotSteeredAway) {
  ClusterState state(ClusterWithOutsideJob(), {});
  GpuRequest request = Request(1, "A100", 10);
  request.shared = true;
  const ScheduleResult result = Scheduler("binpack").Schedule(request, state);
  ASSERT_TRUE(result.placement.has_value());
  EXPECT_FALSE(result.placement->grants[0].exclusive);
}

TEST(OutsideUseTest, RefusalTellsOutsideProcessesApartFromGpurmAllocations) {
  const Scheduler scheduler(kDefaultPlacementPolicy);
  // Every A100 held by gpurm: fits once gpurm's allocations are released.
  std::vector<GpuGrant> all;
  for (int i = 0; i < 8; ++i) {
    all.push_back({"gpu-node-2", i, "gpu-node-2-gpu" + std::to_string(i), 81920, true});
  }
  ClusterState held(ThreeNodeCluster(), all);
  const ScheduleResult by_gpurm = scheduler.Schedule(Request(1, "A100", 0), held);
  ASSERT_FALSE(by_gpurm.placement.has_value());
  EXPECT_TRUE(by_gpurm.diagnosis.possible_ever);
  EXPECT_EQ(by_gpurm.diagnosis.blocked_by, "gpurm_allocations");
  EXPECT_NE(by_gpurm.diagnosis.message.find("fits once gpurm's allocations are released"),
            std::string::npos)
      << by_gpurm.diagnosis.message;

  // 70 GB on an A100: GPU 0 (20 GB outside use) can never give it while the
  // outside job runs; all others are held by gpurm.
  std::vector<GpuGrant> others(all.begin() + 1, all.end());
  ClusterState state(ClusterWithOutsideJob(), others);
  const ScheduleResult mixed = scheduler.Schedule(Request(1, "A100", 70), state);
  ASSERT_FALSE(mixed.placement.has_value());
  // Releasing gpurm's grants frees GPUs 1-7: that is what it waits for.
  EXPECT_EQ(mixed.diagnosis.blocked_by, "gpurm_allocations");
  const ScheduleResult eight = scheduler.Schedule(Request(8, "A100", 70), state);
  ASSERT_FALSE(eight.placement.has_value());
  EXPECT_TRUE(eight.diagnosis.possible_ever);
  EXPECT_EQ(eight.diagnosis.blocked_by, "outside_processes");
  EXPECT_NE(eight.diagnosis.message.find("blocked by processes outside gpurm"), std::string::npos)
      << eight.diagnosis.message;
  bool node_reason = false;
  for (const NodeReason& reason : eight.diagnosis.reasons) {
    if (reason.node_name != "gpu-node-2") continue;
    node_reason = true;
    EXPECT_NE(reason.reason.find("1 blocked by processes outside gpurm"), std::string::npos)
        << reason.reason;
    EXPECT_NE(reason.reason.find("7 already allocated"), std::string::npos) << reason.reason;
  }
  EXPECT_TRUE(node_reason);
}

}  // namespace
}  // namespace gpurm
