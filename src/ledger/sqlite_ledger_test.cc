#include "ledger/sqlite_ledger.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "ledger/test_allocations.h"
#include "support/every_field.h"

namespace gpurm {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::SizeIs;
using testing_allocations::Active;
using testing_allocations::All;
using testing_allocations::Grant;
using testing_allocations::Ids;
using testing_allocations::MakeAllocation;

SqliteLedgerOptions Options(int busy_timeout_ms, int64_t max_page_count) {
  SqliteLedgerOptions options;
  options.busy_timeout_ms = busy_timeout_ms;
  options.max_page_count = max_page_count;
  return options;
}

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

// Runs `sql` on `path` through a plain SQLite connection (not the ledger), to
// build foreign databases and to tamper with a closed ledger.
void ExecRaw(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* error = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
  const std::string message = error != nullptr ? error : "";
  sqlite3_free(error);
  sqlite3_close(db);
  ASSERT_EQ(rc, SQLITE_OK) << message;
}

class SqliteLedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "/sqlite_ledger_test.XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    path_ = dir_ + "/ledger.db";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<Ledger> Open(const SqliteLedgerOptions& options = {}) {
    Result<std::unique_ptr<Ledger>> ledger = OpenSqliteLedger(path_, options);
    EXPECT_TRUE(ledger.ok()) << ledger.status().ToString();
    return ledger.ok() ? std::move(ledger).value() : nullptr;
  }

  std::string dir_;
  std::string path_;
};

TEST_F(SqliteLedgerTest, CreatesMissingParentDirectories) {
  path_ = dir_ + "/a/b/c/ledger.db";
  std::unique_ptr<Ledger> ledger = Open();
  ASSERT_NE(ledger, nullptr);
  EXPECT_TRUE(std::filesystem::exists(path_));
  EXPECT_TRUE(ledger->CheckIntegrity().ok());
}

TEST_F(SqliteLedgerTest, EmptyPathIsInvalid) {
  EXPECT_EQ(OpenSqliteLedger("").status().code(), StatusCode::kInvalidArgument);
}

TEST_F(SqliteLedgerTest, RoundTripsEveryFieldFromMemoryAndFromDisk) {
  const Allocation allocation = testing::AllocationWithEveryFieldSet("alloc-1");
  {
    std::unique_ptr<Ledger> ledger = Open();
    ASSERT_NE(ledger, nullptr);
    ASSERT_TRUE(ledger->Insert(allocation).ok());
    Result<Allocation> got = ledger->Get("alloc-1");  // From the in-memory index.
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(*got, allocation);
  }
  std::unique_ptr<Ledger> ledger = Open();  // Active allocations loaded from disk.
  ASSERT_NE(ledger, nullptr);
  Result<Allocation> got = ledger->Get("alloc-1");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, allocation);
  EXPECT_THAT(ledger->List(Active()), ElementsAre(allocation));

  ASSERT_TRUE(ledger->End("alloc-1", AllocationState::kExpired, 1'700'000'900'000).ok());
  got = ledger->Get("alloc-1");  // Ended: read from the database.
  ASSERT_TRUE(got.ok());
  Allocation ended = allocation;
  ended.state = AllocationState::kExpired;
  ended.ended_unix_ms = 1'700'000'900'000;
  EXPECT_EQ(*got, ended);
}

TEST_F(SqliteLedgerTest, ReadsRowsThatSpellTheLeaseTheOldWay) {
  // Ledgers written before the request codec was shared stored lease_ttl_s.
  {
    std::unique_ptr<Ledger> ledger = Open();
    ASSERT_TRUE(ledger->Insert(testing::AllocationWithEveryFieldSet("old")).ok());
  }
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db,
                           "UPDATE allocations SET request = json_remove(json_set(request, "
                           "'$.lease_ttl_s', 77), '$.lease_ttl_seconds')",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  std::unique_ptr<Ledger> ledger = Open();
  ASSERT_NE(ledger, nullptr);
  EXPECT_EQ(ledger->Get("old")->request.lease_ttl_s, 77);
}

