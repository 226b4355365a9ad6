// A fake libnvidia-ml.so.1 for tests: exports NVML's C entry points and serves
// a scripted machine read from the JSON file named by GPURM_FAKE_NVML_MACHINE
// (format: tests/fakes/machines/README.md). gpurm's real NVML back end is
// tested by dlopening this library, as DCGM tests NVML through its injection
// library.
//
// Built twice: as a current driver, and with FAKE_NVML_OLD_DRIVER as a driver
// that predates the versioned entry points (no nvmlInit_v2, _v2 memory info,
// _v2/_v3 process lists, MIG...), whose process list uses the original 16-byte
// struct and whose PCI info fills only the legacy bus id.
//
// Like a driver, it keeps process-wide state (the loaded machine), reloaded
// whenever the first nvmlInit after a full shutdown happens. Device queries
// only read that state, so (as with NVML) threads may query devices at the
// same time; init, shutdown, event registration and event sets are for one
// thread at a time.
#define NVML_NO_UNVERSIONED_FUNC_DEFS
#include <nvml.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace {

using nlohmann::json;

constexpr unsigned long long kMib = 1024ULL * 1024ULL;
constexpr unsigned int kLinksPerGpu = 18;

struct FakeEvent {
  unsigned long long type = 0;
  unsigned long long data = 0;
};

struct FakeGpu {
  json spec;
  std::deque<FakeEvent> pending;  // Delivered once registered.
  // A GPU in MIG mode: its MIG devices (spec "mig_devices"), whose handles
  // are FakeGpus too. A MIG device: its parent (and, as for NVML, the
  // handle of its GPU instance is the MIG device's own).
  std::vector<std::unique_ptr<FakeGpu>> mig_devices;
  FakeGpu* parent = nullptr;
};

struct EventSet {
  std::deque<nvmlEventData_t> queue;
};

struct Machine {
  json spec;
  std::vector<std::unique_ptr<FakeGpu>> gpus;
  std::vector<std::unique_ptr<EventSet>> event_sets;
};

// Loaded by the first nvmlInit, freed by the last nvmlShutdown; never at
// exit, where a call a test left stuck (and abandoned) may still read it.
Machine* g_machine = nullptr;
int g_init_count = 0;

// Blocks while the file the spec's `hang` entry for `call` names exists, as a
// call on a GPU that fell off the bus can block; the test removes the file to
// let it return.
void HangWhileScripted(const json& spec, const char* call) {
  if (!spec.contains("hang") || !spec["hang"].contains(call)) return;
  const std::string path = spec["hang"][call].get<std::string>();
  while (access(path.c_str(), F_OK) == 0) usleep(2000);
}

// The scripted failure of `call` on `gpu` (or machine-wide), else success;
// after the scripted hang, if any.
nvmlReturn_t Scripted(const json& spec, const char* call) {
  HangWhileScripted(spec, call);
  if (spec.contains("errors") && spec["errors"].contains(call)) {
    return static_cast<nvmlReturn_t>(spec["errors"][call].get<int>());
  }
  return NVML_SUCCESS;
}

FakeGpu* Gpu(nvmlDevice_t device) { return reinterpret_cast<FakeGpu*>(device); }

nvmlReturn_t Init() {
  if (g_init_count > 0) {
    ++g_init_count;
    return NVML_SUCCESS;
  }
  const char* path = std::getenv("GPURM_FAKE_NVML_MACHINE");
  if (path == nullptr) return NVML_ERROR_DRIVER_NOT_LOADED;
  std::ifstream in(path);
  if (!in) return NVML_ERROR_DRIVER_NOT_LOADED;
  auto machine = std::make_unique<Machine>();
  machine->spec = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (machine->spec.is_discarded()) return NVML_ERROR_UNKNOWN;
  if (const nvmlReturn_t rc = Scripted(machine->spec, "nvmlInit"); rc != NVML_SUCCESS) return rc;
  for (const json& spec : machine->spec.value("gpus", json::array())) {
    auto gpu = std::make_unique<FakeGpu>();
    gpu->spec = spec;
    for (const json& event : spec.value("events", json::array())) {
      if (event.contains("xid")) {
        gpu->pending.push_back(
            {nvmlEventTypeXidCriticalError, event["xid"].get<unsigned long long>()});
      }
      if (event.value("double_bit_ecc", false)) {
        gpu->pending.push_back({nvmlEventTypeDoubleBitEccError, 0});
      }
    }
    if (spec.value("mig", false)) {
      for (const json& mig_spec : spec.value("mig_devices", json::array())) {
        auto mig = std::make_unique<FakeGpu>();
        mig->spec = mig_spec;
        mig->parent = gpu.get();
        gpu->mig_devices.push_back(std::move(mig));
      }
    }
    machine->gpus.push_back(std::move(gpu));
  }
  delete g_machine;
  g_machine = machine.release();
  g_init_count = 1;
  return NVML_SUCCESS;
}

