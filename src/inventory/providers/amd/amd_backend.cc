#include "inventory/providers/amd/amd_backend.h"

#include <rocm_smi/rocm_smi.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <sstream>
#include <string_view>
#include <utility>

#include "inventory/providers/common/dynamic_library.h"
#include "inventory/providers/common/islands.h"

namespace gpurm {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kBytesPerMib = int64_t{1024} * 1024;

// ROCm SMI's entry points, resolved from the loaded library.
struct RsmiApi {
  decltype(&rsmi_init) init = nullptr;
  decltype(&rsmi_shut_down) shut_down = nullptr;
  decltype(&rsmi_status_string) status_string = nullptr;
  decltype(&rsmi_version_get) version = nullptr;
  decltype(&rsmi_num_monitor_devices) device_count = nullptr;
  decltype(&rsmi_dev_pci_id_get) pci_id = nullptr;
  decltype(&rsmi_dev_name_get) name = nullptr;
  decltype(&rsmi_dev_memory_total_get) memory_total = nullptr;
  decltype(&rsmi_dev_memory_usage_get) memory_usage = nullptr;
  decltype(&rsmi_dev_busy_percent_get) busy_percent = nullptr;
  decltype(&rsmi_dev_memory_busy_percent_get) memory_busy_percent = nullptr;
  decltype(&rsmi_dev_temp_metric_get) temperature = nullptr;
  decltype(&rsmi_dev_power_ave_get) power = nullptr;
  decltype(&rsmi_dev_power_cap_get) power_cap = nullptr;
  decltype(&rsmi_dev_ecc_count_get) ecc_count = nullptr;
  decltype(&rsmi_topo_get_link_type) link_type = nullptr;