TEST_F(SqliteLedgerTest, ReopenPersistsEverything) {
  {
    std::unique_ptr<Ledger> ledger = Open();
    ASSERT_NE(ledger, nullptr);
    Allocation keyed = MakeAllocation("keyed", 100);
    keyed.idempotency_key = "k";
    keyed.lease_expires_unix_ms = 500;
    ASSERT_TRUE(ledger->Insert(keyed).ok());
    ASSERT_TRUE(ledger->Insert(MakeAllocation("released", 200)).ok());
    ASSERT_TRUE(ledger->Insert(MakeAllocation("active", 300)).ok());
    ASSERT_TRUE(ledger->End("released", AllocationState::kReleased, 400).ok());
    ASSERT_TRUE(ledger->RenewLease("keyed", 600).ok());
  }
  std::unique_ptr<Ledger> ledger = Open();
  ASSERT_NE(ledger, nullptr);
  EXPECT_THAT(Ids(ledger->List(Active())), ElementsAre("active", "keyed"));
  EXPECT_THAT(Ids(ledger->List(All())), ElementsAre("active", "released", "keyed"));
  EXPECT_EQ(ledger->Get("released")->ended_unix_ms, 400);
  EXPECT_EQ(ledger->FindByIdempotencyKey("alice", "k")->id, "keyed");
  EXPECT_THAT(Ids(ledger->ExpiredLeases(600)), ElementsAre("keyed"));
  EXPECT_THAT(ledger->ActiveGrants(), SizeIs(2));
  EXPECT_EQ(ledger->ActiveGrants()[0].gpu_uuid, "GPU-keyed");  // Oldest allocation first.
  EXPECT_EQ(ledger->Insert(MakeAllocation("released")).code(), StatusCode::kAlreadyExists);
  EXPECT_TRUE(ledger->CheckIntegrity().ok());
}

TEST_F(SqliteLedgerTest, EmptyFileBecomesALedger) {
  WriteBytes(path_, "");
  std::unique_ptr<Ledger> ledger = Open();
  ASSERT_NE(ledger, nullptr);
  EXPECT_TRUE(ledger->Insert(MakeAllocation("a")).ok());
}

