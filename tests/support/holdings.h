// Holdings: the no-over-allocation invariant, checked from the outside. A GPU
// is held exclusively by at most one active allocation, never both
// exclusively and shared, and its shared slices never add up to more memory
// than it has. Used by the stress, concurrency and crash tests.
#ifndef GPURM_TESTS_SUPPORT_HOLDINGS_H_
#define GPURM_TESTS_SUPPORT_HOLDINGS_H_

#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/client.h"
#include "core/status.h"

namespace gpurm::testing {

// Total memory (GB) of every GPU the daemon monitors, by uuid.
Result<std::map<std::string, double>> GpuMemoryTotals(const cli::HttpClient& client);

// What clients currently hold, by GPU uuid, as the daemon answered them.
// Thread-safe.
class Holdings {
 public:
  explicit Holdings(std::map<std::string, double> total_gb) : total_gb_(std::move(total_gb)) {}

  // Records the grants (the `gpus` array of an allocate answer) of a granted
  // allocation; returns a description of any violation, empty if none.
  std::string Add(const nlohmann::json& gpus);
  // Forgets grants; call before sending the release, so that another client
  // granted the same GPU right after the release is never counted twice.
  void Remove(const nlohmann::json& gpus);
  // The invariant on what is recorded now; empty if it holds.
  std::string CheckRecorded() const;

  // The same invariant on a list of active allocations (the `allocations`
  // array of GET /allocations), independent of what was recorded.
  std::string CheckAllocations(const nlohmann::json& allocations) const;

 private:
  std::string Check(const std::map<std::string, int>& exclusive,
                    const std::map<std::string, double>& shared) const;

  const std::map<std::string, double> total_gb_;
  mutable std::mutex mutex_;
  std::map<std::string, int> exclusive_;     // Guarded by mutex_.
  std::map<std::string, double> shared_gb_;  // Guarded by mutex_.
};

}  // namespace gpurm::testing

#endif  // GPURM_TESTS_SUPPORT_HOLDINGS_H_
