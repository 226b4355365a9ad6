// The ledger in the cluster and leader election, against an API server:
// an allocation creates a GpuAllocation object; a second replica does not
// place while the first holds the Lease; when the leader dies, the other
// takes over without losing or doubling an allocation.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <set>
#include <string>

#include "core/clock.h"
#include "inventory/inventory.h"
#include "inventory/providers/kubernetes/kubernetes_provider.h"
#include "kube/api_server.h"
#include "kube/leader_election.h"
#include "ledger/kubernetes_ledger.h"
#include "manager/manager.h"
#include "support/eventually.h"

namespace gpurm {
namespace {

using nlohmann::json;
using testing::TestApiServer;
constexpr char kNamespace[] = "gpurm";
const std::string kAllocations = "/apis/gpurm.io/v1alpha1/namespaces/gpurm/gpuallocations";

// One gpurm replica as `gpurm serve` wires it in Kubernetes mode: the
// provider, the cluster ledger gated by the Lease, the manager.
class Replica {
 public:
  // The ledger first: the elector's on_acquired uses it. The ledger asks
  // the elector only when placing, after construction.
  Replica(const kube::KubeClient* client, const std::string& identity) {
    KubernetesLedgerOptions options;
    options.namespace_name = kNamespace;
    options.retry_delay_s = 0.2;
    options.may_place = [this] {
      return elector_->IsLeader() ? std::string()
                                  : "not the leader (the leader is \"" + elector_->leader() + "\")";
    };
    Result<std::unique_ptr<KubernetesLedger>> ledger = OpenKubernetesLedger(client, options);
    EXPECT_TRUE(ledger.ok()) << ledger.status().ToString();
    if (ledger.ok()) ledger_ = std::move(ledger).value();
    kube::LeaderElectionOptions election;
    election.lease_namespace = kNamespace;
    election.identity = identity;
    election.lease_duration_s = 3;
    election.renew_deadline_s = 2;
    election.retry_period_s = 0.2;
    elector_ = std::make_unique<kube::LeaderElector>(client, election,
                                                     [this] { return ledger_->Resync(); });
    KubernetesProviderOptions inventory;
    inventory.gpu_resource = {{"nvidia", "nvidia.com/gpu"}};
    inventory.retry_delay_s = 0.2;
    auto provider = std::make_unique<KubernetesProvider>(client, inventory);
    provider_ = provider.get();
    inventory_ = std::make_unique<Inventory>(std::move(provider), &clock_, 16);
    manager_ = std::make_unique<GpuManager>(inventory_.get(), ledger_.get(), &clock_, "binpack");
  }

  // Waits for the inventory (`gpus` GPUs) and publishes it to the manager.
  bool LoadInventory(size_t gpus) {
    const bool seen = provider_->WaitUntil(
        [&](const DiscoveryReport& r) {
          size_t total = 0;
          for (const Node& node : r.nodes) total += node.gpus.size();
          return total == gpus;
        },
        testing::kPatience);
    return seen && inventory_->Refresh().ok();
  }

  kube::LeaderElector& elector() { return *elector_; }
  KubernetesLedger& ledger() { return *ledger_; }
  GpuManager& manager() { return *manager_; }

 private:
  // Destroyed bottom-up: the manager, then the elector (its thread stops
  // and releases the Lease), then the ledger its on_acquired uses.
  SystemClock clock_;
  std::unique_ptr<KubernetesLedger> ledger_;
  std::unique_ptr<kube::LeaderElector> elector_;
  KubernetesProvider* provider_ = nullptr;
  std::unique_ptr<Inventory> inventory_;
  std::unique_ptr<GpuManager> manager_;
};

GpuRequest TwoA100s() {
  GpuRequest request;
  request.gpu_count = 2;
  request.gpu_type = "A100";
  return request;
}

class KubeLedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<std::unique_ptr<TestApiServer>> started = TestApiServer::Start(kNamespace);
    ASSERT_TRUE(started.ok()) << started.status().ToString();
    server_ = std::move(started).value();
    ASSERT_TRUE(server_
                    ->CreateNode("gpu-a", "nvidia.com/gpu", 4,
                                 {{"nvidia.com/gpu.product", "NVIDIA-A100-SXM4-80GB"},
                                  {"nvidia.com/gpu.memory", "81920"}})
                    .ok());
  }

  size_t ObjectsInCluster() const {
    Result<kube::ListResult> list = server_->client().List(kAllocations, {});
    EXPECT_TRUE(list.ok()) << list.status().ToString();
    return list.ok() ? list->items.size() : 0;
  }

