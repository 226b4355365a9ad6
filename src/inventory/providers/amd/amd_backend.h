// AMD GPUs through ROCm SMI (librocm_smi64.so, loaded at run time), falling
// back to what the amdgpu driver publishes in sysfs.
#ifndef GPURM_INVENTORY_PROVIDERS_AMD_AMD_BACKEND_H_
#define GPURM_INVENTORY_PROVIDERS_AMD_AMD_BACKEND_H_

#include <memory>
#include <string>
#include <vector>

#include "inventory/providers/common/vendor_backend.h"

namespace gpurm {

// The default library names, tried in order.
std::vector<std::string> DefaultRocmSmiLibraries();

// Looks only when PCI shows an AMD GPU (or PCI cannot be listed), so machines
// without one never load ROCm SMI. With ROCm SMI: memory (VRAM total/used),
// utilization (GPU and memory), temperature (edge, else junction), power and
// cap, uncorrectable ECC errors and xGMI islands. Without it, or when it
// finds no GPU: amdgpu sysfs (mem_info_vram_total/used, gpu_busy_percent,
// mem_busy_percent, hwmon temperature and power, ras/umc_err_count).
// GPUs are identified as "<node>-<PCI bus id>" either way, so an identity does
// not change when ROCm SMI comes or goes. A GPU with uncorrectable ECC errors
// is unhealthy. Processes are not read.
std::unique_ptr<VendorBackend> MakeAmdBackend(std::vector<std::string> libraries,
                                              BackendContext context);

}  // namespace gpurm

#endif  // GPURM_INVENTORY_PROVIDERS_AMD_AMD_BACKEND_H_
