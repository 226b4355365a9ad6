#include "inventory/providers/local/local_provider.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <utility>

#include "inventory/providers/common/sysfs.h"

namespace gpurm {
namespace {

// Replaces `libraries` with the one path an environment variable names.
void OverrideFromEnvironment(const char* variable, std::vector<std::string>* libraries) {
  const char* value = std::getenv(variable);
  if (value != nullptr && value[0] != '\0') *libraries = {value};
}

}  // namespace

LocalProviderOptions LocalProviderOptions::FromEnvironment() {
  LocalProviderOptions options;
  OverrideFromEnvironment("GPURM_NVML_LIBRARY", &options.nvml_libraries);
  OverrideFromEnvironment("GPURM_ROCM_SMI_LIBRARY", &options.rocm_smi_libraries);
  OverrideFromEnvironment("GPURM_LEVEL_ZERO_LIBRARY", &options.level_zero_libraries);
  OverrideFromEnvironment("GPURM_DCMI_LIBRARY", &options.dcmi_libraries);
  if (const char* root = std::getenv("GPURM_SYSFS_ROOT"); root != nullptr && root[0] != '\0') {
    options.sysfs_root = root;
  }
  return options;
}

LocalProvider::LocalProvider(std::string node_name, GpuMemorySpecs memory_specs,
                             LocalProviderOptions options)
    : node_name_(std::move(node_name)), options_(std::move(options)) {
  const BackendContext context{node_name_, std::move(memory_specs)};
  vendors_.resize(4);
  vendors_[0].backend = MakeNvmlBackend(options_.nvml_libraries, context);
  vendors_[1].backend = MakeAmdBackend(options_.rocm_smi_libraries, context);
  vendors_[2].backend = MakeIntelBackend(options_.level_zero_libraries, context);
  vendors_[3].backend = MakeAscendBackend(options_.dcmi_libraries, context);
}

LocalProvider::~LocalProvider() = default;

Result<DiscoveryReport> LocalProvider::Discover() {
  // PCI is listed only while some vendor still has to be discovered: a
  // settled refresh is one Sample and one Health call per vendor.
  const bool discovering =
      std::any_of(vendors_.begin(), vendors_.end(), [](const Vendor& v) { return !v.discovered; });
  if (discovering) {
    const sysfs::PciListing pci = sysfs::ListPciAccelerators(options_.sysfs_root);
    pci_note_.clear();
    if (pci.error) {
      pci_note_ = "cannot list " + pci.devices_dir.string() + ": " + pci.error.message() +
                  " (vendor libraries were asked anyway)";
    }
    for (Vendor& vendor : vendors_) {
      if (vendor.discovered) continue;
      VendorScan scan = vendor.backend->Discover(pci);
      vendor.gpus = std::move(scan.gpus);
      vendor.notes = std::move(scan.notes);
      vendor.discovered = scan.settled;
      for (Gpu& gpu : vendor.gpus) {
        if (gpu.numa_node >= 0 || gpu.pci_bus_id.empty()) continue;
        if (const auto numa = sysfs::ReadInt(pci.devices_dir / gpu.pci_bus_id / "numa_node");
            numa && *numa >= 0) {
          gpu.numa_node = static_cast<int>(*numa);
        }
      }
    }
  }

  DiscoveryReport report;
  Node node;
  node.name = node_name_;
  std::vector<std::string> live_notes;
  for (Vendor& vendor : vendors_) {
    report.notes.insert(report.notes.end(), vendor.notes.begin(), vendor.notes.end());
    vendor.backend->Sample(&vendor.gpus, &live_notes);
    vendor.backend->Health(&vendor.gpus, &live_notes);
    // Node-wide numbering: this vendor's GPUs follow the previous vendors'.
    const int base = static_cast<int>(node.gpus.size());
    for (size_t i = 0; i < vendor.gpus.size(); ++i) {
      Gpu& gpu = node.gpus.emplace_back(vendor.gpus[i]);
      gpu.index = base + static_cast<int>(i);
      if (gpu.nvlink_group >= 0) gpu.nvlink_group += base;
    }
  }
  if (!pci_note_.empty()) report.notes.push_back(pci_note_);
  report.notes.insert(report.notes.end(), live_notes.begin(), live_notes.end());
  report.nodes.push_back(std::move(node));
  return report;
}

}  // namespace gpurm
