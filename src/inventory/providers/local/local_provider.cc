// Local discovery for this build: PCI enumeration through sysfs, with real
// readings for AMD GPUs driven by amdgpu (which publishes memory and
// utilization in sysfs). NVIDIA, Intel and Huawei devices need their vendor
// libraries (NVML, Level Zero, DCMI) for memory and utilization; until those
// providers exist they are reported as notes, never as invented GPUs, so the
// scheduler never grants memory nobody measured.
#include "inventory/providers/local/local_provider.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace gpurm {
namespace {

namespace fs = std::filesystem;

constexpr uint32_t kVendorNvidia = 0x10de;
constexpr uint32_t kVendorAmd = 0x1002;
constexpr uint32_t kVendorIntel = 0x8086;
constexpr uint32_t kVendorHuawei = 0x19e5;
constexpr int64_t kBytesPerMib = 1024 * 1024;
// Bus ids listed in one note; beyond this the note says how many more.
constexpr size_t kMaxListedBusIds = 8;

// The file's content without surrounding whitespace; nullopt when unreadable.
std::optional<std::string> ReadTrimmed(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return std::nullopt;
  std::string content = text.str();
  const size_t begin = content.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return std::string();
  const size_t end = content.find_last_not_of(" \t\r\n");
  return content.substr(begin, end - begin + 1);
}

// Parses a whole file as an integer in `base` (16 accepts a "0x" prefix).
template <typename T>
std::optional<T> ReadNumber(const fs::path& path, int base) {
  const std::optional<std::string> text = ReadTrimmed(path);
  if (!text) return std::nullopt;
  std::string_view digits = *text;
  if (base == 16 && (digits.starts_with("0x") || digits.starts_with("0X"))) digits.remove_prefix(2);
  T value{};
  const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value, base);
  if (digits.empty() || ec != std::errc() || ptr != digits.data() + digits.size()) {
    return std::nullopt;
  }
  return value;
}

// A PCI function that is a GPU or NPU of a vendor gpurm knows.
struct PciDevice {
  std::string bus_id;  // "0000:c1:00.0", the sysfs directory name.
  fs::path dir;
  uint32_t vendor = 0;
  uint32_t device = 0;
};

// Display controllers (VGA 0x0300, 3D 0x0302, other 0x0380) of GPU vendors,
// and Huawei's processing accelerators (0x1200, the Ascend NPUs). Huawei's
// display-class function is a server's BMC graphics, not an NPU. The low byte
// of `class` is the programming interface and does not matter here.
bool IsAccelerator(uint32_t pci_class, uint32_t vendor) {
  const uint32_t base_and_sub = pci_class >> 8;
  if (vendor == kVendorHuawei) return base_and_sub == 0x1200;
  const bool display = base_and_sub == 0x0300 || base_and_sub == 0x0302 || base_and_sub == 0x0380;
  return display && (vendor == kVendorNvidia || vendor == kVendorAmd || vendor == kVendorIntel);
}

// Accelerators under `devices_dir` in PCI bus order (the sysfs names sort that
// way: fixed-width hex domain:bus:device.function). Sets `error` when the
// directory cannot be listed.
std::vector<PciDevice> ListAccelerators(const fs::path& devices_dir, std::error_code* error) {
  std::vector<PciDevice> found;
  fs::directory_iterator it(devices_dir, *error);
  for (; !*error && it != fs::directory_iterator(); it.increment(*error)) {
    const fs::path dir = it->path();
    const std::optional<uint32_t> pci_class = ReadNumber<uint32_t>(dir / "class", 16);
    const std::optional<uint32_t> vendor = ReadNumber<uint32_t>(dir / "vendor", 16);
    if (!pci_class || !vendor || !IsAccelerator(*pci_class, *vendor)) continue;
    found.push_back({dir.filename().string(), dir, *vendor,
                     ReadNumber<uint32_t>(dir / "device", 16).value_or(0)});
  }
  std::sort(found.begin(), found.end(),
            [](const PciDevice& a, const PciDevice& b) { return a.bus_id < b.bus_id; });
  return found;
}

// Temperature and power from the device's hwmon directory (amdgpu registers
// one): temp1_input in millidegrees, power1_average/power1_input and
// power1_cap in microwatts. Absent files leave the values unset.
void ReadHwmon(const fs::path& device_dir, Gpu* gpu) {
  std::error_code error;
  fs::directory_iterator it(device_dir / "hwmon", error);
  for (; !error && it != fs::directory_iterator(); it.increment(error)) {
    const fs::path hwmon = it->path();
    if (const auto millidegrees = ReadNumber<int64_t>(hwmon / "temp1_input", 10)) {
      gpu->temperature_c = static_cast<double>(*millidegrees) / 1000.0;
    }
    auto microwatts = ReadNumber<int64_t>(hwmon / "power1_average", 10);
    if (!microwatts) microwatts = ReadNumber<int64_t>(hwmon / "power1_input", 10);
    if (microwatts) gpu->power_w = static_cast<double>(*microwatts) / 1e6;
    if (const auto cap = ReadNumber<int64_t>(hwmon / "power1_cap", 10); cap && *cap > 0) {
      gpu->power_limit_w = static_cast<double>(*cap) / 1e6;
    }
    if (gpu->temperature_c || gpu->power_w) return;
  }
}

double PercentToRatio(std::optional<int64_t> percent) {
  if (!percent) return 0.0;
  return std::clamp(static_cast<double>(*percent) / 100.0, 0.0, 1.0);
}