nvmlReturn_t Count(unsigned int* count) {
  if (g_init_count == 0) return NVML_ERROR_UNINITIALIZED;
  *count = static_cast<unsigned int>(g_machine->gpus.size());
  return NVML_SUCCESS;
}

nvmlReturn_t HandleByIndex(unsigned int index, nvmlDevice_t* device) {
  if (g_init_count == 0) return NVML_ERROR_UNINITIALIZED;
  if (index >= g_machine->gpus.size()) return NVML_ERROR_INVALID_ARGUMENT;
  FakeGpu* gpu = g_machine->gpus[index].get();
  if (const nvmlReturn_t rc = Scripted(gpu->spec, "nvmlDeviceGetHandleByIndex");
      rc != NVML_SUCCESS) {
    return rc;
  }
  *device = reinterpret_cast<nvmlDevice_t>(gpu);
  return NVML_SUCCESS;
}

nvmlReturn_t CopyString(const std::string& value, char* out, unsigned int length) {
  if (value.size() + 1 > length) return NVML_ERROR_INSUFFICIENT_SIZE;
  std::memcpy(out, value.c_str(), value.size() + 1);
  return NVML_SUCCESS;
}

nvmlReturn_t PciInfo(nvmlDevice_t device, nvmlPciInfo_t* pci, bool legacy_only, const char* call) {
  const json& spec = Gpu(device)->spec;
  if (const nvmlReturn_t rc = Scripted(spec, call); rc != NVML_SUCCESS) return rc;
  const std::string bus_id = spec.value("bus_id", "");
  std::memset(pci, 0, sizeof(*pci));
  // The original call wrote a 16-byte bus id at the start of the struct.
  std::strncpy(legacy_only ? pci->busIdLegacy : pci->busId, bus_id.c_str(),
               (legacy_only ? sizeof(pci->busIdLegacy) : sizeof(pci->busId)) - 1);
  return NVML_SUCCESS;
}

template <typename Info>
nvmlReturn_t Processes(nvmlDevice_t device, unsigned int* count, Info* infos) {
  const json& spec = Gpu(device)->spec;
  if (const nvmlReturn_t rc = Scripted(spec, "nvmlDeviceGetComputeRunningProcesses");
      rc != NVML_SUCCESS) {
    return rc;
  }
  const json processes = spec.value("processes", json::array());
  if (*count < processes.size()) {
    *count = static_cast<unsigned int>(processes.size());
    return NVML_ERROR_INSUFFICIENT_SIZE;
  }
  *count = static_cast<unsigned int>(processes.size());
  for (size_t i = 0; i < processes.size(); ++i) {
    std::memset(&infos[i], 0, sizeof(Info));
    infos[i].pid = processes[i]["pid"].get<unsigned int>();
    infos[i].usedGpuMemory = processes[i]["used_mib"].get<unsigned long long>() * kMib;
  }
  return NVML_SUCCESS;
}

nvmlReturn_t NvLinkRemote(nvmlDevice_t device, unsigned int link, nvmlPciInfo_t* pci,
                          bool legacy_only) {
  const json peers = Gpu(device)->spec.value("nvlink_peers", json::array());
  if (link >= peers.size()) return NVML_ERROR_INVALID_ARGUMENT;
  std::memset(pci, 0, sizeof(*pci));
  const std::string bus_id = peers[link].get<std::string>();
  std::strncpy(legacy_only ? pci->busIdLegacy : pci->busId, bus_id.c_str(),
               (legacy_only ? sizeof(pci->busIdLegacy) : sizeof(pci->busId)) - 1);
  return NVML_SUCCESS;
}

nvmlReturn_t EventWait(nvmlEventSet_t set, nvmlEventData_t* data) {
  auto* events = reinterpret_cast<EventSet*>(set);
  if (events->queue.empty()) return NVML_ERROR_TIMEOUT;
  *data = events->queue.front();
  events->queue.pop_front();
  return NVML_SUCCESS;
}

