// The CUDA guard (src/guard, libgpurm_cuda_guard.so) in launches of
// `gpurm run`: the library is preloaded into every command that runs on
// granted NVIDIA GPUs, so the command's processes (and their children) are
// held to the grant per device that the daemon put in the plan
// (GPURM_CUDA_MEMORY_LIMITS_MB).
#ifndef GPURM_CLI_CUDA_GUARD_H_
#define GPURM_CLI_CUDA_GUARD_H_

#include <string>

#include "cli/run_command.h"
#include "core/status.h"

namespace gpurm::cli {

// Names the guard library explicitly, for installs that keep it elsewhere.
inline constexpr char kCudaGuardLibraryVariable[] = "GPURM_CUDA_GUARD_LIBRARY";

// Where the guard library is: $GPURM_CUDA_GUARD_LIBRARY when set; else next
// to the running gpurm binary (the build tree: build/gpurm and
// build/libgpurm_cuda_guard.so); else ../lib/gpurm/ from the binary's
// directory (an install: /usr/bin/gpurm, /usr/lib/gpurm/). NotFound, naming
// the places looked at, when none holds it.
Result<std::string> FindCudaGuardLibrary();

// Makes `plan` preload `library`, placed before `inherited_preload` (the
// LD_PRELOAD the command would inherit; may be null). Changes nothing when the
// plan sets no GPURM_CUDA_MEMORY_LIMITS_MB (no NVIDIA GPU granted, or the
// CPU). InvalidArgument, naming the variable, when the plan's
// GPURM_ALLOCATION_ID or GPURM_CUDA_MEMORY_LIMITS_MB would be refused by the
// guard: the command must not start with a guard that refuses everything.
Status AddCudaGuard(LaunchPlan& plan, const std::string& library, const char* inherited_preload);

// Removes the guard's ledger of `allocation_id` (/dev/shm), once the command
// and everything it left in its process group have ended: a ledger belongs
// to one run.
void RemoveCudaGuardLedger(const std::string& allocation_id);

// True when the plan gives the guard limits to enforce.
bool PlanHasCudaLimits(const LaunchPlan& plan);

}  // namespace gpurm::cli

#endif  // GPURM_CLI_CUDA_GUARD_H_
