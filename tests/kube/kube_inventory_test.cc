// The Kubernetes inventory provider against an API server: GPU nodes with
// the vendors' labels, pods holding GPUs, nodes that are cordoned or not
// Ready, and changes arriving through the watches.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "inventory/providers/kubernetes/kubernetes_provider.h"
#include "kube/api_server.h"
#include "support/eventually.h"

namespace gpurm {
namespace {

using nlohmann::json;
using testing::TestApiServer;

const Node* FindNode(const DiscoveryReport& report, const std::string& name) {
  for (const Node& node : report.nodes) {
    if (node.name == name) return &node;
  }
  return nullptr;
}

int Offerable(const Node& node) {
  int count = 0;
  for (const Gpu& gpu : node.gpus) count += gpu.healthy ? 1 : 0;
  return node.schedulable ? count : 0;
}

KubernetesProviderOptions Options() {
  KubernetesProviderOptions options;
  options.gpu_resource = {{"nvidia", "nvidia.com/gpu"}, {"amd", "amd.com/gpu"}};
  options.memory_specs = {{"T4", 16.0}};
  options.retry_delay_s = 0.2;
  return options;
}

TEST(KubeInventoryTest, InventoryMatchesTheNodesAndPodsCreated) {
  Result<std::unique_ptr<TestApiServer>> started = TestApiServer::Start("team-a");
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  TestApiServer& server = **started;

  // NVIDIA GPU Feature Discovery's labels.
  ASSERT_TRUE(server
                  .CreateNode("gpu-a", "nvidia.com/gpu", 8,
                              {{"nvidia.com/gpu.product", "NVIDIA-A100-SXM4-80GB"},
                               {"nvidia.com/gpu.memory", "81920"},
                               {"nvidia.com/gpu.count", "8"}})
                  .ok());
  // AMD's node labeller, one GPU reported unhealthy by the device plugin.
  ASSERT_TRUE(server
                  .CreateNode("gpu-b", "amd.com/gpu", 4,
                              {{"amd.com/gpu.product-name", "AMD_Instinct_MI250X"},
                               {"amd.com/gpu.vram", "64G"}},
                              /*ready=*/true, /*allocatable=*/3)
                  .ok());
  ASSERT_TRUE(server
                  .CreateNode("gpu-notready", "nvidia.com/gpu", 4,
                              {{"nvidia.com/gpu.product", "Tesla-T4"}}, /*ready=*/false)
                  .ok());
  ASSERT_TRUE(server
                  .CreateNode("gpu-cordoned", "nvidia.com/gpu", 2,
                              {{"nvidia.com/gpu.product", "Tesla-T4"}}, /*ready=*/true, -1,
                              /*unschedulable=*/true)
                  .ok());
  ASSERT_TRUE(server.CreateNode("cpu-only", "nvidia.com/gpu", 0, json::object()).ok());

  // Pods: two running and one pending-but-bound hold GPUs; finished pods,
  // unbound pods and pods of gpurm's own Jobs do not count.
  ASSERT_TRUE(server.CreatePod("team-a", "train-1", "gpu-a", "nvidia.com/gpu", 2, "Running").ok());
  ASSERT_TRUE(server.CreatePod("team-a", "train-2", "gpu-a", "nvidia.com/gpu", 1, "Pending").ok());
  ASSERT_TRUE(server.CreatePod("team-a", "done", "gpu-a", "nvidia.com/gpu", 4, "Succeeded").ok());
  ASSERT_TRUE(server.CreatePod("team-a", "crashed", "gpu-a", "nvidia.com/gpu", 4, "Failed").ok());
  ASSERT_TRUE(server.CreatePod("team-a", "unbound", "", "nvidia.com/gpu", 4, "Pending").ok());
  ASSERT_TRUE(server
                  .CreatePod("team-a", "gpurm-job-0", "gpu-a", "nvidia.com/gpu", 2, "Running",
                             {{kAllocationLabel, "alloc-0000000000000001"}})
                  .ok());
  ASSERT_TRUE(server.CreatePod("team-a", "rocm", "gpu-b", "amd.com/gpu", 1, "Running").ok());

  KubernetesProvider provider(&server.client(), Options());
  ASSERT_TRUE(provider.WaitUntil(
      [](const DiscoveryReport& r) {
        const Node* a = FindNode(r, "gpu-a");
        const Node* b = FindNode(r, "gpu-b");
        return r.nodes.size() == 4 && a != nullptr && Offerable(*a) == 5 && b != nullptr &&
               Offerable(*b) == 2;
      },
      testing::kPatience))
      << "inventory never matched";
  Result<DiscoveryReport> report = provider.Discover();
  ASSERT_TRUE(report.ok()) << report.status().ToString();

  const Node* a = FindNode(*report, "gpu-a");
  ASSERT_NE(a, nullptr);
  EXPECT_TRUE(a->schedulable);
  ASSERT_EQ(a->gpus.size(), 8u);
  EXPECT_EQ(a->gpus[0].model.canonical, "A100");
  EXPECT_EQ(a->gpus[0].memory_total_mib, 81920);
  EXPECT_EQ(a->gpus[0].uuid, "k8s:gpu-a:nvidia.com/gpu:0");
  EXPECT_FALSE(a->gpus[0].healthy);
  EXPECT_NE(a->gpus[0].health_reason.find("team-a/train-1"), std::string::npos);
  EXPECT_NE(a->gpus[0].health_reason.find("team-a/train-2"), std::string::npos);
  EXPECT_FALSE(a->gpus[2].healthy);
  EXPECT_TRUE(a->gpus[3].healthy);
  EXPECT_FALSE(a->address.empty());

  const Node* b = FindNode(*report, "gpu-b");
  ASSERT_NE(b, nullptr);
  ASSERT_EQ(b->gpus.size(), 4u);
  EXPECT_EQ(b->gpus[0].model.canonical, "MI250X");
  EXPECT_EQ(b->gpus[0].memory_total_mib, 64 * 1024);
  EXPECT_FALSE(b->gpus[0].healthy);  // The pod's.
  EXPECT_TRUE(b->gpus[1].healthy);
  EXPECT_FALSE(b->gpus[3].healthy);  // Not allocatable.
  EXPECT_NE(b->gpus[3].health_reason.find("unhealthy"), std::string::npos);

  const Node* not_ready = FindNode(*report, "gpu-notready");
  ASSERT_NE(not_ready, nullptr);
  EXPECT_FALSE(not_ready->schedulable);
  EXPECT_EQ(not_ready->gpus[0].model.canonical, "T4");
  EXPECT_EQ(not_ready->gpus[0].memory_total_mib, 16 * 1024);  // From gpu_memory_specs.
  const Node* cordoned = FindNode(*report, "gpu-cordoned");
  ASSERT_NE(cordoned, nullptr);
  EXPECT_FALSE(cordoned->schedulable);
  EXPECT_EQ(FindNode(*report, "cpu-only"), nullptr);

  // Changes arrive through the watches: a pod finishes, a node is cordoned.
  Result<json> pod = server.client().Get("/api/v1/namespaces/team-a/pods/train-1");
  ASSERT_TRUE(pod.ok());
  (*pod)["status"]["phase"] = "Succeeded";
  ASSERT_TRUE(server.client().Replace("/api/v1/namespaces/team-a/pods/train-1/status", *pod).ok());
  Result<json> node = server.client().Get("/api/v1/nodes/gpu-b");
  ASSERT_TRUE(node.ok());
  (*node)["spec"]["unschedulable"] = true;
  ASSERT_TRUE(server.client().Replace("/api/v1/nodes/gpu-b", *node).ok());
  EXPECT_TRUE(provider.WaitUntil(
      [](const DiscoveryReport& r) {
        const Node* a2 = FindNode(r, "gpu-a");
        const Node* b2 = FindNode(r, "gpu-b");
        return a2 != nullptr && Offerable(*a2) == 7 && b2 != nullptr && !b2->schedulable;
      },
      testing::kPatience));
}

TEST(KubeInventoryTest, UnreachableApiServerIsUnavailableWithTheReason) {
  kube::Connection nowhere;
  nowhere.server = "http://127.0.0.1:1";
  kube::KubeClient client(nowhere);
  KubernetesProvider provider(&client, Options());
  testing::Eventually([&] { return !provider.nodes_view().last_error.ok(); });
  Result<DiscoveryReport> report = provider.Discover();
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(report.status().message().find("kubernetes: cannot list nodes"), std::string::npos);
  EXPECT_NE(report.status().message().find("127.0.0.1:1"), std::string::npos)
      << report.status().message();
}

}  // namespace
}  // namespace gpurm