  std::unique_ptr<TestApiServer> server_;
};

TEST_F(KubeLedgerTest, AllocationCreatesAGpuAllocationAndReleaseEndsIt) {
  Replica replica(&server_->client(), "gpurm-0");
  replica.elector().Start();
  ASSERT_TRUE(testing::Eventually([&] { return replica.elector().IsLeader(); }));
  ASSERT_TRUE(replica.LoadInventory(4));

  AllocationResult result = replica.manager().Allocate(TwoA100s(), "alice", "key-1");
  ASSERT_TRUE(result.status.ok()) << result.status.ToString();
  const Allocation& allocation = *result.allocation;

  Result<json> object = server_->client().Get(kAllocations + "/" + allocation.id);
  ASSERT_TRUE(object.ok()) << object.status().ToString();
  EXPECT_EQ((*object)["kind"], "GpuAllocation");
  EXPECT_EQ((*object)["spec"]["owner"], "alice");
  EXPECT_EQ((*object)["spec"]["idempotencyKey"], "key-1");
  EXPECT_EQ((*object)["spec"]["request"]["gpuCount"], 2);
  ASSERT_EQ((*object)["spec"]["grants"].size(), 2u);
  EXPECT_EQ((*object)["spec"]["grants"][0]["nodeName"], "gpu-a");
  EXPECT_EQ((*object)["status"]["state"], "active");
  EXPECT_EQ((*object)["metadata"]["labels"]["gpurm.io/state"], "active");

  // The same idempotency key replays the allocation instead of a second one.
  AllocationResult replay = replica.manager().Allocate(TwoA100s(), "alice", "key-1");
  ASSERT_TRUE(replay.status.ok());
  EXPECT_TRUE(replay.replayed);
  EXPECT_EQ(replay.allocation->id, allocation.id);

  // Someone changes the object (kubectl label ...): the release still
  // applies, on top of that change.
  (*object)["metadata"]["labels"]["team"] = "vision";
  ASSERT_TRUE(server_->client().Replace(kAllocations + "/" + allocation.id, *object).ok());
  Result<Allocation> released = replica.manager().Release(allocation.id);
  ASSERT_TRUE(released.ok()) << released.status().ToString();
  EXPECT_EQ(released->state, AllocationState::kReleased);
  object = server_->client().Get(kAllocations + "/" + allocation.id);
  ASSERT_TRUE(object.ok());
  EXPECT_EQ((*object)["status"]["state"], "released");
  EXPECT_EQ((*object)["metadata"]["labels"]["team"], "vision");
  EXPECT_TRUE(replica.ledger().CheckIntegrity().ok());
}

TEST_F(KubeLedgerTest, ASecondReplicaDoesNotPlaceWhileTheFirstHoldsTheLease) {
  Replica first(&server_->client(), "gpurm-0");
  first.elector().Start();
  ASSERT_TRUE(testing::Eventually([&] { return first.elector().IsLeader(); }));
  Replica second(&server_->client(), "gpurm-1");
  second.elector().Start();
  ASSERT_TRUE(testing::Eventually([&] { return second.elector().leader() == "gpurm-0"; }));
  ASSERT_TRUE(second.LoadInventory(4));

  AllocationResult refused = second.manager().Allocate(TwoA100s(), "bob", "");
  EXPECT_EQ(refused.status.code(), StatusCode::kUnavailable) << refused.status.ToString();
  EXPECT_NE(refused.status.message().find("gpurm-0"), std::string::npos);
  EXPECT_FALSE(second.elector().IsLeader());
  EXPECT_EQ(ObjectsInCluster(), 0u);

  ASSERT_TRUE(first.LoadInventory(4));
  AllocationResult placed = first.manager().Allocate(TwoA100s(), "bob", "");
  ASSERT_TRUE(placed.status.ok()) << placed.status.ToString();
  // The follower's cache follows the leader's writes.
  EXPECT_TRUE(second.ledger().WaitUntil(
      [&](const std::vector<Allocation>& all) {
        return all.size() == 1 && all[0].id == placed.allocation->id;
      },
      testing::kPatience));
  EXPECT_EQ(first.elector().terms(), 1u);
  EXPECT_EQ(second.elector().terms(), 0u);
}