  // Returns the first missing required entry point, or an empty string.
  std::string Resolve(const DynamicLibrary& lib) {
    init = lib.Find<decltype(init)>({"rsmi_init"});
    shut_down = lib.Find<decltype(shut_down)>({"rsmi_shut_down"});
    status_string = lib.Find<decltype(status_string)>({"rsmi_status_string"});
    version = lib.Find<decltype(version)>({"rsmi_version_get"});
    device_count = lib.Find<decltype(device_count)>({"rsmi_num_monitor_devices"});
    pci_id = lib.Find<decltype(pci_id)>({"rsmi_dev_pci_id_get"});
    name = lib.Find<decltype(name)>({"rsmi_dev_name_get"});
    memory_total = lib.Find<decltype(memory_total)>({"rsmi_dev_memory_total_get"});
    memory_usage = lib.Find<decltype(memory_usage)>({"rsmi_dev_memory_usage_get"});
    busy_percent = lib.Find<decltype(busy_percent)>({"rsmi_dev_busy_percent_get"});
    memory_busy_percent =
        lib.Find<decltype(memory_busy_percent)>({"rsmi_dev_memory_busy_percent_get"});
    temperature = lib.Find<decltype(temperature)>({"rsmi_dev_temp_metric_get"});
    power = lib.Find<decltype(power)>({"rsmi_dev_power_ave_get"});
    power_cap = lib.Find<decltype(power_cap)>({"rsmi_dev_power_cap_get"});
    ecc_count = lib.Find<decltype(ecc_count)>({"rsmi_dev_ecc_count_get"});
    link_type = lib.Find<decltype(link_type)>({"rsmi_topo_get_link_type"});
    if (init == nullptr) return "rsmi_init";
    if (shut_down == nullptr) return "rsmi_shut_down";
    if (device_count == nullptr) return "rsmi_num_monitor_devices";
    if (pci_id == nullptr) return "rsmi_dev_pci_id_get";
    if (memory_total == nullptr) return "rsmi_dev_memory_total_get";
    if (memory_usage == nullptr) return "rsmi_dev_memory_usage_get";
    return "";
  }
};

// ---- The one place ROCm SMI status codes are interpreted. ----

enum class Outcome { kOk, kUnsupported, kFailed };

Outcome Classify(rsmi_status_t rc) {
  switch (rc) {
    case RSMI_STATUS_SUCCESS:
      return Outcome::kOk;
    case RSMI_STATUS_NOT_SUPPORTED:
    case RSMI_STATUS_NOT_YET_IMPLEMENTED:
    case RSMI_STATUS_NOT_FOUND:
    case RSMI_STATUS_NO_DATA:
    case RSMI_STATUS_FILE_ERROR:  // The kernel does not publish that file.
      return Outcome::kUnsupported;
    default:
      return Outcome::kFailed;
  }
}

std::string ErrorText(const RsmiApi& api, rsmi_status_t rc) {
  const char* text = nullptr;
  if (api.status_string == nullptr || api.status_string(rc, &text) != RSMI_STATUS_SUCCESS ||
      text == nullptr) {
    text = "unknown error";
  }
  // ROCm SMI's strings are "RSMI_STATUS_X: explanation"; the code name is enough.
  std::string out(text);
  if (const size_t colon = out.find(':'); colon != std::string::npos) out.resize(colon);
  return out + " (ROCm SMI status " + std::to_string(static_cast<int>(rc)) + ")";
}

// ---- End of the error mapping. ----

// "dddd:bb:dd.f" from ROCm SMI's BDFID: domain << 32 | bus << 8 | device << 3 | function.
std::string BusIdFromBdf(uint64_t bdfid) {
  char text[16];
  std::snprintf(text, sizeof(text), "%04x:%02x:%02x.%x",
                static_cast<unsigned>((bdfid >> 32) & 0xffff),
                static_cast<unsigned>((bdfid >> 8) & 0xff),
                static_cast<unsigned>((bdfid >> 3) & 0x1f), static_cast<unsigned>(bdfid & 0x7));
  return text;
}

// The uncorrectable count from amdgpu's "ue: N\nce: M" RAS file.
std::optional<int64_t> ReadUncorrectable(const fs::path& file) {
  const std::optional<std::string> text = sysfs::ReadTrimmed(file);
  if (!text) return std::nullopt;
  std::istringstream lines(*text);
  std::string key;
  int64_t value = 0;
  while (lines >> key >> value) {
    if (key == "ue:") return value;
  }
  return std::nullopt;
}

class AmdBackend final : public VendorBackend {
 public:
  AmdBackend(std::vector<std::string> libraries, BackendContext context)
      : libraries_(std::move(libraries)), context_(std::move(context)) {}
  ~AmdBackend() override { Close(); }

  std::string vendor() const override { return "amd"; }

  VendorScan Discover(const sysfs::PciListing& pci) override {
    Close();
    VendorScan scan;
    const std::vector<sysfs::PciDevice> on_pci = pci.OfVendor(sysfs::kVendorAmd);
    if (!pci.error && on_pci.empty()) {
      scan.notes.emplace_back("amd: no AMD GPU on PCI");
      return scan;
    }
    const std::string rocm = OpenRocmSmi(pci, &scan);
    if (!devices_.empty()) return scan;

    // amdgpu sysfs: every AMD display function that publishes its VRAM size.
    std::vector<sysfs::PciDevice> without_driver;
    for (const sysfs::PciDevice& device : on_pci) {
      const std::optional<int64_t> vram = sysfs::ReadInt(device.dir / "mem_info_vram_total");
      if (!vram || *vram <= 0) {
        without_driver.push_back(device);
        continue;
      }
      devices_.push_back({device.dir, std::nullopt});
      scan.gpus.push_back(Describe(device.bus_id, device.device, device.dir, ""));
    }
    scan.notes.insert(scan.notes.begin(), "amd: " + rocm + "; amdgpu sysfs: " +
                                              std::to_string(scan.gpus.size()) + " GPU(s)");
    if (!without_driver.empty()) {
      scan.notes.push_back("amd: " + std::to_string(without_driver.size()) + " GPU(s) on PCI " +
                           sysfs::BusIdList(without_driver) +
                           " without amdgpu memory info (mem_info_vram_total); is the amdgpu "
                           "driver loaded? Or start with --inventory FILE");
    }
    return scan;
  }

