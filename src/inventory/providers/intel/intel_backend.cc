#include "inventory/providers/intel/intel_backend.h"

#include <level_zero/ze_api.h>
#include <level_zero/zes_api.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string_view>
#include <utility>

#include "inventory/providers/common/dynamic_library.h"

namespace gpurm {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kBytesPerMib = 1024ULL * 1024ULL;

// Level Zero 1.5 added a Sysman entry point of its own (no environment
// variable needed); the headers gpurm builds against may predate it, so its
// three calls are declared here, as the specification defines them.
using ZesInitFn = ze_result_t (*)(uint32_t flags);
using ZesDriverGetFn = ze_result_t (*)(uint32_t* count, zes_driver_handle_t* drivers);
using ZesDeviceGetFn = ze_result_t (*)(zes_driver_handle_t driver, uint32_t* count,
                                       zes_device_handle_t* devices);

struct LevelZeroApi {
  ZesInitFn zes_init = nullptr;
  ZesDriverGetFn zes_driver_get = nullptr;
  ZesDeviceGetFn zes_device_get = nullptr;
  decltype(&zeInit) ze_init = nullptr;
  decltype(&zeDriverGet) ze_driver_get = nullptr;
  decltype(&zeDeviceGet) ze_device_get = nullptr;
  decltype(&zesDeviceGetProperties) properties = nullptr;
  decltype(&zesDevicePciGetProperties) pci = nullptr;
  decltype(&zesDeviceGetState) state = nullptr;
  decltype(&zesDeviceEnumMemoryModules) memory_modules = nullptr;
  decltype(&zesMemoryGetProperties) memory_properties = nullptr;
  decltype(&zesMemoryGetState) memory_state = nullptr;
  decltype(&zesDeviceEnumTemperatureSensors) temperature_sensors = nullptr;
  decltype(&zesTemperatureGetProperties) temperature_properties = nullptr;
  decltype(&zesTemperatureGetState) temperature = nullptr;
  decltype(&zesDeviceEnumEngineGroups) engine_groups = nullptr;
  decltype(&zesEngineGetProperties) engine_properties = nullptr;
  decltype(&zesEngineGetActivity) engine_activity = nullptr;
  decltype(&zesDeviceEnumPowerDomains) power_domains = nullptr;
  decltype(&zesPowerGetEnergyCounter) energy = nullptr;

