// Intel GPUs through Level Zero Sysman (libze_loader.so.1, loaded at run
// time), falling back to what the i915 and xe drivers publish in sysfs.
#ifndef GPURM_INVENTORY_PROVIDERS_INTEL_INTEL_BACKEND_H_
#define GPURM_INVENTORY_PROVIDERS_INTEL_INTEL_BACKEND_H_

#include <memory>
#include <string>
#include <vector>

#include "inventory/providers/common/vendor_backend.h"

namespace gpurm {

// The default library names, tried in order.
std::vector<std::string> DefaultLevelZeroLibraries();

// Looks only when PCI shows an Intel GPU (or PCI cannot be listed).
//
// Level Zero Sysman: initialised with zesInit where the loader has it, else
// through zeInit, which enables Sysman only when the daemon was started with
// ZES_ENABLE_SYSMAN=1 (gpurm does not set environment variables of a running
// multi-threaded process). Reads name, PCI address, device-local memory
// (size and free), GPU temperature, utilization (compute engines, else all
// engines) and power (both from counter deltas, so known from the second
// sample on). Unhealthy: the device reports it needs a reset, or a memory
// module's health is critical or "replace".
//
// sysfs fallback, honest and small: GPUs whose local memory size is published
// (xe: tileN/physical_vram_size_bytes; Intel's out-of-tree i915:
// drm/cardN/lmem_total_bytes), named from the PCI device id where gpurm knows
// it, with hwmon temperature/power where present. Memory in use is not
// published there and is reported as 0 with a note saying so. Integrated GPUs
// (no local memory) are a note, not a GPU.
std::unique_ptr<VendorBackend> MakeIntelBackend(std::vector<std::string> libraries,
                                                BackendContext context);

}  // namespace gpurm

#endif  // GPURM_INVENTORY_PROVIDERS_INTEL_INTEL_BACKEND_H_
