#include "kube/job.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace gpurm::kube {
namespace {

using nlohmann::json;

JobSpec TwoNodes() {
  JobSpec spec;
  spec.name = "bert";
  spec.namespace_name = "gpurm";
  spec.allocation_id = "alloc-00000000000000ab";
  spec.owner = "alice";
  spec.image = "img";
  spec.command = {"torchrun", "train.py"};
  spec.gpus_per_node = {{"gpu-a", 4}, {"gpu-b", 4}};
  spec.gpu_resource = "amd.com/gpu";
  spec.environment = {{"NCCL_DEBUG", "WARN"}};
  return spec;
}

std::map<std::string, json> EnvironmentOf(const json& job) {
  std::map<std::string, json> env;
  for (const json& var : job["spec"]["template"]["spec"]["containers"][0]["env"]) {
    env[var["name"]] = var;
  }
  return env;
}

TEST(JobTest, PodsPreloadTheCudaGuardWhenThePlanHasLimits) {
  JobSpec spec = TwoNodes();
  spec.gpu_resource = "nvidia.com/gpu";
  spec.environment["GPURM_CUDA_MEMORY_LIMITS_MB"] = "81920,81920,81920,81920";
  std::map<std::string, json> env = EnvironmentOf(BuildJob(spec));
  EXPECT_EQ(env["LD_PRELOAD"]["value"], kCudaGuardImagePath);
  EXPECT_EQ(env["GPURM_CUDA_MEMORY_LIMITS_MB"]["value"], "81920,81920,81920,81920");

  // The caller's LD_PRELOAD (here: none at all) replaces the guard.
  spec.environment["LD_PRELOAD"] = "";
  env = EnvironmentOf(BuildJob(spec));
  EXPECT_EQ(env["LD_PRELOAD"]["value"], "");
}

TEST(JobTest, AMigGrantRequestsItsProfileAndToleratesTheGpuTaint) {
  JobSpec spec = TwoNodes();
  spec.gpus_per_node = {{"dgx", 1}};
  spec.gpu_resource = "nvidia.com/mig-3g.40gb";
  const json job = BuildJob(spec);
  const json& pod = job["spec"]["template"]["spec"];
  EXPECT_EQ(pod["containers"][0]["resources"]["limits"]["nvidia.com/mig-3g.40gb"], "1");
  ASSERT_EQ(pod["tolerations"].size(), 2u);
  EXPECT_EQ(pod["tolerations"][0]["key"], "nvidia.com/mig-3g.40gb");
  EXPECT_EQ(pod["tolerations"][1]["key"], "nvidia.com/gpu");
}

TEST(JobTest, MultiNodeIsAnIndexedJobOnePodPerNode) {
  const JobSpec spec = TwoNodes();
  ASSERT_TRUE(ValidateJobSpec(spec).ok());
  const json job = BuildJob(spec);
  EXPECT_EQ(job["spec"]["completionMode"], "Indexed");
  EXPECT_EQ(job["spec"]["completions"], 2);
  EXPECT_EQ(job["spec"]["parallelism"], 2);
  const json& pod = job["spec"]["template"]["spec"];
  EXPECT_EQ(pod["subdomain"], "bert");
  EXPECT_FALSE(pod.contains("nodeSelector"));
  const json& terms = pod["affinity"]["nodeAffinity"]
                         ["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"];
  EXPECT_EQ(terms[0]["matchExpressions"][0]["values"], json({"gpu-a", "gpu-b"}));
  EXPECT_EQ(pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
               ["topologyKey"],
            "kubernetes.io/hostname");
  const json& container = pod["containers"][0];
  EXPECT_EQ(container["resources"]["limits"]["amd.com/gpu"], "4");
  std::map<std::string, json> env;
  for (const json& var : container["env"]) env[var["name"]] = var;
  EXPECT_EQ(env["MASTER_ADDR"]["value"], "bert-0.bert");
  EXPECT_EQ(env["NNODES"]["value"], "2");
  EXPECT_EQ(env["NPROC_PER_NODE"]["value"], "4");
  EXPECT_EQ(env["NODE_RANK"]["valueFrom"]["fieldRef"]["fieldPath"],
            "metadata.annotations['batch.kubernetes.io/job-completion-index']");
  EXPECT_EQ(env["NCCL_DEBUG"]["value"], "WARN");
  EXPECT_FALSE(env.contains("LD_PRELOAD"));  // No guard limits in this spec.
  const json service = BuildJobService(spec);
  EXPECT_EQ(service["spec"]["clusterIP"], "None");
  EXPECT_EQ(service["spec"]["selector"]["gpurm.io/job"], "bert");
}

TEST(JobTest, ValidationNamesTheProblem) {
  JobSpec spec = TwoNodes();
  spec.gpus_per_node["gpu-b"] = 2;
  EXPECT_EQ(ValidateJobSpec(spec).field(), "gpu_count");
  spec = TwoNodes();
  spec.name = "Bad_Name";
  EXPECT_EQ(ValidateJobSpec(spec).field(), "job.name");
  spec = TwoNodes();
  spec.image.clear();
  EXPECT_EQ(ValidateJobSpec(spec).field(), "job.image");
}

TEST(JobTest, FinishedByConditions) {
  EXPECT_FALSE(JobFinished(json{{"status", {{"active", 1}}}}));
  EXPECT_TRUE(JobFinished(
      json{{"status", {{"conditions", {{{"type", "Complete"}, {"status", "True"}}}}}}}));
  EXPECT_TRUE(
      JobFinished(json{{"status", {{"conditions", {{{"type", "Failed"}, {"status", "True"}}}}}}}));
  EXPECT_FALSE(JobFinished(
      json{{"status", {{"conditions", {{{"type", "Suspended"}, {"status", "True"}}}}}}}));
}

}  // namespace
}  // namespace gpurm::kube
