#include "inventory/providers/ascend/ascend_backend.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string_view>
#include <utility>

#include "inventory/providers/ascend/dcmi_api.h"
#include "inventory/providers/common/dynamic_library.h"

namespace gpurm {
namespace {

// DCMI supports at most 64 cards per machine.
constexpr int kMaxCards = 64;

struct DcmiApi {
  dcmi::InitFn init = nullptr;
  dcmi::GetDriverVersionFn driver_version = nullptr;
  dcmi::GetCardListFn card_list = nullptr;
  dcmi::GetDeviceNumInCardFn device_count = nullptr;
  dcmi::GetChipInfoFn chip_info = nullptr;
  dcmi::GetPcieInfoFn pcie_info = nullptr;
  dcmi::GetHbmInfoFn hbm_info = nullptr;
  dcmi::GetMemoryInfoFn memory_info = nullptr;
  dcmi::GetUtilizationFn utilization = nullptr;
  dcmi::GetTemperatureFn temperature = nullptr;
  dcmi::GetPowerFn power = nullptr;
  dcmi::GetHealthFn health = nullptr;

  std::string Resolve(const DynamicLibrary& lib) {
    init = lib.Find<dcmi::InitFn>({"dcmi_init"});
    driver_version = lib.Find<dcmi::GetDriverVersionFn>({"dcmi_get_driver_version"});
    card_list = lib.Find<dcmi::GetCardListFn>({"dcmi_get_card_num_list", "dcmi_get_card_list"});
    device_count = lib.Find<dcmi::GetDeviceNumInCardFn>({"dcmi_get_device_num_in_card"});
    chip_info = lib.Find<dcmi::GetChipInfoFn>({"dcmi_get_device_chip_info"});
    pcie_info = lib.Find<dcmi::GetPcieInfoFn>({"dcmi_get_device_pcie_info_v2"});
    hbm_info = lib.Find<dcmi::GetHbmInfoFn>({"dcmi_get_device_hbm_info"});
    memory_info = lib.Find<dcmi::GetMemoryInfoFn>({"dcmi_get_device_memory_info_v3"});
    utilization = lib.Find<dcmi::GetUtilizationFn>({"dcmi_get_device_utilization_rate"});
    temperature = lib.Find<dcmi::GetTemperatureFn>({"dcmi_get_device_temperature"});
    power = lib.Find<dcmi::GetPowerFn>({"dcmi_get_device_power_info"});
    health = lib.Find<dcmi::GetHealthFn>({"dcmi_get_device_health"});
    if (init == nullptr) return "dcmi_init";
    if (card_list == nullptr) return "dcmi_get_card_num_list";
    if (device_count == nullptr) return "dcmi_get_device_num_in_card";
    if (hbm_info == nullptr && memory_info == nullptr) return "dcmi_get_device_hbm_info";
    return "";
  }
};

// ---- The one place DCMI error codes are interpreted. ----

enum class Outcome { kOk, kUnsupported, kFailed };

Outcome Classify(int rc) {
  switch (rc) {
    case dcmi::kOk:
      return Outcome::kOk;
    case dcmi::kErrNotSupported:
    case dcmi::kErrNotSupportedInContainer:
      return Outcome::kUnsupported;
    default:
      return Outcome::kFailed;
  }
}

std::string ErrorText(int rc) {
  const char* text = "error";
  switch (rc) {
    case dcmi::kErrInvalidParameter:
      text = "invalid parameter";
      break;
    case dcmi::kErrOperationNotPermitted:
      text = "operation not permitted";
      break;
    case dcmi::kErrTimeout:
      text = "timeout";
      break;
    case dcmi::kErrInvalidDeviceId:
      text = "invalid device id";
      break;
    case dcmi::kErrDeviceNotExist:
      text = "device does not exist";
      break;
    case dcmi::kErrNotReady:
      text = "not ready";
      break;
    case dcmi::kErrNotSupportedInContainer:
      text = "not supported in a container";
      break;
    case dcmi::kErrNotSupported:
      text = "not supported";
      break;
    default:
      break;
  }
  return std::string(text) + " (DCMI error " + std::to_string(rc) + ")";
}

// ---- End of the error mapping. ----

std::string Text(const unsigned char* bytes, size_t size) {
  const char* chars = reinterpret_cast<const char*>(bytes);
  return std::string(chars, strnlen(chars, size));
}

class AscendBackend final : public VendorBackend {
 public:
  AscendBackend(std::vector<std::string> libraries, BackendContext context)
      : libraries_(std::move(libraries)), context_(std::move(context)) {}

  std::string vendor() const override { return "ascend"; }

