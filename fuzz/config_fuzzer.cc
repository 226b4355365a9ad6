// gpu_config.yaml as the daemon loads it. ParseConfig must answer a Config or
// an error naming the key; never crash, throw or hang.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)gpurm::ParseConfig(text, "fuzz.yaml");
  return 0;
}
