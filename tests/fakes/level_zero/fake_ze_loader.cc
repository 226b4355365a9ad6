// A fake libze_loader.so.1 for tests: the Level Zero and Sysman entry points
// gpurm uses, over the scripted machine in GPURM_FAKE_ZE_MACHINE
// (machines/README.md). Engine and energy counters advance by one simulated
// second per read, so utilization and power come out as scripted from the
// second sample on. Process-wide state; not thread-safe.
#include <level_zero/ze_api.h>
#include <level_zero/zes_api.h>

#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "fake_machine.h"

namespace {

using nlohmann::json;

constexpr uint64_t kMib = 1024ULL * 1024ULL;
constexpr uint64_t kTickMicroseconds = 1000000;

struct FakeDevice;
struct FakeModule {
  FakeDevice* device;
  json spec;
};
struct FakeSensor {
  FakeDevice* device;
};
struct FakeEngine {
  FakeDevice* device;
  uint64_t active_us = 0;
  uint64_t timestamp_us = 0;
};
struct FakePower {
  FakeDevice* device;
  uint64_t energy_uj = 0;
  uint64_t timestamp_us = 0;
};
struct FakeDevice {
  json spec;
  std::vector<std::unique_ptr<FakeModule>> modules;
  FakeSensor sensor{this};
  FakeEngine engine{this};
  FakePower power{this};
};

struct Machine {
  std::vector<std::unique_ptr<FakeDevice>> devices;
};
std::unique_ptr<Machine> g_machine;  // Loaded by zesInit/zeInit.
int g_driver_tag = 0;                // The one driver handle points here.

ze_result_t Init() {
  const json spec = gpurm::fakes::LoadMachine("GPURM_FAKE_ZE_MACHINE");
  if (spec.is_discarded()) return ZE_RESULT_ERROR_UNINITIALIZED;
  auto machine = std::make_unique<Machine>();
  for (const json& gpu : spec.value("gpus", json::array())) {
    auto device = std::make_unique<FakeDevice>();
    device->spec = gpu;
    for (const json& module : gpu.value("memory_modules", json::array())) {
      device->modules.push_back(std::make_unique<FakeModule>(FakeModule{device.get(), module}));
    }
    machine->devices.push_back(std::move(device));
  }
  g_machine = std::move(machine);
  return ZE_RESULT_SUCCESS;
}

ze_result_t Drivers(uint32_t* count, ze_driver_handle_t* drivers) {
  if (g_machine == nullptr) return ZE_RESULT_ERROR_UNINITIALIZED;
  if (drivers != nullptr && *count >= 1)
    drivers[0] = reinterpret_cast<ze_driver_handle_t>(&g_driver_tag);
  *count = 1;
  return ZE_RESULT_SUCCESS;
}

ze_result_t Devices(uint32_t* count, ze_device_handle_t* devices) {
  if (g_machine == nullptr) return ZE_RESULT_ERROR_UNINITIALIZED;
  if (devices != nullptr) {
    for (uint32_t i = 0; i < *count && i < g_machine->devices.size(); ++i) {
      devices[i] = reinterpret_cast<ze_device_handle_t>(g_machine->devices[i].get());
    }
  }
  *count = static_cast<uint32_t>(g_machine->devices.size());
  return ZE_RESULT_SUCCESS;
}

FakeDevice* Device(zes_device_handle_t handle) { return reinterpret_cast<FakeDevice*>(handle); }

// Returns one handle (the device's own sub-object) when the spec has `key`.
template <typename Handle, typename Object>
ze_result_t One(bool present, Object* object, uint32_t* count, Handle* handles) {
  if (!present) {
    *count = 0;
    return ZE_RESULT_SUCCESS;
  }
  if (handles != nullptr && *count >= 1) handles[0] = reinterpret_cast<Handle>(object);
  *count = 1;
  return ZE_RESULT_SUCCESS;
}

}  // namespace