  std::string Resolve(const DynamicLibrary& lib) {
    zes_init = lib.Find<ZesInitFn>({"zesInit"});
    zes_driver_get = lib.Find<ZesDriverGetFn>({"zesDriverGet"});
    zes_device_get = lib.Find<ZesDeviceGetFn>({"zesDeviceGet"});
    ze_init = lib.Find<decltype(ze_init)>({"zeInit"});
    ze_driver_get = lib.Find<decltype(ze_driver_get)>({"zeDriverGet"});
    ze_device_get = lib.Find<decltype(ze_device_get)>({"zeDeviceGet"});
    properties = lib.Find<decltype(properties)>({"zesDeviceGetProperties"});
    pci = lib.Find<decltype(pci)>({"zesDevicePciGetProperties"});
    state = lib.Find<decltype(state)>({"zesDeviceGetState"});
    memory_modules = lib.Find<decltype(memory_modules)>({"zesDeviceEnumMemoryModules"});
    memory_properties = lib.Find<decltype(memory_properties)>({"zesMemoryGetProperties"});
    memory_state = lib.Find<decltype(memory_state)>({"zesMemoryGetState"});
    temperature_sensors =
        lib.Find<decltype(temperature_sensors)>({"zesDeviceEnumTemperatureSensors"});
    temperature_properties =
        lib.Find<decltype(temperature_properties)>({"zesTemperatureGetProperties"});
    temperature = lib.Find<decltype(temperature)>({"zesTemperatureGetState"});
    engine_groups = lib.Find<decltype(engine_groups)>({"zesDeviceEnumEngineGroups"});
    engine_properties = lib.Find<decltype(engine_properties)>({"zesEngineGetProperties"});
    engine_activity = lib.Find<decltype(engine_activity)>({"zesEngineGetActivity"});
    power_domains = lib.Find<decltype(power_domains)>({"zesDeviceEnumPowerDomains"});
    energy = lib.Find<decltype(energy)>({"zesPowerGetEnergyCounter"});
    const bool sysman_init =
        zes_init != nullptr && zes_driver_get != nullptr && zes_device_get != nullptr;
    const bool core_init =
        ze_init != nullptr && ze_driver_get != nullptr && ze_device_get != nullptr;
    if (!sysman_init && !core_init) return "zesInit or zeInit";
    if (properties == nullptr) return "zesDeviceGetProperties";
    if (memory_modules == nullptr || memory_properties == nullptr || memory_state == nullptr) {
      return "zesDeviceEnumMemoryModules";
    }
    return "";
  }
};

// ---- The one place Level Zero result codes are interpreted. ----

enum class Outcome { kOk, kUnsupported, kDeviceLost, kFailed };

Outcome Classify(ze_result_t rc) {
  switch (rc) {
    case ZE_RESULT_SUCCESS:
      return Outcome::kOk;
    case ZE_RESULT_ERROR_UNSUPPORTED_FEATURE:
    case ZE_RESULT_ERROR_UNSUPPORTED_VERSION:
    case ZE_RESULT_ERROR_UNSUPPORTED_ENUMERATION:
    case ZE_RESULT_ERROR_NOT_AVAILABLE:
      return Outcome::kUnsupported;
    case ZE_RESULT_ERROR_DEVICE_LOST:
      return Outcome::kDeviceLost;
    default:
      return Outcome::kFailed;
  }
}

std::string ErrorText(ze_result_t rc) {
  const char* name = "error";
  switch (rc) {
    case ZE_RESULT_ERROR_UNINITIALIZED:
      name = "ZE_RESULT_ERROR_UNINITIALIZED";
      break;
    case ZE_RESULT_ERROR_DEVICE_LOST:
      name = "ZE_RESULT_ERROR_DEVICE_LOST";
      break;
    case ZE_RESULT_ERROR_INSUFFICIENT_PERMISSIONS:
      name = "ZE_RESULT_ERROR_INSUFFICIENT_PERMISSIONS";
      break;
    case ZE_RESULT_ERROR_UNSUPPORTED_FEATURE:
      name = "ZE_RESULT_ERROR_UNSUPPORTED_FEATURE";
      break;
    case ZE_RESULT_ERROR_DEPENDENCY_UNAVAILABLE:
      name = "ZE_RESULT_ERROR_DEPENDENCY_UNAVAILABLE";
      break;
    case ZE_RESULT_ERROR_UNKNOWN:
      name = "ZE_RESULT_ERROR_UNKNOWN";
      break;
    default:
      break;
  }
  char code[16];
  std::snprintf(code, sizeof(code), "0x%x", static_cast<unsigned>(rc));
  return std::string(name) + " (Level Zero result " + code + ")";
}

// ---- End of the error mapping. ----

// Data-center and discrete Intel GPUs gpurm can name from a PCI device id
// alone (the sysfs fallback has nothing else); others keep their id.
std::string NameFromDeviceId(uint32_t device_id) {
  switch (device_id) {
    case 0x0bd5:
      return "Intel(R) Data Center GPU Max 1550";
    case 0x0bda:
      return "Intel(R) Data Center GPU Max 1100";
    case 0x56c0:
      return "Intel(R) Data Center GPU Flex 170";
    case 0x56c1:
      return "Intel(R) Data Center GPU Flex 140";
    default: {
      char name[32];
      std::snprintf(name, sizeof(name), "Intel GPU 0x%04x", device_id);
      return name;
    }
  }
}

// Device-local memory in bytes as the driver publishes it in sysfs: xe per
// tile, Intel's out-of-tree i915 on the DRM card directory.
std::optional<uint64_t> SysfsLocalMemory(const fs::path& dir) {
  uint64_t total = 0;
  std::error_code error;
  for (fs::directory_iterator it(dir, error); !error && it != fs::directory_iterator();
       it.increment(error)) {
    const std::string name = it->path().filename().string();
    if (name.starts_with("tile")) {
      auto bytes = sysfs::ReadInt(it->path() / "physical_vram_size_bytes");
      if (!bytes) bytes = sysfs::ReadInt(it->path() / "memory" / "physical_vram_size_bytes");
      if (bytes && *bytes > 0) total += static_cast<uint64_t>(*bytes);
    }
  }
  if (total > 0) return total;
  for (fs::directory_iterator it(dir / "drm", error); !error && it != fs::directory_iterator();
       it.increment(error)) {
    if (!it->path().filename().string().starts_with("card")) continue;
    if (const auto bytes = sysfs::ReadInt(it->path() / "lmem_total_bytes"); bytes && *bytes > 0) {
      return static_cast<uint64_t>(*bytes);
    }
  }
  return std::nullopt;
}

std::string BusId(const zes_pci_address_t& address) {
  char text[16];
  std::snprintf(text, sizeof(text), "%04x:%02x:%02x.%x", address.domain & 0xffff,
                address.bus & 0xff, address.device & 0x1f, address.function & 0x7);
  return text;
}

class IntelBackend final : public VendorBackend {
 public:
  IntelBackend(std::vector<std::string> libraries, BackendContext context)
      : libraries_(std::move(libraries)), context_(std::move(context)) {}