// A field of the GPU's spec, or NOT_SUPPORTED when the spec leaves it out.
template <typename T>
nvmlReturn_t Field(nvmlDevice_t device, const char* key, const char* call, T* out) {
  const json& spec = Gpu(device)->spec;
  if (const nvmlReturn_t rc = Scripted(spec, call); rc != NVML_SUCCESS) return rc;
  if (!spec.contains(key)) return NVML_ERROR_NOT_SUPPORTED;
  *out = spec[key].get<T>();
  return NVML_SUCCESS;
}

}  // namespace

extern "C" {

const char* nvmlErrorString(nvmlReturn_t result) {
  switch (result) {
    case NVML_SUCCESS:
      return "Success";
    case NVML_ERROR_NOT_SUPPORTED:
      return "Not Supported";
    case NVML_ERROR_DRIVER_NOT_LOADED:
      return "Driver Not Loaded";
    case NVML_ERROR_GPU_IS_LOST:
      return "GPU is lost";
    case NVML_ERROR_INSUFFICIENT_SIZE:
      return "Insufficient Size";
    default:
      return "Unknown Error";
  }
}

nvmlReturn_t nvmlShutdown(void) {
  if (g_init_count == 0) return NVML_ERROR_UNINITIALIZED;
  if (--g_init_count == 0) {
    delete g_machine;
    g_machine = nullptr;
  }
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlSystemGetDriverVersion(char* version, unsigned int length) {
  if (g_init_count == 0) return NVML_ERROR_UNINITIALIZED;
  return CopyString(g_machine->spec.value("driver_version", "0.0"), version, length);
}

nvmlReturn_t nvmlSystemGetNVMLVersion(char* version, unsigned int length) {
  if (g_init_count == 0) return NVML_ERROR_UNINITIALIZED;
  return CopyString(g_machine->spec.value("nvml_version", "0.0"), version, length);
}

nvmlReturn_t nvmlInit(void) { return Init(); }
nvmlReturn_t nvmlDeviceGetCount(unsigned int* count) { return Count(count); }
nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index, nvmlDevice_t* device) {
  return HandleByIndex(index, device);
}
nvmlReturn_t nvmlDeviceGetPciInfo(nvmlDevice_t device, nvmlPciInfo_t* pci) {
  return PciInfo(device, pci, /*legacy_only=*/true, "nvmlDeviceGetPciInfo");
}
nvmlReturn_t nvmlDeviceGetComputeRunningProcesses(nvmlDevice_t device, unsigned int* count,
                                                  nvmlProcessInfo_v1_t* infos) {
  return Processes(device, count, infos);
}
nvmlReturn_t nvmlEventSetWait(nvmlEventSet_t set, nvmlEventData_t* data, unsigned int) {
  return EventWait(set, data);
}
nvmlReturn_t nvmlDeviceGetNvLinkRemotePciInfo(nvmlDevice_t device, unsigned int link,
                                              nvmlPciInfo_t* pci) {
  return NvLinkRemote(device, link, pci, /*legacy_only=*/true);
}

#ifndef FAKE_NVML_OLD_DRIVER
nvmlReturn_t nvmlInit_v2(void) { return Init(); }
nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int* count) { return Count(count); }
nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t* device) {
  return HandleByIndex(index, device);
}
nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t device, nvmlPciInfo_t* pci) {
  return PciInfo(device, pci, /*legacy_only=*/false, "nvmlDeviceGetPciInfo");
}
nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t* memory) {
  const json& spec = Gpu(device)->spec;
  if (const nvmlReturn_t rc = Scripted(spec, "nvmlDeviceGetMemoryInfo"); rc != NVML_SUCCESS) {
    return rc;
  }
  if (memory->version != nvmlMemory_v2) return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
  memory->total = spec.value("memory_total_mib", 0ULL) * kMib;
  memory->free = spec.value("memory_free_mib", 0ULL) * kMib;
  memory->reserved = spec.value("memory_reserved_mib", 0ULL) * kMib;
  memory->used = memory->total - memory->free - memory->reserved;
  return NVML_SUCCESS;
}
nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device, unsigned int* count,
                                                     nvmlProcessInfo_t* infos) {
  return Processes(device, count, infos);
}
nvmlReturn_t nvmlEventSetWait_v2(nvmlEventSet_t set, nvmlEventData_t* data, unsigned int) {
  return EventWait(set, data);
}
nvmlReturn_t nvmlDeviceGetNvLinkRemotePciInfo_v2(nvmlDevice_t device, unsigned int link,
                                                 nvmlPciInfo_t* pci) {
  return NvLinkRemote(device, link, pci, /*legacy_only=*/false);
}
nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t device, unsigned int* current,
                                  unsigned int* pending) {
  bool enabled = false;
  const nvmlReturn_t rc = Field(device, "mig", "nvmlDeviceGetMigMode", &enabled);
  if (rc != NVML_SUCCESS) return rc;
  *current = *pending = enabled ? NVML_DEVICE_MIG_ENABLE : NVML_DEVICE_MIG_DISABLE;
  return NVML_SUCCESS;
}

