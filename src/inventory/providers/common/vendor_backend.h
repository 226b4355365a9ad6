// VendorBackend: one vendor's GPUs on this machine (NVIDIA through NVML, AMD
// through ROCm SMI or amdgpu sysfs, ...). Every back end has the same shape:
// Discover finds the devices once, Sample refreshes a GPU's live values, Health
// decides whether it is fit to allocate. Back ends never fail: what they cannot
// see or read they explain in notes ("nvidia: libnvidia-ml.so.1 not found"),
// and a failing field or GPU degrades that field or GPU only.
#ifndef GPURM_INVENTORY_PROVIDERS_COMMON_VENDOR_BACKEND_H_
#define GPURM_INVENTORY_PROVIDERS_COMMON_VENDOR_BACKEND_H_

#include <cstddef>
#include <string>
#include <vector>

#include "core/gpu_model.h"
#include "core/types.h"
#include "inventory/providers/common/sysfs.h"

namespace gpurm {

// What every back end needs to describe a GPU.
struct BackendContext {
  std::string node_name;  // Part of the identity of GPUs without a vendor UUID.
  GpuMemorySpecs memory_specs;
};

struct VendorScan {
  // The devices found, identity and static fields filled (uuid, pci_bus_id,
  // model, memory_total_mib, nvlink_group, ...). `index` is the position in
  // this list; the composing provider renumbers across vendors.
  std::vector<Gpu> gpus;
  std::vector<std::string> notes;  // The first one summarises the back end.
  // False when the answer may change without a restart (the library is there
  // but its initialisation failed, e.g. the driver is still loading): the
  // caller then calls Discover again on its next refresh.
  bool settled = true;
};

// Concurrency: Discover runs alone (no other call of this back end is in
// flight). Sample and then Health of one GPU run on that GPU's worker thread
// (LocalProvider), so calls for different GPUs overlap each other and
// PollEvents, never two for one GPU; a call may block as long as the vendor
// library does (the caller bounds how long it waits, not the call). `i` is a
// position in the GPU list of the last Discover, and `gpu` that GPU as this
// back end last left it (the caller changes nothing but `index` and
// `nvlink_group`).
class VendorBackend {
 public:
  virtual ~VendorBackend() = default;
  // "nvidia", "amd", "intel", "ascend": the prefix of this back end's notes.
  virtual std::string vendor() const = 0;
  // Finds the vendor's devices. `pci` is this machine's PCI listing, for
  // cross-checks ("2 GPUs on PCI but no driver") and sysfs fallbacks.
  virtual VendorScan Discover(const sysfs::PciListing& pci) = 0;
  // Refreshes GPU `i`'s utilization, memory use, temperature, power, clocks,
  // ECC counters and processes. Appends a note per value it failed to read.
  virtual void Sample(size_t i, Gpu* gpu, std::vector<std::string>* notes) = 0;
  // Sets GPU `i`'s `healthy` and `health_reason` from the vendor's error
  // reporting (error counters, health queries, the events PollEvents
  // collected) and from what its latest Sample could not read.
  virtual void Health(size_t i, Gpu* gpu, std::vector<std::string>* notes) = 0;
  // Collects node-wide error reports (NVML's event set) for the following
  // Health calls, without waiting for new ones. Appends notes on events that
  // leave a GPU healthy (e.g. application XIDs). Back ends without such
  // reports have nothing to do.
  virtual void PollEvents(std::vector<std::string>* /*notes*/) {}
};

}  // namespace gpurm

#endif  // GPURM_INVENTORY_PROVIDERS_COMMON_VENDOR_BACKEND_H_