  std::string vendor() const override { return "intel"; }

  VendorScan Discover(const sysfs::PciListing& pci) override {
    devices_.clear();
    library_.reset();
    api_ = LevelZeroApi{};
    VendorScan scan;
    const std::vector<sysfs::PciDevice> on_pci = pci.OfVendor(sysfs::kVendorIntel);
    if (!pci.error && on_pci.empty()) {
      scan.notes.emplace_back("intel: no Intel GPU on PCI");
      return scan;
    }
    // The loader stays open even when it found nothing: Level Zero has no
    // teardown call, and unloading initialised drivers is not safe.
    const std::string level_zero = OpenLevelZero(pci, &scan);
    if (!devices_.empty()) return scan;

    std::vector<sysfs::PciDevice> without_memory;
    for (const sysfs::PciDevice& device : on_pci) {
      const std::optional<uint64_t> bytes = SysfsLocalMemory(device.dir);
      if (!bytes) {
        without_memory.push_back(device);
        continue;
      }
      Gpu gpu;
      gpu.pci_bus_id = device.bus_id;
      gpu.uuid = context_.node_name + "-" + device.bus_id;
      gpu.model = ParseGpuModel(NameFromDeviceId(device.device), context_.memory_specs);
      gpu.memory_total_mib = static_cast<int64_t>(*bytes / kBytesPerMib);
      devices_.push_back({nullptr, device.dir, "", std::nullopt, std::nullopt});
      scan.gpus.push_back(std::move(gpu));
    }
    scan.notes.insert(
        scan.notes.begin(),
        "intel: " + level_zero + "; i915/xe sysfs: " + std::to_string(scan.gpus.size()) +
            " GPU(s)" +
            (scan.gpus.empty() ? "" : " (memory in use not measured without Level Zero)"));
    if (!without_memory.empty()) {
      scan.notes.push_back("intel: " + std::to_string(without_memory.size()) + " GPU(s) on PCI " +
                           sysfs::BusIdList(without_memory) +
                           " without a local memory size in sysfs (integrated, or a driver that "
                           "does not publish it); start with --inventory FILE to declare them");
    }
    return scan;
  }

  void Sample(size_t i, Gpu* gpu, std::vector<std::string>* notes) override {
    if (i >= devices_.size()) return;
    Device& device = devices_[i];
    if (device.handle == nullptr) {
      gpu->temperature_c.reset();
      gpu->power_w.reset();
      gpu->power_limit_w.reset();
      sysfs::ReadHwmon(device.dir, gpu);
      return;
    }
    SampleLevelZero(device, gpu, notes);
  }

  void Health(size_t i, Gpu* gpu, std::vector<std::string>* /*notes*/) override {
    if (i >= devices_.size()) return;
    gpu->healthy = devices_[i].unhealthy.empty();
    gpu->health_reason = devices_[i].unhealthy;
  }

 private:
  struct Counter {
    uint64_t value = 0;
    uint64_t timestamp_us = 0;
  };
  struct Device {
    zes_device_handle_t handle = nullptr;  // Null on the sysfs fallback.
    fs::path dir;
    std::string unhealthy;          // From the latest sample; empty when healthy.
    std::optional<Counter> engine;  // Previous readings, for deltas.
    std::optional<Counter> energy;
  };

