// GPU names as drivers, Kubernetes labels and users write them. Besides not
// crashing: a canonical type is its own canonical form, so a request for the
// type a device was classified as always matches that device.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/gpu_model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const gpurm::GpuMemorySpecs kSpecs = {
      {"T4", 16.0}, {"V100", 32.0}, {"A100", 80.0}, {"H100", 80.0}, {"RTX4090", 24.0}};
  const std::string_view name(reinterpret_cast<const char*>(data), size);
  const gpurm::GpuModel model = gpurm::ParseGpuModel(name, kSpecs);
  if (!model.canonical.empty() && gpurm::CanonicalGpuType(model.canonical) != model.canonical) {
    std::abort();
  }
  const std::string canonical = gpurm::CanonicalGpuType(name);
  if (gpurm::CanonicalGpuType(canonical) != canonical) std::abort();
  return 0;
}
