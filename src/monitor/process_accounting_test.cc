#include "monitor/process_accounting.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

namespace gpurm {
namespace {

// A real child process: `sleep` with the given environment (optionally
// through an intermediate shell, so the variable is only on the parent).
class Child {
 public:
  // `environment`: NAME=value entries; `via_parent`: a shell carrying them
  // starts a sleep with an empty environment.
  explicit Child(std::vector<std::string> environment, bool via_parent = false) {
    int ready[2];
    if (::pipe(ready) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(ready[0]);
      std::vector<char*> env;
      for (std::string& entry : environment) env.push_back(entry.data());
      env.push_back(nullptr);
      if (via_parent) {
        // The shell (with the variable) forks `env -i sleep` (without it),
        // reports the grandchild's pid on the pipe, and waits.
        const std::string script =
            "/usr/bin/env -i /bin/sleep 600 & echo $! >&" + std::to_string(ready[1]) + "; wait";
        char* argv[] = {const_cast<char*>("/bin/sh"), const_cast<char*>("-c"),
                        const_cast<char*>(script.c_str()), nullptr};
        ::execve("/bin/sh", argv, env.data());
      } else {
        ::close(ready[1]);
        char* argv[] = {const_cast<char*>("/bin/sleep"), const_cast<char*>("600"), nullptr};
        ::execve("/bin/sleep", argv, env.data());
      }
      ::_exit(127);
    }
    ::close(ready[1]);
    if (via_parent) {
      char buffer[32] = {};
      ssize_t n = 0;
      size_t got = 0;
      while (got < sizeof(buffer) - 1 &&
             (n = ::read(ready[0], buffer + got, sizeof(buffer) - 1 - got)) > 0) {
        got += static_cast<size_t>(n);
        if (buffer[got - 1] == '\n') break;
      }
      gpu_pid_ = std::stoll(buffer);
    } else {
      gpu_pid_ = pid_;
    }
    std::string expected;  // The environment as /proc shows it: NUL-terminated entries.
    if (!via_parent) {
      for (const std::string& entry : environment) expected += entry + '\0';
    }
    WaitForExec(expected);
    ::close(ready[0]);
  }
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      if (gpu_pid_ != pid_) ::kill(static_cast<pid_t>(gpu_pid_), SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  // The process that "uses the GPU".
  int64_t pid() const { return gpu_pid_; }

 private:
  // Until the exec is complete its environ is its parent's, or empty: the
  // kernel names the process "sleep" before it places the new environment,
  // a window a loaded machine makes wide. Wait for both.
  void WaitForExec(const std::string& expected_environ) const {
    LinuxProcReader reader;
    for (;;) {
      Result<ProcStat> stat = reader.Stat(gpu_pid_);
      Result<std::string> environ = reader.Environ(gpu_pid_);
      if (stat.ok() && stat->command == "sleep" && environ.ok() && *environ == expected_environ) {
        return;
      }
      ::usleep(1000);
    }
  }
  pid_t pid_ = -1;
  int64_t gpu_pid_ = -1;
};

InventorySnapshot OneGpuWith(const std::vector<GpuProcess>& processes,
                             const std::string& uuid = "GPU-0") {
  InventorySnapshot snapshot;
  Node& node = snapshot.nodes.emplace_back();
  node.name = "n1";
  Gpu& gpu = node.gpus.emplace_back();
  gpu.uuid = uuid;
  gpu.memory_total_mib = 81920;
  gpu.processes = processes;
  return snapshot;
}

AccountedAllocation Granted(const std::string& id, const std::string& uuid, int64_t mib,
                            bool active = true) {
  AccountedAllocation allocation;
  allocation.id = id;
  allocation.owner = "alice";
  allocation.active = active;
  allocation.granted_mib[uuid] = mib;
  return allocation;
}

// A copy: the accounts are usually a temporary.
ProcessAccount Only(const std::vector<GpuAccount>& accounts) {
  EXPECT_EQ(accounts.size(), 1u);
  EXPECT_EQ(accounts.at(0).processes.size(), 1u);
  return accounts.at(0).processes.at(0);
}

TEST(EnvironValueTest, FindsTheExactName) {
  const std::string environ =
      std::string("A=1\0GPURM_ALLOCATION_ID_X=no\0GPURM_ALLOCATION_ID=a-1\0", 52);
  EXPECT_EQ(EnvironValue(environ, kAllocationIdVariable), "a-1");
  EXPECT_EQ(EnvironValue(environ, "B"), std::nullopt);
}

TEST(ProcessAccountingTest, ClassifiesRealChildProcesses) {
  Child within({"GPURM_ALLOCATION_ID=alloc-a"});
  Child over({"GPURM_ALLOCATION_ID=alloc-b"});
  Child foreign({"HOME=/tmp"});
  Child ended({"GPURM_ALLOCATION_ID=alloc-old"});
  Child elsewhere({"GPURM_ALLOCATION_ID=alloc-c"});
  const InventorySnapshot snapshot = OneGpuWith({{within.pid(), 1000},
                                                 {over.pid(), 3000},
                                                 {foreign.pid(), 500},
                                                 {ended.pid(), 700},
                                                 {elsewhere.pid(), 100}});
  const std::vector<AccountedAllocation> allocations = {
      Granted("alloc-a", "GPU-0", 2048), Granted("alloc-b", "GPU-0", 2048),
      Granted("alloc-old", "GPU-0", 2048, /*active=*/false), Granted("alloc-c", "GPU-9", 2048)};
  LinuxProcReader reader;
  ProcessAccountant accountant(&reader);
  const std::vector<GpuAccount> accounts = accountant.Account(snapshot, allocations);
  ASSERT_EQ(accounts.size(), 1u);
  const std::vector<ProcessAccount>& p = accounts[0].processes;
  ASSERT_EQ(p.size(), 5u);
  EXPECT_EQ(p[0].process_class, ProcessClass::kWithinGrant) << p[0].reason;
  EXPECT_EQ(p[0].allocation_id, "alloc-a");
  EXPECT_EQ(p[0].owner, "alice");
  EXPECT_EQ(p[0].command, "sleep");
  EXPECT_EQ(p[0].uid, static_cast<int64_t>(::getuid()));
  EXPECT_EQ(p[1].process_class, ProcessClass::kOverGrant) << p[1].reason;
  EXPECT_NE(p[1].reason.find("3000 MiB used of 2048 MiB granted"), std::string::npos);
  EXPECT_EQ(p[2].process_class, ProcessClass::kForeign) << p[2].reason;
  EXPECT_EQ(p[2].allocation_id, "");
  EXPECT_EQ(p[3].process_class, ProcessClass::kEnded) << p[3].reason;
  EXPECT_EQ(p[4].process_class, ProcessClass::kForeign) << p[4].reason;
  EXPECT_NE(p[4].reason.find("not granted this GPU"), std::string::npos);
  EXPECT_EQ(accounts[0].foreign_processes, 2);
  ASSERT_EQ(accounts[0].allocations.size(), 4u);
  EXPECT_EQ(accounts[0].allocations[1].allocation_id, "alloc-b");
  EXPECT_EQ(accounts[0].allocations[1].used_mib, 3000);
  EXPECT_EQ(accounts[0].allocations[1].granted_mib, 2048);
}

TEST(ProcessAccountingTest, AProcessWithoutTheVariableTakesItsAncestors) {
  Child job({"GPURM_ALLOCATION_ID=alloc-a"}, /*via_parent=*/true);
  LinuxProcReader reader;
  Result<std::string> own = reader.Environ(job.pid());
  ASSERT_TRUE(own.ok());
  ASSERT_EQ(EnvironValue(*own, kAllocationIdVariable), std::nullopt);
  ProcessAccountant accountant(&reader);
  const ProcessAccount& p =
      Only(accountant.Account(OneGpuWith({{job.pid(), 100}}), {Granted("alloc-a", "GPU-0", 200)}));
  EXPECT_EQ(p.allocation_id, "alloc-a");
  EXPECT_EQ(p.process_class, ProcessClass::kWithinGrant) << p.reason;
}

TEST(ProcessAccountingTest, AnExitedProcessIsUnknownWithTheReason) {
  pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  ASSERT_GT(pid, 0);
  ::waitpid(pid, nullptr, 0);
  LinuxProcReader reader;
  ProcessAccountant accountant(&reader);
  const ProcessAccount& p =
      Only(accountant.Account(OneGpuWith({{pid, 100}}), std::vector<AccountedAllocation>{}));
  EXPECT_EQ(p.process_class, ProcessClass::kUnknown);
  EXPECT_NE(p.reason.find("not visible"), std::string::npos) << p.reason;
}

// A node pulled from its agent: the agent found who each process is, and
// this daemon, which cannot read that machine's /proc, takes its word.
TEST(ProcessAccountingTest, ProcessesIdentifiedByTheirAgentAreNotLookedUpHere) {
  const auto identified = [](int64_t pid, int64_t mib, const std::string& allocation_id,
                             const std::string& unknown_reason = "") {
    GpuProcess process(pid, mib);
    process.identity.emplace();
    process.identity->command = "python";
    process.identity->uid = 1000;
    process.identity->allocation_id = allocation_id;
    process.identity->unknown_reason = unknown_reason;
    return process;
  };
  // Pids no process of this machine has: a lookup here would say "not visible".
  const InventorySnapshot snapshot =
      OneGpuWith({identified(999'999'001, 300, "alloc-a"), identified(999'999'002, 50, ""),
                  identified(999'999'003, 10, "", "permission denied")});
  LinuxProcReader reader;
  ProcessAccountant accountant(&reader);
  const std::vector<GpuAccount> accounts =
      accountant.Account(snapshot, {Granted("alloc-a", "GPU-0", 200)});
  ASSERT_EQ(accounts.size(), 1u);
  const std::vector<ProcessAccount>& p = accounts[0].processes;
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[0].process_class, ProcessClass::kOverGrant) << p[0].reason;
  EXPECT_EQ(p[0].command, "python");
  EXPECT_EQ(p[0].uid, 1000);
  EXPECT_EQ(p[1].process_class, ProcessClass::kForeign) << p[1].reason;
  EXPECT_EQ(p[2].process_class, ProcessClass::kUnknown);
  EXPECT_EQ(p[2].reason, "permission denied");
  EXPECT_EQ(accounts[0].foreign_processes, 1);
}

// What an allocation's own processes use, up to its grant, is not outside
// use; the excess over the grant and every other process is.
TEST(ProcessAccountingTest, ManagedUseCountsEachAllocationUpToItsGrant) {
  GpuAccount a;
  a.gpu_uuid = "GPU-a";
  a.allocations = {{.allocation_id = "within", .owner = "x", .used_mib = 300, .granted_mib = 500},
                   {.allocation_id = "over", .owner = "y", .used_mib = 900, .granted_mib = 400},
                   {.allocation_id = "elsewhere", .owner = "z", .used_mib = 50, .granted_mib = 0}};
  GpuAccount b;
  b.gpu_uuid = "GPU-b";
  b.foreign_processes = 2;
  const auto managed = ManagedUseByGpu({a, b});
  ASSERT_EQ(managed.count("GPU-a"), 1u);
  EXPECT_EQ(managed.at("GPU-a"), 300 + 400);
  EXPECT_EQ(managed.count("GPU-b"), 0u);
}

// A reader over a real process whose environment can be swapped or denied,
// for what real processes cannot show on demand: a reused PID and a daemon
// without the capability to read environments.
class ScriptedReader final : public ProcReader {
 public:
  Result<ProcStat> Stat(int64_t) const override {
    ProcStat stat;
    stat.parent_pid = 1;
    stat.start_ticks = start_ticks;
    stat.command = "python";
    return stat;
  }
  Result<std::string> Environ(int64_t pid) const override {
    ++environ_reads;
    if (denied) {
      return Status(StatusCode::kPermissionDenied,
                    "cannot read /proc/" + std::to_string(pid) + "/environ: Permission denied");
    }
    return environ;
  }
  Result<std::string> Cgroup(int64_t) const override { return cgroup; }
  uint64_t start_ticks = 100;
  std::string environ;
  std::string cgroup = "0::/user.slice/user-1000.slice/session-1.scope\n";
  bool denied = false;
  mutable int environ_reads = 0;
};

TEST(ProcessAccountingTest, PodUidsComeFromEitherCgroupDriver) {
  const std::string uid = "5f3c6d2e-8a1b-4c7d-9e0f-123456789abc";
  EXPECT_EQ(PodUidFromCgroup("0::/kubepods/burstable/pod" + uid +
                             "/0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c\n"),
            uid);
  std::string systemd_uid = uid;
  std::replace(systemd_uid.begin(), systemd_uid.end(), '-', '_');
  EXPECT_EQ(PodUidFromCgroup("0::/kubepods.slice/kubepods-besteffort.slice/"
                             "kubepods-besteffort-pod" +
                             systemd_uid + ".slice/cri-containerd-abc.scope\n"),
            uid);
  EXPECT_EQ(PodUidFromCgroup("12:memory:/kubepods/pod" + uid + "/abc\n"), uid);
  EXPECT_EQ(PodUidFromCgroup("0::/user.slice/user-1000.slice/session-1.scope\n"), std::nullopt);
  EXPECT_EQ(PodUidFromCgroup("0::/kubepods/burstable/podnot-a-uid/abc\n"), std::nullopt);
}

// Kubernetes mode: a process of a pod belongs to the pod's allocation even
// when its environment cannot be read.
TEST(ProcessAccountingTest, APodsProcessBelongsToThePodsAllocation) {
  ScriptedReader reader;
  reader.denied = true;
  const std::string uid = "5f3c6d2e-8a1b-4c7d-9e0f-123456789abc";
  reader.cgroup = "0::/kubepods/burstable/pod" + uid + "/0b1c2d3e\n";
  ProcessAccountant accountant(&reader, [&](const std::string& pod_uid) {
    return pod_uid == uid ? std::optional<std::string>("alloc-k") : std::nullopt;
  });
  const ProcessAccount& p =
      Only(accountant.Account(OneGpuWith({{4242, 100}}), {Granted("alloc-k", "GPU-0", 200)}));
  EXPECT_EQ(p.allocation_id, "alloc-k");
  EXPECT_EQ(p.process_class, ProcessClass::kWithinGrant) << p.reason;
  // Another pod, not gpurm's: no allocation, and the unreadable environment is the reason.
  ScriptedReader other;
  other.denied = true;
  other.cgroup = "0::/kubepods/burstable/pod0a3c6d2e-8a1b-4c7d-9e0f-123456789abc/x\n";
  ProcessAccountant other_accountant(&other, [&](const std::string& pod_uid) {
    return pod_uid == uid ? std::optional<std::string>("alloc-k") : std::nullopt;
  });
  const ProcessAccount& q =
      Only(other_accountant.Account(OneGpuWith({{4243, 100}}), {Granted("alloc-k", "GPU-0", 200)}));
  EXPECT_EQ(q.process_class, ProcessClass::kUnknown);
  EXPECT_NE(q.reason.find("CAP_SYS_PTRACE"), std::string::npos) << q.reason;
}

// A node agent has no pods to look in: it reports the pod its cgroup
// names, and the daemon that has the cluster's pods maps it.
TEST(ProcessAccountingTest, AnAgentReportsThePodAndTheLeaderMapsIt) {
  const std::string uid = "5f3c6d2e-8a1b-4c7d-9e0f-123456789abc";
  ScriptedReader reader;
  reader.denied = true;
  reader.cgroup = "0::/kubepods.slice/kubepods-pod" +
                  std::string("5f3c6d2e_8a1b_4c7d_9e0f_123456789abc") +
                  ".slice/cri-containerd-0b1c.scope\n";
  ProcessAccountant agent(&reader);
  const ProcessAccount& seen =
      Only(agent.Account(OneGpuWith({{4242, 100}}), std::vector<AccountedAllocation>()));
  EXPECT_EQ(seen.pod_uid, uid);
  EXPECT_EQ(seen.allocation_id, "");

  const auto from_agent = [](int64_t pid, const std::string& pod_uid) {
    GpuProcess process(pid, 150);
    process.identity.emplace();
    process.identity->command = "python";
    process.identity->pod_uid = pod_uid;
    process.identity->unknown_reason = "permission denied";
    return process;
  };
  LinuxProcReader local;
  ProcessAccountant leader(&local, [&](const std::string& pod_uid) {
    return pod_uid == uid ? std::optional<std::string>("alloc-k") : std::nullopt;
  });
  const std::vector<GpuAccount> accounts =
      leader.Account(OneGpuWith({from_agent(999'999'001, uid),
                                 from_agent(999'999'002, "0a3c6d2e-8a1b-4c7d-9e0f-123456789abc")}),
                     {Granted("alloc-k", "GPU-0", 200)});
  ASSERT_EQ(accounts.size(), 1u);
  const std::vector<ProcessAccount>& p = accounts[0].processes;
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].allocation_id, "alloc-k");
  EXPECT_EQ(p[0].process_class, ProcessClass::kWithinGrant) << p[0].reason;
  // A pod the leader knows of no allocation for; the agent could not read
  // its environment either, so it cannot be told apart from a foreign one.
  EXPECT_EQ(p[1].process_class, ProcessClass::kUnknown) << p[1].reason;
}

