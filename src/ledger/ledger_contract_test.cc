// The Ledger contract, run against every ledger that keeps state in this
// process: SqliteLedger and the in-memory ledger of unit tests. What a ledger
// does beyond it (durability, files, schema upgrades) is tested beside it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "ledger/memory_ledger.h"
#include "ledger/sqlite_ledger.h"
#include "ledger/test_allocations.h"

namespace gpurm {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using testing_allocations::Active;
using testing_allocations::All;
using testing_allocations::Grant;
using testing_allocations::Ids;
using testing_allocations::MakeAllocation;

enum class LedgerKind { kSqlite, kMemory };

class LedgerContractTest : public ::testing::TestWithParam<LedgerKind> {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "/ledger_contract_test.XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<Ledger> Open() {
    if (GetParam() == LedgerKind::kMemory) return NewMemoryLedger();
    Result<std::unique_ptr<Ledger>> ledger = OpenSqliteLedger(dir_ + "/ledger.db");
    EXPECT_TRUE(ledger.ok()) << ledger.status().ToString();
    return ledger.ok() ? std::move(ledger).value() : nullptr;
  }

  std::string dir_;
};

TEST_P(LedgerContractTest, InsertRejectsMalformedAllocationsAndRecordsNothing) {
  std::unique_ptr<Ledger> ledger = Open();
  ASSERT_NE(ledger, nullptr);

  Allocation no_id = MakeAllocation("");
  Allocation no_grants = MakeAllocation("no-grants");
  no_grants.grants.clear();
  Allocation ended = MakeAllocation("ended");
  ended.state = AllocationState::kReleased;
  Allocation twice = MakeAllocation("twice");
  twice.grants.push_back(twice.grants[0]);
  Allocation no_uuid = MakeAllocation("no-uuid");
  no_uuid.grants[0].gpu_uuid.clear();
  Allocation nan_memory = MakeAllocation("nan");
  nan_memory.request.memory_gb = std::numeric_limits<double>::quiet_NaN();
  Allocation bad_utf8 = MakeAllocation("utf8");
  bad_utf8.request.gpu_type = "V100\xff";
  // What the request codec could not read back is not written.
  Allocation unreadable = MakeAllocation("unreadable");
  unreadable.request.policy = std::string(3000, 'p');

  for (const Allocation* bad :
       {&no_id, &no_grants, &ended, &twice, &no_uuid, &nan_memory, &bad_utf8, &unreadable}) {
    EXPECT_EQ(ledger->Insert(*bad).code(), StatusCode::kInvalidArgument) << bad->id;
  }
  EXPECT_THAT(ledger->List(All()), IsEmpty());
  EXPECT_TRUE(ledger->CheckIntegrity().ok());
}

TEST_P(LedgerContractTest, DuplicateIdIsAlreadyExistsWhetherActiveOrEnded) {
  std::unique_ptr<Ledger> ledger = Open();
  ASSERT_NE(ledger, nullptr);
  ASSERT_TRUE(ledger->Insert(MakeAllocation("a")).ok());
  Allocation again = MakeAllocation("a");
  again.grants = {Grant("GPU-other")};
  EXPECT_EQ(ledger->Insert(again).code(), StatusCode::kAlreadyExists);

  ASSERT_TRUE(ledger->End("a", AllocationState::kReleased, 2000).ok());
  EXPECT_EQ(ledger->Insert(again).code(), StatusCode::kAlreadyExists);
  EXPECT_THAT(ledger->List(Active()), IsEmpty());
  EXPECT_THAT(Ids(ledger->List(All())), ElementsAre("a"));
}

