#include "manager/manager.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <thread>
#include <vector>

#include "ledger/sqlite_ledger.h"

namespace gpurm {
namespace {

// Serves a fixed set of nodes.
class FixedProvider final : public InventoryProvider {
 public:
  explicit FixedProvider(std::vector<Node> nodes) : nodes_(std::move(nodes)) {}
  std::string name() const override { return "fixed"; }
  Result<DiscoveryReport> Discover() override { return DiscoveryReport{nodes_, {}}; }

 private:
  std::vector<Node> nodes_;
};

std::vector<Node> TwoT4Nodes() {
  std::vector<Node> nodes;
  for (const char* name : {"a", "b"}) {
    Node node;
    node.name = name;
    for (int i = 0; i < 2; ++i) {
      Gpu gpu;
      gpu.index = i;
      gpu.uuid = std::string(name) + "-" + std::to_string(i);
      gpu.model = ParseGpuModel("Tesla T4");
      gpu.memory_total_mib = 16384;
      node.gpus.push_back(gpu);
    }
    nodes.push_back(node);
  }
  return nodes;
}

class ManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("gpurm-manager-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    auto ledger = OpenSqliteLedger((dir_ / "ledger.db").string());
    ASSERT_TRUE(ledger.ok()) << ledger.status().ToString();
    ledger_ = std::move(*ledger);
    inventory_ =
        std::make_unique<Inventory>(std::make_unique<FixedProvider>(TwoT4Nodes()), &clock_, 10);
    manager_ = std::make_unique<GpuManager>(inventory_.get(), ledger_.get(), &clock_, "binpack");
  }
  void TearDown() override {
    manager_.reset();
    ledger_.reset();
    std::filesystem::remove_all(dir_);
  }

  GpuRequest T4(int count, bool shared = false, double memory_gb = 0) {
    GpuRequest request;
    request.gpu_count = count;
    request.gpu_type = "T4";
    request.shared = shared;
    request.memory_gb = memory_gb;
    return request;
  }