  void Sample(size_t i, Gpu* gpu, std::vector<std::string>* notes) override {
    if (i >= devices_.size()) return;
    if (devices_[i].rsmi_index) {
      SampleRocmSmi(*devices_[i].rsmi_index, gpu, notes);
    } else {
      SampleSysfs(devices_[i].dir, gpu);
    }
  }

  void Health(size_t /*i*/, Gpu* gpu, std::vector<std::string>* /*notes*/) override {
    gpu->healthy = !(gpu->ecc_double_bit_errors && *gpu->ecc_double_bit_errors > 0);
    gpu->health_reason =
        gpu->healthy ? ""
                     : std::to_string(*gpu->ecc_double_bit_errors) + " uncorrectable ECC error(s)";
  }

 private:
  struct Device {
    fs::path dir;                        // The PCI device's sysfs directory.
    std::optional<uint32_t> rsmi_index;  // Set when ROCm SMI serves this GPU.
  };

  // Opens ROCm SMI and fills `scan` and devices_ when it sees GPUs. Returns
  // what happened, for the summary note when sysfs has to take over.
  std::string OpenRocmSmi(const sysfs::PciListing& pci, VendorScan* scan) {
    DynamicLibrary::OpenFailure failure;
    library_ = DynamicLibrary::Open(libraries_, &failure);
    const std::string wanted = libraries_.empty() ? "librocm_smi64.so.1" : libraries_.front();
    if (library_ == nullptr) {
      return failure.not_found ? wanted + " not found"
                               : "cannot load " + wanted + ": " + failure.detail;
    }
    if (const std::string missing = api_.Resolve(*library_); !missing.empty()) {
      std::string why = library_->name() + " does not export " + missing;
      Close();
      return why;
    }
    if (const rsmi_status_t rc = api_.init(0); rc != RSMI_STATUS_SUCCESS) {
      std::string why = "rsmi_init failed: " + ErrorText(api_, rc);
      Close();
      return why;
    }
    initialized_ = true;
    uint32_t count = 0;
    if (const rsmi_status_t rc = api_.device_count(&count);
        rc != RSMI_STATUS_SUCCESS || count == 0) {
      std::string why = rc != RSMI_STATUS_SUCCESS
                            ? "rsmi_num_monitor_devices failed: " + ErrorText(api_, rc)
                            : "ROCm SMI sees no GPU";
      Close();
      return why;
    }
    std::vector<FabricLinks> fabric;
    for (uint32_t i = 0; i < count; ++i) {
      uint64_t bdfid = 0;
      std::string bus_id;
      if (const rsmi_status_t rc = api_.pci_id(i, &bdfid); rc == RSMI_STATUS_SUCCESS) {
        bus_id = BusIdFromBdf(bdfid);
      } else {
        scan->notes.push_back("amd: GPU " + std::to_string(i) +
                              ": rsmi_dev_pci_id_get failed: " + ErrorText(api_, rc));
      }
      const fs::path dir = pci.devices_dir / bus_id;
      uint32_t pci_device = 0;
      for (const sysfs::PciDevice& device : pci.accelerators) {
        if (device.bus_id == bus_id) pci_device = device.device;
      }
      char name[256] = {};
      std::string rsmi_name;
      if (api_.name != nullptr && api_.name(i, name, sizeof(name)) == RSMI_STATUS_SUCCESS) {
        rsmi_name.assign(name, strnlen(name, sizeof(name)));
      }
      devices_.push_back({dir, i});
      scan->gpus.push_back(Describe(bus_id.empty() ? "amd-" + std::to_string(i) : bus_id,
                                    pci_device, dir, rsmi_name));
      if (bus_id.empty()) scan->gpus.back().pci_bus_id.clear();
      fabric.push_back({scan->gpus.back().uuid, {}});
    }
    if (api_.link_type != nullptr) {
      for (uint32_t i = 0; i < count; ++i) {
        for (uint32_t j = 0; j < count; ++j) {
          uint64_t hops = 0;
          RSMI_IO_LINK_TYPE type = RSMI_IOLINK_TYPE_UNDEFINED;
          if (i != j && api_.link_type(i, j, &hops, &type) == RSMI_STATUS_SUCCESS &&
              type == RSMI_IOLINK_TYPE_XGMI) {
            fabric[i].peers.push_back(fabric[j].self);
          }
        }
      }
    }
    const std::vector<int> islands = GroupIslands(fabric);
    for (size_t i = 0; i < scan->gpus.size(); ++i) scan->gpus[i].nvlink_group = islands[i];

    std::string summary = "amd: ROCm SMI";
    rsmi_version_t version{};
    if (api_.version != nullptr && api_.version(&version) == RSMI_STATUS_SUCCESS) {
      summary += " " + std::to_string(version.major) + "." + std::to_string(version.minor) + "." +
                 std::to_string(version.patch);
    }
    scan->notes.insert(scan->notes.begin(), summary + ", " + std::to_string(count) + " GPU(s)");
    return "";
  }