// Where the device plugin picks a pod's GPUs, a grant of one GPU of a node
// holds on whichever GPU of that node the job's processes run.
TEST(ProcessAccountingTest, AGrantHoldsOnAnyGpuOfANodeWhoseDevicePluginPicks) {
  Allocation allocation;
  allocation.id = "alloc-k";
  allocation.owner = "alice";
  allocation.state = AllocationState::kActive;
  allocation.grants = {{.node_name = "n1",
                        .gpu_index = 0,
                        .gpu_uuid = "k8s:n1:nvidia.com/gpu:0",
                        .memory_mib = 1000}};
  const AccountedAllocation accounted = AccountedFrom(allocation);
  EXPECT_EQ(accounted.granted_mib_per_gpu_on_node.at("n1"), 1000);

  LinuxProcReader reader;
  for (const bool device_plugin : {false, true}) {
    InventorySnapshot snapshot = OneGpuWith({{::getpid(), 600}}, "k8s:n1:nvidia.com/gpu:1");
    snapshot.nodes[0].device_plugin_assigns_gpus = device_plugin;
    snapshot.nodes[0].gpus[0].index = 1;
    // This test's own process, as if it held alloc-k.
    GpuProcess& process = snapshot.nodes[0].gpus[0].processes[0];
    process.identity.emplace();
    process.identity->allocation_id = "alloc-k";
    ProcessAccountant accountant(&reader);
    const std::vector<GpuAccount> accounts = accountant.Account(snapshot, {accounted});
    const ProcessAccount p = Only(accounts);
    if (device_plugin) {
      EXPECT_EQ(p.process_class, ProcessClass::kWithinGrant) << p.reason;
      ASSERT_EQ(accounts[0].allocations.size(), 1u);
      EXPECT_EQ(accounts[0].allocations[0].granted_mib, 1000);
    } else {
      EXPECT_EQ(p.process_class, ProcessClass::kForeign) << p.reason;
    }
  }
}

