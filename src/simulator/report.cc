#include "simulator/report.h"

#include <algorithm>
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
  std::vector<double> sorted = values;
  std::sort(sorted.begin(), sorted.end());
  const size_t mid = sorted.size() / 2;
  stat.median = sorted.size() % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
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
  std::vector<double> first, whole_node, final_share, unallocated, placed, failed, seconds;
  for (const SimulationRun& run : runs) {
    first.push_back(run.allocated_share_at_first_failure);
    whole_node.push_back(run.allocated_share_at_first_whole_node_failure);
    for (const auto& [shape, count] : run.refused_by_gpus) {
      summary.refused_by_gpus[shape].arrived += count.arrived;
      summary.refused_by_gpus[shape].refused += count.refused;
    }
    for (const auto& [model, count] : run.refused_by_model) {
      summary.refused_by_model[model].arrived += count.arrived;
      summary.refused_by_model[model].refused += count.refused;
    }
    final_share.push_back(run.allocated_share_final);
    if (run.unallocated_gpus_at_full_arrival) {
      unallocated.push_back(*run.unallocated_gpus_at_full_arrival);
    }
    placed.push_back(static_cast<double>(run.pods_placed));
    failed.push_back(static_cast<double>(run.pods_failed));
    seconds.push_back(run.seconds);
  }
  summary.share_at_first_failure = Summarize(first);
  summary.share_at_first_whole_node_failure = Summarize(whole_node);
  summary.share_final = Summarize(final_share);
  summary.unallocated_at_full_arrival = Summarize(unallocated);
  summary.pods_placed = Summarize(placed);
  summary.pods_failed = Summarize(failed);
  summary.seconds = Summarize(seconds);
  return summary;
}

namespace {

json RefusalJson(const std::map<std::string, RefusalCount>& counts) {
  json out = json::object();
  for (const auto& [key, count] : counts) {
    out[key] = {
        {"arrived", count.arrived},
        {"refused", count.refused},
        {"share",
         count.arrived > 0
             ? Round(static_cast<double>(count.refused) / static_cast<double>(count.arrived), 1e6)
             : 0.0}};
  }
  return out;
}

}  // namespace

json ReportJson(const ReportHeader& header, const std::vector<PolicySummary>& policies) {
  json list = json::array();
  for (const PolicySummary& p : policies) {
    json entry{{"policy", p.policy},
               {"allocated_share_at_first_failure", Round(p.share_at_first_failure.mean, 1e6)},
               {"allocated_share_at_first_whole_node_failure",
                Round(p.share_at_first_whole_node_failure.mean, 1e6)},
               {"allocated_share_final", Round(p.share_final.mean, 1e6)},
               {"unallocated_gpus_at_full_arrival", MeanOrNull(p.unallocated_at_full_arrival, 1e3)},
               {"pods_placed", p.runs == 1 ? json(static_cast<int64_t>(p.pods_placed.mean))
                                           : json(Round(p.pods_placed.mean, 1e3))},
               {"pods_failed", p.runs == 1 ? json(static_cast<int64_t>(p.pods_failed.mean))
                                           : json(Round(p.pods_failed.mean, 1e3))},
               {"seconds", Round(p.seconds.mean, 1e3)},
               {"runs", p.runs},
               {"refused",
                {{"by_gpus", RefusalJson(p.refused_by_gpus)},
                 {"by_model", RefusalJson(p.refused_by_model)}}}};
    if (p.runs > 1) {
      auto spread = [&](double (*pick)(const Stat&)) {
        return json{
            {"allocated_share_at_first_failure", Round(pick(p.share_at_first_failure), 1e6)},
            {"allocated_share_at_first_whole_node_failure",
             Round(pick(p.share_at_first_whole_node_failure), 1e6)},
            {"allocated_share_final", Round(pick(p.share_final), 1e6)},
            {"unallocated_gpus_at_full_arrival",
             p.unallocated_at_full_arrival.count > 0
                 ? json(Round(pick(p.unallocated_at_full_arrival), 1e3))
                 : json()},
            {"pods_placed", Round(pick(p.pods_placed), 1e3)},
            {"pods_failed", Round(pick(p.pods_failed), 1e3)},
            {"seconds", Round(pick(p.seconds), 1e3)}};
      };
      entry["stddev"] = spread([](const Stat& s) { return s.stddev; });
      entry["median"] = spread([](const Stat& s) { return s.median; });
    }
    list.push_back(std::move(entry));
  }
  return json{{"trace", header.trace_path},
              {"variant", header.variant.empty() ? json() : json(header.variant)},
              {"nodes", header.nodes},
              {"gpus", header.gpus},
              {"pods", header.pods},
              {"arrivals", header.arrivals},
              {"tuning", header.tuning},
              {"ratio", header.ratio},
              {"arrived_gpu_demand", Round(header.arrived_gpu_demand, 1e6)},
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
  if (!header.variant.empty()) text += "variant " + header.variant + " derived from it\n";
  std::snprintf(line, sizeof(line),
                "%lld nodes, %lld GPUs; %lld pods, %lld arrivals (%s %.2f: GPU demand %.1f%% of "
                "capacity), %s",
                static_cast<long long>(header.nodes), static_cast<long long>(header.gpus),
                static_cast<long long>(header.pods), static_cast<long long>(header.arrivals),
                header.tuning.c_str(), header.ratio, 100 * header.arrived_gpu_demand,
                header.seed ? "shuffled" : "trace order");
  text += line;
  if (header.seed) {
    std::snprintf(line, sizeof(line), ", seed %llu x %d runs (mean ±stddev; median)",
                  static_cast<unsigned long long>(*header.seed), header.repeat);
    text += line;
  }
  text += "\n\n";
  const char* format = "%-20s  %-20s  %-22s  %-16s  %-32s  %-14s  %-14s  %s\n";
  std::snprintf(line, sizeof(line), format, "policy", "alloc@first-failure",
                "alloc@whole-node-fail", "alloc@end", "unallocated-GPUs@100%", "placed", "failed",
                "seconds");
  text += line;
  for (const PolicySummary& p : policies) {
    std::string unallocated = Number(p.unallocated_at_full_arrival, spread, 1);
    if (spread && p.unallocated_at_full_arrival.count > 0) {
      char median[48];
      std::snprintf(median, sizeof(median), "; %.1f", p.unallocated_at_full_arrival.median);
      unallocated += median;
    }
    std::snprintf(line, sizeof(line), format, p.policy.c_str(),
                  Percent(p.share_at_first_failure, spread).c_str(),
                  Percent(p.share_at_first_whole_node_failure, spread).c_str(),
                  Percent(p.share_final, spread).c_str(), unallocated.c_str(),
                  Number(p.pods_placed, spread, 0).c_str(),
                  Number(p.pods_failed, spread, 0).c_str(), Number(p.seconds, false, 2).c_str());
    text += line;
  }
  return text;
}

}  // namespace gpurm::sim
