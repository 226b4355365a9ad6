#include "simulator/simulator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "simulator/command.h"
#include "simulator/plot.h"
#include "simulator/report.h"
#include "simulator/trace.h"
#include "simulator/variants.h"

namespace gpurm::sim {
namespace {

std::string WriteTemp(const std::string& name, const std::string& text) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("gpurm-sim-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::filesystem::path path = dir / name;
  std::ofstream(path) << text;
  return path.string();
}

constexpr char kNodes[] =
    "sn,cpu_milli,memory_mib,gpu,model\n"
    "node-a,32000,131072,2,T4\n"
    "node-b,32000,131072,2,T4\n"
    "node-c,8000,32768,0,\n";

// Whole GPUs, shares and a CPU-only pod; 4 GPUs of capacity in all.
constexpr char kPods[] =
    "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,"
    "deletion_time,scheduled_time\n"
    "p0,4000,8192,1,1000,,LS,Running,0,10,0\n"
    "p1,2000,4096,1,500,,LS,Running,1,10,1\n"
    "p2,2000,4096,1,500,T4,LS,Running,2,10,2\n"
    "p3,1000,1024,0,0,,BE,Running,3,10,3\n"
    "p4,4000,8192,2,1000,,LS,Running,4,10,4\n"
    "p5,4000,8192,1,1000,,LS,Running,5,10,5\n";

TEST(TraceTest, LoadsNodesAndPodsByHeaderName) {
  Result<std::vector<TraceNode>> nodes = LoadTraceNodes(WriteTemp("nodes.csv", kNodes));
  ASSERT_TRUE(nodes.ok()) << nodes.status().ToString();
  ASSERT_EQ(nodes->size(), 3u);
  EXPECT_EQ((*nodes)[0].cpu_milli, 32000);
  EXPECT_EQ((*nodes)[2].gpus, 0);
  // No gpu_spec column (like the multigpu variants): still loads.
  Result<std::vector<TracePod>> pods = LoadTracePods(
      WriteTemp("short.csv", "name,cpu_milli,memory_mib,num_gpu,gpu_milli\nx,1000,10,1,250\n"));
  ASSERT_TRUE(pods.ok()) << pods.status().ToString();
  EXPECT_EQ((*pods)[0].gpu_milli, 250);
  EXPECT_EQ((*pods)[0].GpuDemandMilli(), 250);
  GpuRequest request = RequestFor((*pods)[0]);
  EXPECT_EQ(request.gpu_milli, 250);
  EXPECT_EQ(request.gpu_count, 1);
}

TEST(TraceTest, ErrorsNameTheFileLineAndColumn) {
  Result<std::vector<TracePod>> bad = LoadTracePods(WriteTemp(
      "bad.csv", "name,cpu_milli,memory_mib,num_gpu,gpu_milli\nx,1,1,1,100\ny,1,1,two,0\n"));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("bad.csv:3: column num_gpu"), std::string::npos)
      << bad.status().message();
  Result<std::vector<TraceNode>> missing = LoadTraceNodes(WriteTemp("n.csv", "sn,gpu\nx,1\n"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().field(), "cpu_milli");
  EXPECT_EQ(LoadTraceNodes("/nonexistent/nodes.csv").status().code(), StatusCode::kNotFound);
}

TEST(SimulatorTest, PodCountInflationAndShuffleAreDeterministic) {
  Result<std::vector<TracePod>> pods = LoadTracePods(WriteTemp("pods.csv", kPods));
  ASSERT_TRUE(pods.ok());
  SimulationOptions options;
  options.tuning = Tuning::kPodCount;
  options.ratio = 2.0;
  std::vector<TracePod> in_order = Arrivals(*pods, options, 4000);
  ASSERT_EQ(in_order.size(), 12u);
  for (size_t i = 0; i < pods->size(); ++i) EXPECT_EQ(in_order[i].name, (*pods)[i].name);
  options.seed = 3;
  in_order = Arrivals(*pods, options, 4000);
  options.shuffle = true;
  std::vector<TracePod> shuffled = Arrivals(*pods, options, 4000);
  std::vector<TracePod> again = Arrivals(*pods, options, 4000);
  ASSERT_EQ(shuffled.size(), 12u);
  std::multiset<std::string> a, b;
  for (size_t i = 0; i < shuffled.size(); ++i) {
    EXPECT_EQ(shuffled[i].name, again[i].name);
    a.insert(shuffled[i].name);
    b.insert(in_order[i].name);
  }
  EXPECT_EQ(a, b) << "the same pods, in another order";
}

TEST(SimulatorTest, GpuDemandTuningAddsPodsUpToTheRatioOfCapacity) {
  Result<std::vector<TracePod>> pods = LoadTracePods(WriteTemp("pods.csv", kPods));
  ASSERT_TRUE(pods.ok());
  ASSERT_EQ(TotalGpuDemandMilli(*pods), 5000);
  SimulationOptions options;  // kGpuDemand, 1.3: the default.
  ASSERT_EQ(options.tuning, Tuning::kGpuDemand);
  for (uint64_t seed = 0; seed < 20; ++seed) {
    options.seed = seed;
    // 4 GPUs x 1.3 = 5,200 milli-GPU: the trace's 5,000 plus draws while
    // the next still fits, so the total stays within one pod of the target.
    const std::vector<TracePod> arrivals = Arrivals(*pods, options, 4000);
    const int64_t total = TotalGpuDemandMilli(arrivals);
    EXPECT_LE(total, 5200) << "seed " << seed;
    EXPECT_GE(arrivals.size(), pods->size());
    for (size_t i = 0; i < pods->size(); ++i) EXPECT_EQ(arrivals[i].name, (*pods)[i].name);
    // Deterministic under the seed.
    const std::vector<TracePod> again = Arrivals(*pods, options, 4000);
    ASSERT_EQ(again.size(), arrivals.size());
    for (size_t i = 0; i < arrivals.size(); ++i) EXPECT_EQ(again[i].name, arrivals[i].name);
  }
  // On a large trace the total lands just under the target: 1.3 x 100
  // GPUs of 0.3-GPU shares and CPU-only pods.
  std::vector<TracePod> shares;
  for (int i = 0; i < 200; ++i) {
    TracePod pod;
    pod.name = "s" + std::to_string(i);
    pod.num_gpu = i % 4 == 0 ? 0 : 1;
    pod.gpu_milli = pod.num_gpu == 0 ? 0 : 300;
    shares.push_back(pod);
  }
  options.seed = 7;
  const std::vector<TracePod> tuned = Arrivals(shares, options, 100000);
  EXPECT_LE(TotalGpuDemandMilli(tuned), 130000);
  EXPECT_GT(TotalGpuDemandMilli(tuned), 130000 - 300);
  // Pod-count inflation of the same trace would not reach capacity: 260
  // pods x 0.75 x 0.3 GPU = 58.5 GPUs of 100. That is why the demand is
  // tuned, so that the metric at 100% arrived exists on every variant.
  options.tuning = Tuning::kPodCount;
  EXPECT_LT(TotalGpuDemandMilli(Arrivals(shares, options, 100000)), 100000);
}

TEST(SimulatorTest, GpuDemandTuningDropsPodsAboveTheTarget) {
  Result<std::vector<TracePod>> pods = LoadTracePods(WriteTemp("pods.csv", kPods));
  ASSERT_TRUE(pods.ok());
  SimulationOptions options;
  options.ratio = 1.0;  // 4,000 of the trace's 5,000 milli-GPU.
  options.shuffle = true;
  options.seed = 11;
  const std::vector<TracePod> arrivals = Arrivals(*pods, options, 4000);
  EXPECT_LE(TotalGpuDemandMilli(arrivals), 4000);
  EXPECT_LT(arrivals.size(), pods->size());
  std::set<std::string> names;
  for (const TracePod& pod : arrivals) names.insert(pod.name);
  EXPECT_EQ(names.size(), arrivals.size()) << "dropping never duplicates a pod";
  options.tuning = Tuning::kNone;
  EXPECT_EQ(Arrivals(*pods, options, 4000).size(), pods->size());
  // A trace without GPU demand is left as it is (and the tuning ends).
  options.tuning = Tuning::kGpuDemand;
  std::vector<TracePod> cpu_only(3);
  for (TracePod& pod : cpu_only) pod.cpu_milli = 1000;
  EXPECT_EQ(Arrivals(cpu_only, options, 4000).size(), 3u);
}

TEST(SimulatorTest, CountsRefusalsByShapeAndTheFirstWholeNodeRefusal) {
  Result<std::vector<TraceNode>> nodes = LoadTraceNodes(WriteTemp("nodes.csv", kNodes));
  ASSERT_TRUE(nodes.ok());
  const SimulatedCluster cluster = BuildCluster(*nodes);
  // Two half-GPU shares, then two pods that each need a whole 2-GPU node.
  Result<std::vector<TracePod>> pods =
      LoadTracePods(WriteTemp("whole.csv",
                              "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec\n"
                              "h0,1000,1024,1,500,\nh1,1000,1024,1,500,T4\nw0,1000,1024,2,1000,\n"
                              "w1,1000,1024,2,1000,\n"));
  ASSERT_TRUE(pods.ok());
  SimulationOptions options;
  options.tuning = Tuning::kNone;
  // Spread puts the shares on both nodes: no node is whole for w0.
  options.policy = "spread";
  Result<SimulationRun> spread = Simulate(cluster, *pods, options);
  ASSERT_TRUE(spread.ok());
  EXPECT_DOUBLE_EQ(spread->allocated_share_at_first_whole_node_failure, 0.25);
  // Binpack pairs them on one GPU: w0 fits, w1 is the first refused.
  options.policy = "binpack";
  Result<SimulationRun> binpack = Simulate(cluster, *pods, options);
  ASSERT_TRUE(binpack.ok());
  EXPECT_DOUBLE_EQ(binpack->allocated_share_at_first_whole_node_failure, 0.75);
  // Counted up to the arrival that reaches 100% of capacity (w1's).
  EXPECT_EQ(binpack->refused_by_gpus.at("fractional").arrived, 2);
  EXPECT_EQ(binpack->refused_by_gpus.at("fractional").refused, 0);
  EXPECT_EQ(binpack->refused_by_gpus.at("2").arrived, 2);
  EXPECT_EQ(binpack->refused_by_gpus.at("2").refused, 1);
  EXPECT_EQ(binpack->refused_by_model.at("T4").arrived, 1);
  EXPECT_EQ(binpack->refused_by_model.at("any").arrived, 3);
  EXPECT_EQ(binpack->refused_by_model.at("any").refused, 1);
  const nlohmann::json json = ReportJson({}, {SummarizeRuns("binpack", {*binpack, *binpack})});
  const nlohmann::json& refused = json["policies"][0]["refused"]["by_gpus"]["2"];
  EXPECT_EQ(refused["arrived"], 4) << "summed over runs";
  EXPECT_DOUBLE_EQ(refused["share"].get<double>(), 0.5);
}

TEST(SimulatorTest, MeasuresAllocatedShareAsThePaperDoes) {
  Result<std::vector<TraceNode>> nodes = LoadTraceNodes(WriteTemp("nodes.csv", kNodes));
  Result<std::vector<TracePod>> pods = LoadTracePods(WriteTemp("pods.csv", kPods));
  ASSERT_TRUE(nodes.ok() && pods.ok());
  const SimulatedCluster cluster = BuildCluster(*nodes);
  EXPECT_EQ(cluster.gpu_count, 4);
  SimulationOptions options;
  options.policy = "binpack";
  options.tuning = Tuning::kNone;
  options.record_curve = true;
  options.record_placements = true;
  Result<SimulationRun> run = Simulate(cluster, Arrivals(*pods, options, 4000), options);
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  // p0 (1) + p1, p2 (0.5 each, one GPU) + p3 (CPU) + p4 (2 on the other
  // node) = 4 GPUs: the cluster is full, p5 fails.
  EXPECT_EQ(run->pods_placed, 5);
  EXPECT_EQ(run->pods_failed, 1);
  EXPECT_DOUBLE_EQ(run->allocated_share_at_first_failure, 1.0);
  EXPECT_DOUBLE_EQ(run->allocated_share_final, 1.0);
  ASSERT_TRUE(run->unallocated_gpus_at_full_arrival);
  EXPECT_DOUBLE_EQ(*run->unallocated_gpus_at_full_arrival, 0.0);
  ASSERT_EQ(run->curve.size(), 6u);
  EXPECT_DOUBLE_EQ(run->curve[1].arrived_share, 1.5 / 4);
  EXPECT_DOUBLE_EQ(run->curve[5].arrived_share, 5.0 / 4);
  ASSERT_TRUE(run->placements[1] && run->placements[2]);
  EXPECT_EQ(run->placements[1]->grants[0].gpu_uuid, run->placements[2]->grants[0].gpu_uuid)
      << "binpack pairs the two halves";
  EXPECT_TRUE(run->placements[3]->grants.empty()) << "CPU-only pod";
  EXPECT_FALSE(run->placements[5]);
  // Every policy runs the same trace without error and never over-allocates.
  for (const std::string& policy : PolicyNames()) {
    options.policy = policy;
    Result<SimulationRun> other = Simulate(cluster, Arrivals(*pods, options, 4000), options);
    ASSERT_TRUE(other.ok()) << policy;
    EXPECT_LE(other->allocated_share_final, 1.0) << policy;
    EXPECT_EQ(other->pods_placed + other->pods_failed, 6) << policy;
  }
  options.policy = "fastest";
  EXPECT_EQ(Simulate(cluster, *pods, options).status().code(), StatusCode::kInvalidArgument);
}

TEST(ReportTest, JsonHasTheContractFields) {
  SimulationRun a;
  a.policy = "binpack";
  a.allocated_share_at_first_failure = 0.9;
  a.allocated_share_final = 0.95;
  a.unallocated_gpus_at_full_arrival = 300;
  a.pods_placed = 10;
  a.pods_failed = 2;
  SimulationRun b = a;
  b.allocated_share_final = 0.97;
  b.unallocated_gpus_at_full_arrival.reset();
  ReportHeader header;
  header.trace_path = "pods.csv";
  header.nodes = 2;
  header.gpus = 4;
  header.seed = 1;
  header.repeat = 2;
  const nlohmann::json json = ReportJson(header, {SummarizeRuns("binpack", {a, b})});
  for (const char* key : {"trace", "nodes", "gpus", "policies"}) EXPECT_TRUE(json.contains(key));
  const nlohmann::json& policy = json["policies"][0];
  for (const char* key :
       {"policy", "allocated_share_at_first_failure", "allocated_share_final",
        "unallocated_gpus_at_full_arrival", "pods_placed", "pods_failed", "seconds"}) {
    EXPECT_TRUE(policy.contains(key)) << key;
  }
  EXPECT_DOUBLE_EQ(policy["allocated_share_final"].get<double>(), 0.96);
  EXPECT_DOUBLE_EQ(policy["unallocated_gpus_at_full_arrival"].get<double>(), 300);
  EXPECT_GT(policy["stddev"]["allocated_share_final"].get<double>(), 0);
  EXPECT_DOUBLE_EQ(policy["median"]["allocated_share_final"].get<double>(), 0.96);
  EXPECT_DOUBLE_EQ(Summarize({5, 1, 3}).median, 3);
  EXPECT_DOUBLE_EQ(Summarize({4, 1, 3, 10}).median, 3.5);
  EXPECT_NE(ReportTable(header, {SummarizeRuns("binpack", {a, b})}).find("96.00% ±1.41"),
            std::string::npos);
}

// A base like the default trace: CPU-only pods, shares, whole GPUs and a
// few 8-GPU pods, some restricted to a model.
std::vector<TracePod> VariantBase() {
  std::vector<TracePod> pods;
  for (int i = 0; i < 1000; ++i) {
    TracePod pod;
    pod.name = "p" + std::to_string(i);
    pod.cpu_milli = 1000 + i;
    if (i % 7 == 0) {
      // CPU-only.
    } else if (i % 3 == 0) {
      pod.num_gpu = 1;
      pod.gpu_milli = 100 + (i % 9) * 100;
    } else if (i % 50 == 1) {
      pod.num_gpu = 8;
      pod.gpu_milli = 1000;
    } else {
      pod.num_gpu = 1;
      pod.gpu_milli = 1000;
    }
    if (pod.num_gpu > 0 && i % 4 == 0) pod.gpu_spec = i % 8 == 0 ? "T4" : "V100M16|V100M32";
    pods.push_back(pod);
  }
  return pods;
}

TEST(VariantTest, ParsesThePapersNames) {
  EXPECT_EQ(PaperVariants().size(), 17u);
  for (const std::string& name : PaperVariants()) EXPECT_TRUE(ParseVariant(name).ok()) << name;
  Result<VariantSpec> cpu = ParseVariant("cpu050");
  ASSERT_TRUE(cpu.ok());
  EXPECT_EQ(cpu->kind, VariantSpec::Kind::kCpu);
  EXPECT_DOUBLE_EQ(cpu->target, 0.05);
  EXPECT_DOUBLE_EQ(ParseVariant("gpushare100")->target, 1.0);
  EXPECT_DOUBLE_EQ(ParseVariant("multigpu30")->target, 0.30);
  for (const char* bad : {"cpu", "cpu50", "gpushare", "gpushare101", "multigpux", "default"}) {
    EXPECT_EQ(ParseVariant(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(VariantTest, DerivedVariantsHitTheirShareDeterministically) {
  const std::vector<TracePod> base = VariantBase();
  for (const std::string& name : PaperVariants()) {
    SCOPED_TRACE(name);
    const VariantSpec spec = *ParseVariant(name);
    Result<std::vector<TracePod>> derived = DeriveVariant(base, spec, 42);
    ASSERT_TRUE(derived.ok()) << derived.status().ToString();
    const double share = MeasureVariantShare(*derived, spec.kind);
    switch (spec.kind) {
      case VariantSpec::Kind::kCpu:
      case VariantSpec::Kind::kGpuSpec:
        // Counts of pods: exact up to rounding one pod.
        EXPECT_NEAR(share, spec.target, 0.002);
        break;
      case VariantSpec::Kind::kMultiGpu:
        // Whole 8-GPU pods are added until the share is reached.
        EXPECT_GE(share, spec.target);
        EXPECT_LT(share, spec.target + 0.01);
        break;
      case VariantSpec::Kind::kGpuShare:
        // Sampled by the kinds' mean demand: close, not exact.
        EXPECT_NEAR(share, spec.target, 0.03);
        break;
    }
    Result<std::vector<TracePod>> again = DeriveVariant(base, spec, 42);
    ASSERT_EQ(again->size(), derived->size());
    for (size_t i = 0; i < derived->size(); ++i) {
      EXPECT_EQ((*again)[i].name, (*derived)[i].name);
      EXPECT_EQ((*again)[i].gpu_spec, (*derived)[i].gpu_spec);
    }
  }
  // cpu050 keeps every GPU pod; gpushare keeps the number of GPU pods and
  // every CPU-only pod.
  const auto gpu_pods = [](const std::vector<TracePod>& pods) {
    return std::count_if(pods.begin(), pods.end(), [](const TracePod& p) { return p.num_gpu > 0; });
  };
  EXPECT_EQ(gpu_pods(*DeriveVariant(base, *ParseVariant("cpu050"))), gpu_pods(base));
  const std::vector<TracePod> share60 = *DeriveVariant(base, *ParseVariant("gpushare60"));
  EXPECT_EQ(gpu_pods(share60), gpu_pods(base));
  EXPECT_EQ(share60.size(), base.size());
  // No gpu_spec in the base: gpuspec variants say where to derive them from.
  std::vector<TracePod> open = base;
  for (TracePod& pod : open) pod.gpu_spec.clear();
  Result<std::vector<TracePod>> none = DeriveVariant(open, *ParseVariant("gpuspec25"));
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("gpuspec33"), std::string::npos);
}

TEST(VariantTest, WrittenTraceReadsBack) {
  const std::vector<TracePod> base = VariantBase();
  const std::string path = WriteTemp("variant.csv", "");
  ASSERT_TRUE(WriteTracePods(base, path).ok());
  Result<std::vector<TracePod>> read = LoadTracePods(path);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  ASSERT_EQ(read->size(), base.size());
  for (size_t i = 0; i < base.size(); ++i) {
    EXPECT_EQ((*read)[i].name, base[i].name);
    EXPECT_EQ((*read)[i].GpuDemandMilli(), base[i].GpuDemandMilli());
    EXPECT_EQ((*read)[i].gpu_spec, base[i].gpu_spec);
  }
}

TEST(PlotTest, WritesAPng) {
  PlotSpec spec;
  spec.title = "test";
  spec.diagonal = true;
  spec.series.push_back({"binpack", {{0, 0}, {0.5, 0.5}, {1, 0.9}}});
  const std::string png = RenderPng(spec, 320, 200);
  ASSERT_GT(png.size(), 33u);
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(png.substr(12, 4), "IHDR");
  EXPECT_EQ(static_cast<unsigned char>(png[19]), 320 & 0xff);  // Width, big-endian.
  EXPECT_EQ(png.substr(png.size() - 8, 4), "IEND");
}

TEST(CommandTest, RunsEveryPolicyAndPrintsJson) {
  SimulateArgs args;
  args.nodes_path = WriteTemp("nodes.csv", kNodes);
  args.trace_path = WriteTemp("pods.csv", kPods);
  args.output = "json";
  args.plot_path = WriteTemp("plot.png", "");
  args.seed = 5;
  args.repeat = 2;
  args.jobs = 2;
  std::ostringstream out, err;
  ASSERT_EQ(RunSimulate(args, out, err), 0) << err.str();
  const nlohmann::json json = nlohmann::json::parse(out.str());
  EXPECT_EQ(json["gpus"], 4);
  EXPECT_EQ(json["policies"].size(), PolicyNames().size());
  EXPECT_EQ(json["order"], "shuffled");
  EXPECT_GT(std::filesystem::file_size(args.plot_path), 100u);

  EXPECT_EQ(json["tuning"], "gpu-demand");
  EXPECT_LE(json["arrived_gpu_demand"].get<double>(), 1.3);

  args.variant = "cpu500";
  args.plot_path.clear();
  std::ostringstream variant_out;
  ASSERT_EQ(RunSimulate(args, variant_out, err), 0) << err.str();
  EXPECT_EQ(nlohmann::json::parse(variant_out.str())["variant"], "cpu500");
  args.variant = "gpushare";
  EXPECT_EQ(RunSimulate(args, out, err), 2);
  args.variant.clear();

  args.policies = {"nope"};
  EXPECT_EQ(RunSimulate(args, out, err), 2);
  args.policies = {};
  args.trace_path = "/nonexistent.csv";
  EXPECT_EQ(RunSimulate(args, out, err), 2);
}

}  // namespace
}  // namespace gpurm::sim
