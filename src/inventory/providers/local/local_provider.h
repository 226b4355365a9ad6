// LocalProvider: this machine's GPUs, found through the vendor libraries and
// sysfs. The node is named after the host name.
#ifndef GPURM_INVENTORY_PROVIDERS_LOCAL_LOCAL_PROVIDER_H_
#define GPURM_INVENTORY_PROVIDERS_LOCAL_LOCAL_PROVIDER_H_

#include <string>

#include "core/gpu_model.h"
#include "inventory/provider.h"

namespace gpurm {

class LocalProvider final : public InventoryProvider {
 public:
  // `sysfs_root` is "/" in production; tests point it at a fake tree.
  LocalProvider(std::string node_name, GpuMemorySpecs memory_specs, std::string sysfs_root = "/");
  std::string name() const override { return "local"; }
  Result<DiscoveryReport> Discover() override;

 private:
  std::string node_name_;
  GpuMemorySpecs memory_specs_;
  std::string sysfs_root_;
};

}  // namespace gpurm

#endif  // GPURM_INVENTORY_PROVIDERS_LOCAL_LOCAL_PROVIDER_H_
