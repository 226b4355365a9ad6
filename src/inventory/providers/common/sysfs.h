// Reading Linux sysfs for GPU discovery: PCI enumeration of accelerators and
// the small integer/text files drivers publish. Every function takes the tree
// root so tests can point it at a fake tree. Stateless and thread-safe.
#ifndef GPURM_INVENTORY_PROVIDERS_COMMON_SYSFS_H_
#define GPURM_INVENTORY_PROVIDERS_COMMON_SYSFS_H_

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "core/types.h"

namespace gpurm::sysfs {

inline constexpr uint32_t kVendorNvidia = 0x10de;
inline constexpr uint32_t kVendorAmd = 0x1002;
inline constexpr uint32_t kVendorIntel = 0x8086;
inline constexpr uint32_t kVendorHuawei = 0x19e5;

// The file's content without surrounding whitespace; nullopt when unreadable.
std::optional<std::string> ReadTrimmed(const std::filesystem::path& path);
// The whole file as a decimal integer; nullopt when unreadable or not a number.
std::optional<int64_t> ReadInt(const std::filesystem::path& path);
// The whole file as a hexadecimal number, with or without "0x".
std::optional<uint32_t> ReadHex(const std::filesystem::path& path);

// A PCI function that is a GPU or NPU of a vendor gpurm knows.
struct PciDevice {
  std::string bus_id;  // "0000:c1:00.0", the sysfs directory name.
  std::filesystem::path dir;
  uint32_t vendor = 0;
  uint32_t device = 0;
};

// The PCI devices of this machine under <root>/sys/bus/pci/devices.
struct PciListing {
  std::filesystem::path devices_dir;
  std::vector<PciDevice> accelerators;  // In PCI bus order.
  std::error_code error;                // Set when the directory cannot be listed.

  std::vector<PciDevice> OfVendor(uint32_t vendor) const;
};

// Display controllers (VGA 0x0300, 3D 0x0302, other 0x0380) of NVIDIA, AMD and
// Intel, and Huawei's processing accelerators (0x1200, the Ascend NPUs).
// Huawei's display-class function is a server's BMC graphics, not an NPU.
PciListing ListPciAccelerators(const std::filesystem::path& root);

// Lower-case "dddd:bb:dd.f" from the forms vendor libraries print
// ("00000000:17:00.0" from NVML, upper-case hex). Returns the input lower-cased
// when it does not look like a PCI address.
std::string NormalizeBusId(std::string_view bus_id);

// "(0000:17:00.0, 0000:65:00.0)", cut after 8 with ", and N more".
std::string BusIdList(const std::vector<PciDevice>& devices);

// Temperature and power from a device's hwmon directory (amdgpu, i915 and xe
// register one): temp1_input in millidegrees, power1_average/power1_input and
// power1_cap in microwatts. Absent files leave the values unset.
void ReadHwmon(const std::filesystem::path& device_dir, Gpu* gpu);

// A driver's percentage as a 0..1 ratio (clamped); 0 when absent.
double PercentToRatio(std::optional<int64_t> percent);

}  // namespace gpurm::sysfs

#endif  // GPURM_INVENTORY_PROVIDERS_COMMON_SYSFS_H_
