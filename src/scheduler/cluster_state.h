// ClusterState: what is free on every GPU (and, where modelled, on every
// node's CPUs and host memory) once the active grants are subtracted from an
// inventory snapshot.
//
// Built once from (snapshot, grants) and then kept up to date incrementally
// with AddGrants/RemoveGrants/AddHostUse/RemoveHostUse, so a decision costs
// what the scheduler reads, not a rebuild of 80,000 GPUs. A state built fresh
// from the same (snapshot, grants) is equal to one updated step by step
// (tests check it); the daemon rebuilds from the ledger whenever the
// inventory publishes a new snapshot, so the ledger stays the source of truth.
//
// Nodes in the same condition (same GPU models, memory, topology, health and
// the same free capacity on every GPU) form one equivalence class: the
// scheduler evaluates a class once instead of every member, which is what
// keeps a decision on a 10,000-node cluster in tens of microseconds.
//
// Sharing: a shared grant holds a slice of a GPU's memory and the same
// proportion of its compute, in thousandths of a GPU ("milli-GPU", the unit
// of the Alibaba GPU trace): SliceMilli(memory). A request for gpu_milli m
// reserves SliceMibForMilli(m) of memory, whose SliceMilli is exactly m, so
// the ledger's (memory_mib, exclusive) grants are all the state needs.
//
// Thread-compatible: const methods may run concurrently; mutations need
// exclusive access (the manager holds its mutex).
#ifndef GPURM_SCHEDULER_CLUSTER_STATE_H_
#define GPURM_SCHEDULER_CLUSTER_STATE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/types.h"

namespace gpurm {

// The scheduler addresses GPUs of a node by an 8-bit position: GPUs past the
// 256th of one node are never offered.
inline constexpr size_t kMaxGpusPerNode = 256;

// Compute share (1..1000) held by a shared slice of `slice_mib` on a GPU of
// `total_mib`: the slice's proportion of memory, rounded up.
int SliceMilli(int64_t slice_mib, int64_t total_mib);
// Memory slice for a compute share of `milli` on a GPU of `total_mib`,
// rounded down so that slices of shares summing to 1000 never exceed the
// GPU. SliceMilli(SliceMibForMilli(m, t), t) == m whenever t > 1000 MiB.
int64_t SliceMibForMilli(int milli, int64_t total_mib);

// CPU (milli-cores) and host memory (MiB) of a node, or a demand on them.
// A node capacity of 0 means "not modelled": the daemon does not track host
// resources, the trace simulator does.
struct HostResources {
  int64_t cpu_milli = 0;
  int64_t memory_mib = 0;

  // As a node's capacity: could it ever hold `want` (a field not modelled
  // does not limit)?
  bool CouldHold(const HostResources& want) const {
    return (cpu_milli <= 0 || want.cpu_milli <= cpu_milli) &&
           (memory_mib <= 0 || want.memory_mib <= memory_mib);
  }
};

struct GpuAvailability {
  const Gpu* gpu = nullptr;
  // Memory a new grant may still reserve: total minus use by processes
  // outside gpurm minus shared reservations; 0 when held exclusively.
  int64_t free_mib = 0;
  bool exclusively_held = false;
  int shared_holders = 0;
  int64_t shared_reserved_mib = 0;
  // Compute share held by shared slices (sum of SliceMilli), 0..1000+.
  int shared_milli = 0;
  // Total minus outside use: what an exclusive grant gets.
  int64_t usable_mib = 0;
  // Memory used by processes outside gpurm's allocations (reported use
  // minus what gpurm's own processes hold); > 0 means someone else works
  // on this GPU.
  int64_t outside_mib = 0;
  // GPUs with the same model (canonical and raw name) share a type id.
  uint32_t type_id = 0;

  // Processes outside gpurm use this GPU.
  bool outside_use() const { return outside_mib > 0; }
  // No allocation holds any part of it.
  bool untouched() const { return !exclusively_held && shared_holders == 0; }
  // Compute share still free, 0..1000.
  int free_milli() const {
    if (exclusively_held) return 0;
    return shared_milli >= kMilliPerGpu ? 0 : kMilliPerGpu - shared_milli;
  }
};

struct NodeAvailability {
  const Node* node = nullptr;
  std::vector<GpuAvailability> gpus;  // Same order as node->gpus.
  HostResources host_capacity;        // Fields 0 = not modelled.
  HostResources host_used;

  int UntouchedGpuCount() const;
  bool host_modelled() const { return host_capacity.cpu_milli > 0 || host_capacity.memory_mib > 0; }
  // Free CPU / host memory; INT64_MAX when that resource is not modelled.
  int64_t free_cpu_milli() const;
  int64_t free_memory_mib() const;
};

// What a node (or a class of equal nodes) offers, aggregated once when the
// class is formed, so the scheduler can rule classes out and bound their
// scores without looking at each GPU.
struct NodeSummary {
  bool schedulable = false;
  int gpus = 0;
  int untouched = 0;         // Healthy GPUs no allocation touches.
  int shareable = 0;         // Healthy GPUs not held exclusively.
  int max_free_milli = 0;    // Over healthy GPUs not held exclusively.
  int64_t max_free_mib = 0;  // Over healthy GPUs not held exclusively.
  int64_t used_milli = 0;    // Sum of (1000 - free_milli) over all GPUs.
  int64_t type_id = -1;      // The GPUs' type id when all share one, else -1.
  HostResources host_capacity;
  HostResources host_used;