// ---- MIG (spec: tests/fakes/machines/README.md) ----

nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(nvmlDevice_t device, unsigned int* count) {
  const FakeGpu* gpu = Gpu(device);
  if (const nvmlReturn_t rc = Scripted(gpu->spec, "nvmlDeviceGetMaxMigDeviceCount");
      rc != NVML_SUCCESS) {
    return rc;
  }
  // Zero when MIG is off; else the GPU's most (7 on A100/H100), or the
  // number of devices if more are scripted.
  *count = 0;
  if (gpu->parent == nullptr && gpu->spec.value("mig", false)) {
    *count = std::max<unsigned int>(gpu->spec.value("max_mig_devices", 7U),
                                    static_cast<unsigned int>(gpu->mig_devices.size()));
  }
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t device, unsigned int index,
                                                 nvmlDevice_t* mig) {
  FakeGpu* gpu = Gpu(device);
  if (const nvmlReturn_t rc = Scripted(gpu->spec, "nvmlDeviceGetMigDeviceHandleByIndex");
      rc != NVML_SUCCESS) {
    return rc;
  }
  if (gpu->parent != nullptr || !gpu->spec.value("mig", false)) return NVML_ERROR_NOT_SUPPORTED;
  // Devices sit at their "index" (default: their position); the indices in
  // between have none, as after an instance was destroyed.
  for (size_t i = 0; i < gpu->mig_devices.size(); ++i) {
    if (gpu->mig_devices[i]->spec.value("index", static_cast<unsigned int>(i)) == index) {
      *mig = reinterpret_cast<nvmlDevice_t>(gpu->mig_devices[i].get());
      return NVML_SUCCESS;
    }
  }
  return NVML_ERROR_NOT_FOUND;
}