TEST(ProcessAccountingTest, AReusedPidIsANewProcess) {
  ScriptedReader reader;
  reader.environ = std::string("GPURM_ALLOCATION_ID=alloc-a\0", 28);
  ProcessAccountant accountant(&reader);
  const std::vector<AccountedAllocation> allocations = {Granted("alloc-a", "GPU-0", 200)};
  EXPECT_EQ(Only(accountant.Account(OneGpuWith({{4242, 100}}), allocations)).allocation_id,
            "alloc-a");
  // Same process next pass: remembered, not read again.
  const int reads = reader.environ_reads;
  EXPECT_EQ(Only(accountant.Account(OneGpuWith({{4242, 100}}), allocations)).allocation_id,
            "alloc-a");
  EXPECT_EQ(reader.environ_reads, reads);
  // The PID now names another process (another start time) without the variable.
  reader.start_ticks = 900;
  reader.environ = std::string("HOME=/root\0", 11);
  const ProcessAccount& reused = Only(accountant.Account(OneGpuWith({{4242, 100}}), allocations));
  EXPECT_EQ(reused.allocation_id, "");
  EXPECT_EQ(reused.process_class, ProcessClass::kForeign);
}

TEST(ProcessAccountingTest, AnUnreadableEnvironmentIsUnknownAndNamesTheCapability) {
  ScriptedReader reader;
  reader.denied = true;
  ProcessAccountant accountant(&reader);
  const ProcessAccount& p =
      Only(accountant.Account(OneGpuWith({{4242, 100}}), std::vector<AccountedAllocation>{}));
  EXPECT_EQ(p.process_class, ProcessClass::kUnknown);
  EXPECT_NE(p.reason.find("CAP_SYS_PTRACE"), std::string::npos) << p.reason;
  EXPECT_NE(p.reason.find("Permission denied"), std::string::npos) << p.reason;
}