  VendorScan Discover(const sysfs::PciListing& pci) override {
    devices_.clear();
    library_.reset();
    api_ = DcmiApi{};
    VendorScan scan;
    const std::vector<sysfs::PciDevice> on_pci = pci.OfVendor(sysfs::kVendorHuawei);
    if (!pci.error && on_pci.empty()) {
      scan.notes.emplace_back("ascend: no Ascend NPU on PCI");
      return scan;
    }
    const std::string on_pci_text = on_pci.empty()
                                        ? ""
                                        : std::to_string(on_pci.size()) + " NPU(s) on PCI " +
                                              sysfs::BusIdList(on_pci) + " but ";
    DynamicLibrary::OpenFailure failure;
    library_ = DynamicLibrary::Open(libraries_, &failure);
    const std::string wanted = libraries_.empty() ? "libdcmi.so" : libraries_.front();
    if (library_ == nullptr) {
      std::string why = "cannot load " + wanted + ": " + failure.detail;
      if (failure.not_found) {
        why = wanted + (on_pci.empty() ? " not found (no Ascend driver)"
                                       : " not found: install the Ascend driver, or start with "
                                         "--inventory FILE");
      }
      scan.notes.push_back("ascend: " + on_pci_text + why);
      return scan;
    }
    if (const std::string missing = api_.Resolve(*library_); !missing.empty()) {
      scan.notes.push_back("ascend: " + library_->name() + " does not export " + missing);
      library_.reset();
      return scan;
    }
    if (const int rc = api_.init(); rc != dcmi::kOk) {
      scan.notes.push_back("ascend: dcmi_init failed: " + ErrorText(rc));
      scan.settled = false;  // The driver may still be starting.
      library_.reset();
      return scan;
    }
    int cards[kMaxCards] = {};
    int card_count = 0;
    if (const int rc = api_.card_list(&card_count, cards, kMaxCards); rc != dcmi::kOk) {
      scan.notes.push_back("ascend: dcmi_get_card_num_list failed: " + ErrorText(rc));
      scan.settled = false;
      library_.reset();
      return scan;
    }
    for (int c = 0; c < std::clamp(card_count, 0, kMaxCards); ++c) {
      int chips = 0;
      if (const int rc = api_.device_count(cards[c], &chips); rc != dcmi::kOk) {
        scan.notes.push_back("ascend: card " + std::to_string(cards[c]) +
                             ": dcmi_get_device_num_in_card failed: " + ErrorText(rc));
        continue;
      }
      for (int chip = 0; chip < chips; ++chip) {
        scan.gpus.push_back(Describe(cards[c], chip, pci));
        devices_.push_back({cards[c], chip, ""});
      }
    }
    std::string summary = "ascend: DCMI";
    char version[64] = {};
    if (api_.driver_version != nullptr &&
        api_.driver_version(version, sizeof(version)) == dcmi::kOk) {
      summary += ", driver " + std::string(version, strnlen(version, sizeof(version)));
    }
    scan.notes.insert(scan.notes.begin(),
                      summary + ", " + std::to_string(scan.gpus.size()) + " NPU(s)");
    return scan;
  }

  void Sample(size_t i, Gpu* gpu, std::vector<std::string>* notes) override {
    if (i < devices_.size()) SampleDevice(devices_[i], gpu, notes);
  }

  void Health(size_t i, Gpu* gpu, std::vector<std::string>* notes) override {
    if (i >= devices_.size()) return;
    const Device& device = devices_[i];
    std::string reason = device.sample_error;
    unsigned int health = 0;
    if (api_.health != nullptr &&
        Check(api_.health(device.card, device.chip, &health), *gpu, "dcmi_get_device_health",
              notes) &&
        health >= dcmi::kHealthMajor) {
      if (!reason.empty()) reason += "; ";
      reason += health == dcmi::kHealthMajor ? "major alarm" : "critical alarm";
      reason += " (dcmi_get_device_health " + std::to_string(health) + ")";
    }
    gpu->healthy = reason.empty();
    gpu->health_reason = reason;
  }

 private:
  struct Device {
    int card = 0;
    int chip = 0;
    std::string sample_error;  // Memory unreadable in the latest sample.
  };