  // Identity of one GPU: "<node>-<bus id>", named after amdgpu's product_name,
  // else ROCm SMI's name, else the PCI device id.
  Gpu Describe(const std::string& bus_id, uint32_t pci_device, const fs::path& dir,
               const std::string& rsmi_name) const {
    Gpu gpu;
    gpu.pci_bus_id = bus_id;
    gpu.uuid = context_.node_name + "-" + bus_id;
    std::string name = sysfs::ReadTrimmed(dir / "product_name").value_or("");
    if (name.empty()) name = rsmi_name;
    if (name.empty()) {
      char fallback[32];
      std::snprintf(fallback, sizeof(fallback), "AMD GPU 0x%x", pci_device);
      name = fallback;
    }
    gpu.model = ParseGpuModel(name, context_.memory_specs);
    if (const auto numa = sysfs::ReadInt(dir / "numa_node"); numa && *numa >= 0) {
      gpu.numa_node = static_cast<int>(*numa);
    }
    return gpu;
  }

  // Appends a note for a real failure; true when the value was read.
  bool Check(rsmi_status_t rc, const Gpu& gpu, std::string_view call,
             std::vector<std::string>* notes) const {
    switch (Classify(rc)) {
      case Outcome::kOk:
        return true;
      case Outcome::kUnsupported:
        return false;
      case Outcome::kFailed:
        notes->push_back("amd: GPU " + gpu.pci_bus_id + ": " + std::string(call) +
                         " failed: " + ErrorText(api_, rc));
        return false;
    }
    return false;
  }

