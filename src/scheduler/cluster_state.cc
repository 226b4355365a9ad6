#include "scheduler/cluster_state.h"

#include <algorithm>
#include <climits>
#include <string>
#include <utility>

namespace gpurm {

int SliceMilli(int64_t slice_mib, int64_t total_mib) {
  if (total_mib <= 0 || slice_mib >= total_mib) return kMilliPerGpu;
  if (slice_mib <= 0) return 0;
  const int64_t milli = (slice_mib * kMilliPerGpu + total_mib - 1) / total_mib;
  return static_cast<int>(std::clamp<int64_t>(milli, 1, kMilliPerGpu));
}

int64_t SliceMibForMilli(int milli, int64_t total_mib) {
  if (total_mib <= 0 || milli <= 0) return 0;
  return static_cast<int64_t>(milli) * total_mib / kMilliPerGpu;
}

NodeSummary NodeSummary::Of(const NodeAvailability& node) {
  NodeSummary summary;
  summary.schedulable = node.node->schedulable;
  summary.gpus = static_cast<int>(node.gpus.size());
  summary.host_capacity = node.host_capacity;
  summary.host_used = node.host_used;
  bool mixed = false;
  for (const GpuAvailability& g : node.gpus) {
    summary.used_milli += kMilliPerGpu - g.free_milli();
    mixed = mixed || g.type_id != node.gpus.front().type_id;
    if (!g.gpu->healthy || g.exclusively_held || !g.gpu->allocatable_unit()) continue;
    ++summary.shareable;
    if (g.untouched()) ++summary.untouched;
    summary.max_free_milli = std::max(summary.max_free_milli, g.free_milli());
    summary.max_free_mib = std::max(summary.max_free_mib, g.free_mib);
  }
  if (!node.gpus.empty() && !mixed) summary.type_id = node.gpus.front().type_id;
  return summary;
}

int NodeAvailability::UntouchedGpuCount() const {
  return static_cast<int>(std::count_if(gpus.begin(), gpus.end(),
                                        [](const GpuAvailability& g) { return g.untouched(); }));
}

int64_t NodeAvailability::free_cpu_milli() const {
  if (host_capacity.cpu_milli <= 0) return INT64_MAX;
  return std::max<int64_t>(0, host_capacity.cpu_milli - host_used.cpu_milli);
}

int64_t NodeAvailability::free_memory_mib() const {
  if (host_capacity.memory_mib <= 0) return INT64_MAX;
  return std::max<int64_t>(0, host_capacity.memory_mib - host_used.memory_mib);
}

size_t ClusterState::SignatureHash::operator()(const std::vector<int64_t>& key) const {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (int64_t value : key) {
    hash ^= static_cast<uint64_t>(value) + 0x9e3779b97f4a7c15ULL + (hash << 6) + (hash >> 2);
    hash *= 0x100000001b3ULL;
  }
  return static_cast<size_t>(hash);
}

ClusterState::ClusterState(std::shared_ptr<const InventorySnapshot> snapshot,
                           const std::vector<GpuGrant>& active_grants,
                           std::vector<HostResources> host_capacity)
    : snapshot_(std::move(snapshot)) {
  const size_t node_count = snapshot_->nodes.size();
  nodes_.reserve(node_count);
  node_by_name_.reserve(node_count);
  // Interned static description of each node: everything a filter or score
  // reads that does not change with allocations.
  std::unordered_map<std::string, int64_t> shapes;
  std::unordered_map<std::string, uint32_t> types;
  static_shape_.reserve(node_count);
  for (size_t n = 0; n < node_count; ++n) {
    const Node& node = snapshot_->nodes[n];
    NodeAvailability& availability = nodes_.emplace_back();
    availability.node = &node;
    if (n < host_capacity.size()) availability.host_capacity = host_capacity[n];
    availability.gpus.reserve(node.gpus.size());
    std::string shape = node.schedulable ? "s" : "u";
    shape += std::to_string(availability.host_capacity.cpu_milli) + "/" +
             std::to_string(availability.host_capacity.memory_mib);
    for (size_t i = 0; i < node.gpus.size(); ++i) {
      const Gpu& gpu = node.gpus[i];
      GpuAvailability& g = availability.gpus.emplace_back();
      g.gpu = &gpu;
      g.usable_mib = std::max<int64_t>(0, gpu.memory_free_of_outside_use_mib());
      g.free_mib = g.usable_mib;
      g.outside_mib = std::max<int64_t>(0, gpu.memory_used_mib - gpu.memory_used_by_managed_mib);
      if (g.outside_mib > 0) ++outside_use_gpus_;
      // The reported size is part of the type: a request can name it ("A100-40GB").
      // MIG devices are types of their own, whatever their names say.
      auto [type, inserted] = types.emplace(gpu.model.canonical + "\x1f" + gpu.model.raw_name +
                                                "\x1f" + std::to_string(gpu.memory_total_mib) +
                                                (gpu.is_mig_device() ? "\x1fmig" : ""),
                                            static_cast<uint32_t>(types.size()));
      if (inserted) {
        type_representatives_.push_back(&gpu);
        type_gpu_counts_.push_back(0);
      }
      g.type_id = type->second;
      ++type_gpu_counts_[g.type_id];
      shape += "|" + gpu.model.canonical + "\x1f" + gpu.model.raw_name + "\x1f" +
               std::to_string(gpu.memory_total_mib) + "\x1f" + (gpu.healthy ? "h" : "x") +
               (gpu.allocatable_unit() ? "" : "m") + (gpu.is_mig_device() ? "d" : "") +
               std::to_string(gpu.nvlink_group) + "\x1f" + std::to_string(gpu.numa_node);
      gpu_by_uuid_.emplace(gpu.uuid,
                           std::make_pair(static_cast<uint32_t>(n), static_cast<uint32_t>(i)));
    }
    auto [kind, new_kind] = shapes.emplace(shape, static_cast<int64_t>(shapes.size()));
    static_shape_.push_back(kind->second);
    if (new_kind) {
      kind_first_node_.push_back(n);
      kind_sizes_.push_back(0);
    }
    ++kind_sizes_[static_cast<size_t>(kind->second)];
    node_by_name_.emplace(node.name, static_cast<uint32_t>(n));
  }
  HostResources host_total;
  int64_t modelled_gpus = 0;
  for (const NodeAvailability& node : nodes_) {
    if (!node.host_modelled()) continue;
    host_total.cpu_milli += node.host_capacity.cpu_milli;
    host_total.memory_mib += node.host_capacity.memory_mib;
    modelled_gpus += static_cast<int64_t>(node.gpus.size());
  }
  if (modelled_gpus > 0) {
    host_per_gpu_ = {host_total.cpu_milli / modelled_gpus, host_total.memory_mib / modelled_gpus};
  }
  for (const GpuGrant& grant : active_grants) ApplyGrant(grant, +1);
  node_class_.assign(node_count, 0);
  for (size_t n = 0; n < node_count; ++n) Classify(n);
}

std::optional<size_t> ClusterState::FindNode(std::string_view name) const {
  auto it = node_by_name_.find(std::string(name));
  if (it == node_by_name_.end()) return std::nullopt;
  return it->second;
}

std::optional<std::pair<size_t, size_t>> ClusterState::FindGpu(std::string_view uuid) const {
  auto it = gpu_by_uuid_.find(std::string(uuid));
  if (it == gpu_by_uuid_.end()) return std::nullopt;
  return std::make_pair<size_t, size_t>(it->second.first, it->second.second);
}

const std::vector<uint32_t>& ClusterState::class_members(uint32_t class_id) const {
  return classes_[class_id].members;
}

const NodeSummary& ClusterState::class_summary(uint32_t class_id) const {
  return classes_[class_id].summary;
}

void ClusterState::ApplyGrant(const GpuGrant& grant, int sign) {
  auto it = gpu_by_uuid_.find(grant.gpu_uuid);
  if (it == gpu_by_uuid_.end()) return;
  GpuAvailability& g = nodes_[it->second.first].gpus[it->second.second];
  if (grant.exclusive) {
    g.exclusively_held = sign > 0;
  } else {
    const int milli = SliceMilli(grant.memory_mib, g.gpu->memory_total_mib);
    g.shared_holders = std::max(0, g.shared_holders + sign);
    g.shared_reserved_mib = std::max<int64_t>(0, g.shared_reserved_mib + sign * grant.memory_mib);
    g.shared_milli = std::max(0, g.shared_milli + sign * milli);
    if (g.shared_holders == 0) {
      g.shared_reserved_mib = 0;
      g.shared_milli = 0;
    }
  }
  g.free_mib = g.exclusively_held ? 0 : std::max<int64_t>(0, g.usable_mib - g.shared_reserved_mib);
}

void ClusterState::AddGrants(const std::vector<GpuGrant>& grants) {
  std::vector<uint32_t> touched;
  for (const GpuGrant& grant : grants) {
    ApplyGrant(grant, +1);
    if (auto it = gpu_by_uuid_.find(grant.gpu_uuid); it != gpu_by_uuid_.end()) {
      touched.push_back(it->second.first);
    }
  }
  std::sort(touched.begin(), touched.end());
  touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
  for (uint32_t n : touched) Reclassify(n);
  ++version_;
}

void ClusterState::RemoveGrants(const std::vector<GpuGrant>& grants) {
  std::vector<uint32_t> touched;
  for (const GpuGrant& grant : grants) {
    ApplyGrant(grant, -1);
    if (auto it = gpu_by_uuid_.find(grant.gpu_uuid); it != gpu_by_uuid_.end()) {
      touched.push_back(it->second.first);
    }
  }
  std::sort(touched.begin(), touched.end());
  touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
  for (uint32_t n : touched) Reclassify(n);
  ++version_;
}

void ClusterState::AddHostUse(size_t node, const HostResources& use) {
  nodes_[node].host_used.cpu_milli += use.cpu_milli;
  nodes_[node].host_used.memory_mib += use.memory_mib;
  Reclassify(node);
  ++version_;
}

void ClusterState::RemoveHostUse(size_t node, const HostResources& use) {
  HostResources& used = nodes_[node].host_used;
  used.cpu_milli = std::max<int64_t>(0, used.cpu_milli - use.cpu_milli);
  used.memory_mib = std::max<int64_t>(0, used.memory_mib - use.memory_mib);
  Reclassify(node);
  ++version_;
}

std::vector<int64_t> ClusterState::Signature(size_t node) const {
  const NodeAvailability& availability = nodes_[node];
  std::vector<int64_t> signature;
  signature.reserve(3 + 3 * availability.gpus.size());
  signature.push_back(static_shape_[node]);
  signature.push_back(availability.host_used.cpu_milli);
  signature.push_back(availability.host_used.memory_mib);
  for (const GpuAvailability& g : availability.gpus) {
    signature.push_back(g.free_mib);
    signature.push_back((g.exclusively_held ? 1 : 0) | (g.shared_holders > 0 ? 2 : 0));
    signature.push_back(g.shared_milli);
  }
  return signature;
}

void ClusterState::Classify(size_t node) {
  std::vector<int64_t> signature = Signature(node);
  auto it = class_by_signature_.find(signature);
  uint32_t id;
  if (it != class_by_signature_.end()) {
    id = it->second;
  } else {
    if (!free_class_ids_.empty()) {
      id = free_class_ids_.back();
      free_class_ids_.pop_back();
    } else {
      id = static_cast<uint32_t>(classes_.size());
      classes_.emplace_back();
    }
    classes_[id].signature = signature;
    classes_[id].summary = NodeSummary::Of(nodes_[node]);
    class_by_signature_.emplace(std::move(signature), id);
  }
  ClassData& data = classes_[id];
  if (data.members.empty()) {
    data.live_position = live_classes_.size();
    live_classes_.push_back(id);
  }
  const uint32_t index = static_cast<uint32_t>(node);
  data.members.insert(std::lower_bound(data.members.begin(), data.members.end(), index), index);
  node_class_[node] = id;
}

void ClusterState::Unclassify(size_t node) {
  const uint32_t id = node_class_[node];
  ClassData& data = classes_[id];
  const uint32_t index = static_cast<uint32_t>(node);
  auto it = std::lower_bound(data.members.begin(), data.members.end(), index);
  if (it != data.members.end() && *it == index) data.members.erase(it);
  if (!data.members.empty()) return;
  // Empty: drop it from the live list (swap-remove) and recycle the id.
  const size_t position = data.live_position;
  live_classes_[position] = live_classes_.back();
  classes_[live_classes_[position]].live_position = position;
  live_classes_.pop_back();
  class_by_signature_.erase(data.signature);
  data.signature.clear();
  free_class_ids_.push_back(id);
}

void ClusterState::Reclassify(size_t node) {
  const std::vector<int64_t> signature = Signature(node);
  if (classes_[node_class_[node]].signature == signature) return;
  Unclassify(node);
  Classify(node);
}

}  // namespace gpurm
