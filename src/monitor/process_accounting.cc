#include "monitor/process_accounting.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <utility>

#include "monitor/change_detector.h"

namespace gpurm {
namespace {

// Ancestors looked at for GPURM_ALLOCATION_ID before giving up.
constexpr int kMaxAncestors = 32;

Result<std::string> ReadWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int error = errno;
    if (error == EACCES || error == EPERM) {
      return Status(StatusCode::kPermissionDenied,
                    "cannot read " + path + ": " + std::strerror(error));
    }
    return NotFound("cannot read " + path + ": " + std::strerror(error));
  }
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) {
    return Status(StatusCode::kPermissionDenied, "cannot read " + path);
  }
  return text;
}

}  // namespace

Result<ProcStat> LinuxProcReader::Stat(int64_t pid) const {
  const std::string dir = root_ + "/" + std::to_string(pid);
  Result<std::string> stat = ReadWhole(dir + "/stat");
  if (!stat.ok()) return NotFound("process " + std::to_string(pid) + " is gone");
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
  const size_t open = stat->find('(');
  const size_t close = stat->rfind(')');
  if (open == std::string::npos || close == std::string::npos || close < open) {
    return Internal("unreadable " + dir + "/stat");
  }
  ProcStat result;
  result.command = stat->substr(open + 1, close - open - 1);
  std::istringstream fields(stat->substr(close + 1));
  std::string field;
  // After comm: field 3 (state) .. field 22 (starttime).
  for (int number = 3; number <= 22 && fields >> field; ++number) {
    if (number == 4) result.parent_pid = std::stoll(field);
    if (number == 22) result.start_ticks = std::stoull(field);
  }
  // /proc/<pid> belongs to the process's effective uid: one stat, no read.
  struct stat info {};
  if (::stat(dir.c_str(), &info) == 0) result.uid = static_cast<int64_t>(info.st_uid);
  return result;
}

Result<std::string> LinuxProcReader::Environ(int64_t pid) const {
  return ReadWhole(root_ + "/" + std::to_string(pid) + "/environ");
}

Result<std::string> LinuxProcReader::Cgroup(int64_t pid) const {
  return ReadWhole(root_ + "/" + std::to_string(pid) + "/cgroup");
}

std::optional<std::string> PodUidFromCgroup(const std::string& cgroup) {
  // The last "pod" followed by a UID (36 characters, hex and - or _) on a
  // kubepods path.
  if (cgroup.find("kubepods") == std::string::npos) return std::nullopt;
  constexpr size_t kUidLength = 36;
  for (size_t at = cgroup.rfind("pod"); at != std::string::npos;
       at = at == 0 ? std::string::npos : cgroup.rfind("pod", at - 1)) {
    if (at + 3 + kUidLength > cgroup.size()) continue;
    std::string uid = cgroup.substr(at + 3, kUidLength);
    bool well_formed = true;
    for (size_t i = 0; i < uid.size(); ++i) {
      char& c = uid[i];
      if (c == '_') c = '-';
      const bool dash_place = i == 8 || i == 13 || i == 18 || i == 23;
      well_formed = well_formed &&
                    (dash_place ? c == '-' : std::isxdigit(static_cast<unsigned char>(c)) != 0);
    }
    if (well_formed) return uid;
  }
  return std::nullopt;
}

std::optional<std::string> EnvironValue(const std::string& environ, const std::string& name) {
  const std::string prefix = name + "=";
  size_t start = 0;
  while (start < environ.size()) {
    size_t end = environ.find('\0', start);
    if (end == std::string::npos) end = environ.size();
    if (environ.compare(start, prefix.size(), prefix) == 0) {
      return environ.substr(start + prefix.size(), end - start - prefix.size());
    }
    start = end + 1;
  }
  return std::nullopt;
}

const char* ProcessClassName(ProcessClass value) {
  switch (value) {
    case ProcessClass::kWithinGrant:
      return "within_grant";
    case ProcessClass::kOverGrant:
      return "over_grant";
    case ProcessClass::kForeign:
      return "foreign";
    case ProcessClass::kEnded:
      return "ended";
    case ProcessClass::kUnknown:
      return "unknown";
  }
  return "unknown";
}

std::optional<int64_t> AccountedAllocation::GrantedOn(const Node& node, const Gpu& gpu) const {
  if (auto granted = granted_mib.find(gpu.uuid); granted != granted_mib.end()) {
    return granted->second;
  }
  if (node.device_plugin_assigns_gpus) {
    if (auto granted = granted_mib_per_gpu_on_node.find(node.name);
        granted != granted_mib_per_gpu_on_node.end()) {
      return granted->second;
    }
  }
  return std::nullopt;
}