  static NodeSummary Of(const NodeAvailability& node);
};

class ClusterState {
 public:
  // Grants naming GPUs absent from the snapshot (a node that disappeared) are
  // ignored here; they stay in the ledger until released. `host_capacity` is
  // empty (host resources not modelled) or one entry per snapshot node.
  ClusterState(std::shared_ptr<const InventorySnapshot> snapshot,
               const std::vector<GpuGrant>& active_grants,
               std::vector<HostResources> host_capacity = {});

  const InventorySnapshot& snapshot() const { return *snapshot_; }
  const std::shared_ptr<const InventorySnapshot>& snapshot_ptr() const { return snapshot_; }
  const std::vector<NodeAvailability>& nodes() const { return nodes_; }
  std::optional<size_t> FindNode(std::string_view name) const;
  // (node index, GPU position) of a GPU by UUID.
  std::optional<std::pair<size_t, size_t>> FindGpu(std::string_view uuid) const;

  // Hold / free grants (as recorded in the ledger). Grants of GPUs not in the
  // snapshot are skipped. Removing a grant that is not held is a no-op for
  // exclusive grants and clamps at zero for shared ones.
  void AddGrants(const std::vector<GpuGrant>& grants);
  void RemoveGrants(const std::vector<GpuGrant>& grants);
  void AddHostUse(size_t node, const HostResources& use);
  void RemoveHostUse(size_t node, const HostResources& use);

  // Mean CPU and host memory per GPU over the nodes whose host resources are
  // modelled (zero when none are).
  const HostResources& host_per_gpu() const { return host_per_gpu_; }

  // Number of distinct GPU models; a GPU of each, by type id.
  size_t type_count() const { return type_representatives_.size(); }
  const Gpu& type_representative(uint32_t type_id) const { return *type_representatives_[type_id]; }
  // GPUs of a type in the snapshot (healthy or not, allocated or not).
  int64_t type_gpu_count(uint32_t type_id) const { return type_gpu_counts_[type_id]; }

  // Build kinds: nodes with the same static description (GPU models, memory,
  // topology, health, host capacity) are of one kind, numbered densely from
  // 0 in order of first appearance.
  size_t build_kind_count() const { return kind_first_node_.size(); }
  uint32_t build_kind_of(size_t node) const { return static_cast<uint32_t>(static_shape_[node]); }
  // The first node of a kind, and how many nodes it has.
  size_t build_kind_node(uint32_t kind) const { return kind_first_node_[kind]; }
  int64_t build_kind_size(uint32_t kind) const { return kind_sizes_[kind]; }

  // GPUs with memory in use by processes outside gpurm (fixed per snapshot).
  int64_t outside_use_gpu_count() const { return outside_use_gpus_; }

  // Increases with every mutation.
  uint64_t version() const { return version_; }

  // Equivalence classes of nodes (see the file comment). Class ids are
  // stable while a class has members.
  // Ids of classes with at least one member, in no particular order.
  const std::vector<uint32_t>& live_classes() const { return live_classes_; }
  // Members of a class (node indexes), ascending.
  const std::vector<uint32_t>& class_members(uint32_t class_id) const;
  const NodeSummary& class_summary(uint32_t class_id) const;
  uint32_t class_of(size_t node) const { return node_class_[node]; }

 private:
  struct ClassData {
    std::vector<int64_t> signature;
    std::vector<uint32_t> members;  // Ascending node indexes.
    size_t live_position = 0;       // Index in live_classes_ while non-empty.
    NodeSummary summary;            // Of any member (they are all equal).
  };
  struct SignatureHash {
    size_t operator()(const std::vector<int64_t>& key) const;
  };

  void ApplyGrant(const GpuGrant& grant, int sign);
  std::vector<int64_t> Signature(size_t node) const;
  void Classify(size_t node);    // Puts a node into the class of its signature.
  void Unclassify(size_t node);  // Takes it out of its current class.
  void Reclassify(size_t node);

  std::shared_ptr<const InventorySnapshot> snapshot_;
  std::vector<NodeAvailability> nodes_;
  std::unordered_map<std::string, std::pair<uint32_t, uint32_t>> gpu_by_uuid_;
  std::unordered_map<std::string, uint32_t> node_by_name_;
  std::vector<const Gpu*> type_representatives_;
  std::vector<int64_t> type_gpu_counts_;  // By type id.
  HostResources host_per_gpu_;
  std::vector<int64_t> static_shape_;    // Per node: interned static description.
  std::vector<size_t> kind_first_node_;  // By build kind (= static shape id).
  std::vector<int64_t> kind_sizes_;      // By build kind.
  std::vector<ClassData> classes_;
  std::vector<uint32_t> free_class_ids_;
  std::vector<uint32_t> live_classes_;
  std::unordered_map<std::vector<int64_t>, uint32_t, SignatureHash> class_by_signature_;
  std::vector<uint32_t> node_class_;
  uint64_t version_ = 0;
  int64_t outside_use_gpus_ = 0;
};

}  // namespace gpurm

#endif  // GPURM_SCHEDULER_CLUSTER_STATE_H_
