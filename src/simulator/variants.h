// The FGD paper's workload variants (Weng et al., USENIX ATC'23, sections
// 6.3-6.6), derived from a base pod list the way Alibaba's published files
// (cluster-trace-gpu-v2023/csv) were: "sampled from the default one,
// emphasizing certain types of workloads". Measured on the published files
// against openb_pod_list_default.csv:
//
//   cpuNNN      CPU-only pods are NNN/10 % of all pods (cpu050: 375 of 7,439;
//               the default has 13.3%); every GPU pod kept, CPU-only pods
//               sampled.
//   gpushareNN  GPU-sharing pods (a share of one GPU) request NN% of the GPU
//               demand in milli-GPU (gpushare40: 40.1%; default 28.5%); the
//               number of GPU pods and the CPU-only pods kept, the GPU pods
//               resampled between sharing and whole-GPU ones.
//   multigpuNN  Multi-GPU pods request NN% of the GPU demand (multigpu50:
//               50.3%; default 7.3%); every pod kept, multi-GPU pods drawn
//               from the trace added.
//   gpuspecNN   NN% of GPU pods are restricted to GPU models (gpuspec33:
//               33.8%). The default trace has no gpu_spec, so these derive
//               from a base that has one (gpuspec33): constraints are
//               cleared on pods drawn at random, or copied from constrained
//               pods onto unconstrained ones.
//
// Fewer pods of a kind: a subset drawn without replacement; more: all of
// them plus copies drawn with replacement, each copy placed right after its
// source so that trace order stays creation order. Seeded and
// deterministic; copies are named "<source>-v<n>".
#ifndef GPURM_SIMULATOR_VARIANTS_H_
#define GPURM_SIMULATOR_VARIANTS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "simulator/trace.h"

namespace gpurm::sim {

struct VariantSpec {
  enum class Kind { kCpu, kGpuShare, kMultiGpu, kGpuSpec };
  Kind kind = Kind::kCpu;
  double target = 0;  // The share the variant fixes, 0..1.
  std::string name;   // As given, e.g. "gpushare60".
};

// "cpu050" (5.0%), "gpushare60", "multigpu30", "gpuspec25": kInvalidArgument
// naming the accepted forms otherwise.
Result<VariantSpec> ParseVariant(const std::string& name);

// The 17 variants the paper evaluates: cpu050 cpu100 cpu200 cpu250,
// gpushare20..100, gpuspec10 gpuspec20 gpuspec25 gpuspec33, multigpu20..50.
std::vector<std::string> PaperVariants();

// The share `spec` fixes, measured on `pods` (for tests and reports).
double MeasureVariantShare(const std::vector<TracePod>& pods, VariantSpec::Kind kind);

// `base` reshaped to the variant. kInvalidArgument when the base cannot give
// it: no pods of the kind to sample, or (gpuspec) no gpu_spec at all.
Result<std::vector<TracePod>> DeriveVariant(const std::vector<TracePod>& base,
                                            const VariantSpec& spec, uint64_t seed = 42);

}  // namespace gpurm::sim

#endif  // GPURM_SIMULATOR_VARIANTS_H_
