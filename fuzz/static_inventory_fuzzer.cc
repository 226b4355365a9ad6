// A static inventory file as `gpurm serve --inventory` reads it.
// ParseStaticInventory must answer nodes or an error naming the line; never
// crash, throw or hang.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "config/config.h"
#include "inventory/providers/static/static_provider.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const gpurm::GpuMemorySpecs kSpecs = gpurm::Config{}.gpu_memory_specs;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)gpurm::ParseStaticInventory(text, "fuzz.yaml", kSpecs);
  return 0;
}