AccountedAllocation AccountedFrom(const Allocation& allocation) {
  AccountedAllocation accounted;
  accounted.id = allocation.id;
  accounted.owner = allocation.owner;
  accounted.active = allocation.state == AllocationState::kActive;
  for (const GpuGrant& grant : allocation.grants) {
    accounted.granted_mib[grant.gpu_uuid] += grant.memory_mib;
  }
  for (const GpuGrant& grant : allocation.grants) {
    int64_t& most = accounted.granted_mib_per_gpu_on_node[grant.node_name];
    most = std::max(most, accounted.granted_mib[grant.gpu_uuid]);
  }
  return accounted;
}

std::optional<std::string> ProcessAccountant::AllocationOfPod(const std::string& pod_uid) const {
  return pod_allocation_ ? pod_allocation_(pod_uid) : std::nullopt;
}

ProcessAccountant::Found ProcessAccountant::Resolve(int64_t pid, uint64_t start_ticks,
                                                    int64_t parent_pid) {
  if (auto it = cache_.find(pid); it != cache_.end() && it->second.start_ticks == start_ticks) {
    return it->second;
  }
  Found found;
  found.start_ticks = start_ticks;
  std::string first_error;
  int64_t current = pid;
  int64_t parent = parent_pid;
  for (int depth = 0; depth <= kMaxAncestors && current > 1; ++depth) {
    Result<std::string> environ = reader_->Environ(current);
    if (environ.ok()) {
      if (std::optional<std::string> id = EnvironValue(*environ, kAllocationIdVariable)) {
        found.allocation_id = *id;
        first_error.clear();
        break;
      }
    } else if (first_error.empty() && environ.status().code() == StatusCode::kPermissionDenied) {
      first_error =
          environ.status().message() + " (reading another user's environment needs CAP_SYS_PTRACE)";
    }
    if (depth == 0) {
      current = parent;
      continue;
    }
    Result<ProcStat> stat = reader_->Stat(current);
    if (!stat.ok()) break;
    current = stat->parent_pid;
  }
  if (found.allocation_id.empty()) {
    // A pod's process: its cgroup names the pod, the pod its allocation.
    // Without the cluster's pods (a node agent) the pod is reported for the
    // daemon that has them.
    Result<std::string> cgroup = reader_->Cgroup(pid);
    if (std::optional<std::string> uid = cgroup.ok() ? PodUidFromCgroup(*cgroup) : std::nullopt) {
      found.pod_uid = *uid;
      if (std::optional<std::string> id = AllocationOfPod(*uid)) found.allocation_id = *id;
    }
  }
  found.error = found.allocation_id.empty() ? first_error : "";
  // Only a definite answer is remembered: an unreadable environment may be
  // readable after a capability is granted.
  if (found.error.empty()) cache_[pid] = found;
  return found;
}

std::vector<GpuAccount> ProcessAccountant::Account(
    const InventorySnapshot& snapshot, const std::vector<AccountedAllocation>& allocations) {
  return Account(snapshot, [&allocations](const std::string& id) {
    std::optional<AccountedAllocation> found;
    for (const AccountedAllocation& allocation : allocations) {
      if (allocation.id == id) found = allocation;
    }
    return found;
  });
}

std::unordered_map<std::string, int64_t> ManagedUseByGpu(const std::vector<GpuAccount>& accounts) {
  std::unordered_map<std::string, int64_t> managed;
  for (const GpuAccount& account : accounts) {
    for (const GpuAccount::AllocationUse& use : account.allocations) {
      if (use.granted_mib > 0) managed[account.gpu_uuid] += std::min(use.used_mib, use.granted_mib);
    }
  }
  return managed;
}

const GpuAccount* ProcessAccountBook::Entry::Find(const std::string& uuid) const {
  for (const GpuAccount& gpu : gpus) {
    if (gpu.gpu_uuid == uuid) return &gpu;
  }
  return nullptr;
}

void ProcessAccountBook::Publish(std::vector<GpuAccount> gpus, int64_t unix_ms) {
  auto entry = std::make_shared<Entry>();
  entry->unix_ms = unix_ms;
  entry->gpus = std::move(gpus);
  std::lock_guard<std::mutex> lock(mutex_);
  latest_ = std::move(entry);
}

