// The label and quantity rules of the Kubernetes provider on objects as the
// API server returns them (tests/kube/ runs it against an API server).
#include "inventory/providers/kubernetes/kubernetes_provider.h"

#include <gtest/gtest.h>

namespace gpurm {
namespace {

using nlohmann::json;

json NodeObject(const std::string& name, const std::string& resource, const std::string& count,
                const json& labels) {
  return {{"metadata", {{"name", name}, {"labels", labels}}},
          {"spec", json::object()},
          {"status",
           {{"capacity", {{resource, count}}},
            {"allocatable", {{resource, count}}},
            {"conditions", {{{"type", "Ready"}, {"status", "True"}}}}}}};
}

KubernetesProviderOptions Options() {
  KubernetesProviderOptions options;
  options.gpu_resource = {{"intel", "gpu.intel.com/i915"}, {"npu", "huawei.com/Ascend910"}};
  return options;
}

TEST(KubernetesProviderTest, IntelAndAscendLabels) {
  const std::map<std::string, json> nodes = {
      {"max", NodeObject("max", "gpu.intel.com/i915", "2",
                         {{"gpu.intel.com/product", "Max_1550"},
                          {"gpu.intel.com/device.count", "2"},
                          {"gpu.intel.com/memory.max", "274877906944"}})},
      {"npu", NodeObject("npu", "huawei.com/Ascend910", "8", json::object())},
      {"xe", NodeObject("xe", "gpu.intel.com/xe", "1", json::object())}};
  const DiscoveryReport report = BuildKubernetesInventory(nodes, {}, Options());
  ASSERT_EQ(report.nodes.size(), 3u);
  const Node& max = report.nodes[0];
  ASSERT_EQ(max.gpus.size(), 2u);
  EXPECT_EQ(max.gpus[0].model.vendor, Vendor::kIntel);
  EXPECT_EQ(max.gpus[0].model.canonical, "MAX1550");
  EXPECT_EQ(max.gpus[0].memory_total_mib, 128 * 1024);  // memory.max is the node's total.
  const Node& npu = report.nodes[1];
  ASSERT_EQ(npu.gpus.size(), 8u);
  EXPECT_EQ(npu.gpus[0].model.vendor, Vendor::kHuawei);
  EXPECT_EQ(npu.gpus[7].uuid, "k8s:npu:huawei.com/Ascend910:7");
  // No label, no spec: listed with unknown memory, and a note says so.
  const Node& xe = report.nodes[2];
  ASSERT_EQ(xe.gpus.size(), 1u);
  EXPECT_EQ(xe.gpus[0].memory_total_mib, 0);
  bool noted = false;
  for (const std::string& note : report.notes) {
    noted |= note.find("xe: memory of gpu.intel.com/xe") != std::string::npos;
  }
  EXPECT_TRUE(noted);
}

TEST(KubernetesProviderTest, InitContainersAndLimitsCountAsKubernetesDoes) {
  const std::map<std::string, json> nodes = {
      {"a", NodeObject("a", "nvidia.com/gpu", "8", {{"nvidia.com/gpu.product", "Tesla-T4"}})}};
  // Effective request: max(sum of containers = 1 + 2, largest init = 4) = 4;
  // a limit alone counts as the request.
  const json pod = {
      {"metadata", {{"name", "p"}, {"namespace", "ns"}}},
      {"spec",
       {{"nodeName", "a"},
        {"containers",
         {{{"resources", {{"limits", {{"nvidia.com/gpu", "1"}}}}}},
          {{"resources", {{"requests", {{"nvidia.com/gpu", "2"}}}}}}}},
        {"initContainers", {{{"resources", {{"limits", {{"nvidia.com/gpu", "4"}}}}}}}}}},
      {"status", {{"phase", "Running"}}}};
  const DiscoveryReport report = BuildKubernetesInventory(nodes, {{"ns/p", pod}}, Options());
  ASSERT_EQ(report.nodes.size(), 1u);
  int held = 0;
  for (const Gpu& gpu : report.nodes[0].gpus) held += gpu.healthy ? 0 : 1;
  EXPECT_EQ(held, 4);
  EXPECT_EQ(report.nodes[0].gpus[0].model.canonical, "T4");
}

// GPU Feature Discovery's mixed MIG strategy: six whole H100s and MIG
// profiles as resources of their own, labelled per profile.
TEST(KubernetesProviderTest, MigResourcesOfTheMixedStrategyAreMigDevices) {
  json node = NodeObject("dgx", "nvidia.com/gpu", "6",
                         {{"nvidia.com/gpu.product", "NVIDIA-H100-80GB-HBM3"},
                          {"nvidia.com/gpu.memory", "81559"},
                          {"nvidia.com/mig.strategy", "mixed"},
                          {"nvidia.com/mig-3g.40gb.count", "2"},
                          {"nvidia.com/mig-3g.40gb.product", "NVIDIA-H100-80GB-HBM3-MIG-3g.40gb"},
                          {"nvidia.com/mig-3g.40gb.memory", "40320"},
                          {"nvidia.com/mig-1g.10gb.count", "2"}});
  for (const char* part : {"capacity", "allocatable"}) {
    node["status"][part]["nvidia.com/mig-3g.40gb"] = "2";
    node["status"][part]["nvidia.com/mig-1g.10gb"] = "2";
  }
  // A pod outside gpurm holds one 1g.10gb.
  const json pod = {
      {"metadata", {{"name", "p"}, {"namespace", "ns"}}},
      {"spec",
       {{"nodeName", "dgx"},
        {"containers", {{{"resources", {{"limits", {{"nvidia.com/mig-1g.10gb", "1"}}}}}}}}}},
      {"status", {{"phase", "Running"}}}};
  const DiscoveryReport report =
      BuildKubernetesInventory({{"dgx", node}}, {{"ns/p", pod}}, Options());
  ASSERT_EQ(report.nodes.size(), 1u);
  const std::vector<Gpu>& gpus = report.nodes[0].gpus;
  ASSERT_EQ(gpus.size(), 10u);
  int whole = 0;
  std::map<std::string, std::vector<const Gpu*>> by_profile;
  for (const Gpu& gpu : gpus) {
    if (!gpu.is_mig_device()) {
      ++whole;
      EXPECT_TRUE(gpu.allocatable_unit());
      continue;
    }
    by_profile[gpu.mig_profile].push_back(&gpu);
    EXPECT_EQ(gpu.mig_parent_uuid, "k8s:dgx:nvidia.com/gpu:mig");
    EXPECT_FALSE(gpu.utilization_available);
    EXPECT_EQ(gpu.model.canonical, "H100");
  }
  EXPECT_EQ(whole, 6);
  ASSERT_EQ(by_profile["3g.40gb"].size(), 2u);
  ASSERT_EQ(by_profile["1g.10gb"].size(), 2u);
  const Gpu& big = *by_profile["3g.40gb"][0];
  EXPECT_EQ(big.uuid, "k8s:dgx:nvidia.com/mig-3g.40gb:0");  // Jobs request that resource.
  EXPECT_EQ(big.memory_total_mib, 40320);                   // The profile's memory label.
  EXPECT_EQ(GpuTypeLabel(big), "H100 MIG 3g.40gb");
  // Without .product and .memory labels: the GPU's product and the profile's size.
  const Gpu& small = *by_profile["1g.10gb"][0];
  EXPECT_EQ(small.model.raw_name, "NVIDIA H100 80GB HBM3 MIG 1g.10gb");
  EXPECT_EQ(small.memory_total_mib, 10 * 1024);
  EXPECT_FALSE(small.healthy);  // Held by the pod.
  EXPECT_TRUE(by_profile["1g.10gb"][1]->healthy);
  bool summarised = false;
  for (const std::string& note : report.notes) {
    summarised |=
        note == "kubernetes: 1 GPU node(s) with 6 GPU(s) and 4 MIG device(s) of 1 node(s)";
  }
  EXPECT_TRUE(summarised);
}

}  // namespace
// Process accounting maps a pod's processes through its UID to the
// allocation label of gpurm's Job pods.
TEST(KubernetesProviderTest, APodUidLeadsToItsJobsAllocation) {
  std::map<std::string, json> pods;
  pods["ns/train-0"] = {{"metadata",
                         {{"name", "train-0"},
                          {"uid", "5f3c6d2e-8a1b-4c7d-9e0f-123456789abc"},
                          {"labels", {{kAllocationLabel, "alloc-7"}}}}}};
  pods["ns/other"] = {
      {"metadata", {{"name", "other"}, {"uid", "0a3c6d2e-8a1b-4c7d-9e0f-123456789abc"}}}};
  EXPECT_EQ(AllocationOfPod(pods, "5f3c6d2e-8a1b-4c7d-9e0f-123456789abc"), "alloc-7");
  EXPECT_EQ(AllocationOfPod(pods, "0a3c6d2e-8a1b-4c7d-9e0f-123456789abc"), std::nullopt);
  EXPECT_EQ(AllocationOfPod(pods, "ffffffff-8a1b-4c7d-9e0f-123456789abc"), std::nullopt);
}

namespace {

json AgentPod(const std::string& name, const std::string& node, const std::string& ip, int port,
              bool ready = true, const std::string& phase = "Running") {
  return {{"metadata", {{"name", name}, {"namespace", "gpurm"}}},
          {"spec",
           {{"nodeName", node},
            {"containers",
             {{{"name", "gpurm"},
               {"ports",
                {{{"name", "metrics"}, {"containerPort", 9}},
                 {{"name", "http"}, {"containerPort", port}}}}}}}}},
          {"status",
           {{"phase", phase},
            {"podIP", ip},
            {"conditions", {{{"type", "Ready"}, {"status", ready ? "True" : "False"}}}}}}};
}

}  // namespace

TEST(KubernetesProviderTest, NodeAgentsAreTheReadyPodsWithAnHttpPort) {
  const std::map<std::string, json> pods = {
      {"gpurm/a", AgentPod("a", "node-a", "10.0.0.7", 8000)},
      {"gpurm/b", AgentPod("b", "node-b", "fd00::7", 8443)},
      {"gpurm/c", AgentPod("c", "node-c", "10.0.0.9", 8000, /*ready=*/false)},
      {"gpurm/d", AgentPod("d", "node-d", "", 8000)},
      {"gpurm/e", AgentPod("e", "node-e", "10.0.0.10", 8000, true, "Pending")}};
  const std::vector<NodeAgentPod> agents = NodeAgentPods(pods, "https");
  ASSERT_EQ(agents.size(), 2u);
  EXPECT_EQ(agents[0].pod, "gpurm/a");
  EXPECT_EQ(agents[0].node_name, "node-a");
  EXPECT_EQ(agents[0].url, "https://10.0.0.7:8000");
  EXPECT_EQ(agents[1].url, "https://[fd00::7]:8443");
}

// The node agent's live values go to the node's GPUs in index order; the
// API server's capacity, model and health stay.
TEST(KubernetesProviderTest, ANodeAgentsLiveDataFillsItsNodesGpus) {
  const std::map<std::string, json> nodes = {
      {"node-a", NodeObject("node-a", "nvidia.com/gpu", "2",
                            {{"nvidia.com/gpu.product", "NVIDIA-H100-80GB-HBM3"},
                             {"nvidia.com/gpu.memory", "81559"}})}};
  DiscoveryReport report = BuildKubernetesInventory(nodes, {}, Options());
  ASSERT_EQ(report.nodes.size(), 1u);
  EXPECT_TRUE(report.nodes[0].device_plugin_assigns_gpus);

  NodeAgentAnswer answer;
  answer.pod = "gpurm/gpurm-node-x1";
  answer.node_name = "node-a";
  answer.pull.url = "http://10.0.0.7:8000";
  AgentReport& live = answer.pull.report;
  live.node.name = "node-a";
  for (int i : {1, 0}) {  // Listed out of order: matched by index.
    Gpu& gpu = live.node.gpus.emplace_back();
    gpu.index = i;
    gpu.uuid = "GPU-real-" + std::to_string(i);
    gpu.memory_total_mib = 81559;
    gpu.memory_used_mib = 1000 * (i + 1);
    gpu.utilization = 0.25 * (i + 1);
    gpu.temperature_c = 40 + i;
    GpuProcess process(100 + i, 900);
    process.identity.emplace();
    process.identity->pod_uid = "uid-" + std::to_string(i);
    gpu.processes = {process};
  }
  live.node.gpus[0].healthy = false;  // GPU 1.
  live.node.gpus[0].health_reason = "XID 79";
  live.stale_gpus = {"GPU-real-0"};
  live.notes = {"NVML 12.550"};

  ASSERT_TRUE(MergeNodeAgentAnswer(answer, &report));
  const std::vector<Gpu>& gpus = report.nodes[0].gpus;
  ASSERT_EQ(gpus.size(), 2u);
  EXPECT_EQ(gpus[0].uuid, "k8s:node-a:nvidia.com/gpu:0");
  EXPECT_EQ(gpus[0].memory_used_mib, 1000);
  EXPECT_EQ(gpus[0].utilization, 0.25);
  EXPECT_EQ(gpus[0].temperature_c, 40);
  ASSERT_EQ(gpus[0].processes.size(), 1u);
  EXPECT_EQ(gpus[0].processes[0].pid, 100);
  EXPECT_EQ(gpus[0].processes[0].identity->pod_uid, "uid-0");
  EXPECT_TRUE(gpus[0].healthy);
  EXPECT_EQ(gpus[1].memory_used_mib, 2000);
  EXPECT_FALSE(gpus[1].healthy);
  EXPECT_EQ(gpus[1].health_reason, "node agent: XID 79");
  EXPECT_EQ(gpus[1].model.canonical, "H100");
  EXPECT_EQ(report.stale_gpus, std::vector<std::string>{"k8s:node-a:nvidia.com/gpu:0"});
  const std::string& last_note = report.notes.back();
  EXPECT_NE(last_note.find("gpurm/gpurm-node-x1"), std::string::npos) << last_note;
  EXPECT_NE(last_note.find("NVML 12.550"), std::string::npos) << last_note;
}

TEST(KubernetesProviderTest, ANodeAgentThatCannotBeUsedIsANoteAndChangesNothing) {
  const std::map<std::string, json> nodes = {
      {"node-a",
       NodeObject("node-a", "nvidia.com/gpu", "1", {{"nvidia.com/gpu.memory", "81559"}})}};
  const DiscoveryReport before = BuildKubernetesInventory(nodes, {}, Options());
  const auto note_after = [&](const NodeAgentAnswer& answer) {
    DiscoveryReport report = before;
    EXPECT_FALSE(MergeNodeAgentAnswer(answer, &report));
    EXPECT_EQ(report.nodes, before.nodes);
    return report.notes.back();
  };
  NodeAgentAnswer silent{"gpurm/x", "node-a", {}};
  silent.pull.problem = "not answering: Timeout was reached";
  EXPECT_NE(note_after(silent).find("not answering"), std::string::npos);

  NodeAgentAnswer impostor{"gpurm/x", "node-a", {}};
  impostor.pull.report.node.name = "node-b";
  impostor.pull.report.node.gpus.emplace_back().uuid = "GPU-b";
  EXPECT_NE(note_after(impostor).find("reports node 'node-b'"), std::string::npos);

  NodeAgentAnswer elsewhere{"gpurm/x", "cpu-node", {}};
  elsewhere.pull.report.node.name = "cpu-node";
  EXPECT_NE(note_after(elsewhere).find("lists no GPUs on that node"), std::string::npos);
}

}  // namespace gpurm
