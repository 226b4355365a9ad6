#include "simulator/command.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <thread>

#include "scheduler/scheduler.h"
#include "simulator/plot.h"
#include "simulator/report.h"
#include "simulator/simulator.h"
#include "simulator/trace.h"
#include "simulator/variants.h"

namespace gpurm::sim {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitUsage = 2;
constexpr int kExitOutput = 3;

struct Job {
  size_t policy = 0;
  int run = 0;
};

PlotSpec CurvePlot(const SimulateArgs& args, const std::vector<std::string>& policies,
                   const std::vector<std::vector<SimulationRun>>& runs, int64_t gpus) {
  PlotSpec spec;
  spec.title = "allocated vs arrived gpu share, " + std::to_string(gpus) + " gpus";
  spec.x_label = "arrived gpu demand (% of capacity)";
  spec.y_label = "allocated gpus (% of capacity)";
  spec.diagonal = true;
  spec.y_max = 1.0;
  spec.x_max = 1.0;
  for (size_t p = 0; p < policies.size(); ++p) {
    const SimulationRun& run = runs[p].front();
    PlotSeries series;
    series.label = policies[p];
    if (args.seed && args.repeat > 1) series.label += " (seed " + std::to_string(*args.seed) + ")";
    // One point per arrival is more than a 960-pixel chart shows: keep
    // about one per 0.1% of arrived share.
    double last_x = -1;
    for (const CurvePoint& point : run.curve) {
      if (point.arrived_share - last_x < 0.001) continue;
      series.points.emplace_back(point.arrived_share, point.allocated_share);
      last_x = point.arrived_share;
    }
    if (!run.curve.empty()) {
      series.points.emplace_back(run.curve.back().arrived_share, run.curve.back().allocated_share);
      spec.x_max = std::max(spec.x_max, run.curve.back().arrived_share);
    }
    spec.series.push_back(std::move(series));
  }
  spec.x_max = std::ceil(spec.x_max * 10.0) / 10.0;
  return spec;
}

}  // namespace

int RunSimulate(const SimulateArgs& args, std::ostream& out, std::ostream& err) {
  std::vector<std::string> policies = args.policies;
  if (policies.empty()) policies = PolicyNames();
  for (const std::string& policy : policies) {
    if (FindPolicy(policy) == nullptr) {
      err << "gpurm simulate: unknown policy \"" << policy << "\"\n";
      return kExitUsage;
    }
  }
  if (args.repeat < 1) {
    err << "gpurm simulate: --repeat must be >= 1\n";
    return kExitUsage;
  }
  if (args.inflation && !(*args.inflation >= 1.0 && *args.inflation <= 100.0)) {
    err << "gpurm simulate: --inflation must be between 1 and 100\n";
    return kExitUsage;
  }
  if (!(args.tune >= 0.0 && args.tune <= 100.0)) {
    err << "gpurm simulate: --tune must be between 0 and 100\n";
    return kExitUsage;
  }
  std::optional<VariantSpec> variant;
  if (!args.variant.empty()) {
    Result<VariantSpec> parsed = ParseVariant(args.variant);
    if (!parsed.ok()) {
      err << "gpurm simulate: " << parsed.status().message() << "\n";
      return kExitUsage;
    }
    variant = *parsed;
  }
  Result<std::vector<TraceNode>> nodes = LoadTraceNodes(args.nodes_path);
  if (!nodes.ok()) {
    err << "gpurm simulate: " << nodes.status().message() << "\n";
    return kExitUsage;
  }
  Result<std::vector<TracePod>> pods = LoadTracePods(args.trace_path);
  if (!pods.ok()) {
    err << "gpurm simulate: " << pods.status().message() << "\n";
    return kExitUsage;
  }
  if (variant) {
    Result<std::vector<TracePod>> derived = DeriveVariant(*pods, *variant, args.variant_seed);
    if (!derived.ok()) {
      err << "gpurm simulate: " << derived.status().message() << "\n";
      return kExitUsage;
    }
    pods = std::move(derived);
  }
  if (!args.write_trace_path.empty()) {
    const Status written = WriteTracePods(*pods, args.write_trace_path);
    if (!written.ok()) {
      err << "gpurm simulate: " << written.message() << "\n";
      return kExitOutput;
    }
  }
  const SimulatedCluster cluster = BuildCluster(*nodes);
  if (cluster.gpu_count == 0) {
    err << "gpurm simulate: the node list has no GPUs\n";
    return kExitUsage;
  }

  // Every (policy, run) is independent: run them on a small thread pool.
  const int runs_per_policy = args.seed ? args.repeat : 1;
  std::vector<Job> jobs;
  for (size_t p = 0; p < policies.size(); ++p) {
    for (int r = 0; r < runs_per_policy; ++r) jobs.push_back({p, r});
  }
  std::vector<std::vector<SimulationRun>> runs(policies.size(),
                                               std::vector<SimulationRun>(runs_per_policy));
  std::vector<Status> failures(jobs.size());
  std::atomic<size_t> next{0};
  const int64_t capacity_milli = cluster.gpu_count * kMilliPerGpu;
  auto options_for = [&](const Job& job) {
    SimulationOptions options;
    options.policy = policies[job.policy];
    if (args.inflation) {
      options.tuning = Tuning::kPodCount;
      options.ratio = *args.inflation;
    } else {
      options.tuning = args.tune > 0 ? Tuning::kGpuDemand : Tuning::kNone;
      options.ratio = args.tune;
    }
    options.shuffle = args.seed.has_value();
    options.seed = args.seed.value_or(42) + static_cast<uint64_t>(job.run);
    options.record_curve = !args.plot_path.empty() && job.run == 0;
    return options;
  };
  auto worker = [&] {
    for (size_t j = next.fetch_add(1); j < jobs.size(); j = next.fetch_add(1)) {
      const SimulationOptions options = options_for(jobs[j]);
      const std::vector<TracePod> order = Arrivals(*pods, options, capacity_milli);
      Result<SimulationRun> run = Simulate(cluster, order, options);
      if (!run.ok()) {
        failures[j] = run.status();
        continue;
      }
      runs[jobs[j].policy][static_cast<size_t>(jobs[j].run)] = std::move(run).value();
    }
  };
  unsigned threads = args.jobs > 0 ? static_cast<unsigned>(args.jobs)
                                   : std::max(1u, std::thread::hardware_concurrency());
  threads = std::min<unsigned>(threads, static_cast<unsigned>(jobs.size()));
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (std::thread& thread : pool) thread.join();
  for (const Status& failure : failures) {
    if (!failure.ok()) {
      err << "gpurm simulate: " << failure.message() << "\n";
      return kExitUsage;
    }
  }
  const std::vector<TracePod> first_arrivals =
      Arrivals(*pods, options_for(Job{0, 0}), capacity_milli);

  std::vector<PolicySummary> summaries;
  for (size_t p = 0; p < policies.size(); ++p)
    summaries.push_back(SummarizeRuns(policies[p], runs[p]));
  ReportHeader header;
  header.trace_path = args.trace_path;
  header.nodes_path = args.nodes_path;
  header.nodes = static_cast<int64_t>(nodes->size());
  header.gpus = cluster.gpu_count;
  header.pods = static_cast<int64_t>(pods->size());
  header.arrivals = static_cast<int64_t>(first_arrivals.size());
  header.variant = args.variant;
  header.tuning = args.inflation ? "pod-count" : args.tune > 0 ? "gpu-demand" : "none";
  header.ratio = args.inflation ? *args.inflation : args.tune;
  header.arrived_gpu_demand = static_cast<double>(TotalGpuDemandMilli(first_arrivals)) /
                              static_cast<double>(capacity_milli);
  header.seed = args.seed;
  header.repeat = runs_per_policy;
  if (args.output == "json") {
    out << ReportJson(header, summaries).dump(2) << "\n";
  } else {
    out << ReportTable(header, summaries);
  }
  if (!args.plot_path.empty()) {
    const Status written =
        WritePng(CurvePlot(args, policies, runs, cluster.gpu_count), args.plot_path);
    if (!written.ok()) {
      err << "gpurm simulate: " << written.message() << "\n";
      return kExitOutput;
    }
    if (args.output != "json") out << "\nplot written to " << args.plot_path << "\n";
  }
  return kExitOk;
}

