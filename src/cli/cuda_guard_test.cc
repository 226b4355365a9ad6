#include "cli/cuda_guard.h"

#include <string>

#include "gtest/gtest.h"

namespace gpurm::cli {
namespace {

LaunchPlan GuardedPlan(const std::string& limits) {
  LaunchPlan plan;
  plan.environment["GPURM_ALLOCATION_ID"] = "alloc-0123";
  plan.environment["GPURM_CUDA_MEMORY_LIMITS_MB"] = limits;
  return plan;
}

TEST(CudaGuardLaunchTest, PreloadsTheGuardBeforeAnInheritedPreload) {
  LaunchPlan plan = GuardedPlan("4096,4096");
  ASSERT_TRUE(AddCudaGuard(plan, "/opt/gpurm/libgpurm_cuda_guard.so", nullptr).ok());
  EXPECT_EQ(plan.environment.at("LD_PRELOAD"), "/opt/gpurm/libgpurm_cuda_guard.so");

  LaunchPlan with_other = GuardedPlan("4096");
  ASSERT_TRUE(AddCudaGuard(with_other, "/g.so", "libjemalloc.so.2").ok());
  EXPECT_EQ(with_other.environment.at("LD_PRELOAD"), "/g.so:libjemalloc.so.2");

  // A run inside a run: the guard is preloaded once.
  LaunchPlan nested = GuardedPlan("4096");
  ASSERT_TRUE(AddCudaGuard(nested, "/g.so", "/g.so:libjemalloc.so.2").ok());
  EXPECT_EQ(nested.environment.at("LD_PRELOAD"), "/g.so:libjemalloc.so.2");
}

TEST(CudaGuardLaunchTest, NoLimitsNoGuard) {
  LaunchPlan plan;
  plan.environment["GPURM_ALLOCATION_ID"] = "alloc-0123";
  plan.environment["GPURM_CUDA_MEMORY_LIMITS_MB"] = std::nullopt;  // Removed: the CPU.
  EXPECT_FALSE(PlanHasCudaLimits(plan));
  ASSERT_TRUE(AddCudaGuard(plan, "/g.so", "libjemalloc.so.2").ok());
  EXPECT_FALSE(plan.environment.contains("LD_PRELOAD"));
}

TEST(CudaGuardLaunchTest, RefusesValuesTheGuardWouldRefuse) {
  LaunchPlan bad_limits = GuardedPlan("4096,many");
  const Status refused = AddCudaGuard(bad_limits, "/g.so", nullptr);
  EXPECT_EQ(refused.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.message().find("GPURM_CUDA_MEMORY_LIMITS_MB=\"4096,many\""), std::string::npos)
      << refused.message();
  EXPECT_FALSE(bad_limits.environment.contains("LD_PRELOAD"));

  LaunchPlan bad_id = GuardedPlan("4096");
  bad_id.environment["GPURM_ALLOCATION_ID"] = "../x";
  EXPECT_EQ(AddCudaGuard(bad_id, "/g.so", nullptr).code(), StatusCode::kInvalidArgument);
}

TEST(CudaGuardLaunchTest, TheNamedLibraryWinsAndMustExist) {
  ::setenv(kCudaGuardLibraryVariable, "/nonexistent/libgpurm_cuda_guard.so", 1);
  const Result<std::string> missing = FindCudaGuardLibrary();
  ::unsetenv(kCudaGuardLibraryVariable);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("GPURM_CUDA_GUARD_LIBRARY="), std::string::npos);
}

}  // namespace
}  // namespace gpurm::cli