TEST_P(LedgerContractTest, RefusesGpusHeldIncompatibly) {
  std::unique_ptr<Ledger> ledger = Open();
  ASSERT_NE(ledger, nullptr);
  Allocation exclusive = MakeAllocation("exclusive");
  exclusive.grants = {Grant("GPU-1")};
  ASSERT_TRUE(ledger->Insert(exclusive).ok());

  Allocation second = MakeAllocation("second");
  second.grants = {Grant("GPU-1")};
  Status status = ledger->Insert(second);
  EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("GPU-1"));
  Allocation slice = MakeAllocation("slice");
  slice.grants = {Grant("GPU-1", /*exclusive=*/false, 1024)};
  EXPECT_EQ(ledger->Insert(slice).code(), StatusCode::kFailedPrecondition);

  // Shared slices may share a GPU, but then nobody gets it exclusively.
  Allocation slice_a = MakeAllocation("slice-a");
  slice_a.grants = {Grant("GPU-2", false, 1024)};
  Allocation slice_b = MakeAllocation("slice-b");
  slice_b.grants = {Grant("GPU-2", false, 2048)};
  ASSERT_TRUE(ledger->Insert(slice_a).ok());
  ASSERT_TRUE(ledger->Insert(slice_b).ok());
  Allocation whole = MakeAllocation("whole");
  whole.grants = {Grant("GPU-2")};
  EXPECT_EQ(ledger->Insert(whole).code(), StatusCode::kFailedPrecondition);

  // Ending the holders frees the GPUs.
  ASSERT_TRUE(ledger->End("exclusive", AllocationState::kReleased, 2000).ok());
  EXPECT_TRUE(ledger->Insert(second).ok());
  ASSERT_TRUE(ledger->End("slice-a", AllocationState::kReleased, 2000).ok());
  EXPECT_EQ(ledger->Insert(whole).code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(ledger->End("slice-b", AllocationState::kReleased, 2000).ok());
  EXPECT_TRUE(ledger->Insert(whole).ok());
  EXPECT_TRUE(ledger->CheckIntegrity().ok());
}

TEST_P(LedgerContractTest, ListFiltersByOwnerOrdersNewestFirstAndLimits) {
  std::unique_ptr<Ledger> ledger = Open();
  ASSERT_NE(ledger, nullptr);
  ASSERT_TRUE(ledger->Insert(MakeAllocation("a1", 100, "alice")).ok());
  ASSERT_TRUE(ledger->Insert(MakeAllocation("b1", 200, "bob")).ok());
  ASSERT_TRUE(ledger->Insert(MakeAllocation("a2", 300, "alice")).ok());
  ASSERT_TRUE(ledger->Insert(MakeAllocation("a3", 300, "alice")).ok());  // Same time: id desc.
  ASSERT_TRUE(ledger->Insert(MakeAllocation("a4", 400, "alice")).ok());
  ASSERT_TRUE(ledger->End("a4", AllocationState::kReleased, 500).ok());
  ASSERT_TRUE(ledger->End("b1", AllocationState::kExpired, 500).ok());

  EXPECT_THAT(Ids(ledger->List(Active())), ElementsAre("a3", "a2", "a1"));
  EXPECT_THAT(Ids(ledger->List(All())), ElementsAre("a4", "a3", "a2", "b1", "a1"));
  EXPECT_THAT(Ids(ledger->List(Active("alice"))), ElementsAre("a3", "a2", "a1"));
  EXPECT_THAT(Ids(ledger->List(All("alice"))), ElementsAre("a4", "a3", "a2", "a1"));
  EXPECT_THAT(Ids(ledger->List(All("bob"))), ElementsAre("b1"));
  EXPECT_THAT(Ids(ledger->List(Active("bob"))), IsEmpty());
  EXPECT_THAT(Ids(ledger->List(Active("nobody"))), IsEmpty());
  EXPECT_THAT(Ids(ledger->List(Active("", 2))), ElementsAre("a3", "a2"));
  EXPECT_THAT(Ids(ledger->List(All("", 2))), ElementsAre("a4", "a3"));
  EXPECT_THAT(ledger->List(All("", 0)), IsEmpty());
  EXPECT_THAT(ledger->List(Active("", -1)), IsEmpty());

  const std::vector<Allocation> listed = ledger->List(All());
  EXPECT_EQ(listed[0].state, AllocationState::kReleased);
  EXPECT_EQ(listed[3].state, AllocationState::kExpired);
  EXPECT_THAT(listed[0].grants, SizeIs(1));  // Ended allocations keep their grants as history.
}

