#include "monitor/change_detector.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <unordered_set>
#include <utility>

namespace gpurm {
namespace {

// Absorbs rounding so that a move of exactly the threshold is never reported
// (0.55 - 0.5 is 0.05000000000000004 in binary).
constexpr double kEpsilon = 1e-9;

bool Exceeds(double delta, double scale, double threshold) {
  return std::fabs(delta) / scale > threshold + kEpsilon;
}

// Optional readings: appearing or disappearing is a change; otherwise the
// relative move against `scale(reported)`.
template <typename Scale>
bool OptionalMoved(const std::optional<double>& now, const std::optional<double>& reported,
                   double threshold, Scale scale) {
  if (now.has_value() != reported.has_value()) return true;
  if (!now) return false;
  return Exceeds(*now - *reported, scale(*reported), threshold);
}

}  // namespace

const char* GpuEventTypeName(GpuEventType type) {
  switch (type) {
    case GpuEventType::kChange:
      return "change";
    case GpuEventType::kHealth:
      return "health";
    case GpuEventType::kAdded:
      return "gpu_added";
    case GpuEventType::kRemoved:
      return "gpu_removed";
    case GpuEventType::kProcess:
      return "process";
    case GpuEventType::kEnforcement:
      return "enforcement";
  }
  return "change";
}

GpuReading ReadingOf(const Gpu& gpu) {
  GpuReading reading;
  reading.utilization = gpu.utilization;
  reading.memory_used_mib = gpu.memory_used_mib;
  reading.memory_total_mib = gpu.memory_total_mib;
  reading.temperature_c = gpu.temperature_c;
  reading.power_w = gpu.power_w;
  reading.power_limit_w = gpu.power_limit_w;
  reading.healthy = gpu.healthy;
  reading.health_reason = gpu.health_reason;
  reading.utilization_available = gpu.utilization_available;
  return reading;
}

ChangeDetector::ChangeDetector(double threshold) : threshold_(std::max(0.0, threshold)) {}

std::vector<GpuEvent> ChangeDetector::Update(const InventorySnapshot& snapshot) {
  std::vector<GpuEvent> events;
  std::unordered_set<std::string> present;
  for (const Node& node : snapshot.nodes) {
    for (const Gpu& gpu : node.gpus) {
      present.insert(gpu.uuid);
      GpuEvent event;
      event.unix_ms = snapshot.taken_unix_ms;
      event.node_name = node.name;
      event.gpu_index = gpu.index;
      event.gpu_uuid = gpu.uuid;
      event.model = gpu.model.raw_name;
      event.current = ReadingOf(gpu);

      auto it = references_.find(gpu.uuid);
      if (it == references_.end()) {
        event.type = GpuEventType::kAdded;
        references_.emplace(gpu.uuid,
                            Reference{node.name, gpu.index, gpu.model.raw_name, event.current});
        events.push_back(std::move(event));
        continue;
      }
      Reference& reference = it->second;
      GpuReading& reported = reference.reading;
      const GpuReading& now = event.current;
      event.previous = reported;

      if (Exceeds(now.utilization - reported.utilization, 1.0, threshold_)) {
        event.changed.emplace_back("utilization");
        reported.utilization = now.utilization;
      }
      if (Exceeds(now.memory_used_ratio() - reported.memory_used_ratio(), 1.0, threshold_)) {
        event.changed.emplace_back("memory");
        reported.memory_used_mib = now.memory_used_mib;
        reported.memory_total_mib = now.memory_total_mib;
      }
      if (OptionalMoved(now.temperature_c, reported.temperature_c, threshold_,
                        [](double r) { return std::max(std::fabs(r), 1.0); })) {
        event.changed.emplace_back("temperature");
        reported.temperature_c = now.temperature_c;
      }
      const std::optional<double> limit = now.power_limit_w;
      if (OptionalMoved(now.power_w, reported.power_w, threshold_, [&limit](double r) {
            return limit && *limit > 0 ? *limit : std::max(std::fabs(r), 1.0);
          })) {
        event.changed.emplace_back("power");
        reported.power_w = now.power_w;
      }
      reported.power_limit_w = now.power_limit_w;
      const bool health_changed =
          now.healthy != reported.healthy || now.health_reason != reported.health_reason;
      if (health_changed) {
        event.changed.emplace_back("health");
        reported.healthy = now.healthy;
        reported.health_reason = now.health_reason;
      }
      reference.node_name = node.name;
      reference.gpu_index = gpu.index;
      reference.model = gpu.model.raw_name;
      if (event.changed.empty()) continue;
      event.type = health_changed ? GpuEventType::kHealth : GpuEventType::kChange;
      events.push_back(std::move(event));
    }
  }
  // Removed GPUs, in UUID order so the output does not depend on hashing.
  std::vector<std::string> removed;
  for (const auto& [uuid, reference] : references_) {
    if (!present.contains(uuid)) removed.push_back(uuid);
  }
  std::sort(removed.begin(), removed.end());
  for (const std::string& uuid : removed) {
    auto node = references_.extract(uuid);
    Reference& reference = node.mapped();
    GpuEvent event;
    event.unix_ms = snapshot.taken_unix_ms;
    event.type = GpuEventType::kRemoved;
    event.node_name = std::move(reference.node_name);
    event.gpu_index = reference.gpu_index;
    event.gpu_uuid = uuid;
    event.model = std::move(reference.model);
    event.current = std::move(reference.reading);
    events.push_back(std::move(event));
  }
  return events;
}

}  // namespace gpurm