nvmlReturn_t nvmlDeviceGetDeviceHandleFromMigDeviceHandle(nvmlDevice_t mig, nvmlDevice_t* device) {
  const FakeGpu* gpu = Gpu(mig);
  if (gpu->parent == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  *device = reinterpret_cast<nvmlDevice_t>(gpu->parent);
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceIsMigDeviceHandle(nvmlDevice_t device, unsigned int* is_mig) {
  *is_mig = Gpu(device)->parent != nullptr ? 1 : 0;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetGpuInstanceId(nvmlDevice_t device, unsigned int* id) {
  const FakeGpu* gpu = Gpu(device);
  if (gpu->parent == nullptr) return NVML_ERROR_NOT_SUPPORTED;
  return Field(device, "gi_id", "nvmlDeviceGetGpuInstanceId", id);
}

nvmlReturn_t nvmlDeviceGetComputeInstanceId(nvmlDevice_t device, unsigned int* id) {
  const FakeGpu* gpu = Gpu(device);
  if (gpu->parent == nullptr) return NVML_ERROR_NOT_SUPPORTED;
  *id = gpu->spec.value("ci_id", 0U);
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetAttributes_v2(nvmlDevice_t device, nvmlDeviceAttributes_t* attributes) {
  const FakeGpu* gpu = Gpu(device);
  if (const nvmlReturn_t rc = Scripted(gpu->spec, "nvmlDeviceGetAttributes"); rc != NVML_SUCCESS) {
    return rc;
  }
  if (gpu->parent == nullptr) return NVML_ERROR_NOT_SUPPORTED;  // MIG device handles only.
  std::memset(attributes, 0, sizeof(*attributes));
  attributes->gpuInstanceSliceCount = gpu->spec.value("gi_slices", 0U);
  attributes->computeInstanceSliceCount =
      gpu->spec.value("ci_slices", attributes->gpuInstanceSliceCount);
  attributes->multiprocessorCount = 16 * attributes->computeInstanceSliceCount;
  attributes->memorySizeMB = gpu->spec.value("memory_total_mib", 0ULL);
  return NVML_SUCCESS;
}

// A GPU instance handle is its (first) MIG device's handle.
nvmlReturn_t nvmlDeviceGetGpuInstanceById(nvmlDevice_t device, unsigned int id,
                                          nvmlGpuInstance_t* instance) {
  const FakeGpu* gpu = Gpu(device);
  if (const nvmlReturn_t rc = Scripted(gpu->spec, "nvmlDeviceGetGpuInstanceById");
      rc != NVML_SUCCESS) {
    return rc;
  }
  if (gpu->parent != nullptr || !gpu->spec.value("mig", false)) return NVML_ERROR_NOT_SUPPORTED;
  for (const auto& mig : gpu->mig_devices) {
    if (mig->spec.value("gi_id", ~0U) == id) {
      *instance = reinterpret_cast<nvmlGpuInstance_t>(mig.get());
      return NVML_SUCCESS;
    }
  }
  return NVML_ERROR_NOT_FOUND;
}

nvmlReturn_t nvmlGpuInstanceGetInfo(nvmlGpuInstance_t instance, nvmlGpuInstanceInfo_t* info) {
  const FakeGpu* mig = reinterpret_cast<const FakeGpu*>(instance);
  std::memset(info, 0, sizeof(*info));
  info->device = reinterpret_cast<nvmlDevice_t>(mig->parent);
  info->id = mig->spec.value("gi_id", 0U);
  info->profileId = mig->spec.value("profile_id", 0U);
  return NVML_SUCCESS;
}

// Profile `profile` (an NVML_GPU_INSTANCE_PROFILE_* value) as the GPU's MIG
// devices describe it ("profile_index", "profile_id", "profile",
// "gi_slices", "memory_total_mib"); NOT_SUPPORTED for profiles none uses.
nvmlReturn_t nvmlDeviceGetGpuInstanceProfileInfoV(nvmlDevice_t device, unsigned int profile,
                                                  nvmlGpuInstanceProfileInfo_v2_t* info) {
  const FakeGpu* gpu = Gpu(device);
  if (const nvmlReturn_t rc = Scripted(gpu->spec, "nvmlDeviceGetGpuInstanceProfileInfo");
      rc != NVML_SUCCESS) {
    return rc;
  }
  if (info->version != nvmlGpuInstanceProfileInfo_v2) return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
  if (profile >= NVML_GPU_INSTANCE_PROFILE_COUNT) return NVML_ERROR_INVALID_ARGUMENT;
  if (gpu->parent != nullptr || !gpu->spec.value("mig", false)) return NVML_ERROR_NOT_SUPPORTED;
  for (const auto& mig : gpu->mig_devices) {
    const json& spec = mig->spec;
    if (spec.value("profile_index", ~0U) != profile) continue;
    const unsigned int version = info->version;
    std::memset(info, 0, sizeof(*info));
    info->version = version;
    info->id = spec.value("profile_id", 0U);
    info->sliceCount = spec.value("gi_slices", 0U);
    info->memorySizeMB = spec.value("memory_total_mib", 0ULL);
    const std::string name = "MIG " + spec.value("profile", std::string());
    std::strncpy(info->name, name.c_str(), sizeof(info->name) - 1);
    return NVML_SUCCESS;
  }
  return NVML_ERROR_NOT_SUPPORTED;
}
#endif  // FAKE_NVML_OLD_DRIVER

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t* memory) {
  const json& spec = Gpu(device)->spec;
  if (const nvmlReturn_t rc = Scripted(spec, "nvmlDeviceGetMemoryInfo"); rc != NVML_SUCCESS) {
    return rc;
  }
  memory->total = spec.value("memory_total_mib", 0ULL) * kMib;
  memory->free = spec.value("memory_free_mib", 0ULL) * kMib;
  memory->used = memory->total - memory->free;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char* name, unsigned int length) {
  const json& spec = Gpu(device)->spec;
  if (const nvmlReturn_t rc = Scripted(spec, "nvmlDeviceGetName"); rc != NVML_SUCCESS) return rc;
  if (const FakeGpu* parent = Gpu(device)->parent; parent != nullptr) {
    // A MIG device is named after its GPU and profile, as by the driver.
    return CopyString(parent->spec.value("name", "") + " MIG " + spec.value("profile", ""), name,
                      length);
  }
  return CopyString(spec.value("name", ""), name, length);
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char* uuid, unsigned int length) {
  const json& spec = Gpu(device)->spec;
  if (const nvmlReturn_t rc = Scripted(spec, "nvmlDeviceGetUUID"); rc != NVML_SUCCESS) return rc;
  return CopyString(spec.value("uuid", ""), uuid, length);
}

nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device, nvmlUtilization_t* rates) {
  const json& spec = Gpu(device)->spec;
  if (const nvmlReturn_t rc = Scripted(spec, "nvmlDeviceGetUtilizationRates"); rc != NVML_SUCCESS) {
    return rc;
  }
  // As the driver: no utilization for MIG devices nor for a GPU in MIG mode.
  if (Gpu(device)->parent != nullptr || spec.value("mig", false)) return NVML_ERROR_NOT_SUPPORTED;
  rates->gpu = spec.value("utilization_gpu", 0U);
  rates->memory = spec.value("utilization_memory", 0U);
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t device, nvmlTemperatureSensors_t,
                                      unsigned int* temp) {
  return Field(device, "temperature_c", "nvmlDeviceGetTemperature", temp);
}

nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int* power) {
  return Field(device, "power_mw", "nvmlDeviceGetPowerUsage", power);
}

nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t device, unsigned int* limit) {
  return Field(device, "power_limit_mw", "nvmlDeviceGetEnforcedPowerLimit", limit);
}

nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t device, nvmlClockType_t type,
                                    unsigned int* clock) {
  if (type != NVML_CLOCK_SM) return NVML_ERROR_NOT_SUPPORTED;
  return Field(device, "sm_clock_mhz", "nvmlDeviceGetClockInfo", clock);
}

nvmlReturn_t nvmlDeviceGetTotalEccErrors(nvmlDevice_t device, nvmlMemoryErrorType_t type,
                                         nvmlEccCounterType_t counter, unsigned long long* count) {
  if (type != NVML_MEMORY_ERROR_TYPE_UNCORRECTED || counter != NVML_VOLATILE_ECC) {
    return NVML_ERROR_NOT_SUPPORTED;
  }
  return Field(device, "ecc_double_bit", "nvmlDeviceGetTotalEccErrors", count);
}

nvmlReturn_t nvmlDeviceGetNvLinkState(nvmlDevice_t device, unsigned int link,
                                      nvmlEnableState_t* active) {
  const json peers = Gpu(device)->spec.value("nvlink_peers", json::array());
  if (peers.empty()) return NVML_ERROR_NOT_SUPPORTED;
  if (link >= kLinksPerGpu) return NVML_ERROR_INVALID_ARGUMENT;
  *active = link < peers.size() ? NVML_FEATURE_ENABLED : NVML_FEATURE_DISABLED;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlEventSetCreate(nvmlEventSet_t* set) {
  if (g_init_count == 0) return NVML_ERROR_UNINITIALIZED;
  g_machine->event_sets.push_back(std::make_unique<EventSet>());
  *set = reinterpret_cast<nvmlEventSet_t>(g_machine->event_sets.back().get());
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlEventSetFree(nvmlEventSet_t) { return NVML_SUCCESS; }

nvmlReturn_t nvmlDeviceGetSupportedEventTypes(nvmlDevice_t, unsigned long long* types) {
  *types = nvmlEventTypeXidCriticalError | nvmlEventTypeDoubleBitEccError |
           nvmlEventTypeSingleBitEccError;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceRegisterEvents(nvmlDevice_t device, unsigned long long types,
                                      nvmlEventSet_t set) {
  FakeGpu* gpu = Gpu(device);
  if (const nvmlReturn_t rc = Scripted(gpu->spec, "nvmlDeviceRegisterEvents"); rc != NVML_SUCCESS) {
    return rc;
  }
  auto* events = reinterpret_cast<EventSet*>(set);
  while (!gpu->pending.empty()) {
    const FakeEvent event = gpu->pending.front();
    gpu->pending.pop_front();
    if ((event.type & types) == 0) continue;
    nvmlEventData_t data{};
    data.device = device;
    data.eventType = event.type;
    data.eventData = event.data;
    data.gpuInstanceId = data.computeInstanceId = 0xFFFFFFFF;
    events->queue.push_back(data);
  }
  return NVML_SUCCESS;
}

}  // extern "C"
