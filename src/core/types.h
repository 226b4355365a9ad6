// The domain types every module shares: GPUs, nodes, inventory snapshots,
// requests and allocations. Plain values, no I/O.
//
// Units: memory is integer MiB everywhere inside gpurm (what NVML reports);
// the API and the config speak GB (GiB = 1024 MiB), converted at the edges
// with MibFromGb/GbFromMib below. Ratios are 0..1.
#ifndef GPURM_CORE_TYPES_H_
#define GPURM_CORE_TYPES_H_

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/gpu_model.h"

namespace gpurm {

inline int64_t MibFromGb(double gb) { return std::llround(gb * 1024.0); }
inline double GbFromMib(int64_t mib) { return static_cast<double>(mib) / 1024.0; }

// Who a GPU process is, as the agent of its machine found it: a controller
// cannot read another machine's /proc, so agents report this beside each
// process (monitor/process_accounting.h says how it is found). (A struct of
// its own, not nested in GpuProcess: clang cannot default-construct a nested
// class with member initializers inside std::optional of its enclosing one.)
struct GpuProcessIdentity {
  std::string command;
  int64_t uid = -1;           // -1 when unknown.
  std::string allocation_id;  // GPURM_ALLOCATION_ID found; empty when none.
  // The Kubernetes pod its cgroup names, when it found no allocation id:
  // the daemon that knows the cluster's pods maps it to an allocation.
  std::string pod_uid;
  std::string unknown_reason;  // Set when the agent could not tell.

  bool operator==(const GpuProcessIdentity&) const = default;
};

// A compute process on a GPU as the driver reports it. Inside containers NVML
// reports host PIDs (the driver has no PID-namespace support), so a pid alone
// does not identify a process of a container.
struct GpuProcess {
  using Identity = GpuProcessIdentity;

  GpuProcess() = default;
  GpuProcess(int64_t pid_value, int64_t memory_used_mib_value)
      : pid(pid_value), memory_used_mib(memory_used_mib_value) {}

  int64_t pid = 0;
  int64_t memory_used_mib = 0;
  // Unset for a GPU of this daemon's own machine, whose /proc it reads itself.
  std::optional<Identity> identity;

  bool operator==(const GpuProcess&) const = default;
};

// One GPU as the inventory last saw it.
struct Gpu {
  int index = 0;           // Index on its node in PCI bus order (NVML's order).
  std::string uuid;        // Stable identity; unique within the cluster.
  std::string pci_bus_id;  // May be empty.
  GpuModel model;
  int64_t memory_total_mib = 0;
  // Memory in use as the device reports it (all processes).
  int64_t memory_used_mib = 0;
  // The part of memory_used_mib that belongs to processes of gpurm's own
  // allocations (known once processes are mapped to allocations); the rest
  // is outside use and counts against free memory.
  int64_t memory_used_by_managed_mib = 0;
  double utilization = 0.0;         // GPU busy ratio 0..1.
  double memory_utilization = 0.0;  // Memory controller busy ratio 0..1.
  std::optional<double> temperature_c;
  std::optional<double> power_w;
  std::optional<double> power_limit_w;
  bool healthy = true;
  std::string health_reason;  // Why unhealthy; empty when healthy.
  // GPUs sharing an NVLink/xGMI/HCCS island have the same group id; -1 = none.
  int nvlink_group = -1;
  int numa_node = -1;
  std::optional<int64_t> sm_clock_mhz;
  // Uncorrected (double-bit) ECC errors since the driver loaded; unset when
  // the GPU has no ECC or the vendor library does not report it.
  std::optional<int64_t> ecc_double_bit_errors;
  // The latest XID (NVIDIA's driver error code) reported for the GPU since
  // the daemon started, application XIDs included; 0 = none seen.
  int64_t last_xid = 0;
  bool mig_enabled = false;           // NVIDIA Multi-Instance GPU mode is on.
  std::vector<GpuProcess> processes;  // Compute processes; empty when unknown.
  // False when the device gives no utilization (MIG devices, and GPUs in MIG
  // mode): `utilization` and `memory_utilization` are then meaningless and
  // shown as unavailable, never as 0.
  bool utilization_available = true;

  // MIG: a GPU in MIG mode (mig_enabled) is never granted whole; its MIG
  // devices are the units gpurm grants. A MIG device is a Gpu of its own on
  // the node, listed after its parent, with the parent's `index`, a
  // "MIG-..." uuid, the memory the device reports and the parent's model
  // name followed by " MIG <profile>". gpurm reads the MIG layout and never
  // changes it.
  std::string mig_parent_uuid;  // Set on MIG devices only: the parent GPU's uuid.
  std::string mig_profile;      // MIG devices: the profile, e.g. "3g.40gb".

  bool operator==(const Gpu&) const = default;