TEST_P(LedgerContractTest, CountActiveCountsWhatListOfEveryActiveAllocationReturns) {
  std::unique_ptr<Ledger> ledger = Open();
  ASSERT_NE(ledger, nullptr);
  EXPECT_EQ(ledger->CountActive(), 0u);
  ASSERT_TRUE(ledger->Insert(MakeAllocation("a1", 100, "alice")).ok());
  ASSERT_TRUE(ledger->Insert(MakeAllocation("b1", 200, "bob")).ok());
  ASSERT_TRUE(ledger->Insert(MakeAllocation("a2", 300, "alice")).ok());
  EXPECT_EQ(ledger->CountActive(), 3u);
  ASSERT_TRUE(ledger->End("b1", AllocationState::kReleased, 400).ok());
  ASSERT_TRUE(ledger->End("b1", AllocationState::kReleased, 500).ok());  // Idempotent.
  EXPECT_EQ(ledger->CountActive(), 2u);
  EXPECT_EQ(ledger->CountActive(), ledger->List(Active("", 1000)).size());
  // Not capped by List's default page size.
  std::vector<LedgerChange> inserts;
  for (int i = 0; i < 1005; ++i) {
    inserts.push_back(LedgerChange::Insert(MakeAllocation("c" + std::to_string(i), 1000 + i)));
  }
  for (const Result<Allocation>& inserted : ledger->Apply(inserts)) ASSERT_TRUE(inserted.ok());
  EXPECT_EQ(ledger->CountActive(), 1007u);
}

