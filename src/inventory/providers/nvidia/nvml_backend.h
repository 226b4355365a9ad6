// NVIDIA GPUs through NVML (libnvidia-ml.so.1), loaded at run time: never
// linked, so gpurm starts on machines without the NVIDIA driver.
#ifndef GPURM_INVENTORY_PROVIDERS_NVIDIA_NVML_BACKEND_H_
#define GPURM_INVENTORY_PROVIDERS_NVIDIA_NVML_BACKEND_H_

#include <memory>
#include <string>
#include <vector>

#include "inventory/providers/common/vendor_backend.h"

namespace gpurm {

// The default library names, tried in order.
std::vector<std::string> DefaultNvmlLibraries();

// Reads per GPU: name, UUID, PCI bus id, memory (total, and used = total -
// free, i.e. everything not allocatable, driver reservations included),
// utilization, temperature, power draw and limit, SM clock, volatile
// double-bit ECC errors, compute processes, NVLink peers (nvlink_group) and
// MIG mode. Entry points are probed newest first (nvmlInit_v2 before
// nvmlInit, ..._v2 memory info before the original) so drivers without the
// versioned symbols still work.
//
// Health: a GPU is unhealthy after an XID critical-error event other than the
// application XIDs 13, 31, 43, 45, 68 and 109, after a double-bit ECC event
// or with a non-zero volatile double-bit ECC count (these stick until the
// daemon restarts), while NVML reports it lost, and while its memory cannot
// be read (gpurm never grants memory nobody measured).
//
// MIG: a GPU in MIG mode is listed (never granted whole) and followed, after
// all GPUs, by its MIG devices (nvmlDeviceGetMaxMigDeviceCount,
// nvmlDeviceGetMigDeviceHandleByIndex): each with its "MIG-..." uuid, the
// parent's index, its profile ("3g.40gb", from the GPU instance's profile
// info, else the device's attributes, else its name), memory and processes.
// NVML has no utilization for MIG devices nor for a GPU in MIG mode: they
// report utilization_available = false. The MIG layout is only read.
//
// Processes: NVML reports host PIDs even inside containers.
std::unique_ptr<VendorBackend> MakeNvmlBackend(std::vector<std::string> libraries,
                                               BackendContext context);

}  // namespace gpurm

#endif  // GPURM_INVENTORY_PROVIDERS_NVIDIA_NVML_BACKEND_H_