std::shared_ptr<const ProcessAccountBook::Entry> ProcessAccountBook::Latest() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return latest_;
}

std::vector<GpuAccount> ProcessAccountant::Account(const InventorySnapshot& snapshot,
                                                   const AllocationLookup& lookup) {
  // Allocations asked for in this pass (nullopt: unknown).
  std::map<std::string, std::optional<AccountedAllocation>> known;
  auto find = [&](const std::string& id) -> const AccountedAllocation* {
    auto it = known.find(id);
    if (it == known.end()) it = known.emplace(id, lookup(id)).first;
    return it->second ? &*it->second : nullptr;
  };
  std::vector<GpuAccount> accounts;
  std::unordered_map<int64_t, Found> seen;  // Pids of this pass (a pid may use several GPUs).
  for (const Node& node : snapshot.nodes) {
    for (const Gpu& gpu : node.gpus) {
      if (gpu.processes.empty()) continue;
      GpuAccount& account = accounts.emplace_back();
      account.node_name = node.name;
      account.gpu_uuid = gpu.uuid;
      account.gpu_index = gpu.index;
      for (const GpuProcess& reported : gpu.processes) {
        ProcessAccount& process = account.processes.emplace_back();
        process.pid = reported.pid;
        process.memory_used_mib = reported.memory_used_mib;
        Found found;
        if (reported.identity) {
          // Found by the agent of the process's machine, whose /proc this
          // daemon cannot read.
          process.command = reported.identity->command;
          process.uid = reported.identity->uid;
          found.allocation_id = reported.identity->allocation_id;
          found.pod_uid = reported.identity->pod_uid;
          found.error = reported.identity->unknown_reason;
          if (found.allocation_id.empty() && !found.pod_uid.empty()) {
            if (std::optional<std::string> id = AllocationOfPod(found.pod_uid)) {
              found.allocation_id = *id;
              found.error.clear();
            }
          }
        } else {
          Result<ProcStat> stat = reader_->Stat(reported.pid);
          if (!stat.ok()) {
            process.process_class = ProcessClass::kUnknown;
            process.reason = "process " + std::to_string(reported.pid) +
                             " is not visible in this daemon's /proc (exited, or in another PID "
                             "namespace)";
            continue;
          }
          process.command = stat->command;
          process.uid = stat->uid;
          process.start_ticks = stat->start_ticks;
          auto cached = seen.find(reported.pid);
          found = cached != seen.end() ? cached->second
                                       : Resolve(reported.pid, stat->start_ticks, stat->parent_pid);
          seen[reported.pid] = found;
        }
        process.allocation_id = found.allocation_id;
        process.pod_uid = found.pod_uid;
        if (found.allocation_id.empty()) {
          if (!found.error.empty()) {
            process.process_class = ProcessClass::kUnknown;
            process.reason = found.error;
          } else {
            process.process_class = ProcessClass::kForeign;
            process.reason = found.pod_uid.empty()
                                 ? "no " + std::string(kAllocationIdVariable) +
                                       " in its environment or its ancestors'"
                                 : "pod " + found.pod_uid + " is not a pod of gpurm's Jobs";
          }
          continue;
        }
        const AccountedAllocation* allocation = find(found.allocation_id);
        if (allocation == nullptr) {
          process.process_class = ProcessClass::kForeign;
          process.reason = "allocation " + found.allocation_id + " is unknown to this daemon";
          continue;
        }
        process.owner = allocation->owner;
        if (!allocation->active) {
          process.process_class = ProcessClass::kEnded;
          process.reason = "allocation " + found.allocation_id + " was released or expired";
          continue;
        }
        if (!allocation->GrantedOn(node, gpu)) {
          process.process_class = ProcessClass::kForeign;
          process.reason = "allocation " + found.allocation_id + " was not granted this GPU";
          continue;
        }
        process.process_class = ProcessClass::kWithinGrant;  // Settled below.
      }
      // Memory per allocation on this GPU, then within or over the grant.
      for (const ProcessAccount& process : account.processes) {
        if (process.allocation_id.empty()) continue;
        auto use = std::find_if(account.allocations.begin(), account.allocations.end(),
                                [&](const GpuAccount::AllocationUse& u) {
                                  return u.allocation_id == process.allocation_id;
                                });
        if (use == account.allocations.end()) {
          GpuAccount::AllocationUse& added = account.allocations.emplace_back();
          added.allocation_id = process.allocation_id;
          added.owner = process.owner;
          if (const AccountedAllocation* a = find(process.allocation_id); a && a->active) {
            added.granted_mib = a->GrantedOn(node, gpu).value_or(0);
          }
          use = account.allocations.end() - 1;
        }
        use->used_mib += process.memory_used_mib;
      }
      for (ProcessAccount& process : account.processes) {
        if (process.process_class == ProcessClass::kForeign) ++account.foreign_processes;
        if (process.process_class != ProcessClass::kWithinGrant) continue;
        for (const GpuAccount::AllocationUse& use : account.allocations) {
          if (use.allocation_id != process.allocation_id) continue;
          const std::string amounts = std::to_string(use.used_mib) + " MiB used of " +
                                      std::to_string(use.granted_mib) + " MiB granted on this GPU";
          if (use.used_mib > use.granted_mib) {
            process.process_class = ProcessClass::kOverGrant;
            process.reason = "allocation " + use.allocation_id + ": " + amounts;
          } else {
            process.reason = "allocation " + use.allocation_id + ": " + amounts;
          }
        }
      }
    }
  }
  // Forget processes that no GPU reports any more.
  for (auto it = cache_.begin(); it != cache_.end();) {
    it = seen.count(it->first) ? std::next(it) : cache_.erase(it);
  }
  return accounts;
}