  std::string OpenLevelZero(const sysfs::PciListing& pci, VendorScan* scan) {
    DynamicLibrary::OpenFailure failure;
    library_ = DynamicLibrary::Open(libraries_, &failure);
    const std::string wanted = libraries_.empty() ? "libze_loader.so.1" : libraries_.front();
    if (library_ == nullptr) {
      return failure.not_found ? wanted + " not found"
                               : "cannot load " + wanted + ": " + failure.detail;
    }
    if (const std::string missing = api_.Resolve(*library_); !missing.empty()) {
      return library_->name() + " does not export " + missing;
    }
    std::vector<zes_device_handle_t> handles;
    if (api_.zes_init != nullptr && api_.zes_driver_get != nullptr &&
        api_.zes_device_get != nullptr) {
      if (const ze_result_t rc = api_.zes_init(0); rc != ZE_RESULT_SUCCESS) {
        return "zesInit failed: " + ErrorText(rc);
      }
      uint32_t driver_count = 0;
      api_.zes_driver_get(&driver_count, nullptr);
      std::vector<zes_driver_handle_t> drivers(driver_count);
      if (driver_count > 0) api_.zes_driver_get(&driver_count, drivers.data());
      for (zes_driver_handle_t driver : drivers) {
        uint32_t count = 0;
        if (api_.zes_device_get(driver, &count, nullptr) != ZE_RESULT_SUCCESS) continue;
        std::vector<zes_device_handle_t> found(count);
        if (count > 0 && api_.zes_device_get(driver, &count, found.data()) == ZE_RESULT_SUCCESS) {
          handles.insert(handles.end(), found.begin(), found.begin() + count);
        }
      }
    } else {
      const char* sysman = std::getenv("ZES_ENABLE_SYSMAN");
      if (sysman == nullptr || std::string_view(sysman) != "1") {
        return "the Level Zero loader has no zesInit and ZES_ENABLE_SYSMAN=1 is not set, so "
               "Sysman is off";
      }
      if (const ze_result_t rc = api_.ze_init(ZE_INIT_FLAG_GPU_ONLY); rc != ZE_RESULT_SUCCESS) {
        return "zeInit failed: " + ErrorText(rc);
      }
      uint32_t driver_count = 0;
      api_.ze_driver_get(&driver_count, nullptr);
      std::vector<ze_driver_handle_t> drivers(driver_count);
      if (driver_count > 0) api_.ze_driver_get(&driver_count, drivers.data());
      for (ze_driver_handle_t driver : drivers) {
        uint32_t count = 0;
        if (api_.ze_device_get(driver, &count, nullptr) != ZE_RESULT_SUCCESS) continue;
        std::vector<ze_device_handle_t> found(count);
        if (count > 0 && api_.ze_device_get(driver, &count, found.data()) == ZE_RESULT_SUCCESS) {
          // With ZES_ENABLE_SYSMAN=1 a core device handle is a Sysman handle.
          handles.insert(handles.end(), found.begin(), found.begin() + count);
        }
      }
    }
    for (zes_device_handle_t handle : handles) {
      zes_device_properties_t properties{};
      properties.stype = ZES_STRUCTURE_TYPE_DEVICE_PROPERTIES;
      if (const ze_result_t rc = api_.properties(handle, &properties); rc != ZE_RESULT_SUCCESS) {
        scan->notes.push_back("intel: zesDeviceGetProperties failed: " + ErrorText(rc));
        continue;
      }
      if (properties.core.type != ZE_DEVICE_TYPE_GPU) continue;
      Gpu gpu;
      if (api_.pci != nullptr) {
        zes_pci_properties_t pci_properties{};
        pci_properties.stype = ZES_STRUCTURE_TYPE_PCI_PROPERTIES;
        if (api_.pci(handle, &pci_properties) == ZE_RESULT_SUCCESS) {
          gpu.pci_bus_id = BusId(pci_properties.address);
        }
      }
      gpu.uuid =
          context_.node_name + "-" +
          (gpu.pci_bus_id.empty() ? "intel-" + std::to_string(devices_.size()) : gpu.pci_bus_id);
      gpu.model =
          ParseGpuModel(std::string(properties.core.name,
                                    strnlen(properties.core.name, sizeof(properties.core.name))),
                        context_.memory_specs);
      const fs::path dir = pci.devices_dir / gpu.pci_bus_id;
      if (const auto numa = sysfs::ReadInt(dir / "numa_node"); numa && *numa >= 0) {
        gpu.numa_node = static_cast<int>(*numa);
      }
      devices_.push_back({handle, dir, "", std::nullopt, std::nullopt});
      scan->gpus.push_back(std::move(gpu));
    }
    if (devices_.empty()) return "Level Zero sees no GPU";
    scan->notes.insert(scan->notes.begin(),
                       "intel: Level Zero Sysman, " + std::to_string(devices_.size()) + " GPU(s)");
    return "";
  }

