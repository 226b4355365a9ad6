// LocalProvider: this machine's GPUs, from every vendor back end (NVIDIA NVML,
// AMD ROCm SMI / amdgpu sysfs, Intel Level Zero / i915-xe sysfs, Huawei
// Ascend DCMI), as one node named after the host. Vendor libraries are loaded
// at run time: on a machine with none of them the node has no GPU and the
// notes say why, vendor by vendor.
#ifndef GPURM_INVENTORY_PROVIDERS_LOCAL_LOCAL_PROVIDER_H_
#define GPURM_INVENTORY_PROVIDERS_LOCAL_LOCAL_PROVIDER_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/gpu_model.h"
#include "inventory/provider.h"
#include "inventory/providers/amd/amd_backend.h"
#include "inventory/providers/ascend/ascend_backend.h"
#include "inventory/providers/common/sampling_pool.h"
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
  // How long a refresh waits for each GPU's vendor calls
  // (server.monitor_sample_timeout_s). Real elapsed time: it bounds calls
  // that really block.
  std::chrono::milliseconds sample_timeout{2000};
  // Stamps when values were read (their age in notes and health reasons);
  // null: the system clock. Must outlive the provider.
  const Clock* clock = nullptr;

  // The production defaults. Each can be overridden from the environment, for
  // drivers installed in unusual places and for tests that run the daemon on
  // fake libraries: GPURM_NVML_LIBRARY, GPURM_ROCM_SMI_LIBRARY,
  // GPURM_LEVEL_ZERO_LIBRARY, GPURM_DCMI_LIBRARY (one path each, replacing
  // the default list) and GPURM_SYSFS_ROOT.
  static LocalProviderOptions FromEnvironment();
};

// Thread-compatible, like every InventoryProvider: the Inventory calls
// Discover from one thread at a time.
//
// Every GPU is sampled on a worker thread of its own (a SamplingPool per
// vendor), so one GPU whose vendor call hangs (NVML on a GPU that fell off
// the bus can block for many seconds) stalls neither the others nor the
// refresh: Discover waits at most `sample_timeout` for all of them. A GPU
// whose call has not returned by then is stale: it keeps its last values,
// is reported unhealthy with the reason ("sampling timed out after 2 s;
// values from <time>") and a note with their age, and gets no second call
// while the first is stuck. It recovers at the first refresh after the call
// returns.
class LocalProvider final : public InventoryProvider {
 public:
  LocalProvider(std::string node_name, GpuMemorySpecs memory_specs,
                LocalProviderOptions options = LocalProviderOptions::FromEnvironment());
  // Waits up to `sample_timeout` for calls still running; see the .cc for
  // what happens to one stuck beyond that.
  ~LocalProvider() override;
  LocalProvider(const LocalProvider&) = delete;
  LocalProvider& operator=(const LocalProvider&) = delete;

  std::string name() const override { return "local"; }

  // Every call samples every GPU and checks its health; vendors are
  // discovered on the first call (and again while a vendor library is
  // present but failing to initialise, e.g. a driver still loading). GPUs are
  // numbered across vendors in the order NVIDIA, AMD, Intel, Ascend, each
  // vendor's in its own (PCI bus) order, so on NVIDIA machines `index` is
  // NVML's and CUDA's (with CUDA_DEVICE_ORDER=PCI_BUS_ID) index. Notes: one
  // summary per vendor, then what could not be read this time, then the
  // stale GPUs. Never fails; takes at most `sample_timeout` plus discovery.
  Result<DiscoveryReport> Discover() override;

 private:
  // One GPU's latest finished sample. Written by the GPU's sampling job and
  // read by Discover, under `mutex`; owned jointly with the job, so a job
  // that outlives the provider (see the destructor) writes into live memory.
  struct Reading {
    std::mutex mutex;
    Gpu gpu;  // As the back end last left it: Discover's values until a sample finishes.
    std::vector<std::string> notes;  // From the latest finished sample.
    int64_t sampled_unix_ms = 0;     // Start of the refresh that read `gpu`; 0: none yet.
    int64_t posted_unix_ms = 0;      // Start of the refresh that posted the job in flight.
  };

  struct Vendor {
    std::unique_ptr<VendorBackend> backend;
    bool discovered = false;                         // The last Discover was settled.
    std::vector<std::string> notes;                  // From the last Discover.
    std::vector<std::shared_ptr<Reading>> readings;  // One per GPU of the last Discover.
    // Worker `i` samples readings[i]. Declared after `backend`, so it is
    // destroyed (its workers joined) first.
    std::unique_ptr<SamplingPool> workers;
  };

  void DiscoverVendors();
  // Posts a sampling job per GPU; returns, per vendor and GPU, whether it was
  // posted (false while the GPU's previous job is still running).
  std::vector<std::vector<bool>> PostSamples(int64_t now_unix_ms, std::vector<std::string>* notes);
  double WorkerCpuSeconds() const;

  std::string node_name_;
  LocalProviderOptions options_;
  SystemClock system_clock_;
  const Clock* clock_;  // options_.clock or &system_clock_.
  std::vector<Vendor> vendors_;
  std::string pci_note_;  // Why PCI could not be listed at the last discovery; may be empty.
  double retired_cpu_seconds_ = 0;   // Of the workers of vendors discovered again.
  double reported_cpu_seconds_ = 0;  // Worker CPU time already in a DiscoveryReport.
};

}  // namespace gpurm

#endif  // GPURM_INVENTORY_PROVIDERS_LOCAL_LOCAL_PROVIDER_H_