  bool is_mig_device() const { return !mig_parent_uuid.empty(); }
  // A GPU the scheduler may grant: not a GPU in MIG mode (its MIG devices are).
  bool allocatable_unit() const { return is_mig_device() || !mig_enabled; }

  // Memory not used by processes outside gpurm's allocations.
  int64_t memory_free_of_outside_use_mib() const {
    const int64_t outside = memory_used_mib - memory_used_by_managed_mib;
    return memory_total_mib - (outside > 0 ? outside : 0);
  }
};

// The GPU type as gpurm shows it: the canonical model ("H100"), the raw name
// when unknown, and for a MIG device "<model> MIG <profile>" ("A100 MIG 3g.40gb").
std::string GpuTypeLabel(const Gpu& gpu);

struct Node {
  std::string name;
  std::string address;      // Host name or IP for distributed training; may be empty.
  bool schedulable = true;  // False when cordoned / NotReady / lost.
  // Why the node's agent is lost (it stopped answering the controller, or
  // answered nonsense); empty while it answers. A lost node keeps the GPUs
  // it last reported, is not schedulable, and its allocations are kept.
  std::string lost_reason;
  // True where the device plugin picks which of the node's GPUs a pod gets
  // when it starts (Kubernetes): a grant there names GPUs of the node by
  // count, so a job's processes may run on any GPU of the node.
  bool device_plugin_assigns_gpus = false;
  std::vector<Gpu> gpus;

  bool operator==(const Node&) const = default;

  bool lost() const { return !lost_reason.empty(); }
};

// A consistent view of the whole inventory at one moment.
struct InventorySnapshot {
  std::vector<Node> nodes;
  int64_t taken_unix_ms = 0;
  uint64_t generation = 0;  // Increases with every new snapshot.
};

// Thousandths of one GPU: gpu_milli's unit (1000 = a whole GPU).
inline constexpr int kMilliPerGpu = 1000;
// Bounds of single GpuRequest fields, enforced where requests are decoded
// (codec/request_codec.h) and validated (scheduler's ValidateRequest).
inline constexpr int kMaxGpuCount = 4096;
inline constexpr int64_t kMaxLeaseTtlS = 1'000'000'000;

// A GPU request: the training job's GPU needs (count, type, memory per GPU,
// framework options) plus gpurm's own placement and lease options. Every
// field is carried by the request codec (codec/request_codec.h), which fails
// to compile when a field is added here and not there.
struct GpuRequest {
  int gpu_count = 1;
  std::string gpu_type;    // As the user wrote it; empty = any type.
  double memory_gb = 0.0;  // Per GPU; 0 = no memory requirement.
  bool distributed_training = false;
  bool mixed_precision = false;
  double gpu_memory_fraction = 0.9;
  std::string node_name;  // Optional: only this node.
  // Allow a memory slice of a GPU shared with other shared allocations.
  // Requires memory_gb > 0; the slice reserves memory_gb on each GPU.
  bool shared = false;
  // Optional share of one GPU's compute in thousandths (1..999; GPU-sharing
  // pods of the Alibaba trace). Implies a shared slice of gpu_milli/1000 of
  // the GPU's memory on one GPU; 0 (or 1000) = whole GPUs.
  int gpu_milli = 0;
  std::string policy;       // Optional per-request placement policy name.
  int64_t lease_ttl_s = 0;  // 0 = no lease (held until released).

  bool operator==(const GpuRequest&) const = default;
};

// One GPU (or a slice of one) granted to an allocation.
struct GpuGrant {
  std::string node_name;
  int gpu_index = 0;
  std::string gpu_uuid;
  // Memory reserved on this GPU: the whole GPU's memory for exclusive grants,
  // the slice for shared ones.
  int64_t memory_mib = 0;
  bool exclusive = true;

  bool operator==(const GpuGrant&) const = default;
};

enum class AllocationState { kActive, kReleased, kExpired };
const char* AllocationStateName(AllocationState state);  // "active", "released", "expired"

struct Allocation {
  std::string id;
  std::string owner;
  GpuRequest request;
  std::vector<GpuGrant> grants;
  AllocationState state = AllocationState::kActive;
  int64_t created_unix_ms = 0;
  int64_t ended_unix_ms = 0;          // When released/expired; 0 while active.
  int64_t lease_expires_unix_ms = 0;  // 0 = no lease.
  std::string idempotency_key;        // May be empty.
  // Identifies the request that created it (GpuManager::RequestDigest), so a
  // retry under the same idempotency key with another request is told
  // apart; empty for allocations recorded before digests were kept.
  std::string request_digest;

  bool operator==(const Allocation&) const = default;

  // Distinct node names in grant order.
  std::vector<std::string> NodeNames() const;
};

}  // namespace gpurm

#endif  // GPURM_CORE_TYPES_H_
