#include "cli/run_k8s.h"

#include <gtest/gtest.h>

namespace gpurm::cli {
namespace {

TEST(RunK8sTest, JobRequestCarriesTheGpuRequestWithoutALease) {
  RunFlags flags;  // Its default lease (30 s) must not reach a Job.
  flags.request.gpus = 2;
  flags.request.type = "A100";
  flags.request.distributed = true;
  KubernetesJobFlags job;
  job.enabled = true;
  job.image = "registry.example/train:1";
  job.job_name = "resnet";
  job.env = {"DATASET=imagenet", "EMPTY="};
  Result<nlohmann::json> body =
      BuildJobRequest(flags.request, job, {"python", "train.py", "--epochs", "3"});
  ASSERT_TRUE(body.ok()) << body.status().ToString();
  EXPECT_EQ((*body)["gpu_count"], 2);
  EXPECT_EQ((*body)["gpu_type"], "A100");
  EXPECT_EQ((*body)["distributed_training"], true);
  EXPECT_FALSE(body->contains("lease_ttl_seconds"));
  EXPECT_EQ((*body)["job"]["name"], "resnet");
  EXPECT_EQ((*body)["job"]["image"], "registry.example/train:1");
  EXPECT_EQ((*body)["job"]["command"], nlohmann::json({"python", "train.py", "--epochs", "3"}));
  EXPECT_EQ((*body)["job"]["env"]["DATASET"], "imagenet");
  EXPECT_EQ((*body)["job"]["env"]["EMPTY"], "");
}

TEST(RunK8sTest, MissingImageCommandOrMalformedEnvIsAUsageError) {
  RequestFlags request;
  KubernetesJobFlags job;
  EXPECT_EQ(BuildJobRequest(request, job, {"python"}).status().field(), "--image");
  job.image = "img";
  EXPECT_EQ(BuildJobRequest(request, job, {}).status().field(), "command");
  job.env = {"NOEQUALS"};
  EXPECT_EQ(BuildJobRequest(request, job, {"python"}).status().field(), "--env");
}

}  // namespace
}  // namespace gpurm::cli