// A GPU from amdgpu's sysfs files, or nullopt when the VRAM size cannot be
// read (driver not bound, or not amdgpu).
std::optional<Gpu> ReadAmdGpu(const PciDevice& device, const std::string& node_name,
                              const GpuMemorySpecs& specs) {
  const auto vram_total = ReadNumber<int64_t>(device.dir / "mem_info_vram_total", 10);
  if (!vram_total || *vram_total <= 0) return std::nullopt;
  Gpu gpu;
  gpu.pci_bus_id = device.bus_id;
  gpu.uuid = node_name + "-" + device.bus_id;
  gpu.memory_total_mib = *vram_total / kBytesPerMib;
  const auto vram_used = ReadNumber<int64_t>(device.dir / "mem_info_vram_used", 10);
  gpu.memory_used_mib =
      std::clamp<int64_t>(vram_used.value_or(0) / kBytesPerMib, 0, gpu.memory_total_mib);
  gpu.utilization = PercentToRatio(ReadNumber<int64_t>(device.dir / "gpu_busy_percent", 10));
  gpu.memory_utilization = PercentToRatio(ReadNumber<int64_t>(device.dir / "mem_busy_percent", 10));
  if (const auto numa = ReadNumber<int>(device.dir / "numa_node", 10); numa && *numa >= 0) {
    gpu.numa_node = *numa;
  }
  std::string name = ReadTrimmed(device.dir / "product_name").value_or("");
  if (name.empty()) {
    std::ostringstream fallback;
    fallback << "AMD GPU 0x" << std::hex << device.device;
    name = fallback.str();
  }
  gpu.model = ParseGpuModel(name, specs);
  ReadHwmon(device.dir, &gpu);
  return gpu;
}

// "(0000:17:00.0, 0000:65:00.0)", cut after kMaxListedBusIds.
std::string BusIdList(const std::vector<std::string>& bus_ids) {
  std::string out = "(";
  for (size_t i = 0; i < bus_ids.size() && i < kMaxListedBusIds; ++i) {
    if (i > 0) out += ", ";
    out += bus_ids[i];
  }
  if (bus_ids.size() > kMaxListedBusIds) {
    out += ", and " + std::to_string(bus_ids.size() - kMaxListedBusIds) + " more";
  }
  return out + ")";
}

// "nvidia: 2 GPU(s) on PCI (...) but the NVML provider is not available in this
// build; start with --inventory FILE".
std::string UnsupportedNote(std::string_view vendor, std::string_view kind,
                            const std::vector<std::string>& bus_ids, std::string_view why) {
  return std::string(vendor) + ": " + std::to_string(bus_ids.size()) + " " + std::string(kind) +
         "(s) on PCI " + BusIdList(bus_ids) + " " + std::string(why) +
         "; start with --inventory FILE";
}

}  // namespace

LocalProvider::LocalProvider(std::string node_name, GpuMemorySpecs memory_specs,
                             std::string sysfs_root)
    : node_name_(std::move(node_name)),
      memory_specs_(std::move(memory_specs)),
      sysfs_root_(std::move(sysfs_root)) {}

Result<DiscoveryReport> LocalProvider::Discover() {
  const fs::path devices_dir = fs::path(sysfs_root_) / "sys" / "bus" / "pci" / "devices";
  std::error_code list_error;
  const std::vector<PciDevice> devices = ListAccelerators(devices_dir, &list_error);

  DiscoveryReport report;
  Node node;
  node.name = node_name_;
  std::vector<std::string> nvidia, intel, huawei, amd_without_sysfs;
  for (const PciDevice& device : devices) {
    switch (device.vendor) {
      case kVendorAmd:
        if (std::optional<Gpu> gpu = ReadAmdGpu(device, node_name_, memory_specs_)) {
          gpu->index = static_cast<int>(node.gpus.size());
          node.gpus.push_back(std::move(*gpu));
        } else {
          amd_without_sysfs.push_back(device.bus_id);
        }
        break;
      case kVendorNvidia:
        nvidia.push_back(device.bus_id);
        break;
      case kVendorIntel:
        intel.push_back(device.bus_id);
        break;
      default:  // kVendorHuawei; IsAccelerator admits no other vendor.
        huawei.push_back(device.bus_id);
        break;
    }
  }

  if (!node.gpus.empty()) {
    report.notes.push_back("amd: " + std::to_string(node.gpus.size()) +
                           " GPU(s) from amdgpu sysfs");
  }
  if (!amd_without_sysfs.empty()) {
    report.notes.push_back(UnsupportedNote(
        "amd", "GPU", amd_without_sysfs,
        "without amdgpu memory info (mem_info_vram_total); is the amdgpu driver loaded?"));
  }
  if (!nvidia.empty()) {
    report.notes.push_back(UnsupportedNote("nvidia", "GPU", nvidia,
                                           "but the NVML provider is not available in this build"));
  }
  if (!intel.empty()) {
    report.notes.push_back(UnsupportedNote(
        "intel", "GPU", intel, "but the Level Zero provider is not available in this build"));
  }
  if (!huawei.empty()) {
    report.notes.push_back(UnsupportedNote(
        "huawei", "NPU", huawei, "but the Ascend DCMI provider is not available in this build"));
  }
  if (devices.empty()) {
    std::string note = "no GPU found under " + devices_dir.string();
    if (list_error) note += " (cannot list it: " + list_error.message() + ")";
    report.notes.push_back(std::move(note));
  }
  report.nodes.push_back(std::move(node));
  return report;
}

}  // namespace gpurm
