#include "simulator/report.h"

#include <cmath>
#include <cstdio>
#include <filesystem>

namespace gpurm::sim {
namespace {

using nlohmann::json;

double Round(double value, double scale) { return std::round(value * scale) / scale; }

json MeanOrNull(const Stat& stat, double scale) {
  return stat.count > 0 ? json(Round(stat.mean, scale)) : json();
}

std::string Percent(const Stat& stat, bool spread) {
  char buffer[64];
  if (stat.count == 0) return "-";
  if (spread) {
    std::snprintf(buffer, sizeof(buffer), "%.2f%% ±%.2f", 100 * stat.mean, 100 * stat.stddev);
  } else {
    std::snprintf(buffer, sizeof(buffer), "%.2f%%", 100 * stat.mean);
  }
  return buffer;
}

std::string Number(const Stat& stat, bool spread, int decimals) {
  char buffer[64];
  if (stat.count == 0) return "-";
  if (spread) {
    std::snprintf(buffer, sizeof(buffer), "%.*f ±%.*f", decimals, stat.mean, decimals, stat.stddev);
  } else {
    std::snprintf(buffer, sizeof(buffer), "%.*f", decimals, stat.mean);
  }
  return buffer;
}

}  // namespace

Stat Summarize(const std::vector<double>& values) {
  Stat stat;
  stat.count = static_cast<int>(values.size());
  if (values.empty()) return stat;
  double sum = 0;
  for (double v : values) sum += v;
  stat.mean = sum / static_cast<double>(values.size());
  if (values.size() > 1) {
    double squares = 0;
    for (double v : values) squares += (v - stat.mean) * (v - stat.mean);
    stat.stddev = std::sqrt(squares / static_cast<double>(values.size() - 1));
  }
  return stat;
}

PolicySummary SummarizeRuns(const std::string& policy, const std::vector<SimulationRun>& runs) {
  PolicySummary summary;
  summary.policy = policy;
  summary.runs = static_cast<int>(runs.size());
  std::vector<double> first, final_share, unallocated, placed, failed, seconds;
  for (const SimulationRun& run : runs) {
    first.push_back(run.allocated_share_at_first_failure);
    final_share.push_back(run.allocated_share_final);
    if (run.unallocated_gpus_at_full_arrival) {
      unallocated.push_back(*run.unallocated_gpus_at_full_arrival);
    }
    placed.push_back(static_cast<double>(run.pods_placed));
    failed.push_back(static_cast<double>(run.pods_failed));
    seconds.push_back(run.seconds);
  }
  summary.share_at_first_failure = Summarize(first);
  summary.share_final = Summarize(final_share);
  summary.unallocated_at_full_arrival = Summarize(unallocated);
  summary.pods_placed = Summarize(placed);
  summary.pods_failed = Summarize(failed);
  summary.seconds = Summarize(seconds);
  return summary;
}

json ReportJson(const ReportHeader& header, const std::vector<PolicySummary>& policies) {
  json list = json::array();
  for (const PolicySummary& p : policies) {
    json entry{{"policy", p.policy},
               {"allocated_share_at_first_failure", Round(p.share_at_first_failure.mean, 1e6)},
               {"allocated_share_final", Round(p.share_final.mean, 1e6)},
               {"unallocated_gpus_at_full_arrival", MeanOrNull(p.unallocated_at_full_arrival, 1e3)},
               {"pods_placed", p.runs == 1 ? json(static_cast<int64_t>(p.pods_placed.mean))
                                           : json(Round(p.pods_placed.mean, 1e3))},
               {"pods_failed", p.runs == 1 ? json(static_cast<int64_t>(p.pods_failed.mean))
                                           : json(Round(p.pods_failed.mean, 1e3))},
               {"seconds", Round(p.seconds.mean, 1e3)},
               {"runs", p.runs}};
    if (p.runs > 1) {
      entry["stddev"] = {
          {"allocated_share_at_first_failure", Round(p.share_at_first_failure.stddev, 1e6)},
          {"allocated_share_final", Round(p.share_final.stddev, 1e6)},
          {"unallocated_gpus_at_full_arrival",
           p.unallocated_at_full_arrival.count > 0
               ? json(Round(p.unallocated_at_full_arrival.stddev, 1e3))
               : json()},
          {"pods_placed", Round(p.pods_placed.stddev, 1e3)},
          {"pods_failed", Round(p.pods_failed.stddev, 1e3)},
          {"seconds", Round(p.seconds.stddev, 1e3)}};
    }
    list.push_back(std::move(entry));
  }
  return json{{"trace", header.trace_path},
              {"nodes", header.nodes},
              {"gpus", header.gpus},
              {"pods", header.pods},
              {"arrivals", header.arrivals},
              {"inflation", header.inflation},
              {"order", header.seed ? "shuffled" : "trace"},
              {"seed", header.seed ? json(*header.seed) : json()},
              {"repeat", header.repeat},
              {"policies", std::move(list)}};
}

std::string ReportTable(const ReportHeader& header, const std::vector<PolicySummary>& policies) {
  const bool spread = header.repeat > 1;
  std::string text;
  char line[512];
  std::snprintf(line, sizeof(line), "trace %s on nodes %s\n",
                std::filesystem::path(header.trace_path).filename().c_str(),
                std::filesystem::path(header.nodes_path).filename().c_str());
  text += line;
  std::snprintf(line, sizeof(line),
                "%lld nodes, %lld GPUs; %lld pods, %lld arrivals (inflation %.2f), %s",
                static_cast<long long>(header.nodes), static_cast<long long>(header.gpus),
                static_cast<long long>(header.pods), static_cast<long long>(header.arrivals),
                header.inflation, header.seed ? "shuffled" : "trace order");
  text += line;
  if (header.seed) {
    std::snprintf(line, sizeof(line), ", seed %llu x %d runs (mean ±stddev)",
                  static_cast<unsigned long long>(*header.seed), header.repeat);
    text += line;
  }
  text += "\n\n";
  const char* format = "%-20s  %-20s  %-16s  %-24s  %-14s  %-14s  %s\n";
  std::snprintf(line, sizeof(line), format, "policy", "alloc@first-failure", "alloc@end",
                "unallocated-GPUs@100%", "placed", "failed", "seconds");
  text += line;
  for (const PolicySummary& p : policies) {
    std::snprintf(line, sizeof(line), format, p.policy.c_str(),
                  Percent(p.share_at_first_failure, spread).c_str(),
                  Percent(p.share_final, spread).c_str(),
                  Number(p.unallocated_at_full_arrival, spread, 1).c_str(),
                  Number(p.pods_placed, spread, 0).c_str(),
                  Number(p.pods_failed, spread, 0).c_str(), Number(p.seconds, false, 2).c_str());
    text += line;
  }
  return text;
}

}  // namespace gpurm::sim