  void Note(ze_result_t rc, const Gpu& gpu, std::string_view call, Device& device,
            std::vector<std::string>* notes) const {
    switch (Classify(rc)) {
      case Outcome::kOk:
      case Outcome::kUnsupported:
        return;
      case Outcome::kDeviceLost:
        device.unhealthy = "device lost: " + ErrorText(rc);
        return;
      case Outcome::kFailed:
        notes->push_back("intel: GPU " + gpu.pci_bus_id + ": " + std::string(call) +
                         " failed: " + ErrorText(rc));
        return;
    }
  }

  void SampleLevelZero(Device& device, Gpu* gpu, std::vector<std::string>* notes) const {
    device.unhealthy.clear();
    SampleMemory(device, gpu, notes);
    gpu->temperature_c.reset();
    for (zes_temp_handle_t sensor :
         Enumerate<zes_temp_handle_t>(api_.temperature_sensors, device.handle)) {
      zes_temp_properties_t properties{};
      properties.stype = ZES_STRUCTURE_TYPE_TEMP_PROPERTIES;
      double celsius = 0;
      if (api_.temperature_properties != nullptr && api_.temperature != nullptr &&
          api_.temperature_properties(sensor, &properties) == ZE_RESULT_SUCCESS &&
          properties.type == ZES_TEMP_SENSORS_GPU && !properties.onSubdevice) {
        const ze_result_t rc = api_.temperature(sensor, &celsius);
        if (rc == ZE_RESULT_SUCCESS) {
          gpu->temperature_c = celsius;
          break;
        }
        Note(rc, *gpu, "zesTemperatureGetState", device, notes);
      }
    }
    SampleUtilization(device, gpu, notes);
    SamplePower(device, gpu, notes);
    if (api_.state != nullptr) {
      zes_device_state_t state{};
      state.stype = ZES_STRUCTURE_TYPE_DEVICE_STATE;
      const ze_result_t rc = api_.state(device.handle, &state);
      if (rc == ZE_RESULT_SUCCESS && state.reset != 0) {
        device.unhealthy = "the device needs a reset (zesDeviceGetState)";
      } else if (rc != ZE_RESULT_SUCCESS) {
        Note(rc, *gpu, "zesDeviceGetState", device, notes);
      }
    }
  }

  // Sum of device-local memory modules (one per tile).
  void SampleMemory(Device& device, Gpu* gpu, std::vector<std::string>* notes) const {
    uint64_t size = 0;
    uint64_t free = 0;
    for (zes_mem_handle_t module :
         Enumerate<zes_mem_handle_t>(api_.memory_modules, device.handle)) {
      zes_mem_properties_t properties{};
      properties.stype = ZES_STRUCTURE_TYPE_MEM_PROPERTIES;
      if (api_.memory_properties(module, &properties) != ZE_RESULT_SUCCESS ||
          properties.location != ZES_MEM_LOC_DEVICE) {
        continue;
      }
      zes_mem_state_t state{};
      state.stype = ZES_STRUCTURE_TYPE_MEM_STATE;
      const ze_result_t rc = api_.memory_state(module, &state);
      if (rc != ZE_RESULT_SUCCESS) {
        Note(rc, *gpu, "zesMemoryGetState", device, notes);
        device.unhealthy = "memory unreadable: " + ErrorText(rc);
        return;
      }
      size += state.size;
      free += std::min(state.free, state.size);
      if (state.health == ZES_MEM_HEALTH_CRITICAL || state.health == ZES_MEM_HEALTH_REPLACE) {
        device.unhealthy = "memory health is critical (zesMemoryGetState)";
      }
    }
    gpu->memory_total_mib = static_cast<int64_t>(size / kBytesPerMib);
    gpu->memory_used_mib = static_cast<int64_t>((size - free) / kBytesPerMib);
  }

