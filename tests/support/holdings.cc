#include "support/holdings.h"

namespace gpurm::testing {

using nlohmann::json;

Result<std::map<std::string, double>> GpuMemoryTotals(const cli::HttpClient& client) {
  Result<cli::HttpResponse> monitoring = client.Get("/api/v1/gpu/monitoring");
  if (!monitoring.ok()) return monitoring.status();
  if (monitoring->status != 200 || !monitoring->body.contains("nodes")) {
    return Internal("GET /monitoring answered " + std::to_string(monitoring->status) + ": " +
                    monitoring->raw_body);
  }
  std::map<std::string, double> totals;
  for (const json& node : monitoring->body["nodes"]) {
    for (const json& gpu : node["gpus"]) totals[gpu["uuid"]] = gpu["memory_total_gb"];
  }
  return totals;
}

std::string Holdings::Add(const json& gpus) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const json& grant : gpus) {
    const std::string uuid = grant["gpu_uuid"];
    if (grant["exclusive"].get<bool>()) {
      ++exclusive_[uuid];
    } else {
      shared_gb_[uuid] += grant["memory_gb"].get<double>();
    }
  }
  return Check(exclusive_, shared_gb_);
}

void Holdings::Remove(const json& gpus) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const json& grant : gpus) {
    const std::string uuid = grant["gpu_uuid"];
    if (grant["exclusive"].get<bool>()) {
      --exclusive_[uuid];
    } else {
      shared_gb_[uuid] -= grant["memory_gb"].get<double>();
    }
  }
}

std::string Holdings::CheckRecorded() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return Check(exclusive_, shared_gb_);
}

std::string Holdings::CheckAllocations(const json& allocations) const {
  std::map<std::string, int> exclusive;
  std::map<std::string, double> shared;
  for (const json& allocation : allocations) {
    for (const json& grant : allocation["gpus"]) {
      if (grant["exclusive"].get<bool>()) {
        ++exclusive[grant["gpu_uuid"]];
      } else {
        shared[grant["gpu_uuid"]] += grant["memory_gb"].get<double>();
      }
    }
  }
  return Check(exclusive, shared);
}

std::string Holdings::Check(const std::map<std::string, int>& exclusive,
                            const std::map<std::string, double>& shared) const {
  for (const auto& [uuid, count] : exclusive) {
    if (count > 1) return uuid + " held exclusively " + std::to_string(count) + " times";
    if (count == 1 && shared.count(uuid) && shared.at(uuid) > 1e-9) {
      return uuid + " held exclusively and shared";
    }
  }
  for (const auto& [uuid, gb] : shared) {
    const auto total = total_gb_.find(uuid);
    if (total == total_gb_.end()) return uuid + " is not a GPU of the inventory";
    if (gb > total->second + 1e-6) {
      return uuid + " has " + std::to_string(gb) + " GB of slices, more than it has";
    }
  }
  return "";
}

}  // namespace gpurm::testing