  Gpu Describe(int card, int chip, const sysfs::PciListing& pci) const {
    Gpu gpu;
    std::string name = "Ascend NPU";
    dcmi::ChipInfo info{};
    if (api_.chip_info != nullptr && api_.chip_info(card, chip, &info) == dcmi::kOk) {
      const std::string chip_name = Text(info.chip_name, sizeof(info.chip_name));
      if (!chip_name.empty()) name = "Ascend" + chip_name;
    }
    gpu.model = ParseGpuModel(name, context_.memory_specs);
    dcmi::PcieInfo pcie{};
    if (api_.pcie_info != nullptr && api_.pcie_info(card, chip, &pcie) == dcmi::kOk) {
      char bus_id[16];
      std::snprintf(bus_id, sizeof(bus_id), "%04x:%02x:%02x.%x",
                    static_cast<unsigned>(pcie.domain) & 0xffff, pcie.bdf_busid & 0xff,
                    pcie.bdf_deviceid & 0x1f, pcie.bdf_funcid & 0x7);
      gpu.pci_bus_id = bus_id;
      if (const auto numa = sysfs::ReadInt(pci.devices_dir / gpu.pci_bus_id / "numa_node");
          numa && *numa >= 0) {
        gpu.numa_node = static_cast<int>(*numa);
      }
    }
    gpu.uuid = context_.node_name + "-" +
               (gpu.pci_bus_id.empty() ? "npu-" + std::to_string(card) + "-" + std::to_string(chip)
                                       : gpu.pci_bus_id);
    return gpu;
  }

  bool Check(int rc, const Gpu& gpu, std::string_view call, std::vector<std::string>* notes) const {
    switch (Classify(rc)) {
      case Outcome::kOk:
        return true;
      case Outcome::kUnsupported:
        return false;
      case Outcome::kFailed:
        notes->push_back("ascend: NPU " + gpu.uuid + ": " + std::string(call) +
                         " failed: " + ErrorText(rc));
        return false;
    }
    return false;
  }

  void SampleDevice(Device& device, Gpu* gpu, std::vector<std::string>* notes) const {
    device.sample_error.clear();
    // HBM where the chip has it (training parts), else the DDR memory call.
    bool memory_read = false;
    if (api_.hbm_info != nullptr) {
      dcmi::HbmInfo hbm{};
      if (Check(api_.hbm_info(device.card, device.chip, &hbm), *gpu, "dcmi_get_device_hbm_info",
                notes) &&
          hbm.memory_size > 0) {
        gpu->memory_total_mib = static_cast<int64_t>(hbm.memory_size);
        gpu->memory_used_mib =
            std::min<int64_t>(static_cast<int64_t>(hbm.memory_usage), gpu->memory_total_mib);
        gpu->memory_utilization = std::clamp(hbm.bandwith_util_rate / 100.0, 0.0, 1.0);
        memory_read = true;
      }
    }
    if (!memory_read && api_.memory_info != nullptr) {
      dcmi::MemoryInfo memory{};
      if (Check(api_.memory_info(device.card, device.chip, &memory), *gpu,
                "dcmi_get_device_memory_info_v3", notes) &&
          memory.memory_size > 0) {
        gpu->memory_total_mib = static_cast<int64_t>(memory.memory_size);
        gpu->memory_used_mib = static_cast<int64_t>(
            memory.memory_size - std::min(memory.memory_available, memory.memory_size));
        gpu->memory_utilization = std::clamp(memory.utiliza / 100.0, 0.0, 1.0);
        memory_read = true;
      }
    }
    if (!memory_read) device.sample_error = "memory unreadable through DCMI";
    unsigned int percent = 0;
    gpu->utilization = 0;
    if (api_.utilization != nullptr &&
        Check(api_.utilization(device.card, device.chip, dcmi::kUtilizationAiCore, &percent), *gpu,
              "dcmi_get_device_utilization_rate", notes)) {
      gpu->utilization = std::clamp(percent / 100.0, 0.0, 1.0);
    }
    gpu->temperature_c.reset();
    int celsius = 0;
    if (api_.temperature != nullptr && Check(api_.temperature(device.card, device.chip, &celsius),
                                             *gpu, "dcmi_get_device_temperature", notes)) {
      gpu->temperature_c = celsius;
    }
    gpu->power_w.reset();
    int deciwatts = 0;  // Tenths of a watt.
    if (api_.power != nullptr && Check(api_.power(device.card, device.chip, &deciwatts), *gpu,
                                       "dcmi_get_device_power_info", notes)) {
      gpu->power_w = deciwatts / 10.0;
    }
  }

  const std::vector<std::string> libraries_;
  const BackendContext context_;
  std::unique_ptr<DynamicLibrary> library_;
  DcmiApi api_;
  std::vector<Device> devices_;  // Parallel to the GPU list of the last Discover.
};

}  // namespace

std::vector<std::string> DefaultDcmiLibraries() {
  return {"libdcmi.so", "/usr/local/Ascend/driver/lib64/driver/libdcmi.so",
          "/usr/local/dcmi/libdcmi.so"};
}

std::unique_ptr<VendorBackend> MakeAscendBackend(std::vector<std::string> libraries,
                                                 BackendContext context) {
  return std::make_unique<AscendBackend>(std::move(libraries), std::move(context));
}

}  // namespace gpurm