TEST_F(SqliteLedgerTest, RefusesGarbageFilesAndLeavesThemUnchanged) {
  std::string random(8192, '\0');
  uint32_t x = 12345;
  for (char& c : random) {
    x = x * 1103515245 + 12345;
    c = static_cast<char>(x >> 24);
  }
  // SQLite's magic, then garbage: past the pre-check, refused by SQLite itself.
  const std::string magic_then_garbage = std::string("SQLite format 3", 16) + random;
  for (const std::string& bytes : {random, std::string("hello, not a database\n"),
                                   std::string("SQLite format 3"), magic_then_garbage}) {
    WriteBytes(path_, bytes);
    Result<std::unique_ptr<Ledger>> ledger = OpenSqliteLedger(path_);
    ASSERT_FALSE(ledger.ok());
    EXPECT_EQ(ledger.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_THAT(ledger.status().message(), HasSubstr(path_));
    EXPECT_EQ(ReadBytes(path_), bytes);
  }
}

TEST_F(SqliteLedgerTest, RefusesAForeignSqliteDatabaseAndLeavesItUnchanged) {
  ExecRaw(path_, "CREATE TABLE users (name TEXT); INSERT INTO users VALUES ('x');");
  const std::string before = ReadBytes(path_);
  Result<std::unique_ptr<Ledger>> ledger = OpenSqliteLedger(path_);
  ASSERT_FALSE(ledger.ok());
  EXPECT_EQ(ledger.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(ledger.status().message(), HasSubstr(path_));
  EXPECT_THAT(ledger.status().message(), HasSubstr("not a gpurm ledger"));
  EXPECT_EQ(ReadBytes(path_), before);
}

// A WAL database whose writer crashed: its WAL holds committed changes not yet
// in the main file. Neither file may change, and nothing may be left behind.
TEST_F(SqliteLedgerTest, RefusesAForeignWalDatabaseAndLeavesBothFilesUnchanged) {
  const std::string live = dir_ + "/live.db";
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(live.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;"
                         "CREATE TABLE t (x); INSERT INTO t VALUES (1);",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  std::filesystem::copy_file(live, path_);
  std::filesystem::copy_file(live + "-wal", path_ + "-wal");
  sqlite3_close(db);
  const std::string db_before = ReadBytes(path_);
  const std::string wal_before = ReadBytes(path_ + "-wal");
  ASSERT_FALSE(wal_before.empty());

  Result<std::unique_ptr<Ledger>> ledger = OpenSqliteLedger(path_);
  ASSERT_FALSE(ledger.ok());
  EXPECT_EQ(ledger.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(ReadBytes(path_), db_before);
  EXPECT_EQ(ReadBytes(path_ + "-wal"), wal_before);

  // Without a WAL of its own, refusing one leaves no WAL behind either.
  std::filesystem::remove(path_ + "-wal");
  std::filesystem::remove(path_);
  ExecRaw(path_, "PRAGMA journal_mode = WAL; CREATE TABLE t (x);");
  const std::string before = ReadBytes(path_);
  EXPECT_FALSE(OpenSqliteLedger(path_).ok());
  EXPECT_EQ(ReadBytes(path_), before);
  EXPECT_FALSE(std::filesystem::exists(path_ + "-wal"));
  EXPECT_FALSE(std::filesystem::exists(path_ + "-shm"));
}

TEST_F(SqliteLedgerTest, RefusesANewerSchemaAndLeavesItUnchanged) {
  {
    std::unique_ptr<Ledger> ledger = Open();
    ASSERT_NE(ledger, nullptr);
    ASSERT_TRUE(ledger->Insert(MakeAllocation("a")).ok());
  }
  ExecRaw(path_, "PRAGMA user_version = 3;");
  const std::string before = ReadBytes(path_);
  Result<std::unique_ptr<Ledger>> ledger = OpenSqliteLedger(path_);
  ASSERT_FALSE(ledger.ok());
  EXPECT_EQ(ledger.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(ledger.status().message(), HasSubstr(path_));
  EXPECT_THAT(ledger.status().message(), HasSubstr("newer"));
  EXPECT_EQ(ReadBytes(path_), before);
}

// A ledger written before request digests were kept (schema version 1: the
// same tables without allocations.request_digest) is upgraded when opened:
// its allocations read back with an empty digest, new ones keep theirs.
TEST_F(SqliteLedgerTest, UpgradesASchemaVersion1Ledger) {
  {
    std::unique_ptr<Ledger> ledger = Open();
    ASSERT_NE(ledger, nullptr);
    ASSERT_TRUE(ledger->Insert(MakeAllocation("old")).ok());
  }
  ExecRaw(path_,
          "ALTER TABLE allocations DROP COLUMN request_digest;"
          "UPDATE meta SET value = '1' WHERE key = 'schema_version';"
          "PRAGMA user_version = 1;");
  {
    std::unique_ptr<Ledger> ledger = Open();
    ASSERT_NE(ledger, nullptr);
    Result<Allocation> old = ledger->Get("old");
    ASSERT_TRUE(old.ok()) << old.status().ToString();
    EXPECT_EQ(old->request_digest, "");
    Allocation fresh = MakeAllocation("new");
    fresh.request_digest = "digest-of-new";
    ASSERT_TRUE(ledger->Insert(fresh).ok());
  }
  std::unique_ptr<Ledger> reopened = Open();
  ASSERT_NE(reopened, nullptr);
  Result<Allocation> fresh = reopened->Get("new");
  ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
  EXPECT_EQ(fresh->request_digest, "digest-of-new");
}

TEST_F(SqliteLedgerTest, RefusesACorruptLedger) {
  {
    std::unique_ptr<Ledger> ledger = Open();
    ASSERT_NE(ledger, nullptr);
    for (int i = 0; i < 50; ++i) {
      ASSERT_TRUE(ledger->Insert(MakeAllocation("a" + std::to_string(i))).ok());
    }
  }
  std::string bytes = ReadBytes(path_);
  ASSERT_GT(bytes.size(), 3u * 4096);
  // Scribble over the b-tree pages after page 1 (which holds the identity).
  for (size_t i = 4096; i < bytes.size(); ++i) bytes[i] = static_cast<char>(0x5a);
  WriteBytes(path_, bytes);
  Result<std::unique_ptr<Ledger>> ledger = OpenSqliteLedger(path_);
  ASSERT_FALSE(ledger.ok());
  EXPECT_EQ(ledger.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(ledger.status().message(), HasSubstr(path_));
  EXPECT_EQ(ReadBytes(path_), bytes);
}

TEST_F(SqliteLedgerTest, ASecondOpenOfAnOpenLedgerIsUnavailable) {
  std::unique_ptr<Ledger> ledger = Open();
  ASSERT_NE(ledger, nullptr);
  Result<std::unique_ptr<Ledger>> second = OpenSqliteLedger(path_, Options(50, 0));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable);
  ledger.reset();
  EXPECT_TRUE(OpenSqliteLedger(path_, Options(50, 0)).ok());
}

TEST_F(SqliteLedgerTest, CheckIntegrityFindsBrokenInvariants) {
  {
    std::unique_ptr<Ledger> ledger = Open();
    ASSERT_NE(ledger, nullptr);
    ASSERT_TRUE(ledger->Insert(MakeAllocation("holder")).ok());
    EXPECT_TRUE(ledger->CheckIntegrity().ok());
  }
  // Write what the ledger itself refuses to write.
  ExecRaw(path_,
          "INSERT INTO allocations VALUES ('intruder', 'bob', 'active', '{}', 1, 0, 0, '', '');"
          "INSERT INTO grants VALUES ('intruder', 0, 'node-a', 1, 'GPU-holder', 1024, 0);"
          "INSERT INTO allocations VALUES ('empty', 'bob', 'active', '{}', 1, 0, 0, '', '');");
  std::unique_ptr<Ledger> ledger = Open();
  ASSERT_NE(ledger, nullptr);
  const Status status = ledger->CheckIntegrity();
  EXPECT_EQ(status.code(), StatusCode::kInternal);
  EXPECT_THAT(status.message(), HasSubstr("GPU-holder"));
  EXPECT_THAT(status.message(), HasSubstr("intruder"));
  EXPECT_THAT(status.message(), HasSubstr("empty"));

  ASSERT_TRUE(ledger->End("intruder", AllocationState::kReleased, 2).ok());
  ASSERT_TRUE(ledger->End("empty", AllocationState::kReleased, 2).ok());
  EXPECT_TRUE(ledger->CheckIntegrity().ok());
}

TEST_F(SqliteLedgerTest, ConcurrentInsertsAndEndsStayConsistent) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 40;
  std::unique_ptr<Ledger> ledger = Open();
  ASSERT_NE(ledger, nullptr);

  std::atomic<bool> done = false;
  std::atomic<int> failures = 0;
  std::thread reader([&] {
    while (!done.load()) {
      const std::vector<Allocation> active = ledger->List(Active("", 100000));
      // Each active allocation holds exactly one GPU: the views agree.
      if (ledger->ActiveGrants().size() < active.size() / 2) failures.fetch_add(1);
      if (!ledger->CheckIntegrity().ok()) failures.fetch_add(1);
      ledger->List(All("", 10));
      ledger->ExpiredLeases(std::numeric_limits<int64_t>::max());
    }
  });
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string id = "t" + std::to_string(t) + "-" + std::to_string(i);
        Allocation allocation = MakeAllocation(id, i);
        allocation.idempotency_key = id;
        if (!ledger->Insert(allocation).ok()) failures.fetch_add(1);
        if (!ledger->RenewLease(id, 10'000 + i).ok()) failures.fetch_add(1);
        if (i % 2 == 0 && !ledger->End(id, AllocationState::kReleased, 5000).ok()) {
          failures.fetch_add(1);
        }
      }
    });
  }
  for (std::thread& writer : writers) writer.join();
  done.store(true);
  reader.join();
  EXPECT_EQ(failures.load(), 0);

  const auto check = [&](const Ledger& l) {
    std::set<std::string> expected_active;
    for (int t = 0; t < kThreads; ++t) {
      for (int i = 1; i < kPerThread; i += 2) {
        expected_active.insert("t" + std::to_string(t) + "-" + std::to_string(i));
      }
    }
    const std::vector<std::string> active = Ids(l.List(Active("", 100000)));
    EXPECT_EQ(std::set<std::string>(active.begin(), active.end()), expected_active);
    EXPECT_THAT(l.ActiveGrants(), SizeIs(expected_active.size()));
    EXPECT_THAT(l.List(All("", 100000)), SizeIs(kThreads * kPerThread));
    EXPECT_EQ(l.Get("t3-4")->state, AllocationState::kReleased);
    EXPECT_EQ(l.Get("t3-5")->lease_expires_unix_ms, 10'005);
    EXPECT_TRUE(l.CheckIntegrity().ok());
  };
  check(*ledger);
  ledger.reset();
  ledger = Open();
  ASSERT_NE(ledger, nullptr);
  check(*ledger);
}

// A child process inserts (and ends some) allocations, reporting each
// acknowledged change through a pipe, and is killed with SIGKILL mid-stream.
// Every change it was told succeeded must be in the reopened ledger.
TEST_F(SqliteLedgerTest, AcknowledgedChangesSurviveKill9) {
  struct Ack {
    char op;  // 'I' inserted, 'E' ended.
    int32_t index;
  };
  constexpr int kAcksBeforeKill = 150;
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(fds[0]);
    Result<std::unique_ptr<Ledger>> ledger = OpenSqliteLedger(path_);
    if (!ledger.ok()) ::_exit(2);
    for (int32_t i = 0; i < 1'000'000; ++i) {
      if (!(*ledger)->Insert(MakeAllocation("a" + std::to_string(i), i)).ok()) ::_exit(3);
      Ack ack{'I', i};
      if (::write(fds[1], &ack, sizeof(ack)) != sizeof(ack)) ::_exit(4);
      if (i % 3 == 2) {
        if (!(*ledger)->End("a" + std::to_string(i - 1), AllocationState::kReleased, i).ok()) {
          ::_exit(5);
        }
        ack = {'E', i - 1};
        if (::write(fds[1], &ack, sizeof(ack)) != sizeof(ack)) ::_exit(4);
      }
    }
    ::_exit(0);
  }

  ::close(fds[1]);
  std::set<int32_t> inserted;
  std::set<int32_t> ended;
  bool killed = false;
  Ack ack;
  size_t have = 0;
  ssize_t n;
  while ((n = ::read(fds[0], reinterpret_cast<char*>(&ack) + have, sizeof(ack) - have)) > 0) {
    have += static_cast<size_t>(n);
    if (have < sizeof(ack)) continue;
    have = 0;
    (ack.op == 'I' ? inserted : ended).insert(ack.index);
    if (!killed && inserted.size() >= kAcksBeforeKill) {
      ASSERT_EQ(::kill(child, SIGKILL), 0);
      killed = true;  // Keep draining: acks written before the kill still count.
    }
  }
  ::close(fds[0]);
  int wait_status = 0;
  ASSERT_EQ(::waitpid(child, &wait_status, 0), child);
  ASSERT_TRUE(killed) << "child exited early with status " << wait_status;
  ASSERT_TRUE(WIFSIGNALED(wait_status)) << wait_status;

  std::unique_ptr<Ledger> ledger = Open();
  ASSERT_NE(ledger, nullptr);
  for (int32_t i : inserted) {
    Result<Allocation> allocation = ledger->Get("a" + std::to_string(i));
    ASSERT_TRUE(allocation.ok()) << "acknowledged insert a" << i << " lost";
    if (ended.contains(i)) {
      EXPECT_EQ(allocation->state, AllocationState::kReleased) << "acknowledged end a" << i;
    }
  }
  EXPECT_TRUE(ledger->CheckIntegrity().ok());
}

TEST_F(SqliteLedgerTest, FullDatabaseIsResourceExhaustedAndWritesNothingHalf) {
  std::vector<std::string> inserted;
  std::string refused_id;
  {
    std::unique_ptr<Ledger> ledger = Open(Options(5000, 40));
    ASSERT_NE(ledger, nullptr);
    Status status;
    for (int i = 0; i < 1000 && status.ok(); ++i) {
      Allocation allocation = MakeAllocation("a" + std::to_string(i), i);
      allocation.owner = std::string(3000, 'o');  // Fill pages quickly.
      allocation.grants.push_back(Grant("GPU-second-" + std::to_string(i)));
      status = ledger->Insert(allocation);
      if (status.ok()) {
        inserted.push_back(allocation.id);
      } else {
        refused_id = allocation.id;
      }
    }
    ASSERT_EQ(status.code(), StatusCode::kResourceExhausted) << status.ToString();
    EXPECT_THAT(status.message(), HasSubstr("disk full"));
    EXPECT_THAT(status.message(), HasSubstr(path_));
    ASSERT_FALSE(inserted.empty());

    EXPECT_EQ(ledger->Get(refused_id).status().code(), StatusCode::kNotFound);
    EXPECT_THAT(ledger->List(Active()), SizeIs(inserted.size()));
    EXPECT_THAT(ledger->ActiveGrants(), SizeIs(2 * inserted.size()));
    EXPECT_TRUE(ledger->CheckIntegrity().ok());
  }
  std::unique_ptr<Ledger> ledger = Open();  // Without the cap.
  ASSERT_NE(ledger, nullptr);
  EXPECT_THAT(ledger->List(All("", 100000)), SizeIs(inserted.size()));
  EXPECT_EQ(ledger->Get(refused_id).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(ledger->CheckIntegrity().ok());
  EXPECT_TRUE(ledger->Insert(MakeAllocation(refused_id)).ok());
}

// Group commit: one Apply records a batch of changes in one transaction;
// each change sees the ones before it, and all are there after reopening.
TEST_F(SqliteLedgerTest, ApplyRecordsABatchThatSurvivesReopening) {
  {
    std::unique_ptr<Ledger> ledger = Open();
    ASSERT_NE(ledger, nullptr);
    ASSERT_TRUE(ledger->Insert(MakeAllocation("old")).ok());
    std::vector<LedgerChange> changes;
    for (int i = 0; i < 100; ++i) {
      changes.push_back(LedgerChange::Insert(MakeAllocation("b" + std::to_string(i), i)));
    }
    changes.push_back(LedgerChange::End("old", AllocationState::kReleased, 5000));
    changes.push_back(LedgerChange::End("b7", AllocationState::kExpired, 6000));
    changes.push_back(LedgerChange::RenewLease("b8", 9000));
    const std::vector<Result<Allocation>> results = ledger->Apply(changes);
    ASSERT_EQ(results.size(), changes.size());
    for (const Result<Allocation>& result : results) {
      ASSERT_TRUE(result.ok()) << result.status().ToString();
    }
    EXPECT_EQ(results[100]->state, AllocationState::kReleased);
    EXPECT_EQ(results[101]->state, AllocationState::kExpired);
    EXPECT_EQ(results[102]->lease_expires_unix_ms, 9000);
  }
  std::unique_ptr<Ledger> ledger = Open();
  ASSERT_NE(ledger, nullptr);
  EXPECT_THAT(ledger->List(Active()), SizeIs(99));
  EXPECT_EQ(ledger->Get("old")->state, AllocationState::kReleased);
  EXPECT_EQ(ledger->Get("b7")->ended_unix_ms, 6000);
  EXPECT_EQ(ledger->Get("b8")->lease_expires_unix_ms, 9000);
  EXPECT_TRUE(ledger->CheckIntegrity().ok());
}

// A change refused on its own merits fails alone; the rest of its batch is
// recorded.
TEST_F(SqliteLedgerTest, ApplyRefusesOneChangeAndRecordsTheRest) {
  std::unique_ptr<Ledger> ledger = Open();
  ASSERT_NE(ledger, nullptr);
  ASSERT_TRUE(ledger->Insert(MakeAllocation("ended")).ok());
  ASSERT_TRUE(ledger->End("ended", AllocationState::kReleased, 2000).ok());
  Allocation same_gpu = MakeAllocation("same-gpu");
  same_gpu.grants = {Grant("GPU-a")};
  Allocation keyed = MakeAllocation("keyed");
  keyed.idempotency_key = "k";
  Allocation same_key = MakeAllocation("same-key");
  same_key.idempotency_key = "k";
  const std::vector<Result<Allocation>> results = ledger->Apply({
      LedgerChange::Insert(MakeAllocation("a")),
      LedgerChange::Insert(same_gpu),                 // GPU-a, held by "a" of this batch.
      LedgerChange::Insert(MakeAllocation("ended")),  // Id of an ended allocation.
      LedgerChange::Insert(keyed),
      LedgerChange::Insert(same_key),  // Key used earlier in this batch.
      LedgerChange::End("nobody", AllocationState::kReleased, 3000),
      LedgerChange::RenewLease("ended", 9000),
      LedgerChange::Insert(MakeAllocation("c")),
  });
  ASSERT_EQ(results.size(), 8u);
  EXPECT_TRUE(results[0].ok());
  EXPECT_EQ(results[1].status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(results[2].status().code(), StatusCode::kAlreadyExists);
  EXPECT_TRUE(results[3].ok());
  EXPECT_EQ(results[4].status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(results[5].status().code(), StatusCode::kNotFound);
  EXPECT_EQ(results[6].status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(results[7].ok());
  EXPECT_THAT(Ids(ledger->List(Active())), ::testing::UnorderedElementsAre("a", "keyed", "c"));
  EXPECT_EQ(ledger->FindByIdempotencyKey("alice", "k")->id, "keyed");
  EXPECT_TRUE(ledger->CheckIntegrity().ok());
}

// A storage failure fails every change of the batch and records none of
// them, in the database and in what readers see; later batches work.
TEST_F(SqliteLedgerTest, FullDatabaseFailsTheWholeBatch) {
  std::vector<std::string> recorded;
  std::vector<std::string> refused;
  {
    std::unique_ptr<Ledger> ledger = Open(Options(5000, 40));
    ASSERT_NE(ledger, nullptr);
    ASSERT_TRUE(ledger->Insert(MakeAllocation("first")).ok());
    recorded.push_back("first");
    for (int batch = 0; batch < 100 && refused.empty(); ++batch) {
      std::vector<LedgerChange> changes;
      if (batch == 0) changes.push_back(LedgerChange::End("first", AllocationState::kReleased, 7));
      for (int i = 0; i < 10; ++i) {
        Allocation allocation = MakeAllocation("a" + std::to_string(batch * 10 + i), batch);
        allocation.owner = std::string(3000, 'o');  // Fill pages quickly.
        changes.push_back(LedgerChange::Insert(allocation));
      }
      const std::vector<Result<Allocation>> results = ledger->Apply(changes);
      ASSERT_EQ(results.size(), changes.size());
      if (results.back().ok()) {
        for (const Result<Allocation>& result : results) ASSERT_TRUE(result.ok());
        for (const LedgerChange& change : changes) {
          if (change.kind == LedgerChange::Kind::kInsert) recorded.push_back(change.allocation.id);
        }
        continue;
      }
      for (const Result<Allocation>& result : results) {
        EXPECT_EQ(result.status().code(), StatusCode::kResourceExhausted);
      }
      for (const LedgerChange& change : changes) refused.push_back(change.allocation.id);
    }
    ASSERT_FALSE(refused.empty());
    ASSERT_GT(recorded.size(), 1u);
    for (const std::string& id : refused) {
      EXPECT_EQ(ledger->Get(id).status().code(), StatusCode::kNotFound) << id;
    }
    EXPECT_THAT(ledger->List(Active()), SizeIs(recorded.size() - 1));
    EXPECT_TRUE(ledger->CheckIntegrity().ok());
  }
  std::unique_ptr<Ledger> ledger = Open();  // Without the cap.
  ASSERT_NE(ledger, nullptr);
  EXPECT_THAT(ledger->List(All("", 100000)), SizeIs(recorded.size()));
  EXPECT_EQ(ledger->Get("first")->state, AllocationState::kReleased);
  for (const std::string& id : refused) {
    EXPECT_EQ(ledger->Get(id).status().code(), StatusCode::kNotFound) << id;
  }
  EXPECT_TRUE(ledger->CheckIntegrity().ok());
  std::vector<LedgerChange> retry;
  for (const std::string& id : refused) retry.push_back(LedgerChange::Insert(MakeAllocation(id)));
  for (const Result<Allocation>& result : ledger->Apply(retry)) EXPECT_TRUE(result.ok());
}

// An I/O error (here: writes past RLIMIT_FSIZE fail with EFBIG) is
// kUnavailable, records nothing, and the ledger works again once writes do.
// In a child process, because the limit and SIGXFSZ are process-wide.
TEST_F(SqliteLedgerTest, IoErrorIsUnavailableAndRecordsNothing) {
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    Result<std::unique_ptr<Ledger>> opened = OpenSqliteLedger(path_);
    if (!opened.ok()) ::_exit(2);
    Ledger& ledger = **opened;
    if (!ledger.Insert(MakeAllocation("before")).ok()) ::_exit(3);
    ::signal(SIGXFSZ, SIG_IGN);
    rlimit limit;
    ::getrlimit(RLIMIT_FSIZE, &limit);
    const rlimit saved = limit;
    limit.rlim_cur = std::filesystem::file_size(path_ + "-wal") + 100;
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) ::_exit(4);
    const Status status = ledger.Insert(MakeAllocation("during"));
    if (status.code() != StatusCode::kUnavailable) ::_exit(5);
    if (ledger.Get("during").status().code() != StatusCode::kNotFound) ::_exit(6);
    if (ledger.List(Active()).size() != 1 || ledger.ActiveGrants().size() != 1) ::_exit(7);
    if (::setrlimit(RLIMIT_FSIZE, &saved) != 0) ::_exit(8);
    if (!ledger.Insert(MakeAllocation("after")).ok()) ::_exit(9);
    if (!ledger.CheckIntegrity().ok()) ::_exit(10);
    ::_exit(0);
  }
  int wait_status = 0;
  ASSERT_EQ(::waitpid(child, &wait_status, 0), child);
  ASSERT_TRUE(WIFEXITED(wait_status)) << wait_status;
  ASSERT_EQ(WEXITSTATUS(wait_status), 0) << "see the ::_exit codes in the child";

  std::unique_ptr<Ledger> ledger = Open();
  ASSERT_NE(ledger, nullptr);
  EXPECT_THAT(Ids(ledger->List(Active())), ::testing::UnorderedElementsAre("before", "after"));
  EXPECT_EQ(ledger->Get("during").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(ledger->CheckIntegrity().ok());
}

}  // namespace
}  // namespace gpurm
