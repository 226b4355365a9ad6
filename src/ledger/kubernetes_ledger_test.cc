// The GpuAllocation object of an allocation (tests/kube/ runs the ledger
// against an API server).
#include "ledger/kubernetes_ledger.h"

#include <gtest/gtest.h>

#include "support/every_field.h"

namespace gpurm {
namespace {

TEST(KubernetesLedgerTest, EveryFieldSurvivesTheObject) {
  const Allocation allocation = testing::AllocationWithEveryFieldSet();
  Result<Allocation> back = AllocationFromObject(AllocationToObject(allocation, "gpurm"));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, allocation);

  Allocation ended = allocation;
  ended.state = AllocationState::kReleased;
  ended.ended_unix_ms = 1'700'000'900'000;
  // Through text, as the API server stores it.
  back = AllocationFromObject(nlohmann::json::parse(AllocationToObject(ended, "gpurm").dump()));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, ended);
}

TEST(KubernetesLedgerTest, ABadRequestFieldNamesItsPathInTheObject) {
  nlohmann::json object = AllocationToObject(testing::AllocationWithEveryFieldSet(), "gpurm");
  object["spec"]["request"]["gpuMilli"] = "half";
  const Status status = AllocationFromObject(object).status();
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(status.field(), "spec.request.gpuMilli");
}

TEST(KubernetesLedgerTest, AllocationObjectRoundTrips) {
  Allocation a;
  a.id = "alloc-0123456789abcdef";
  a.owner = "alice@example.com";
  a.idempotency_key = "k8s-job:resnet";
  a.created_unix_ms = 1'700'000'000'123;
  a.lease_expires_unix_ms = 1'700'000'030'123;
  a.request.gpu_count = 2;
  a.request.gpu_type = "A100";
  a.request.memory_gb = 40.5;
  a.request.shared = true;
  a.request.gpu_milli = 500;
  a.request.lease_ttl_s = 30;
  a.grants = {{"gpu-a", 0, "k8s:gpu-a:nvidia.com/gpu:0", 41472, false},
              {"gpu-a", 1, "k8s:gpu-a:nvidia.com/gpu:1", 41472, false}};
  const nlohmann::json object = AllocationToObject(a, "gpurm");
  EXPECT_EQ(object["apiVersion"], "gpurm.io/v1alpha1");
  EXPECT_EQ(object["kind"], "GpuAllocation");
  EXPECT_EQ(object["metadata"]["name"], a.id);
  EXPECT_EQ(object["metadata"]["namespace"], "gpurm");
  EXPECT_EQ(object["metadata"]["labels"]["gpurm.io/state"], "active");
  EXPECT_EQ(object["status"]["state"], "active");

  Result<Allocation> back = AllocationFromObject(object);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->owner, a.owner);
  EXPECT_EQ(back->idempotency_key, a.idempotency_key);
  EXPECT_EQ(back->created_unix_ms, a.created_unix_ms);
  EXPECT_EQ(back->lease_expires_unix_ms, a.lease_expires_unix_ms);
  EXPECT_EQ(back->request.memory_gb, 40.5);
  EXPECT_EQ(back->request.gpu_milli, 500);
  EXPECT_TRUE(back->request.shared);
  ASSERT_EQ(back->grants.size(), 2u);
  EXPECT_EQ(back->grants[1].gpu_uuid, "k8s:gpu-a:nvidia.com/gpu:1");
  EXPECT_FALSE(back->grants[1].exclusive);
  EXPECT_EQ(back->state, AllocationState::kActive);

  nlohmann::json ended = object;
  ended["status"]["state"] = "expired";
  EXPECT_EQ(AllocationFromObject(ended)->state, AllocationState::kExpired);
  ended["status"]["state"] = "lost";
  EXPECT_FALSE(AllocationFromObject(ended).ok());
  EXPECT_FALSE(AllocationFromObject(nlohmann::json{{"kind", "GpuAllocation"}}).ok());
}

}  // namespace
}  // namespace gpurm