  std::filesystem::path dir_;
  FakeClock clock_;
  std::unique_ptr<Ledger> ledger_;
  std::unique_ptr<Inventory> inventory_;
  std::unique_ptr<GpuManager> manager_;
};

TEST_F(ManagerTest, NotReadyUntilTheInventoryIsLoaded) {
  const Status before = manager_->Readiness();
  EXPECT_EQ(before.code(), StatusCode::kUnavailable);
  EXPECT_EQ(manager_->Allocate(T4(1), "me", "").status.code(), StatusCode::kUnavailable);
  ASSERT_TRUE(inventory_->Refresh().ok());
  EXPECT_TRUE(manager_->Readiness().ok());
}

TEST_F(ManagerTest, AllocateReleaseAndReuse) {
  ASSERT_TRUE(inventory_->Refresh().ok());
  AllocationResult first = manager_->Allocate(T4(2), "me", "");
  ASSERT_TRUE(first.status.ok()) << first.status.ToString();
  AllocationResult second = manager_->Allocate(T4(2), "me", "");
  ASSERT_TRUE(second.status.ok());
  EXPECT_NE(first.allocation->NodeNames(), second.allocation->NodeNames());
  AllocationResult third = manager_->Allocate(T4(1), "me", "");
  EXPECT_EQ(third.status.code(), StatusCode::kUnschedulableNow);
  EXPECT_FALSE(third.diagnosis.reasons.empty());
  ASSERT_TRUE(manager_->Release(first.allocation->id).ok());
  EXPECT_TRUE(manager_->Allocate(T4(1), "me", "").status.ok());
}

TEST_F(ManagerTest, IdempotencyKeyReturnsTheSameAllocation) {
  ASSERT_TRUE(inventory_->Refresh().ok());
  AllocationResult first = manager_->Allocate(T4(1), "me", "job-42");
  AllocationResult retry = manager_->Allocate(T4(1), "me", "job-42");
  ASSERT_TRUE(retry.status.ok());
  EXPECT_TRUE(retry.replayed);
  EXPECT_EQ(retry.allocation->id, first.allocation->id);
  EXPECT_EQ(ledger_->List(AllocationFilter{}).size(), 1u);
  // Another owner's key is another namespace.
  AllocationResult other = manager_->Allocate(T4(1), "you", "job-42");
  EXPECT_FALSE(other.replayed);
  EXPECT_NE(other.allocation->id, first.allocation->id);
}

TEST_F(ManagerTest, LeasesExpireUnlessRenewed) {
  ASSERT_TRUE(inventory_->Refresh().ok());
  GpuRequest request = T4(1);
  request.lease_ttl_s = 10;
  AllocationResult kept = manager_->Allocate(request, "me", "");
  AllocationResult dropped = manager_->Allocate(request, "me", "");
  clock_.AdvanceMs(6000);
  ASSERT_TRUE(manager_->Heartbeat(kept.allocation->id).ok());
  clock_.AdvanceMs(6000);
  std::vector<Allocation> reaped = manager_->ReapExpiredLeases();
  ASSERT_EQ(reaped.size(), 1u);
  EXPECT_EQ(reaped[0].id, dropped.allocation->id);
  EXPECT_EQ(ledger_->Get(dropped.allocation->id)->state, AllocationState::kExpired);
  EXPECT_EQ(ledger_->Get(kept.allocation->id)->state, AllocationState::kActive);
  // A heartbeat after expiry is refused and ends the allocation.
  clock_.AdvanceMs(20000);
  EXPECT_EQ(manager_->Heartbeat(kept.allocation->id).status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(ledger_->Get(kept.allocation->id)->state, AllocationState::kExpired);
}

TEST_F(ManagerTest, ReleaseOnNodeTakesTheOwnersNewestMatchingAllocation) {
  ASSERT_TRUE(inventory_->Refresh().ok());
  GpuRequest on_a = T4(1);
  on_a.node_name = "a";
  AllocationResult older = manager_->Allocate(on_a, "me", "");
  clock_.AdvanceMs(1);
  AllocationResult newer = manager_->Allocate(on_a, "me", "");
  EXPECT_EQ(manager_->ReleaseOnNode("you", "a", 1).status().code(), StatusCode::kNotFound);
  Result<Allocation> released = manager_->ReleaseOnNode("me", "a", 1);
  ASSERT_TRUE(released.ok());
  EXPECT_EQ(released->id, newer.allocation->id);
  EXPECT_EQ(ledger_->Get(older.allocation->id)->state, AllocationState::kActive);
}

// Many threads allocating and releasing at once never hold more GPUs, or
// more shared memory, than exist. The invariant is checked on the ledger
// after every successful allocation.
TEST_F(ManagerTest, ConcurrentClientsNeverOverAllocate) {
  ASSERT_TRUE(inventory_->Refresh().ok());
  std::atomic<int> violations{0};
  std::atomic<int> granted{0};
  auto check_invariant = [&] {
    std::map<std::string, int> exclusive;
    std::map<std::string, int64_t> shared_mib;
    for (const GpuGrant& grant : ledger_->ActiveGrants()) {
      if (grant.exclusive) {
        ++exclusive[grant.gpu_uuid];
      } else {
        shared_mib[grant.gpu_uuid] += grant.memory_mib;
      }
    }
    for (const auto& [uuid, count] : exclusive) {
      if (count > 1 || shared_mib.count(uuid)) ++violations;
    }
    for (const auto& [uuid, mib] : shared_mib) {
      if (mib > 16384) ++violations;
    }
  };
  std::vector<std::thread> clients;
  for (int c = 0; c < 16; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; i < 25; ++i) {
        const bool shared = (c + i) % 3 == 0;
        AllocationResult result = manager_->Allocate(
            T4(1 + (i % 2) * !shared, shared, shared ? 6 : 0), "client-" + std::to_string(c), "");
        if (!result.status.ok()) continue;
        ++granted;
        check_invariant();
        ASSERT_TRUE(manager_->Release(result.allocation->id).ok());
      }
    });
  }
  for (std::thread& t : clients) t.join();
  EXPECT_EQ(violations.load(), 0);
  EXPECT_GT(granted.load(), 0);
  EXPECT_TRUE(ledger_->CheckIntegrity().ok());
}

}  // namespace
}  // namespace gpurm