TEST_P(LedgerContractTest, EndIsIdempotentAndUnknownIdsAreNotFound) {
  std::unique_ptr<Ledger> ledger = Open();
  ASSERT_NE(ledger, nullptr);
  ASSERT_TRUE(ledger->Insert(MakeAllocation("a")).ok());

  Result<Allocation> ended = ledger->End("a", AllocationState::kReleased, 5000);
  ASSERT_TRUE(ended.ok());
  EXPECT_EQ(ended->state, AllocationState::kReleased);
  EXPECT_EQ(ended->ended_unix_ms, 5000);

  // Ending again answers the allocation as it was ended, unchanged.
  Result<Allocation> again = ledger->End("a", AllocationState::kExpired, 9000);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->state, AllocationState::kReleased);
  EXPECT_EQ(again->ended_unix_ms, 5000);

  EXPECT_EQ(ledger->End("missing", AllocationState::kReleased, 1).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(ledger->Get("missing").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(ledger->End("a", AllocationState::kActive, 1).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_THAT(ledger->ActiveGrants(), IsEmpty());
}

TEST_P(LedgerContractTest, RenewLeaseOnlyForActiveAllocations) {
  std::unique_ptr<Ledger> ledger = Open();
  ASSERT_NE(ledger, nullptr);
  ASSERT_TRUE(ledger->Insert(MakeAllocation("a")).ok());

  Result<Allocation> renewed = ledger->RenewLease("a", 7000);
  ASSERT_TRUE(renewed.ok());
  EXPECT_EQ(renewed->lease_expires_unix_ms, 7000);
  EXPECT_EQ(ledger->Get("a")->lease_expires_unix_ms, 7000);

  EXPECT_EQ(ledger->RenewLease("missing", 7000).status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(ledger->End("a", AllocationState::kReleased, 8000).ok());
  EXPECT_EQ(ledger->RenewLease("a", 9000).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(ledger->Get("a")->lease_expires_unix_ms, 7000);
}

TEST_P(LedgerContractTest, ExpiredLeasesAreActiveOnesExpiredAtOrBeforeNow) {
  std::unique_ptr<Ledger> ledger = Open();
  ASSERT_NE(ledger, nullptr);
  Allocation early = MakeAllocation("early");
  early.lease_expires_unix_ms = 100;
  Allocation late = MakeAllocation("late");
  late.lease_expires_unix_ms = 200;
  Allocation no_lease = MakeAllocation("no-lease");
  Allocation ended = MakeAllocation("ended");
  ended.lease_expires_unix_ms = 50;
  for (const Allocation* allocation : {&early, &late, &no_lease, &ended}) {
    ASSERT_TRUE(ledger->Insert(*allocation).ok());
  }
  ASSERT_TRUE(ledger->End("ended", AllocationState::kReleased, 60).ok());

  EXPECT_THAT(ledger->ExpiredLeases(99), IsEmpty());
  EXPECT_THAT(Ids(ledger->ExpiredLeases(150)), ElementsAre("early"));
  EXPECT_THAT(Ids(ledger->ExpiredLeases(200)), ElementsAre("early", "late"));

  ASSERT_TRUE(ledger->RenewLease("early", 1000).ok());
  EXPECT_THAT(Ids(ledger->ExpiredLeases(200)), ElementsAre("late"));
  ASSERT_TRUE(ledger->RenewLease("late", 0).ok());  // 0 = no lease.
  EXPECT_THAT(ledger->ExpiredLeases(std::numeric_limits<int64_t>::max() - 1),
              ElementsAre(::testing::Field(&Allocation::id, "early")));
}

TEST_P(LedgerContractTest, IdempotencyKeysAreUniquePerOwnerIncludingEnded) {
  std::unique_ptr<Ledger> ledger = Open();
  ASSERT_NE(ledger, nullptr);
  Allocation first = MakeAllocation("first", 1000, "alice");
  first.idempotency_key = "k";
  ASSERT_TRUE(ledger->Insert(first).ok());

  Allocation same_owner = MakeAllocation("same-owner", 1000, "alice");
  same_owner.idempotency_key = "k";
  EXPECT_EQ(ledger->Insert(same_owner).code(), StatusCode::kAlreadyExists);
  Allocation other_owner = MakeAllocation("other-owner", 1000, "bob");
  other_owner.idempotency_key = "k";
  EXPECT_TRUE(ledger->Insert(other_owner).ok());
  // Empty keys never collide.
  EXPECT_TRUE(ledger->Insert(MakeAllocation("no-key-1")).ok());
  EXPECT_TRUE(ledger->Insert(MakeAllocation("no-key-2")).ok());

  std::optional<Allocation> found = ledger->FindByIdempotencyKey("alice", "k");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->id, "first");
  EXPECT_EQ(ledger->FindByIdempotencyKey("bob", "k")->id, "other-owner");
  EXPECT_FALSE(ledger->FindByIdempotencyKey("carol", "k").has_value());
  EXPECT_FALSE(ledger->FindByIdempotencyKey("alice", "").has_value());

  // A retry after the allocation ended finds it, and still cannot insert anew.
  ASSERT_TRUE(ledger->End("first", AllocationState::kReleased, 2000).ok());
  found = ledger->FindByIdempotencyKey("alice", "k");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->state, AllocationState::kReleased);
  EXPECT_EQ(ledger->Insert(same_owner).code(), StatusCode::kAlreadyExists);
}

TEST_P(LedgerContractTest, ConcurrentClaimsOnOneGpuHaveOneWinner) {
  constexpr int kThreads = 8;
  std::unique_ptr<Ledger> ledger = Open();
  ASSERT_NE(ledger, nullptr);
  std::atomic<int> won = 0;
  std::atomic<int> refused = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Allocation allocation = MakeAllocation("claim-" + std::to_string(t));
      allocation.grants = {Grant("GPU-contended")};
      const Status status = ledger->Insert(allocation);
      if (status.ok()) won.fetch_add(1);
      if (status.code() == StatusCode::kFailedPrecondition) refused.fetch_add(1);
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(won.load(), 1);
  EXPECT_EQ(refused.load(), kThreads - 1);
  EXPECT_THAT(ledger->List(Active()), SizeIs(1));
  EXPECT_TRUE(ledger->CheckIntegrity().ok());
}

// Apply answers each change as the single call would, each seeing the ones
// before it.
TEST_P(LedgerContractTest, ApplyAnswersEachChangeSeeingThoseBefore) {
  std::unique_ptr<Ledger> ledger = Open();
  ASSERT_NE(ledger, nullptr);
  Allocation clash = MakeAllocation("clash");
  clash.grants = {Grant("GPU-a")};
  const std::vector<Result<Allocation>> results = ledger->Apply({
      LedgerChange::Insert(MakeAllocation("a")),
      LedgerChange::RenewLease("a", 4000),
      LedgerChange::Insert(clash),  // GPU-a is held by "a".
      LedgerChange::End("a", AllocationState::kReleased, 5000),
      LedgerChange::Insert(MakeAllocation("b")),
      LedgerChange::End("missing", AllocationState::kReleased, 5000),
  });
  ASSERT_THAT(results, SizeIs(6));
  EXPECT_TRUE(results[0].ok());
  ASSERT_TRUE(results[1].ok());
  EXPECT_EQ(results[1]->lease_expires_unix_ms, 4000);
  EXPECT_EQ(results[2].status().code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(results[3].ok());
  EXPECT_EQ(results[3]->state, AllocationState::kReleased);
  EXPECT_EQ(results[3]->lease_expires_unix_ms, 4000);
  EXPECT_TRUE(results[4].ok());
  EXPECT_EQ(results[5].status().code(), StatusCode::kNotFound);
  EXPECT_THAT(Ids(ledger->List(All())), ElementsAre("b", "a"));
  // Once the end is recorded, the GPU is free.
  EXPECT_TRUE(ledger->Insert(clash).ok());
  EXPECT_TRUE(ledger->CheckIntegrity().ok());
}

// A page's cursor: everything after (created_unix_ms, id) of the last one seen.
TEST_P(LedgerContractTest, CursorPagesThroughEveryAllocationOnce) {
  std::unique_ptr<Ledger> ledger = Open();
  ASSERT_NE(ledger, nullptr);
  for (int i = 0; i < 7; ++i) {
    ASSERT_TRUE(ledger->Insert(MakeAllocation("p" + std::to_string(i), 100 * (i / 2))).ok());
  }
  ASSERT_TRUE(ledger->End("p3", AllocationState::kReleased, 1000).ok());
  for (const bool include_ended : {false, true}) {
    AllocationFilter page = include_ended ? All("", 2) : Active("", 2);
    std::vector<std::string> seen;
    for (int pages = 0; pages < 10; ++pages) {
      const std::vector<Allocation> listed = ledger->List(page);
      if (listed.empty()) break;
      for (const Allocation& allocation : listed) seen.push_back(allocation.id);
      page.after_created_unix_ms = listed.back().created_unix_ms;
      page.after_id = listed.back().id;
    }
    if (include_ended) {
      EXPECT_THAT(seen, ElementsAre("p6", "p5", "p4", "p3", "p2", "p1", "p0"));
    } else {
      EXPECT_THAT(seen, ElementsAre("p6", "p5", "p4", "p2", "p1", "p0"));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Ledgers, LedgerContractTest,
                         ::testing::Values(LedgerKind::kSqlite, LedgerKind::kMemory),
                         [](const ::testing::TestParamInfo<LedgerKind>& param) {
                           return param.param == LedgerKind::kSqlite ? "Sqlite" : "Memory";
                         });

}  // namespace
}  // namespace gpurm