TEST_F(KubeLedgerTest, KillingTheLeaderHandsOverWithoutLosingOrDoublingAnAllocation) {
  auto first = std::make_unique<Replica>(&server_->client(), "gpurm-0");
  first->elector().Start();
  ASSERT_TRUE(testing::Eventually([&] { return first->elector().IsLeader(); }));
  Replica second(&server_->client(), "gpurm-1");
  second.elector().Start();
  ASSERT_TRUE(testing::Eventually([&] { return second.elector().leader() == "gpurm-0"; }));
  ASSERT_TRUE(first->LoadInventory(4));
  ASSERT_TRUE(second.LoadInventory(4));

  AllocationResult before = first->manager().Allocate(TwoA100s(), "carol", "job-1");
  ASSERT_TRUE(before.status.ok()) << before.status.ToString();

  // The leader dies without releasing the Lease (a crash, kill -9).
  first->elector().Abandon();
  first.reset();
  ASSERT_TRUE(testing::Eventually([&] { return second.elector().IsLeader(); }));
  EXPECT_EQ(second.elector().terms(), 1u);

  // A retry of the same request (same key) is the same allocation, not a second.
  AllocationResult retried = second.manager().Allocate(TwoA100s(), "carol", "job-1");
  ASSERT_TRUE(retried.status.ok()) << retried.status.ToString();
  EXPECT_TRUE(retried.replayed);
  EXPECT_EQ(retried.allocation->id, before.allocation->id);

  // A new request gets the other two GPUs, never the first allocation's.
  AllocationResult after = second.manager().Allocate(TwoA100s(), "dave", "");
  ASSERT_TRUE(after.status.ok()) << after.status.ToString();
  std::set<std::string> held;
  for (const GpuGrant& g : before.allocation->grants) held.insert(g.gpu_uuid);
  for (const GpuGrant& g : after.allocation->grants) {
    EXPECT_FALSE(held.contains(g.gpu_uuid)) << g.gpu_uuid << " granted twice";
  }
  // And nothing is left for a third.
  AllocationResult full = second.manager().Allocate(TwoA100s(), "erin", "");
  EXPECT_EQ(full.status.code(), StatusCode::kUnschedulableNow) << full.status.ToString();

  EXPECT_EQ(ObjectsInCluster(), 2u);
  EXPECT_EQ(second.ledger().List({}).size(), 2u);
  EXPECT_TRUE(second.ledger().CheckIntegrity().ok());
}

TEST_F(KubeLedgerTest, AStoppedLeaderReleasesTheLeaseAtOnce) {
  auto first = std::make_unique<Replica>(&server_->client(), "gpurm-0");
  first->elector().Start();
  ASSERT_TRUE(testing::Eventually([&] { return first->elector().IsLeader(); }));
  first.reset();  // A graceful stop (SIGTERM) releases the Lease.
  Result<json> lease =
      server_->client().Get("/apis/coordination.k8s.io/v1/namespaces/gpurm/leases/gpurm-leader");
  ASSERT_TRUE(lease.ok()) << lease.status().ToString();
  EXPECT_EQ((*lease)["spec"]["holderIdentity"], "");
  Replica second(&server_->client(), "gpurm-1");
  // A free Lease is taken in the first round, without waiting out its duration.
  ASSERT_TRUE(second.elector().TryAcquireOrRenew().ok());
  EXPECT_TRUE(second.elector().IsLeader());
  lease =
      server_->client().Get("/apis/coordination.k8s.io/v1/namespaces/gpurm/leases/gpurm-leader");
  ASSERT_TRUE(lease.ok());
  EXPECT_EQ((*lease)["spec"]["holderIdentity"], "gpurm-1");
  EXPECT_EQ((*lease)["spec"]["leaseTransitions"], 1);
}

TEST(KubeLedgerStartTest, AnUnreachableApiServerIsNotFatalButNothingIsPlaced) {
  kube::Connection nowhere;
  nowhere.server = "http://127.0.0.1:1";
  kube::KubeClient client(nowhere);
  KubernetesLedgerOptions options;
  options.namespace_name = kNamespace;
  options.retry_delay_s = 0.2;
  Result<std::unique_ptr<KubernetesLedger>> ledger = OpenKubernetesLedger(&client, options);
  ASSERT_TRUE(ledger.ok()) << ledger.status().ToString();
  Allocation allocation;
  allocation.id = "alloc-0000000000000001";
  allocation.grants = {{"gpu-a", 0, "k8s:gpu-a:nvidia.com/gpu:0", 81920, true}};
  const Status inserted = (*ledger)->Insert(allocation);
  EXPECT_EQ(inserted.code(), StatusCode::kUnavailable);
  EXPECT_NE(inserted.message().find("not loaded yet"), std::string::npos) << inserted.ToString();
  EXPECT_TRUE((*ledger)->List({}).empty());
}

}  // namespace
}  // namespace gpurm