extern "C" {

ze_result_t zesInit(uint32_t) { return Init(); }
ze_result_t zesDriverGet(uint32_t* count, zes_driver_handle_t* drivers) {
  return Drivers(count, drivers);
}
ze_result_t zesDeviceGet(zes_driver_handle_t, uint32_t* count, zes_device_handle_t* devices) {
  return Devices(count, devices);
}
ze_result_t zeInit(ze_init_flags_t) { return Init(); }
ze_result_t zeDriverGet(uint32_t* count, ze_driver_handle_t* drivers) {
  return Drivers(count, drivers);
}
ze_result_t zeDeviceGet(ze_driver_handle_t, uint32_t* count, ze_device_handle_t* devices) {
  return Devices(count, devices);
}

ze_result_t zesDeviceGetProperties(zes_device_handle_t handle, zes_device_properties_t* out) {
  const json& spec = Device(handle)->spec;
  out->core.type = ZE_DEVICE_TYPE_GPU;
  out->core.vendorId = 0x8086;
  const std::string name = spec.value("name", "");
  std::strncpy(out->core.name, name.c_str(), sizeof(out->core.name) - 1);
  return ZE_RESULT_SUCCESS;
}

ze_result_t zesDevicePciGetProperties(zes_device_handle_t handle, zes_pci_properties_t* out) {
  const gpurm::fakes::PciAddress a =
      gpurm::fakes::ParseBusId(Device(handle)->spec.value("bus_id", ""));
  out->address = {a.domain, a.bus, a.device, a.function};
  return ZE_RESULT_SUCCESS;
}

ze_result_t zesDeviceGetState(zes_device_handle_t handle, zes_device_state_t* out) {
  out->reset =
      Device(handle)->spec.value("reset_required", false) ? ZES_RESET_REASON_FLAG_WEDGED : 0;
  out->repaired = ZES_REPAIR_STATUS_UNSUPPORTED;
  return ZE_RESULT_SUCCESS;
}

ze_result_t zesDeviceEnumMemoryModules(zes_device_handle_t handle, uint32_t* count,
                                       zes_mem_handle_t* modules) {
  FakeDevice* device = Device(handle);
  if (modules != nullptr) {
    for (uint32_t i = 0; i < *count && i < device->modules.size(); ++i) {
      modules[i] = reinterpret_cast<zes_mem_handle_t>(device->modules[i].get());
    }
  }
  *count = static_cast<uint32_t>(device->modules.size());
  return ZE_RESULT_SUCCESS;
}

ze_result_t zesMemoryGetProperties(zes_mem_handle_t handle, zes_mem_properties_t* out) {
  const FakeModule* module = reinterpret_cast<FakeModule*>(handle);
  out->location = ZES_MEM_LOC_DEVICE;
  out->physicalSize = module->spec.value("size_mib", 0ULL) * kMib;
  return ZE_RESULT_SUCCESS;
}

ze_result_t zesMemoryGetState(zes_mem_handle_t handle, zes_mem_state_t* out) {
  const FakeModule* module = reinterpret_cast<FakeModule*>(handle);
  out->size = module->spec.value("size_mib", 0ULL) * kMib;
  out->free = module->spec.value("free_mib", 0ULL) * kMib;
  out->health = static_cast<zes_mem_health_t>(module->spec.value("health", 1));
  return ZE_RESULT_SUCCESS;
}

ze_result_t zesDeviceEnumTemperatureSensors(zes_device_handle_t handle, uint32_t* count,
                                            zes_temp_handle_t* sensors) {
  FakeDevice* device = Device(handle);
  return One(device->spec.contains("temperature_c"), &device->sensor, count, sensors);
}

ze_result_t zesTemperatureGetProperties(zes_temp_handle_t, zes_temp_properties_t* out) {
  out->type = ZES_TEMP_SENSORS_GPU;
  out->onSubdevice = false;
  return ZE_RESULT_SUCCESS;
}

ze_result_t zesTemperatureGetState(zes_temp_handle_t handle, double* celsius) {
  *celsius = reinterpret_cast<FakeSensor*>(handle)->device->spec["temperature_c"].get<double>();
  return ZE_RESULT_SUCCESS;
}

ze_result_t zesDeviceEnumEngineGroups(zes_device_handle_t handle, uint32_t* count,
                                      zes_engine_handle_t* engines) {
  FakeDevice* device = Device(handle);
  return One(device->spec.contains("compute_busy_ratio"), &device->engine, count, engines);
}

ze_result_t zesEngineGetProperties(zes_engine_handle_t, zes_engine_properties_t* out) {
  out->type = ZES_ENGINE_GROUP_COMPUTE_ALL;
  out->onSubdevice = false;
  return ZE_RESULT_SUCCESS;
}

ze_result_t zesEngineGetActivity(zes_engine_handle_t handle, zes_engine_stats_t* out) {
  FakeEngine* engine = reinterpret_cast<FakeEngine*>(handle);
  const double busy = engine->device->spec["compute_busy_ratio"].get<double>();
  engine->timestamp_us += kTickMicroseconds;
  engine->active_us += static_cast<uint64_t>(busy * kTickMicroseconds);
  out->activeTime = engine->active_us;
  out->timestamp = engine->timestamp_us;
  return ZE_RESULT_SUCCESS;
}

ze_result_t zesDeviceEnumPowerDomains(zes_device_handle_t handle, uint32_t* count,
                                      zes_pwr_handle_t* domains) {
  FakeDevice* device = Device(handle);
  return One(device->spec.contains("power_w"), &device->power, count, domains);
}

ze_result_t zesPowerGetEnergyCounter(zes_pwr_handle_t handle, zes_power_energy_counter_t* out) {
  FakePower* power = reinterpret_cast<FakePower*>(handle);
  const double watts = power->device->spec["power_w"].get<double>();
  power->timestamp_us += kTickMicroseconds;
  power->energy_uj += static_cast<uint64_t>(watts * kTickMicroseconds);
  out->energy = power->energy_uj;
  out->timestamp = power->timestamp_us;
  return ZE_RESULT_SUCCESS;
}

}  // extern "C"
