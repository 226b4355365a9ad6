// Huawei Ascend NPUs through DCMI (libdcmi.so, loaded at run time).
#ifndef GPURM_INVENTORY_PROVIDERS_ASCEND_ASCEND_BACKEND_H_
#define GPURM_INVENTORY_PROVIDERS_ASCEND_ASCEND_BACKEND_H_

#include <memory>
#include <string>
#include <vector>

#include "inventory/providers/common/vendor_backend.h"

namespace gpurm {

// The default library names, tried in order (the Ascend driver installs
// libdcmi.so under /usr/local/Ascend/driver/lib64/driver).
std::vector<std::string> DefaultDcmiLibraries();

// Looks only when PCI shows a Huawei processing accelerator (or PCI cannot be
// listed). Per NPU (card, chip): name "Ascend<chip name>" ("Ascend910B3"),
// PCI bus id, HBM size and use (else DDR from the memory info call), AI Core
// utilization, HBM bandwidth utilization, temperature and power. Identified
// as "<node>-<PCI bus id>". Unhealthy when DCMI reports a major or critical
// alarm (dcmi_get_device_health >= 2).
std::unique_ptr<VendorBackend> MakeAscendBackend(std::vector<std::string> libraries,
                                                 BackendContext context);

}  // namespace gpurm

#endif  // GPURM_INVENTORY_PROVIDERS_ASCEND_ASCEND_BACKEND_H_
