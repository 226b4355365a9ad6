#include "monitor/enforcer.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <map>
#include <string>
#include <vector>

namespace gpurm {
namespace {

// Processes by pid with their start times; Stat fails for others.
class FakeProcs final : public ProcReader {
 public:
  Result<ProcStat> Stat(int64_t pid) const override {
    auto it = start_ticks.find(pid);
    if (it == start_ticks.end()) return NotFound("no process");
    ProcStat stat;
    stat.start_ticks = it->second;
    return stat;
  }
  Result<std::string> Environ(int64_t) const override { return std::string(); }
  Result<std::string> Cgroup(int64_t) const override { return std::string(); }
  std::map<int64_t, uint64_t> start_ticks;
};

// Records signals; answers `answer` to each.
class FakeSignaller final : public ProcessSignaller {
 public:
  Status Signal(int64_t pid, int signal_number) override {
    sent.emplace_back(pid, signal_number);
    return answer;
  }
  std::vector<std::pair<int64_t, int>> sent;
  Status answer = Status::Ok();
};

ProcessAccount Process(int64_t pid, ProcessClass process_class, uint64_t start_ticks = 100,
                       const std::string& allocation_id = "", const std::string& owner = "") {
  ProcessAccount process;
  process.pid = pid;
  process.process_class = process_class;
  process.start_ticks = start_ticks;
  process.allocation_id = allocation_id;
  process.owner = owner;
  process.reason = std::string(ProcessClassName(process_class)) + " because";
  return process;
}

std::vector<GpuAccount> OnOneGpu(std::vector<ProcessAccount> processes) {
  GpuAccount account;
  account.node_name = "n1";
  account.gpu_uuid = "GPU-0";
  account.processes = std::move(processes);
  return {account};
}

std::vector<std::string> Actions(const std::vector<EnforcementRecord>& records) {
  std::vector<std::string> out;
  for (const EnforcementRecord& record : records) {
    out.push_back(std::to_string(record.process.pid) + ":" + record.action);
  }
  return out;
}

using Strings = std::vector<std::string>;

TEST(EnforcerTest, WarnReportsEachEntryIntoAClassOnceAndSignalsNothing) {
  FakeProcs procs;
  FakeSignaller signaller;
  Enforcer enforcer(EnforcementPolicy{}, &procs, &signaller, /*own_pid=*/999);
  const auto accounts = OnOneGpu({Process(10, ProcessClass::kOverGrant, 100, "a", "alice"),
                                  Process(11, ProcessClass::kForeign),
                                  Process(12, ProcessClass::kEnded, 100, "b", "bob"),
                                  Process(13, ProcessClass::kWithinGrant, 100, "c", "carol")});
  EXPECT_EQ(Actions(enforcer.Apply(accounts, 0)), (Strings{"10:warn", "11:warn", "12:warn"}));
  EXPECT_TRUE(enforcer.Apply(accounts, 1000).empty()) << "still in the class: said once";
  // Back within its grant, then over it again: a new entry, a new warning.
  enforcer.Apply(OnOneGpu({Process(10, ProcessClass::kWithinGrant, 100, "a", "alice")}), 2000);
  EXPECT_EQ(Actions(enforcer.Apply(
                OnOneGpu({Process(10, ProcessClass::kOverGrant, 100, "a", "alice")}), 3000)),
            Strings{"10:warn"});
  EXPECT_TRUE(signaller.sent.empty());
}

TEST(EnforcerTest, TerminateSendsSigtermThenSigkillAfterTheGracePeriod) {
  FakeProcs procs;
  procs.start_ticks = {{10, 100}};
  FakeSignaller signaller;
  EnforcementPolicy policy;
  policy.ended_allocation = EnforcementAction::kTerminate;
  policy.grace_s = 5;
  Enforcer enforcer(policy, &procs, &signaller, 999);
  const auto accounts = OnOneGpu({Process(10, ProcessClass::kEnded, 100, "b", "bob")});
  EXPECT_EQ(Actions(enforcer.Apply(accounts, 0)), (Strings{"10:warn", "10:sigterm"}));
  EXPECT_TRUE(enforcer.Apply(accounts, 4999).empty()) << "within the grace period";
  EXPECT_EQ(Actions(enforcer.Apply(accounts, 5000)), Strings{"10:sigkill"});
  EXPECT_TRUE(enforcer.Apply(accounts, 9000).empty()) << "nothing more to send";
  EXPECT_EQ(signaller.sent, (std::vector<std::pair<int64_t, int>>{{10, SIGTERM}, {10, SIGKILL}}));
}

TEST(EnforcerTest, SafetyRulesSpareProcessesWithTheReason) {
  FakeProcs procs;
  procs.start_ticks = {{10, 555}, {1, 1}, {999, 7}, {20, 100}};
  FakeSignaller signaller;
  EnforcementPolicy policy;
  policy.foreign_process = EnforcementAction::kTerminate;
  Enforcer enforcer(policy, &procs, &signaller, /*own_pid=*/999);
  const auto records = enforcer.Apply(
      OnOneGpu({
          Process(10, ProcessClass::kForeign, 100),       // PID reused since accounting.
          Process(1, ProcessClass::kForeign, 1),          // init.
          Process(999, ProcessClass::kForeign, 7),        // gpurm itself.
          Process(30, ProcessClass::kForeign, 0),         // On another server.
          Process(20, ProcessClass::kForeign, 100, "x"),  // Another gpurm's allocation.
          Process(40, ProcessClass::kForeign, 100),       // Gone.
      }),
      0);
  std::map<int64_t, std::string> spared;
  for (const EnforcementRecord& record : records) {
    if (record.action == "spared") spared[record.process.pid] = record.reason;
  }
  EXPECT_NE(spared[10].find("now belongs to another process"), std::string::npos) << spared[10];
  EXPECT_NE(spared[1].find("never signalled"), std::string::npos);
  EXPECT_NE(spared[999].find("never signalled"), std::string::npos);
  EXPECT_NE(spared[30].find("another server"), std::string::npos);
  EXPECT_NE(spared[20].find("does not know"), std::string::npos);
  EXPECT_NE(spared[40].find("gone"), std::string::npos);
  EXPECT_TRUE(signaller.sent.empty());
}

TEST(EnforcerTest, ASignalTheDaemonMayNotSendIsReportedOnce) {
  FakeProcs procs;
  procs.start_ticks = {{10, 100}};
  FakeSignaller signaller;
  signaller.answer = Status(StatusCode::kPermissionDenied, "kill: Operation not permitted");
  EnforcementPolicy policy;
  policy.over_grant = EnforcementAction::kTerminate;
  policy.grace_s = 0;
  Enforcer enforcer(policy, &procs, &signaller, 999);
  const auto accounts = OnOneGpu({Process(10, ProcessClass::kOverGrant, 100, "a", "alice")});
  const auto first = enforcer.Apply(accounts, 0);
  ASSERT_EQ(Actions(first), (Strings{"10:warn", "10:spared"}));
  EXPECT_EQ(first[1].reason, "kill: Operation not permitted");
  EXPECT_TRUE(enforcer.Apply(accounts, 1000).empty());
  EXPECT_EQ(signaller.sent.size(), 1u);
}

TEST(EnforcerTest, IgnoredForeignProcessesAreNotEvenReported) {
  FakeProcs procs;
  FakeSignaller signaller;
  EnforcementPolicy policy;
  policy.foreign_process = EnforcementAction::kIgnore;
  Enforcer enforcer(policy, &procs, &signaller, 999);
  EXPECT_TRUE(enforcer.Apply(OnOneGpu({Process(11, ProcessClass::kForeign)}), 0).empty());
}

}  // namespace
}  // namespace gpurm
