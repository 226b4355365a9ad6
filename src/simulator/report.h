// Summaries of simulation runs: mean and spread per policy over repeated
// (seeded) runs, as a table or the JSON of `gpurm simulate -o json`.
#ifndef GPURM_SIMULATOR_REPORT_H_
#define GPURM_SIMULATOR_REPORT_H_

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "simulator/simulator.h"

namespace gpurm::sim {

// Mean and sample standard deviation (0 for one value).
struct Stat {
  double mean = 0;
  double stddev = 0;
  int count = 0;  // Values it summarises.
};
Stat Summarize(const std::vector<double>& values);

struct PolicySummary {
  std::string policy;
  int runs = 0;
  Stat share_at_first_failure;
  Stat share_final;
  Stat unallocated_at_full_arrival;  // count 0: arrivals never reached 100%.
  Stat pods_placed;
  Stat pods_failed;
  Stat seconds;
};
PolicySummary SummarizeRuns(const std::string& policy, const std::vector<SimulationRun>& runs);

struct ReportHeader {
  std::string trace_path;
  std::string nodes_path;
  int64_t nodes = 0;
  int64_t gpus = 0;
  int64_t pods = 0;
  int64_t arrivals = 0;
  double inflation = 1;
  std::optional<uint64_t> seed;  // Set when arrivals were shuffled.
  int repeat = 1;
};

// {"trace", "nodes", "gpus", "pods", "arrivals", "inflation", "order", "seed",
//  "repeat", "policies": [{"policy", "allocated_share_at_first_failure",
//  "allocated_share_final", "unallocated_gpus_at_full_arrival", "pods_placed",
//  "pods_failed", "seconds", "runs", "stddev": {...}}]} -- means over runs.
nlohmann::json ReportJson(const ReportHeader& header, const std::vector<PolicySummary>& policies);
std::string ReportTable(const ReportHeader& header, const std::vector<PolicySummary>& policies);

}  // namespace gpurm::sim

#endif  // GPURM_SIMULATOR_REPORT_H_
