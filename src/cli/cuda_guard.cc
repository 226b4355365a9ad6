#include "cli/cuda_guard.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <system_error>
#include <vector>

#include "guard/guard_config.h"

namespace gpurm::cli {
namespace {

const std::optional<std::string>* Variable(const LaunchPlan& plan, const char* name) {
  const auto it = plan.environment.find(name);
  return it == plan.environment.end() ? nullptr : &it->second;
}

}  // namespace

Result<std::string> FindCudaGuardLibrary() {
  if (const char* named = std::getenv(kCudaGuardLibraryVariable); named != nullptr && *named) {
    if (::access(named, R_OK) == 0) return std::string(named);
    return Status(StatusCode::kNotFound, std::string(kCudaGuardLibraryVariable) + "=" + named +
                                             ": no readable file there");
  }
  std::error_code error;
  const std::filesystem::path binary = std::filesystem::read_symlink("/proc/self/exe", error);
  if (error) {
    return Status(StatusCode::kNotFound,
                  "cannot find the CUDA guard: /proc/self/exe: " + error.message());
  }
  const std::filesystem::path directory = binary.parent_path();
  const std::vector<std::filesystem::path> candidates = {
      directory / GPURM_CUDA_GUARD_LIBRARY_NAME,
      (directory / ".." / "lib" / "gpurm" / GPURM_CUDA_GUARD_LIBRARY_NAME).lexically_normal()};
  std::string looked;
  for (const std::filesystem::path& candidate : candidates) {
    if (::access(candidate.c_str(), R_OK) == 0) return candidate.string();
    looked += (looked.empty() ? "" : ", ") + candidate.string();
  }
  return Status(StatusCode::kNotFound, std::string("the CUDA guard ") +
                                           GPURM_CUDA_GUARD_LIBRARY_NAME + " is not in " + looked +
                                           " (set " + kCudaGuardLibraryVariable + ")");
}

void RemoveCudaGuardLedger(const std::string& allocation_id) {
  char path[GPURM_GUARD_LEDGER_PATH_SIZE];
  if (gpurm_guard_ledger_path(allocation_id.c_str(), path, sizeof(path)) != 0) return;
  std::error_code ignored;  // No ledger: the command made no guarded allocation.
  std::filesystem::remove(path, ignored);
}

bool PlanHasCudaLimits(const LaunchPlan& plan) {
  const std::optional<std::string>* limits = Variable(plan, GPURM_ENV_CUDA_MEMORY_LIMITS_MB);
  return limits != nullptr && limits->has_value();
}

Status AddCudaGuard(LaunchPlan& plan, const std::string& library, const char* inherited_preload) {
  if (!PlanHasCudaLimits(plan)) return Status::Ok();
  const std::optional<std::string>* id = Variable(plan, GPURM_ENV_ALLOCATION_ID);
  gpurm_guard_config config;
  char error[256];
  if (gpurm_guard_parse_config(id != nullptr && id->has_value() ? (*id)->c_str() : nullptr,
                               Variable(plan, GPURM_ENV_CUDA_MEMORY_LIMITS_MB)->value().c_str(),
                               &config, error, sizeof(error)) != 0) {
    return InvalidArgument(std::string("the CUDA guard would refuse this job: ") + error,
                           GPURM_ENV_CUDA_MEMORY_LIMITS_MB);
  }
  // ld.so reads LD_PRELOAD as a list separated by ':' or ' ', first loaded first.
  std::string preload = library;
  const std::string inherited = inherited_preload == nullptr ? "" : inherited_preload;
  if (inherited.find(library) == std::string::npos) {
    if (!inherited.empty()) preload += ":" + inherited;
  } else {
    preload = inherited;
  }
  plan.environment["LD_PRELOAD"] = preload;
  return Status::Ok();
}

}  // namespace gpurm::cli