std::vector<GpuEvent> ProcessEvents(const std::vector<GpuAccount>& before,
                                    const std::vector<GpuAccount>& after,
                                    const InventorySnapshot& snapshot, int64_t unix_ms) {
  using Key = std::pair<std::string, int64_t>;  // (GPU uuid, pid).
  struct Seen {
    const GpuAccount* gpu = nullptr;
    const ProcessAccount* process = nullptr;
  };
  auto index = [](const std::vector<GpuAccount>& accounts) {
    std::map<Key, Seen> seen;
    for (const GpuAccount& gpu : accounts) {
      for (const ProcessAccount& process : gpu.processes) {
        seen[{gpu.gpu_uuid, process.pid}] = Seen{&gpu, &process};
      }
    }
    return seen;
  };
  const std::map<Key, Seen> old_seen = index(before);
  const std::map<Key, Seen> new_seen = index(after);
  std::map<std::string, const Gpu*> gpus;
  for (const Node& node : snapshot.nodes) {
    for (const Gpu& gpu : node.gpus) gpus[gpu.uuid] = &gpu;
  }
  std::vector<GpuEvent> events;
  auto emit = [&](const Seen& where, const ProcessAccount& process, const std::string& now_class,
                  const std::string& previous_class) {
    GpuEvent& event = events.emplace_back();
    event.unix_ms = unix_ms;
    event.type = GpuEventType::kProcess;
    event.node_name = where.gpu->node_name;
    event.gpu_index = where.gpu->gpu_index;
    event.gpu_uuid = where.gpu->gpu_uuid;
    if (auto gpu = gpus.find(where.gpu->gpu_uuid); gpu != gpus.end()) {
      event.model = gpu->second->model.raw_name;
      event.current = ReadingOf(*gpu->second);
    }
    event.changed = {"process"};
    ProcessTransition& transition = event.process.emplace();
    transition.pid = process.pid;
    transition.command = process.command;
    transition.allocation_id = process.allocation_id;
    transition.owner = process.owner;
    transition.memory_used_mib = process.memory_used_mib;
    transition.process_class = now_class;
    transition.previous_class = previous_class;
    transition.reason = now_class.empty() ? "no longer on the GPU" : process.reason;
  };
  for (const auto& [key, now] : new_seen) {
    const std::string now_class = ProcessClassName(now.process->process_class);
    auto old = old_seen.find(key);
    if (old == old_seen.end()) {
      emit(now, *now.process, now_class, "");
    } else if (old->second.process->process_class != now.process->process_class) {
      emit(now, *now.process, now_class, ProcessClassName(old->second.process->process_class));
      // A process that can no longer be told keeps the allocation it had.
      ProcessTransition& transition = *events.back().process;
      if (transition.allocation_id.empty()) {
        transition.allocation_id = old->second.process->allocation_id;
        transition.owner = old->second.process->owner;
      }
      if (transition.command.empty()) transition.command = old->second.process->command;
    }
  }
  for (const auto& [key, old] : old_seen) {
    if (new_seen.count(key) == 0) {
      emit(old, *old.process, "", ProcessClassName(old.process->process_class));
    }
  }
  return events;
}

}  // namespace gpurm
