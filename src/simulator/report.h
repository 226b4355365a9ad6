// Summaries of simulation runs: mean and spread per policy over repeated
// (seeded) runs, as a table or the JSON of `gpurm simulate -o json`.
#ifndef GPURM_SIMULATOR_REPORT_H_
#define GPURM_SIMULATOR_REPORT_H_

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "simulator/simulator.h"

namespace gpurm::sim {

// Mean, sample standard deviation (0 for one value) and median (the mean of
// the two middle values for an even count, as the paper's artifact takes it).
struct Stat {
  double mean = 0;
  double stddev = 0;
  double median = 0;
  int count = 0;  // Values it summarises.
};
Stat Summarize(const std::vector<double>& values);

struct PolicySummary {
  std::string policy;
  int runs = 0;
  Stat share_at_first_failure;
  Stat share_at_first_whole_node_failure;
  Stat share_final;
  Stat unallocated_at_full_arrival;  // count 0: arrivals never reached 100%.
  Stat pods_placed;
  Stat pods_failed;
  Stat seconds;
  // Summed over the runs.
  std::map<std::string, RefusalCount> refused_by_gpus;
  std::map<std::string, RefusalCount> refused_by_model;
};
PolicySummary SummarizeRuns(const std::string& policy, const std::vector<SimulationRun>& runs);

struct ReportHeader {
  std::string trace_path;
  std::string nodes_path;
  int64_t nodes = 0;
  int64_t gpus = 0;
  int64_t pods = 0;
  int64_t arrivals = 0;               // Of the first run (tuning draws differ by seed).
  std::string variant;                // "" when the trace was used as it is.
  std::string tuning = "gpu-demand";  // "gpu-demand", "pod-count" or "none".
  double ratio = 1.3;
  double arrived_gpu_demand = 0;  // Arrived milli-GPU / capacity, first run.
  std::optional<uint64_t> seed;   // Set when arrivals were shuffled.
  int repeat = 1;
};

// {"trace", "variant", "nodes", "gpus", "pods", "arrivals", "tuning", "ratio",
//  "arrived_gpu_demand", "order", "seed", "repeat", "policies": [{"policy",
//  "allocated_share_at_first_failure",
//  "allocated_share_at_first_whole_node_failure", "allocated_share_final",
//  "unallocated_gpus_at_full_arrival", "pods_placed", "pods_failed",
//  "seconds", "runs", "refused": {"by_gpus": {"0"|"fractional"|"1"|...:
//  {"arrived", "refused", "share"}}, "by_model": {"any"|spec: {...}}},
//  "stddev": {...}, "median": {...}}]} -- means over runs, stddev and median
//  when there are several.
nlohmann::json ReportJson(const ReportHeader& header, const std::vector<PolicySummary>& policies);
std::string ReportTable(const ReportHeader& header, const std::vector<PolicySummary>& policies);

}  // namespace gpurm::sim

#endif  // GPURM_SIMULATOR_REPORT_H_
