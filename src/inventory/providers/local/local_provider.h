// LocalProvider: this machine's GPUs, from every vendor back end (NVIDIA NVML,
// AMD ROCm SMI / amdgpu sysfs, Intel Level Zero / i915-xe sysfs, Huawei
// Ascend DCMI), as one node named after the host. Vendor libraries are loaded
// at run time: on a machine with none of them the node has no GPU and the
// notes say why, vendor by vendor.
#ifndef GPURM_INVENTORY_PROVIDERS_LOCAL_LOCAL_PROVIDER_H_
#define GPURM_INVENTORY_PROVIDERS_LOCAL_LOCAL_PROVIDER_H_

#include <memory>
#include <string>
#include <vector>

#include "core/gpu_model.h"
#include "inventory/provider.h"
#include "inventory/providers/amd/amd_backend.h"
#include "inventory/providers/ascend/ascend_backend.h"
#include "inventory/providers/common/vendor_backend.h"
#include "inventory/providers/intel/intel_backend.h"
#include "inventory/providers/nvidia/nvml_backend.h"

namespace gpurm {

struct LocalProviderOptions {
  // "/" in production; tests point it at a fake tree holding sys/bus/pci/devices.
  std::string sysfs_root = "/";
  // Candidate libraries per vendor, tried in order (sonames or paths).
  std::vector<std::string> nvml_libraries = DefaultNvmlLibraries();
  std::vector<std::string> rocm_smi_libraries = DefaultRocmSmiLibraries();
  std::vector<std::string> level_zero_libraries = DefaultLevelZeroLibraries();
  std::vector<std::string> dcmi_libraries = DefaultDcmiLibraries();

  // The production defaults. Each can be overridden from the environment, for
  // drivers installed in unusual places and for tests that run the daemon on
  // fake libraries: GPURM_NVML_LIBRARY, GPURM_ROCM_SMI_LIBRARY,
  // GPURM_LEVEL_ZERO_LIBRARY, GPURM_DCMI_LIBRARY (one path each, replacing
  // the default list) and GPURM_SYSFS_ROOT.
  static LocalProviderOptions FromEnvironment();
};

// Thread-compatible, like every InventoryProvider: the Inventory calls
// Discover from one thread at a time.
class LocalProvider final : public InventoryProvider {
 public:
  LocalProvider(std::string node_name, GpuMemorySpecs memory_specs,
                LocalProviderOptions options = LocalProviderOptions::FromEnvironment());
  ~LocalProvider() override;

  std::string name() const override { return "local"; }

  // Every call samples every GPU and checks its health; vendors are
  // discovered on the first call (and again while a vendor library is
  // present but failing to initialise, e.g. a driver still loading). GPUs are
  // numbered across vendors in the order NVIDIA, AMD, Intel, Ascend, each
  // vendor's in its own (PCI bus) order, so on NVIDIA machines `index` is
  // NVML's and CUDA's (with CUDA_DEVICE_ORDER=PCI_BUS_ID) index. Notes: one
  // summary per vendor, then what could not be read this time. Never fails.
  Result<DiscoveryReport> Discover() override;

 private:
  struct Vendor {
    std::unique_ptr<VendorBackend> backend;
    bool discovered = false;  // The last Discover was settled.
    std::vector<Gpu> gpus;
    std::vector<std::string> notes;  // From the last Discover.
  };

  std::string node_name_;
  LocalProviderOptions options_;
  std::vector<Vendor> vendors_;
  std::string pci_note_;  // Why PCI could not be listed at the last discovery; may be empty.
};

}  // namespace gpurm

#endif  // GPURM_INVENTORY_PROVIDERS_LOCAL_LOCAL_PROVIDER_H_
