#include "manager/manager.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "ledger/memory_ledger.h"
#include "ledger/sqlite_ledger.h"
#include "support/eventually.h"

namespace gpurm {
namespace {

// Serves a fixed set of nodes.
class FixedProvider final : public InventoryProvider {
 public:
  explicit FixedProvider(std::vector<Node> nodes) : nodes_(std::move(nodes)) {}
  std::string name() const override { return "fixed"; }
  Result<DiscoveryReport> Discover() override {
    DiscoveryReport report;
    report.nodes = nodes_;
    return report;
  }

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

// The manager on the in-memory ledger: what these tests check does not
// depend on storage (GroupCommitTest below uses SQLite for that).
class ManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ledger_ = NewMemoryLedger();
    inventory_ =
        std::make_unique<Inventory>(std::make_unique<FixedProvider>(TwoT4Nodes()), &clock_, 10);
    manager_ = std::make_unique<GpuManager>(inventory_.get(), ledger_.get(), &clock_, "binpack");
  }
  void TearDown() override {
    manager_.reset();
    ledger_.reset();
  }

  GpuRequest T4(int count, bool shared = false, double memory_gb = 0) {
    GpuRequest request;
    request.gpu_count = count;
    request.gpu_type = "T4";
    request.shared = shared;
    request.memory_gb = memory_gb;
    return request;
  }

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

// A retry after the allocation ended must not hand out GPUs that may be
// someone else's by now (the stale key of a released grant).
TEST_F(ManagerTest, IdempotencyKeyOfAnEndedAllocationIsRefused) {
  ASSERT_TRUE(inventory_->Refresh().ok());
  AllocationResult first = manager_->Allocate(T4(2), "alice", "job-1");
  ASSERT_TRUE(first.status.ok()) << first.status.ToString();
  ASSERT_TRUE(manager_->Release(first.allocation->id).ok());
  AllocationResult taken = manager_->Allocate(T4(2), "bob", "");
  ASSERT_TRUE(taken.status.ok());
  AllocationResult retry = manager_->Allocate(T4(2), "alice", "job-1");
  EXPECT_EQ(retry.status.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(retry.status.field(), kIdempotencyKeyField);
  EXPECT_NE(retry.status.message().find("released"), std::string::npos) << retry.status.message();
  EXPECT_FALSE(retry.allocation.has_value());
  EXPECT_FALSE(retry.replayed);
}

// The same key with another request (another GPU count, or other wait
// options) is refused instead of answered with the earlier allocation; the
// same request still replays.
TEST_F(ManagerTest, IdempotencyKeyWithAnotherRequestIsRefused) {
  ASSERT_TRUE(inventory_->Refresh().ok());
  AllocationResult first = manager_->Allocate(T4(2), "me", "job-17");
  ASSERT_TRUE(first.status.ok());
  AllocationResult other_count = manager_->Allocate(T4(1), "me", "job-17");
  EXPECT_EQ(other_count.status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(other_count.status.field(), kIdempotencyKeyField);
  EXPECT_FALSE(other_count.allocation.has_value());
  AllocationResult other_wait = manager_->Allocate(T4(2), "me", "job-17", {true, 60, 0});
  EXPECT_EQ(other_wait.status.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(manager_->Allocate(T4(2), "me", "job-17").replayed);
  // A waiting entry's key is held to its request too.
  ASSERT_TRUE(manager_->Allocate(T4(2), "me", "").status.ok());
  AllocationResult waiting = manager_->Allocate(T4(1), "me", "wait-1", {true, 60, 0});
  ASSERT_TRUE(waiting.queued.has_value());
  EXPECT_EQ(manager_->Allocate(T4(2), "me", "wait-1", {true, 60, 0}).status.code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(manager_->Allocate(T4(1), "me", "wait-1", {true, 60, 0}).replayed);
}

TEST(RequestDigestTest, SameRequestSameDigestAnyFieldChangesIt) {
  GpuRequest request;
  request.gpu_type = "A100";
  const std::string digest = RequestDigest(request, {});
  EXPECT_EQ(digest, RequestDigest(request, {}));
  EXPECT_EQ(digest.rfind("fnv1a64:", 0), 0u);
  GpuRequest more_memory = request;
  more_memory.memory_gb = 1;
  EXPECT_NE(RequestDigest(more_memory, {}), digest);
  // Text fields are length-prefixed: moving a character between two of
  // them is another request.
  GpuRequest a = request;
  a.gpu_type = "A";
  a.node_name = "100";
  GpuRequest b = request;
  b.gpu_type = "A1";
  b.node_name = "00";
  EXPECT_NE(RequestDigest(a, {}), RequestDigest(b, {}));
  EXPECT_NE(RequestDigest(request, {true, 300, 0}), digest);
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

// The server's lease applies to every client: a request naming none gets
// the default (and expires with it), one asking for more than the maximum
// is refused naming the field, and nothing is held for it.
TEST_F(ManagerTest, ServerLeaseDefaultAndMaximumApplyToEveryRequest) {
  ASSERT_TRUE(inventory_->Refresh().ok());
  manager_->set_lease_limits(300, 3600);
  AllocationResult defaulted = manager_->Allocate(T4(1), "me", "");
  ASSERT_TRUE(defaulted.status.ok()) << defaulted.status.message();
  EXPECT_EQ(defaulted.allocation->request.lease_ttl_s, 300);
  EXPECT_EQ(defaulted.allocation->lease_expires_unix_ms,
            defaulted.allocation->created_unix_ms + 300'000);

  GpuRequest too_long = T4(1);
  too_long.lease_ttl_s = 3601;
  AllocationResult refused = manager_->Allocate(too_long, "me", "");
  EXPECT_EQ(refused.status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(refused.status.field(), "lease_ttl_seconds");
  EXPECT_FALSE(refused.allocation.has_value());

  GpuRequest own = T4(1);
  own.lease_ttl_s = 60;
  EXPECT_EQ(manager_->Allocate(own, "me", "").allocation->request.lease_ttl_s, 60);

  clock_.AdvanceMs(301'000);
  const std::vector<Allocation> reaped = manager_->ReapExpiredLeases();
  EXPECT_EQ(reaped.size(), 2u);  // The defaulted one and the 60 s one.
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

// The per-owner cap counts active allocations and waiting queue entries;
// other owners and idempotent replays are not affected.
TEST_F(ManagerTest, OwnerCapCountsActiveAndQueuedAllocations) {
  ASSERT_TRUE(inventory_->Refresh().ok());
  manager_->set_max_allocations_per_owner(2);
  ASSERT_TRUE(manager_->Allocate(T4(2), "you", "").status.ok());
  ASSERT_TRUE(manager_->Allocate(T4(1), "you", "").status.ok());
  AllocationResult first = manager_->Allocate(T4(1), "me", "key-1");
  ASSERT_TRUE(first.status.ok());
  WaitOptions wait;
  wait.wait = true;
  AllocationResult second = manager_->Allocate(T4(1), "me", "", wait);  // Nothing free: waits.
  ASSERT_TRUE(second.status.ok());
  ASSERT_TRUE(second.queued.has_value());
  AllocationResult third = manager_->Allocate(T4(1), "me", "", wait);
  EXPECT_EQ(third.status.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(third.status.field(), kOwnerCapField);
  EXPECT_TRUE(manager_->Allocate(T4(1), "me", "key-1").replayed);
  EXPECT_EQ(manager_->Allocate(T4(1), "other", "").status.code(), StatusCode::kUnschedulableNow);
  ASSERT_TRUE(manager_->CancelQueued(second.queued->id).ok());
  EXPECT_TRUE(manager_->Allocate(T4(1), "me", "", wait).queued.has_value());
}

// Many threads of one owner racing for allocations never hold more than the
// cap at once: the check and the grant happen under the same lock.
TEST_F(ManagerTest, ConcurrentRequestsOfOneOwnerNeverExceedTheCap) {
  ASSERT_TRUE(inventory_->Refresh().ok());
  manager_->set_max_allocations_per_owner(3);
  std::atomic<int> granted{0};
  std::atomic<int> refused{0};
  std::vector<std::thread> clients;
  clients.reserve(8);
  for (int c = 0; c < 8; ++c) {
    clients.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        AllocationResult result = manager_->Allocate(T4(1, true, 1), "me", "");
        if (result.status.code() == StatusCode::kResourceExhausted) ++refused;
        if (result.status.ok()) ++granted;
      }
    });
  }
  for (std::thread& t : clients) t.join();
  AllocationFilter filter;
  filter.owner = "me";
  EXPECT_EQ(ledger_->List(filter).size(), 3u);
  EXPECT_EQ(granted.load(), 3);
  EXPECT_EQ(refused.load(), 77);
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
  clients.reserve(16);
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

// The queue: waiting requests are granted when GPUs free up, highest
// priority first, FIFO within a priority.
TEST_F(ManagerTest, QueuedRequestIsGrantedWhenGpusFreeUp) {
  ASSERT_TRUE(inventory_->Refresh().ok());
  AllocationResult a = manager_->Allocate(T4(2), "me", "");
  AllocationResult b = manager_->Allocate(T4(2), "me", "");
  ASSERT_TRUE(a.allocation && b.allocation);
  WaitOptions wait{true, 60, 0};
  AllocationResult waiting = manager_->Allocate(T4(2), "you", "", wait);
  ASSERT_TRUE(waiting.status.ok()) << waiting.status.ToString();
  ASSERT_TRUE(waiting.queued);
  EXPECT_FALSE(waiting.allocation);
  EXPECT_EQ(waiting.queue_position, 1u);
  EXPECT_EQ(waiting.queued->state, QueueState::kWaiting);
  // Never-fitting requests are refused, not queued.
  EXPECT_EQ(manager_->Allocate(T4(3), "you", "", wait).status.code(),
            StatusCode::kUnschedulableNever);
  ASSERT_TRUE(manager_->Release(a.allocation->id).ok());
  Result<std::pair<QueueEntry, size_t>> entry = manager_->QueueEntryById(waiting.queued->id);
  ASSERT_TRUE(entry.ok());
  EXPECT_EQ(entry->first.state, QueueState::kGranted);
  ASSERT_TRUE(entry->first.allocation);
  EXPECT_EQ(entry->first.allocation->NodeNames(), a.allocation->NodeNames());
  EXPECT_EQ(ledger_->Get(entry->first.allocation->id)->owner, "you");
  EXPECT_EQ(entry->second, 0u);
}

TEST_F(ManagerTest, QueueServesPriorityThenArrivalOrder) {
  ASSERT_TRUE(inventory_->Refresh().ok());
  AllocationResult a = manager_->Allocate(T4(2), "me", "");
  AllocationResult b = manager_->Allocate(T4(2), "me", "");
  AllocationResult low1 = manager_->Allocate(T4(2), "x", "", {true, 60, 0});
  AllocationResult high = manager_->Allocate(T4(2), "y", "", {true, 60, 5});
  AllocationResult low2 = manager_->Allocate(T4(2), "z", "", {true, 60, 0});
  std::vector<QueueEntry> queue = manager_->Queue(false);
  ASSERT_EQ(queue.size(), 3u);
  EXPECT_EQ(queue[0].id, high.queued->id);
  EXPECT_EQ(queue[1].id, low1.queued->id);
  EXPECT_EQ(queue[2].id, low2.queued->id);
  ASSERT_TRUE(manager_->Release(a.allocation->id).ok());
  EXPECT_EQ(manager_->QueueEntryById(high.queued->id)->first.state, QueueState::kGranted);
  EXPECT_EQ(manager_->QueueEntryById(low1.queued->id)->second, 1u);
  ASSERT_TRUE(manager_->Release(b.allocation->id).ok());
  EXPECT_EQ(manager_->QueueEntryById(low1.queued->id)->first.state, QueueState::kGranted);
  EXPECT_EQ(manager_->QueueEntryById(low2.queued->id)->first.state, QueueState::kWaiting);
}

// The hold for the queue's head is bounded (set_queue_head_hold_ms): once it
// ran out, requests of no higher priority may use those GPUs again; the
// head still waits and is granted when GPUs free up.
TEST_F(ManagerTest, TheHeadsHoldRunsOutAfterTheBound) {
  ASSERT_TRUE(inventory_->Refresh().ok());
  manager_->set_queue_head_hold_ms(60'000);
  AllocationResult one_on_a = manager_->Allocate(T4(1), "me", "");
  AllocationResult both_on_b = manager_->Allocate(T4(2), "me", "");
  ASSERT_TRUE(one_on_a.allocation && both_on_b.allocation);
  AllocationResult head = manager_->Allocate(T4(2), "head", "", {true, 600, 0});
  ASSERT_TRUE(head.queued);
  EXPECT_EQ(manager_->Allocate(T4(1), "small", "").status.code(), StatusCode::kUnschedulableNow);
  clock_.AdvanceMs(60'000);
  AllocationResult after = manager_->Allocate(T4(1), "small", "");
  ASSERT_TRUE(after.allocation) << after.status.ToString();
  EXPECT_EQ(manager_->QueueEntryById(head.queued->id)->first.state, QueueState::kWaiting);
  ASSERT_TRUE(manager_->Release(both_on_b.allocation->id).ok());
  EXPECT_EQ(manager_->QueueEntryById(head.queued->id)->first.state, QueueState::kGranted);
}

// One owner cannot fill the queue: beyond set_max_queued_per_owner its
// requests are refused, others still queue.
TEST_F(ManagerTest, QueuedEntriesPerOwnerAreCapped) {
  ASSERT_TRUE(inventory_->Refresh().ok());
  manager_->set_max_queued_per_owner(2);
  ASSERT_TRUE(manager_->Allocate(T4(2), "me", "").allocation);
  ASSERT_TRUE(manager_->Allocate(T4(2), "me", "").allocation);
  const WaitOptions wait{true, 60, 0};
  ASSERT_TRUE(manager_->Allocate(T4(1), "flood", "", wait).queued);
  ASSERT_TRUE(manager_->Allocate(T4(1), "flood", "", wait).queued);
  AllocationResult third = manager_->Allocate(T4(1), "flood", "", wait);
  EXPECT_EQ(third.status.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(third.status.field(), kQueuedCapField);
  EXPECT_TRUE(manager_->Allocate(T4(1), "other", "", wait).queued);
}

// Queued GPU-hours (gpu_count x wait timeout) per owner are capped too.
TEST_F(ManagerTest, QueuedGpuHoursPerOwnerAreCapped) {
  ASSERT_TRUE(inventory_->Refresh().ok());
  manager_->set_max_queued_gpu_hours_per_owner(3);
  ASSERT_TRUE(manager_->Allocate(T4(2), "me", "").allocation);
  ASSERT_TRUE(manager_->Allocate(T4(2), "me", "").allocation);
  ASSERT_TRUE(manager_->Allocate(T4(2), "flood", "", {true, 3600, 0}).queued);  // 2 GPU-hours.
  AllocationResult more = manager_->Allocate(T4(2), "flood", "", {true, 3600, 0});
  EXPECT_EQ(more.status.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(more.status.field(), kQueuedGpuHoursCapField);
  EXPECT_TRUE(manager_->Allocate(T4(1), "flood", "", {true, 3600, 0}).queued);  // 3 in all.
  EXPECT_TRUE(manager_->Allocate(T4(2), "other", "", {true, 3600, 0}).queued);
}

// A slice below set_min_slice_mib is refused by Allocate and Preview alike.
TEST_F(ManagerTest, SlicesBelowTheMinimumAreRefused) {
  ASSERT_TRUE(inventory_->Refresh().ok());
  manager_->set_min_slice_mib(256);
  const GpuRequest tiny = T4(1, /*shared=*/true, 1e-9);
  EXPECT_EQ(manager_->Allocate(tiny, "me", "").status.field(), "memory_gb");
  EXPECT_EQ(manager_->Preview(tiny).status.field(), "memory_gb");
  EXPECT_TRUE(manager_->Allocate(T4(1, true, 0.25), "me", "").allocation);
}

// A small request may not take the GPUs the queue's head waits for (it
// would delay the head), but may use GPUs the head cannot use.
TEST_F(ManagerTest, BackfillDoesNotDelayTheHead) {
  ASSERT_TRUE(inventory_->Refresh().ok());
  AllocationResult one_on_a = manager_->Allocate(T4(1), "me", "");
  AllocationResult both_on_b = manager_->Allocate(T4(2), "me", "");
  ASSERT_TRUE(one_on_a.allocation && both_on_b.allocation);
  // The head needs a whole node: it waits for a's other GPU.
  AllocationResult head = manager_->Allocate(T4(2), "head", "", {true, 60, 0});
  ASSERT_TRUE(head.queued);
  // A 1-GPU request would fit on a's free GPU, which is held for the head.
  AllocationResult small = manager_->Allocate(T4(1), "small", "");
  EXPECT_EQ(small.status.code(), StatusCode::kUnschedulableNow);
  EXPECT_NE(small.status.message().find("held for the 1 queued"), std::string::npos)
      << small.status.message();
  // A higher priority goes ahead of the head.
  AllocationResult urgent = manager_->Allocate(T4(1), "urgent", "", {false, 60, 10});
  ASSERT_TRUE(urgent.allocation) << urgent.status.ToString();
  // Once a's GPUs are free, the head gets node a.
  ASSERT_TRUE(manager_->Release(urgent.allocation->id).ok());
  EXPECT_EQ(manager_->QueueEntryById(head.queued->id)->first.state, QueueState::kWaiting);
  ASSERT_TRUE(manager_->Release(one_on_a.allocation->id).ok());
  const QueueEntry granted = manager_->QueueEntryById(head.queued->id)->first;
  ASSERT_EQ(granted.state, QueueState::kGranted);
  EXPECT_EQ(granted.allocation->NodeNames(), std::vector<std::string>{"a"});
}

TEST_F(ManagerTest, WaitingRequestsExpireOrAreCancelled) {
  ASSERT_TRUE(inventory_->Refresh().ok());
  AllocationResult a = manager_->Allocate(T4(2), "me", "");
  AllocationResult b = manager_->Allocate(T4(2), "me", "");
  AllocationResult timed = manager_->Allocate(T4(1), "x", "", {true, 5, 0});
  AllocationResult cancelled = manager_->Allocate(T4(1), "y", "key-1", {true, 60, 0});
  ASSERT_TRUE(timed.queued && cancelled.queued);
  // Retrying with the same key returns the same waiting entry.
  AllocationResult retry = manager_->Allocate(T4(1), "y", "key-1", {true, 60, 0});
  ASSERT_TRUE(retry.queued);
  EXPECT_TRUE(retry.replayed);
  EXPECT_EQ(retry.queued->id, cancelled.queued->id);
  EXPECT_EQ(manager_->Queue(false).size(), 2u);
  clock_.AdvanceMs(6000);
  manager_->ReapExpiredLeases();
  EXPECT_EQ(manager_->QueueEntryById(timed.queued->id)->first.state, QueueState::kExpired);
  Result<QueueEntry> gone = manager_->CancelQueued(cancelled.queued->id);
  ASSERT_TRUE(gone.ok());
  EXPECT_EQ(gone->state, QueueState::kCancelled);
  EXPECT_EQ(manager_->Queue(false).size(), 0u);
  EXPECT_EQ(manager_->Queue(true).size(), 2u);
  EXPECT_EQ(manager_->CancelQueued("queue-nope").status().code(), StatusCode::kNotFound);
  // Nothing was granted to them when GPUs came back.
  ASSERT_TRUE(manager_->Release(a.allocation->id).ok());
  EXPECT_EQ(ledger_->List(AllocationFilter{}).size(), 1u);
  EXPECT_EQ(manager_->Allocate(T4(1), "x", "", {true, 0, 0}).status.field(),
            "wait_timeout_seconds");
  EXPECT_EQ(manager_->Allocate(T4(1), "x", "", {false, 60, 5000}).status.field(), "priority");
}

// The incremental free state always equals one rebuilt from the ledger.
TEST_F(ManagerTest, IncrementalStateMatchesTheLedger) {
  ASSERT_TRUE(inventory_->Refresh().ok());
  std::vector<std::string> held;
  for (int i = 0; i < 40; ++i) {
    if (i % 3 == 2 && !held.empty()) {
      ASSERT_TRUE(manager_->Release(held[static_cast<size_t>(i) % held.size()]).ok());
    } else {
      GpuRequest request = i % 2 ? T4(1) : T4(1, true, 3);
      if (i % 5 == 0) request.gpu_milli = 250;
      request.policy = PolicyNames()[static_cast<size_t>(i) % PolicyNames().size()];
      AllocationResult result = manager_->Allocate(request, "me", "", {i % 4 == 0, 60, 0});
      if (result.allocation) held.push_back(result.allocation->id);
    }
    std::shared_ptr<const ClusterState> incremental = *manager_->CurrentState();
    ClusterState rebuilt(incremental->snapshot_ptr(), ledger_->ActiveGrants());
    for (size_t n = 0; n < rebuilt.nodes().size(); ++n) {
      for (size_t g = 0; g < rebuilt.nodes()[n].gpus.size(); ++g) {
        const GpuAvailability& x = incremental->nodes()[n].gpus[g];
        const GpuAvailability& y = rebuilt.nodes()[n].gpus[g];
        ASSERT_EQ(x.free_mib, y.free_mib) << i;
        ASSERT_EQ(x.exclusively_held, y.exclusively_held) << i;
        ASSERT_EQ(x.shared_milli, y.shared_milli) << i;
      }
    }
  }
}

// Group commit. GatedLedger forwards to a real ledger and counts Apply calls
// (commits). While the gate is closed an Apply waits in it, so requests made
// meanwhile pile up behind that batch; while failing, Apply fails every
// change as a failed commit does, recording nothing.
class GatedLedger final : public LedgerWrapper {
 public:
  using LedgerWrapper::LedgerWrapper;

  std::vector<Result<Allocation>> Apply(const std::vector<LedgerChange>& changes) override {
    std::unique_lock<std::mutex> lock(mutex_);
    ++entered_;
    changed_.notify_all();
    changed_.wait(lock, [&] { return open_; });
    ++commits_;
    changes_ += changes.size();
    if (failing_) {
      return std::vector<Result<Allocation>>(changes.size(), Unavailable("injected I/O error"));
    }
    lock.unlock();
    return target()->Apply(changes);
  }

  void SetOpen(bool open) {
    std::lock_guard<std::mutex> lock(mutex_);
    open_ = open;
    changed_.notify_all();
  }
  void SetFailing(bool failing) {
    std::lock_guard<std::mutex> lock(mutex_);
    failing_ = failing;
  }
  // Waits until `n` Apply calls have entered the gate.
  void AwaitEntered(int n) {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] { return entered_ >= n; });
  }
  int commits() {
    std::lock_guard<std::mutex> lock(mutex_);
    return commits_;
  }
  size_t changes() {
    std::lock_guard<std::mutex> lock(mutex_);
    return changes_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool open_ = true;
  bool failing_ = false;
  int entered_ = 0;
  int commits_ = 0;
  size_t changes_ = 0;
};

class GroupCommitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("gpurm-group-commit-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    OpenLedger();
    std::vector<Node> nodes = TwoT4Nodes();
    for (int n = 0; n < 16; ++n) {  // 36 T4s in all.
      Node& node = nodes.emplace_back(nodes.front());
      node.name = "n" + std::to_string(n);
      for (Gpu& gpu : node.gpus) gpu.uuid = node.name + "-" + std::to_string(gpu.index);
    }
    inventory_ = std::make_unique<Inventory>(std::make_unique<FixedProvider>(nodes), &clock_, 10);
    ASSERT_TRUE(inventory_->Refresh().ok());
    manager_ = std::make_unique<GpuManager>(inventory_.get(), gated_.get(), &clock_, "binpack");
  }
  void TearDown() override {
    manager_.reset();
    gated_.reset();
    ledger_.reset();
    std::filesystem::remove_all(dir_);
  }
  void OpenLedger() {
    auto ledger = OpenSqliteLedger((dir_ / "ledger.db").string());
    ASSERT_TRUE(ledger.ok()) << ledger.status().ToString();
    ledger_ = std::move(*ledger);
    gated_ = std::make_unique<GatedLedger>(ledger_.get());
  }
  // Stops the manager and reopens the ledger from disk, as after a restart.
  void Reopen() {
    manager_.reset();
    gated_.reset();
    ledger_.reset();
    OpenLedger();
  }
  // GPUs held in the manager's free state, committed or not.
  int HeldGpus() {
    int held = 0;
    // Held in a local: a temporary in the loop's range expression would be
    // gone (and the state with it, once the manager moved on) before the body.
    const std::shared_ptr<const ClusterState> state = *manager_->CurrentState();
    for (const NodeAvailability& node : state->nodes()) {
      for (const GpuAvailability& gpu : node.gpus) held += gpu.exclusively_held ? 1 : 0;
    }
    return held;
  }
  // Waits until the free state holds `n` GPUs: every request made so far has
  // been placed and staged.
  void AwaitHeld(int n) {
    ASSERT_TRUE(testing::Eventually([&] { return HeldGpus() == n; }))
        << "held " << HeldGpus() << " GPUs, expected " << n;
  }
  GpuRequest OneT4() {
    GpuRequest request;
    request.gpu_count = 1;
    request.gpu_type = "T4";
    return request;
  }

  std::filesystem::path dir_;
  FakeClock clock_;
  std::unique_ptr<Ledger> ledger_;
  std::unique_ptr<GatedLedger> gated_;
  std::unique_ptr<Inventory> inventory_;
  std::unique_ptr<GpuManager> manager_;
};

// Requests made while a commit is in flight are recorded together by the
// next one: 32 allocations, 2 commits; each is answered only after its
// commit, and every acknowledged allocation is in the ledger after reopening.
TEST_F(GroupCommitTest, ConcurrentAllocationsShareACommitAndSurviveReopening) {
  gated_->SetOpen(false);
  std::vector<AllocationResult> results(32);
  std::vector<std::thread> clients;
  clients.emplace_back([&] { results[0] = manager_->Allocate(OneT4(), "me", ""); });
  gated_->AwaitEntered(1);
  for (size_t c = 1; c < results.size(); ++c) {
    clients.emplace_back([&, c] { results[c] = manager_->Allocate(OneT4(), "me", ""); });
  }
  AwaitHeld(32);
  EXPECT_TRUE(gated_->List({}).empty());  // Nothing is answered or readable yet.
  gated_->SetOpen(true);
  for (std::thread& client : clients) client.join();
  EXPECT_EQ(gated_->commits(), 2);
  EXPECT_EQ(gated_->changes(), 32u);
  std::vector<std::string> acknowledged;
  for (const AllocationResult& result : results) {
    ASSERT_TRUE(result.status.ok()) << result.status.ToString();
    acknowledged.push_back(result.allocation->id);
  }
  Reopen();
  std::vector<std::string> stored;
  for (const Allocation& allocation : ledger_->List({})) stored.push_back(allocation.id);
  std::sort(stored.begin(), stored.end());
  std::sort(acknowledged.begin(), acknowledged.end());
  EXPECT_EQ(stored, acknowledged);
  EXPECT_TRUE(ledger_->CheckIntegrity().ok());
}

// A failed commit fails every request of its batch with the ledger's error
// and undoes each one's reservation: the free state, the ledger and the
// idempotency keys are as before, and later requests get the same GPUs.
TEST_F(GroupCommitTest, FailedCommitFailsAndUndoesEveryRequestOfTheBatch) {
  AllocationResult before = manager_->Allocate(OneT4(), "me", "before");
  ASSERT_TRUE(before.status.ok());
  gated_->SetOpen(false);
  gated_->SetFailing(true);
  std::vector<AllocationResult> results(8);
  std::vector<std::thread> clients;
  clients.emplace_back([&] { results[0] = manager_->Allocate(OneT4(), "me", "k0"); });
  gated_->AwaitEntered(2);
  for (size_t c = 1; c < results.size(); ++c) {
    clients.emplace_back(
        [&, c] { results[c] = manager_->Allocate(OneT4(), "me", "k" + std::to_string(c)); });
  }
  AwaitHeld(9);
  gated_->SetOpen(true);
  for (std::thread& client : clients) client.join();
  for (const AllocationResult& result : results) {
    EXPECT_EQ(result.status.code(), StatusCode::kUnavailable);
    EXPECT_FALSE(result.allocation.has_value());
  }
  EXPECT_EQ(HeldGpus(), 1);
  EXPECT_EQ(gated_->List({}).size(), 1u);

  gated_->SetFailing(false);
  AllocationResult retried = manager_->Allocate(OneT4(), "me", "k0");
  ASSERT_TRUE(retried.status.ok());
  EXPECT_FALSE(retried.replayed);
  EXPECT_TRUE(manager_->Allocate(OneT4(), "me", "before").replayed);
  EXPECT_EQ(HeldGpus(), 2);
  Reopen();
  EXPECT_EQ(ledger_->List({}).size(), 2u);
  EXPECT_TRUE(ledger_->CheckIntegrity().ok());
}

// A release's GPUs are free only once the release is committed; a failed
// release leaves the allocation active and its GPUs held.
TEST_F(GroupCommitTest, FailedReleaseKeepsTheAllocation) {
  AllocationResult held = manager_->Allocate(OneT4(), "me", "");
  ASSERT_TRUE(held.status.ok());
  gated_->SetFailing(true);
  EXPECT_EQ(manager_->Release(held.allocation->id).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(HeldGpus(), 1);
  EXPECT_EQ(gated_->Get(held.allocation->id)->state, AllocationState::kActive);
  gated_->SetFailing(false);
  ASSERT_TRUE(manager_->Release(held.allocation->id).ok());
  EXPECT_EQ(HeldGpus(), 0);
}

// A request whose idempotency key is being recorded waits for that commit
// and gets the same allocation.
TEST_F(GroupCommitTest, SameKeyWhileCommittingReplaysTheFirst) {
  gated_->SetOpen(false);
  AllocationResult first;
  AllocationResult second;
  std::thread a([&] { first = manager_->Allocate(OneT4(), "me", "key"); });
  gated_->AwaitEntered(1);
  std::thread b([&] { second = manager_->Allocate(OneT4(), "me", "key"); });
  gated_->SetOpen(true);
  a.join();
  b.join();
  ASSERT_TRUE(first.status.ok());
  ASSERT_TRUE(second.status.ok());
  ASSERT_TRUE(second.allocation.has_value());
  EXPECT_EQ(second.allocation->id, first.allocation->id);
  EXPECT_TRUE(second.replayed);
  EXPECT_EQ(gated_->List({}).size(), 1u);
  EXPECT_EQ(HeldGpus(), 1);
}

}  // namespace
}  // namespace gpurm