  // Busy ratio of the compute engines (all engines when there is no compute
  // group) since the previous sample.
  void SampleUtilization(Device& device, Gpu* gpu, std::vector<std::string>* notes) const {
    gpu->utilization = 0;
    if (api_.engine_properties == nullptr || api_.engine_activity == nullptr) return;
    zes_engine_handle_t chosen = nullptr;
    for (zes_engine_handle_t engine :
         Enumerate<zes_engine_handle_t>(api_.engine_groups, device.handle)) {
      zes_engine_properties_t properties{};
      properties.stype = ZES_STRUCTURE_TYPE_ENGINE_PROPERTIES;
      if (api_.engine_properties(engine, &properties) != ZE_RESULT_SUCCESS ||
          properties.onSubdevice) {
        continue;
      }
      if (properties.type == ZES_ENGINE_GROUP_COMPUTE_ALL) {
        chosen = engine;
        break;
      }
      if (properties.type == ZES_ENGINE_GROUP_ALL) chosen = engine;
    }
    if (chosen == nullptr) return;
    zes_engine_stats_t stats{};
    const ze_result_t rc = api_.engine_activity(chosen, &stats);
    if (rc != ZE_RESULT_SUCCESS) {
      Note(rc, *gpu, "zesEngineGetActivity", device, notes);
      return;
    }
    if (device.engine && stats.timestamp > device.engine->timestamp_us) {
      const double busy = static_cast<double>(stats.activeTime - device.engine->value) /
                          static_cast<double>(stats.timestamp - device.engine->timestamp_us);
      gpu->utilization = std::clamp(busy, 0.0, 1.0);
    }
    device.engine = Counter{stats.activeTime, stats.timestamp};
  }

  // Watts from the first power domain's energy counter since the previous sample.
  void SamplePower(Device& device, Gpu* gpu, std::vector<std::string>* notes) const {
    gpu->power_w.reset();
    if (api_.energy == nullptr) return;
    const std::vector<zes_pwr_handle_t> domains =
        Enumerate<zes_pwr_handle_t>(api_.power_domains, device.handle);
    if (domains.empty()) return;
    zes_power_energy_counter_t counter{};
    const ze_result_t rc = api_.energy(domains.front(), &counter);
    if (rc != ZE_RESULT_SUCCESS) {
      Note(rc, *gpu, "zesPowerGetEnergyCounter", device, notes);
      return;
    }
    if (device.energy && counter.timestamp > device.energy->timestamp_us &&
        counter.energy >= device.energy->value) {
      // Microjoules per microsecond are watts.
      gpu->power_w = static_cast<double>(counter.energy - device.energy->value) /
                     static_cast<double>(counter.timestamp - device.energy->timestamp_us);
    }
    device.energy = Counter{counter.energy, counter.timestamp};
  }

  // The handles a zesDeviceEnum* call returns (count first, then the list).
  template <typename Handle, typename Enum>
  static std::vector<Handle> Enumerate(Enum call, zes_device_handle_t device) {
    std::vector<Handle> handles;
    if (call == nullptr) return handles;
    uint32_t count = 0;
    if (call(device, &count, nullptr) != ZE_RESULT_SUCCESS || count == 0) return handles;
    handles.resize(count);
    if (call(device, &count, handles.data()) != ZE_RESULT_SUCCESS) return {};
    handles.resize(std::min<size_t>(count, handles.size()));
    return handles;
  }

  const std::vector<std::string> libraries_;
  const BackendContext context_;
  std::unique_ptr<DynamicLibrary> library_;
  LevelZeroApi api_;
  std::vector<Device> devices_;  // Parallel to the GPU list of the last Discover.
};

}  // namespace

std::vector<std::string> DefaultLevelZeroLibraries() { return {"libze_loader.so.1"}; }

std::unique_ptr<VendorBackend> MakeIntelBackend(std::vector<std::string> libraries,
                                                BackendContext context) {
  return std::make_unique<IntelBackend>(std::move(libraries), std::move(context));
}

}  // namespace gpurm
