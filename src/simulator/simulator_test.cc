#include "simulator/simulator.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "simulator/command.h"
#include "simulator/plot.h"
#include "simulator/report.h"
#include "simulator/trace.h"

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

TEST(SimulatorTest, ArrivalsAreInflatedAndShuffledDeterministically) {
  Result<std::vector<TracePod>> pods = LoadTracePods(WriteTemp("pods.csv", kPods));
  ASSERT_TRUE(pods.ok());
  SimulationOptions options;
  options.inflation = 2.0;
  std::vector<TracePod> in_order = Arrivals(*pods, options);
  ASSERT_EQ(in_order.size(), 12u);
  for (size_t i = 0; i < pods->size(); ++i) EXPECT_EQ(in_order[i].name, (*pods)[i].name);
  options.seed = 3;
  in_order = Arrivals(*pods, options);
  options.shuffle = true;
  std::vector<TracePod> shuffled = Arrivals(*pods, options);
  std::vector<TracePod> again = Arrivals(*pods, options);
  ASSERT_EQ(shuffled.size(), 12u);
  std::multiset<std::string> a, b;
  for (size_t i = 0; i < shuffled.size(); ++i) {
    EXPECT_EQ(shuffled[i].name, again[i].name);
    a.insert(shuffled[i].name);
    b.insert(in_order[i].name);
  }
  EXPECT_EQ(a, b) << "the same pods, in another order";
}

TEST(SimulatorTest, MeasuresAllocatedShareAsThePaperDoes) {
  Result<std::vector<TraceNode>> nodes = LoadTraceNodes(WriteTemp("nodes.csv", kNodes));
  Result<std::vector<TracePod>> pods = LoadTracePods(WriteTemp("pods.csv", kPods));
  ASSERT_TRUE(nodes.ok() && pods.ok());
  const SimulatedCluster cluster = BuildCluster(*nodes);
  EXPECT_EQ(cluster.gpu_count, 4);
  SimulationOptions options;
  options.policy = "binpack";
  options.inflation = 1.0;
  options.record_curve = true;
  options.record_placements = true;
  Result<SimulationRun> run = Simulate(cluster, Arrivals(*pods, options), options);
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
    Result<SimulationRun> other = Simulate(cluster, Arrivals(*pods, options), options);
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
  EXPECT_NE(ReportTable(header, {SummarizeRuns("binpack", {a, b})}).find("96.00% ±1.41"),
            std::string::npos);
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

  args.policies = {"nope"};
  EXPECT_EQ(RunSimulate(args, out, err), 2);
  args.policies = {};
  args.trace_path = "/nonexistent.csv";
  EXPECT_EQ(RunSimulate(args, out, err), 2);
}

}  // namespace
}  // namespace gpurm::sim