void RegisterSimulateCommand(CLI::App& app, int* exit_code, std::ostream& out, std::ostream& err) {
  auto args = std::make_shared<SimulateArgs>();
  auto seed = std::make_shared<int64_t>(-1);
  CLI::App* command = app.add_subcommand(
      "simulate",
      "Replay a GPU cluster trace (Alibaba openb format) through the placement policies");
  command->add_option("--trace", args->trace_path, "Pod list CSV")->required();
  command->add_option("--nodes", args->nodes_path, "Node list CSV")->required();
  command->add_option("--policy", args->policies, "Only this policy (repeatable; default: all)");
  command->add_option("--seed", *seed, "Shuffle the arrivals with this seed (default: trace order)")
      ->check(CLI::NonNegativeNumber);
  command->add_option("--repeat", args->repeat, "Runs per policy, shuffled with seeds N, N+1, ...")
      ->check(CLI::Range(1, 1000));
  command
      ->add_option("--tune", args->tune,
                   "Tune the arrivals' GPU demand (milli-GPU) to this multiple of the cluster's "
                   "GPU capacity, dropping or adding pods drawn from the trace; 0: the trace as "
                   "it is")
      ->capture_default_str();
  command->add_option("--inflation", args->inflation,
                      "Instead of --tune: arrivals as a multiple of the trace's pod count");
  command->add_option("--variant", args->variant,
                      "Derive the FGD paper's workload variant from the trace first (cpu050, "
                      "gpushare60, multigpu30, gpuspec25, ...)");
  command->add_option("--variant-seed", args->variant_seed, "Seed of the variant's sampling")
      ->capture_default_str();
  command->add_option("--write-trace", args->write_trace_path,
                      "Write the pod list (after --variant) to this CSV");
  command->add_option("--plot", args->plot_path, "Write a PNG of allocated vs arrived GPU share");
  command->add_option("--jobs", args->jobs, "Parallel runs (default: hardware threads)")
      ->check(CLI::Range(0, 256));
  CLI::Option* global_output = app.get_option_no_throw("--output");
  if (global_output != nullptr) {
    command->fallthrough();
  } else {
    command->add_option("-o,--output", args->output, "Output format")
        ->check(CLI::IsMember({"table", "json"}));
  }
  command->callback([args, seed, global_output, exit_code, &out, &err] {
    if (global_output != nullptr && global_output->count() > 0) {
      args->output = global_output->as<std::string>();
    }
    if (*seed >= 0) args->seed = static_cast<uint64_t>(*seed);
    // Repeating the same order would repeat the same numbers: shuffle.
    if (!args->seed && args->repeat > 1) args->seed = 42;
    *exit_code = RunSimulate(*args, out, err);
  });
}

}  // namespace gpurm::sim