TEST(ProcessEventsTest, AProcessEnteringChangingAndLeavingAClassIsAnEvent) {
  auto account = [](std::vector<std::pair<int64_t, ProcessClass>> processes) {
    GpuAccount gpu;
    gpu.node_name = "n1";
    gpu.gpu_uuid = "GPU-0";
    for (const auto& [pid, process_class] : processes) {
      ProcessAccount& p = gpu.processes.emplace_back();
      p.pid = pid;
      p.process_class = process_class;
      p.allocation_id = pid == 1 ? "alloc-a" : "";
      p.reason = "because";
    }
    return std::vector<GpuAccount>{gpu};
  };
  const InventorySnapshot snapshot = OneGpuWith({});
  const std::vector<GpuAccount> first =
      account({{1, ProcessClass::kWithinGrant}, {2, ProcessClass::kForeign}});
  // Same classes: nothing to say.
  EXPECT_TRUE(ProcessEvents(first, first, snapshot, 5).empty());
  const std::vector<GpuAccount> second =
      account({{1, ProcessClass::kOverGrant}, {3, ProcessClass::kForeign}});
  const std::vector<GpuEvent> events = ProcessEvents(first, second, snapshot, 5);
  ASSERT_EQ(events.size(), 3u);
  for (const GpuEvent& event : events) {
    EXPECT_EQ(event.type, GpuEventType::kProcess);
    EXPECT_EQ(event.gpu_uuid, "GPU-0");
    EXPECT_EQ(event.unix_ms, 5);
    ASSERT_TRUE(event.process.has_value());
  }
  EXPECT_EQ(events[0].process->pid, 1);
  EXPECT_EQ(events[0].process->previous_class, "within_grant");
  EXPECT_EQ(events[0].process->process_class, "over_grant");
  EXPECT_EQ(events[0].process->allocation_id, "alloc-a");
  EXPECT_EQ(events[1].process->pid, 3);
  EXPECT_EQ(events[1].process->previous_class, "");
  EXPECT_EQ(events[1].process->process_class, "foreign");
  EXPECT_EQ(events[2].process->pid, 2);
  EXPECT_EQ(events[2].process->previous_class, "foreign");
  EXPECT_EQ(events[2].process->process_class, "");
}

}  // namespace
}  // namespace gpurm