  void SampleRocmSmi(uint32_t i, Gpu* gpu, std::vector<std::string>* notes) const {
    uint64_t total = 0;
    uint64_t used = 0;
    if (Check(api_.memory_total(i, RSMI_MEM_TYPE_VRAM, &total), *gpu, "rsmi_dev_memory_total_get",
              notes) &&
        Check(api_.memory_usage(i, RSMI_MEM_TYPE_VRAM, &used), *gpu, "rsmi_dev_memory_usage_get",
              notes)) {
      gpu->memory_total_mib = static_cast<int64_t>(total) / kBytesPerMib;
      gpu->memory_used_mib =
          std::clamp<int64_t>(static_cast<int64_t>(used) / kBytesPerMib, 0, gpu->memory_total_mib);
    }
    uint32_t percent = 0;
    gpu->utilization = 0;
    if (api_.busy_percent != nullptr &&
        Check(api_.busy_percent(i, &percent), *gpu, "rsmi_dev_busy_percent_get", notes)) {
      gpu->utilization = sysfs::PercentToRatio(percent);
    }
    gpu->memory_utilization = 0;
    if (api_.memory_busy_percent != nullptr && Check(api_.memory_busy_percent(i, &percent), *gpu,
                                                     "rsmi_dev_memory_busy_percent_get", notes)) {
      gpu->memory_utilization = sysfs::PercentToRatio(percent);
    }
    gpu->temperature_c.reset();
    if (api_.temperature != nullptr) {
      // MI200 and later have no edge sensor: junction stands in.
      for (const uint32_t sensor : {RSMI_TEMP_TYPE_EDGE, RSMI_TEMP_TYPE_JUNCTION}) {
        int64_t millidegrees = 0;
        if (api_.temperature(i, sensor, RSMI_TEMP_CURRENT, &millidegrees) == RSMI_STATUS_SUCCESS) {
          gpu->temperature_c = static_cast<double>(millidegrees) / 1000.0;
          break;
        }
      }
    }
    uint64_t microwatts = 0;
    gpu->power_w.reset();
    if (api_.power != nullptr &&
        Check(api_.power(i, 0, &microwatts), *gpu, "rsmi_dev_power_ave_get", notes)) {
      gpu->power_w = static_cast<double>(microwatts) / 1e6;
    }
    gpu->power_limit_w.reset();
    if (api_.power_cap != nullptr &&
        Check(api_.power_cap(i, 0, &microwatts), *gpu, "rsmi_dev_power_cap_get", notes) &&
        microwatts > 0) {
      gpu->power_limit_w = static_cast<double>(microwatts) / 1e6;
    }
    gpu->ecc_double_bit_errors.reset();
    rsmi_error_count_t errors{};
    if (api_.ecc_count != nullptr && Check(api_.ecc_count(i, RSMI_GPU_BLOCK_UMC, &errors), *gpu,
                                           "rsmi_dev_ecc_count_get", notes)) {
      gpu->ecc_double_bit_errors = static_cast<int64_t>(errors.uncorrectable_err);
    }
  }

  static void SampleSysfs(const fs::path& dir, Gpu* gpu) {
    if (const auto total = sysfs::ReadInt(dir / "mem_info_vram_total"); total && *total > 0) {
      gpu->memory_total_mib = *total / kBytesPerMib;
    }
    const auto used = sysfs::ReadInt(dir / "mem_info_vram_used");
    gpu->memory_used_mib =
        std::clamp<int64_t>(used.value_or(0) / kBytesPerMib, 0, gpu->memory_total_mib);
    gpu->utilization = sysfs::PercentToRatio(sysfs::ReadInt(dir / "gpu_busy_percent"));
    gpu->memory_utilization = sysfs::PercentToRatio(sysfs::ReadInt(dir / "mem_busy_percent"));
    gpu->temperature_c.reset();
    gpu->power_w.reset();
    gpu->power_limit_w.reset();
    sysfs::ReadHwmon(dir, gpu);
    gpu->ecc_double_bit_errors = ReadUncorrectable(dir / "ras" / "umc_err_count");
  }

  void Close() {
    if (initialized_) api_.shut_down();
    initialized_ = false;
    devices_.clear();
    library_.reset();
    api_ = RsmiApi{};
  }

  const std::vector<std::string> libraries_;
  const BackendContext context_;
  std::unique_ptr<DynamicLibrary> library_;
  RsmiApi api_;
  bool initialized_ = false;
  std::vector<Device> devices_;  // Parallel to the GPU list of the last Discover.
};

}  // namespace

std::vector<std::string> DefaultRocmSmiLibraries() {
  return {"librocm_smi64.so.1", "librocm_smi64.so", "/opt/rocm/lib/librocm_smi64.so.1"};
}

std::unique_ptr<VendorBackend> MakeAmdBackend(std::vector<std::string> libraries,
                                              BackendContext context) {
  return std::make_unique<AmdBackend>(std::move(libraries), std::move(context));
}

}  // namespace gpurm
