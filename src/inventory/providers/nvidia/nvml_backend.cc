#include "inventory/providers/nvidia/nvml_backend.h"

// Both the versioned and the original entry points are declared: the back end
// picks whichever the installed driver exports.
#define NVML_NO_UNVERSIONED_FUNC_DEFS
#include <nvml.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string_view>
#include <utility>

#include "inventory/providers/common/dynamic_library.h"
#include "inventory/providers/common/islands.h"

namespace gpurm {
namespace {

constexpr unsigned long long kBytesPerMib = 1024ULL * 1024ULL;
// Events drained per PollEvents call; the rest wait for the next refresh.
constexpr int kMaxEventsPerHealthCheck = 256;
// Growth bound for the process list buffer (NVML says how many it needs).
constexpr unsigned int kMaxProcesses = 4096;
constexpr unsigned long long kHealthEvents =
    nvmlEventTypeXidCriticalError | nvmlEventTypeDoubleBitEccError;

// XIDs caused by applications, not by the GPU (NVIDIA's device plugin skips
// them too): 13 graphics engine exception, 31 MMU fault, 43 GPU stopped
// processing, 45 preemptive cleanup, 68 video processor exception, 109 context
// switch timeout.
constexpr std::array<unsigned long long, 6> kApplicationXids = {13, 31, 43, 45, 68, 109};

// The driver's entry points. Where NVML has several versions of one call with
// the same signature, the newest the library exports is taken.
struct NvmlApi {
  decltype(&nvmlInit_v2) init = nullptr;
  std::string init_name;
  decltype(&nvmlShutdown) shutdown = nullptr;
  decltype(&nvmlErrorString) error_string = nullptr;
  decltype(&nvmlSystemGetDriverVersion) driver_version = nullptr;
  decltype(&nvmlSystemGetNVMLVersion) nvml_version = nullptr;
  decltype(&nvmlDeviceGetCount_v2) device_count = nullptr;
  decltype(&nvmlDeviceGetHandleByIndex_v2) handle_by_index = nullptr;
  decltype(&nvmlDeviceGetName) name = nullptr;
  decltype(&nvmlDeviceGetUUID) uuid = nullptr;
  // v3, v2 and the original fill the same struct; the original only its
  // legacy 16-byte bus id (read as a fallback).
  decltype(&nvmlDeviceGetPciInfo_v3) pci_info = nullptr;
  decltype(&nvmlDeviceGetMemoryInfo_v2) memory_info_v2 = nullptr;
  decltype(&nvmlDeviceGetMemoryInfo) memory_info_v1 = nullptr;
  decltype(&nvmlDeviceGetUtilizationRates) utilization = nullptr;
  // nvmlDeviceGetTemperature is marked deprecated in new headers (in favour of
  // a call old drivers lack) but every driver exports it.
  nvmlReturn_t (*temperature)(nvmlDevice_t, nvmlTemperatureSensors_t, unsigned int*) = nullptr;
  decltype(&nvmlDeviceGetPowerUsage) power_usage = nullptr;
  decltype(&nvmlDeviceGetEnforcedPowerLimit) power_limit = nullptr;
  decltype(&nvmlDeviceGetClockInfo) clock_info = nullptr;
  decltype(&nvmlDeviceGetTotalEccErrors) ecc_errors = nullptr;
  decltype(&nvmlDeviceGetMigMode) mig_mode = nullptr;
  // MIG devices (drivers >= R470; all optional: without them a GPU in MIG
  // mode shows no MIG devices, with a note).
  decltype(&nvmlDeviceGetMaxMigDeviceCount) max_mig_devices = nullptr;
  decltype(&nvmlDeviceGetMigDeviceHandleByIndex) mig_handle_by_index = nullptr;
  decltype(&nvmlDeviceGetGpuInstanceId) gpu_instance_id = nullptr;
  decltype(&nvmlDeviceGetGpuInstanceById) gpu_instance_by_id = nullptr;
  decltype(&nvmlGpuInstanceGetInfo) gpu_instance_info = nullptr;
  decltype(&nvmlDeviceGetGpuInstanceProfileInfoV) gpu_instance_profile_info = nullptr;
  decltype(&nvmlDeviceGetAttributes_v2) attributes = nullptr;
  decltype(&nvmlDeviceGetNvLinkState) nvlink_state = nullptr;
  decltype(&nvmlDeviceGetNvLinkRemotePciInfo_v2) nvlink_remote_pci = nullptr;
  // _v3 and _v2 fill nvmlProcessInfo_v2_t (24 bytes); the original fills
  // nvmlProcessInfo_v1_t (16 bytes).
  decltype(&nvmlDeviceGetComputeRunningProcesses_v3) processes_v2_layout = nullptr;
  decltype(&nvmlDeviceGetComputeRunningProcesses) processes_v1_layout = nullptr;
  decltype(&nvmlEventSetCreate) event_set_create = nullptr;
  decltype(&nvmlEventSetFree) event_set_free = nullptr;
  decltype(&nvmlDeviceGetSupportedEventTypes) supported_events = nullptr;
  decltype(&nvmlDeviceRegisterEvents) register_events = nullptr;
  decltype(&nvmlEventSetWait_v2) event_set_wait = nullptr;

  // Resolves every entry point; returns the name of the first missing
  // required one, or an empty string.
  std::string Resolve(const DynamicLibrary& lib) {
    init = lib.Find<decltype(init)>({"nvmlInit_v2", "nvmlInit"}, &init_name);
    shutdown = lib.Find<decltype(shutdown)>({"nvmlShutdown"});
    error_string = lib.Find<decltype(error_string)>({"nvmlErrorString"});
    driver_version = lib.Find<decltype(driver_version)>({"nvmlSystemGetDriverVersion"});
    nvml_version = lib.Find<decltype(nvml_version)>({"nvmlSystemGetNVMLVersion"});
    device_count =
        lib.Find<decltype(device_count)>({"nvmlDeviceGetCount_v2", "nvmlDeviceGetCount"});
    handle_by_index = lib.Find<decltype(handle_by_index)>(
        {"nvmlDeviceGetHandleByIndex_v2", "nvmlDeviceGetHandleByIndex"});
    name = lib.Find<decltype(name)>({"nvmlDeviceGetName"});
    uuid = lib.Find<decltype(uuid)>({"nvmlDeviceGetUUID"});
    pci_info = lib.Find<decltype(pci_info)>(
        {"nvmlDeviceGetPciInfo_v3", "nvmlDeviceGetPciInfo_v2", "nvmlDeviceGetPciInfo"});
    memory_info_v2 = lib.Find<decltype(memory_info_v2)>({"nvmlDeviceGetMemoryInfo_v2"});
    memory_info_v1 = lib.Find<decltype(memory_info_v1)>({"nvmlDeviceGetMemoryInfo"});
    utilization = lib.Find<decltype(utilization)>({"nvmlDeviceGetUtilizationRates"});
    temperature = lib.Find<decltype(temperature)>({"nvmlDeviceGetTemperature"});
    power_usage = lib.Find<decltype(power_usage)>({"nvmlDeviceGetPowerUsage"});
    power_limit = lib.Find<decltype(power_limit)>(
        {"nvmlDeviceGetEnforcedPowerLimit", "nvmlDeviceGetPowerManagementLimit"});
    clock_info = lib.Find<decltype(clock_info)>({"nvmlDeviceGetClockInfo"});
    ecc_errors = lib.Find<decltype(ecc_errors)>({"nvmlDeviceGetTotalEccErrors"});
    mig_mode = lib.Find<decltype(mig_mode)>({"nvmlDeviceGetMigMode"});
    max_mig_devices = lib.Find<decltype(max_mig_devices)>({"nvmlDeviceGetMaxMigDeviceCount"});
    mig_handle_by_index =
        lib.Find<decltype(mig_handle_by_index)>({"nvmlDeviceGetMigDeviceHandleByIndex"});
    gpu_instance_id = lib.Find<decltype(gpu_instance_id)>({"nvmlDeviceGetGpuInstanceId"});
    gpu_instance_by_id = lib.Find<decltype(gpu_instance_by_id)>({"nvmlDeviceGetGpuInstanceById"});
    gpu_instance_info = lib.Find<decltype(gpu_instance_info)>({"nvmlGpuInstanceGetInfo"});
    gpu_instance_profile_info =
        lib.Find<decltype(gpu_instance_profile_info)>({"nvmlDeviceGetGpuInstanceProfileInfoV"});
    attributes =
        lib.Find<decltype(attributes)>({"nvmlDeviceGetAttributes_v2", "nvmlDeviceGetAttributes"});
    nvlink_state = lib.Find<decltype(nvlink_state)>({"nvmlDeviceGetNvLinkState"});
    nvlink_remote_pci = lib.Find<decltype(nvlink_remote_pci)>(
        {"nvmlDeviceGetNvLinkRemotePciInfo_v2", "nvmlDeviceGetNvLinkRemotePciInfo"});
    processes_v2_layout = lib.Find<decltype(processes_v2_layout)>(
        {"nvmlDeviceGetComputeRunningProcesses_v3", "nvmlDeviceGetComputeRunningProcesses_v2"});
    processes_v1_layout =
        lib.Find<decltype(processes_v1_layout)>({"nvmlDeviceGetComputeRunningProcesses"});
    event_set_create = lib.Find<decltype(event_set_create)>({"nvmlEventSetCreate"});
    event_set_free = lib.Find<decltype(event_set_free)>({"nvmlEventSetFree"});
    supported_events = lib.Find<decltype(supported_events)>({"nvmlDeviceGetSupportedEventTypes"});
    register_events = lib.Find<decltype(register_events)>({"nvmlDeviceRegisterEvents"});
    event_set_wait =
        lib.Find<decltype(event_set_wait)>({"nvmlEventSetWait_v2", "nvmlEventSetWait"});

    if (init == nullptr) return "nvmlInit_v2";
    if (shutdown == nullptr) return "nvmlShutdown";
    if (device_count == nullptr) return "nvmlDeviceGetCount_v2";
    if (handle_by_index == nullptr) return "nvmlDeviceGetHandleByIndex_v2";
    if (uuid == nullptr) return "nvmlDeviceGetUUID";
    if (name == nullptr) return "nvmlDeviceGetName";
    if (memory_info_v2 == nullptr && memory_info_v1 == nullptr) return "nvmlDeviceGetMemoryInfo";
    return "";
  }
};

// ---- The one place NVML return codes are interpreted. ----

enum class Outcome {
  kOk,
  kUnsupported,  // This GPU or driver does not have the value: leave it unset, say nothing.
  kGpuLost,      // The GPU fell off the bus or needs a reset: unhealthy.
  kFailed,       // Anything else: the value is unknown, with a note.
};

Outcome Classify(nvmlReturn_t rc) {
  switch (rc) {
    case NVML_SUCCESS:
      return Outcome::kOk;
    case NVML_ERROR_NOT_SUPPORTED:
    case NVML_ERROR_FUNCTION_NOT_FOUND:
    case NVML_ERROR_NOT_FOUND:
    case NVML_ERROR_NO_DATA:
      return Outcome::kUnsupported;
    case NVML_ERROR_GPU_IS_LOST:
    case NVML_ERROR_RESET_REQUIRED:
      return Outcome::kGpuLost;
    default:
      return Outcome::kFailed;
  }
}

// "Driver Not Loaded (NVML error 9)"; the library's own text when it has one.
std::string ErrorText(const NvmlApi& api, nvmlReturn_t rc) {
  const char* text = api.error_string != nullptr ? api.error_string(rc) : nullptr;
  std::string out = text != nullptr && text[0] != '\0' ? text : "unknown error";
  return out + " (NVML error " + std::to_string(static_cast<int>(rc)) + ")";
}

// ---- End of the error mapping. ----

std::string CString(const char* buffer, size_t size) {
  return std::string(buffer, strnlen(buffer, size));
}

bool IsApplicationXid(unsigned long long xid) {
  return std::find(kApplicationXids.begin(), kApplicationXids.end(), xid) != kApplicationXids.end();
}

// The PCI bus id NVML reports, in sysfs form ("0000:17:00.0"). The original
// nvmlDeviceGetPciInfo fills only the legacy field.
std::string BusIdOf(const nvmlPciInfo_t& pci) {
  std::string bus_id = CString(pci.busId, sizeof(pci.busId));
  if (bus_id.empty()) bus_id = CString(pci.busIdLegacy, sizeof(pci.busIdLegacy));
  return sysfs::NormalizeBusId(bus_id);
}

class NvmlBackend final : public VendorBackend {
 public:
  NvmlBackend(std::vector<std::string> libraries, BackendContext context)
      : libraries_(std::move(libraries)), context_(std::move(context)) {}
  ~NvmlBackend() override { Close(); }

  std::string vendor() const override { return "nvidia"; }

  VendorScan Discover(const sysfs::PciListing& pci) override {
    Close();
    VendorScan scan;
    DynamicLibrary::OpenFailure failure;
    library_ = DynamicLibrary::Open(libraries_, &failure);
    const std::string wanted = libraries_.empty() ? "libnvidia-ml.so.1" : libraries_.front();
    if (library_ == nullptr) {
      scan.notes.push_back(MissingLibraryNote(pci, wanted, failure));
      return scan;
    }
    if (const std::string missing = api_.Resolve(*library_); !missing.empty()) {
      scan.notes.push_back("nvidia: " + library_->name() + " does not export " + missing +
                           ": not a usable NVML library");
      Close();
      return scan;
    }
    if (const nvmlReturn_t rc = api_.init(); rc != NVML_SUCCESS) {
      // The driver may still be loading (boot) or be upgraded in place: retry later.
      scan.notes.push_back("nvidia: " + api_.init_name + " failed: " + ErrorText(api_, rc));
      scan.settled = false;
      Close();
      return scan;
    }
    initialized_ = true;

    unsigned int count = 0;
    if (const nvmlReturn_t rc = api_.device_count(&count); rc != NVML_SUCCESS) {
      scan.notes.push_back("nvidia: nvmlDeviceGetCount failed: " + ErrorText(api_, rc));
      scan.settled = false;
      Close();
      return scan;
    }
    std::vector<std::string> device_notes;
    std::vector<FabricLinks> fabric;
    for (unsigned int i = 0; i < count; ++i) {
      scan.gpus.push_back(DescribeDevice(i, &device_notes));
      fabric.push_back(Links(i, scan.gpus.back().pci_bus_id));
    }
    const std::vector<int> islands = GroupIslands(fabric);
    for (size_t i = 0; i < scan.gpus.size(); ++i) scan.gpus[i].nvlink_group = islands[i];
    RegisterHealthEvents(&device_notes);
    // MIG devices follow all GPUs, so a GPU's position stays its index.
    int mig_parents = 0;
    size_t mig_devices = 0;
    for (unsigned int i = 0; i < count; ++i) {
      if (!scan.gpus[i].mig_enabled) continue;
      ++mig_parents;
      std::vector<Gpu> found = DescribeMigDevices(i, scan.gpus[i], &device_notes);
      mig_devices += found.size();
      for (Gpu& mig : found) scan.gpus.push_back(std::move(mig));
    }

    scan.notes.push_back(Summary(count, mig_parents, mig_devices));
    scan.notes.insert(scan.notes.end(), device_notes.begin(), device_notes.end());
    return scan;
  }

  void Sample(size_t i, Gpu* gpu, std::vector<std::string>* notes) override {
    if (i >= devices_.size() || devices_[i].handle == nullptr) return;
    if (devices_[i].mig) {
      SampleMigDevice(devices_[i], gpu, notes);
      return;
    }
    SampleDevice(devices_[i], gpu, notes);
  }

  void Health(size_t i, Gpu* gpu, std::vector<std::string>* /*notes*/) override {
    if (i >= devices_.size()) return;
    const Device& device = devices_[i];
    std::vector<std::string> reasons;
    if (!device.identity_error.empty()) reasons.push_back(device.identity_error);
    {
      std::lock_guard<std::mutex> lock(events_mutex_);
      reasons.insert(reasons.end(), device.events.begin(), device.events.end());
      gpu->last_xid = device.last_xid;
    }
    if (gpu->ecc_double_bit_errors && *gpu->ecc_double_bit_errors > 0) {
      reasons.push_back(std::to_string(*gpu->ecc_double_bit_errors) +
                        " volatile double-bit ECC error(s)");
    }
    if (!device.sample_error.empty()) reasons.push_back(device.sample_error);
    gpu->healthy = reasons.empty();
    gpu->health_reason.clear();
    for (const std::string& reason : reasons) {
      if (!gpu->health_reason.empty()) gpu->health_reason += "; ";
      gpu->health_reason += reason;
    }
  }

  // Drains the event set (waiting 0 ms) into the devices' sticky events.
  void PollEvents(std::vector<std::string>* notes) override {
    if (events_ == nullptr) return;
    for (int n = 0; n < kMaxEventsPerHealthCheck; ++n) {
      nvmlEventData_t event{};
      const nvmlReturn_t rc = api_.event_set_wait(events_, &event, 0);
      if (rc == NVML_ERROR_TIMEOUT) return;  // No more pending events.
      if (rc != NVML_SUCCESS) {
        notes->push_back("nvidia: nvmlEventSetWait failed: " + ErrorText(api_, rc));
        return;
      }
      const auto it = std::find_if(devices_.begin(), devices_.end(),
                                   [&](const Device& d) { return d.handle == event.device; });
      if (it == devices_.end()) continue;
      const std::string who =
          "GPU " + std::to_string(it - devices_.begin()) + " (" + it->uuid + ")";
      std::lock_guard<std::mutex> lock(events_mutex_);
      if (event.eventType & nvmlEventTypeXidCriticalError) {
        const unsigned long long xid = event.eventData;
        it->last_xid = static_cast<int64_t>(xid);
        if (IsApplicationXid(xid)) {
          notes->push_back("nvidia: " + who + ": XID " + std::to_string(xid) +
                           " (an application error; the GPU stays healthy)");
        } else {
          it->events.push_back("XID " + std::to_string(xid));
        }
      }
      if (event.eventType & nvmlEventTypeDoubleBitEccError) {
        it->events.emplace_back("double-bit ECC error event");
      }
    }
  }

 private:
  // Set by Discover; then `sample_error` belongs to the GPU's worker (Sample
  // and Health) and `events` and `last_xid` are guarded by events_mutex_ (PollEvents
  // writes them).
  struct Device {
    nvmlDevice_t handle = nullptr;    // Null when NVML would not give one.
    std::string uuid;                 // For notes.
    std::string identity_error;       // Why there is no handle.
    std::vector<std::string> events;  // Critical events seen; they stick.
    int64_t last_xid = 0;             // Latest XID of any kind; 0 = none.
    std::string sample_error;         // From the latest sample: lost, memory unreadable.
    bool mig = false;                 // A MIG device (its GPU's health is the provider's to add).
  };

  std::string MissingLibraryNote(const sysfs::PciListing& pci, const std::string& wanted,
                                 const DynamicLibrary::OpenFailure& failure) const {
    const std::vector<sysfs::PciDevice> on_pci = pci.OfVendor(sysfs::kVendorNvidia);
    std::string note = "nvidia: ";
    if (!on_pci.empty()) {
      note +=
          std::to_string(on_pci.size()) + " GPU(s) on PCI " + sysfs::BusIdList(on_pci) + " but ";
    }
    if (failure.not_found) {
      note += wanted + " not found";
      if (on_pci.empty()) return note + " (no NVIDIA driver)";
      return note + ": install the NVIDIA driver, or start with --inventory FILE";
    }
    return note + "cannot load " + wanted + ": " + failure.detail;
  }

  std::string Summary(unsigned int count, int mig_parents, size_t mig_devices) const {
    std::string note = "nvidia: NVML";
    char version[NVML_SYSTEM_NVML_VERSION_BUFFER_SIZE] = {};
    if (api_.nvml_version != nullptr &&
        api_.nvml_version(version, sizeof(version)) == NVML_SUCCESS) {
      note += " " + CString(version, sizeof(version));
    }
    char driver[NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE] = {};
    if (api_.driver_version != nullptr &&
        api_.driver_version(driver, sizeof(driver)) == NVML_SUCCESS) {
      note += ", driver " + CString(driver, sizeof(driver));
    }
    note += ", " + std::to_string(count) + " GPU(s)";
    if (mig_parents > 0) {
      note += ", " + std::to_string(mig_devices) + " MIG device(s) on " +
              std::to_string(mig_parents) + " GPU(s) in MIG mode";
    }
    if (api_.init_name == "nvmlInit") note += " (driver without the _v2 entry points)";
    return note;
  }

  // Identity and static facts of GPU `i`; a GPU NVML will not hand out stays
  // in the list (so indices keep matching CUDA's) as an unhealthy placeholder.
  Gpu DescribeDevice(unsigned int i, std::vector<std::string>* notes) {
    Device device;
    Gpu gpu;
    gpu.index = static_cast<int>(i);
    const nvmlReturn_t rc = api_.handle_by_index(i, &device.handle);
    if (rc != NVML_SUCCESS) {
      device.handle = nullptr;
      device.identity_error = "nvmlDeviceGetHandleByIndex failed: " + ErrorText(api_, rc);
      gpu.uuid = context_.node_name + "-nvidia-" + std::to_string(i);
      gpu.model = ParseGpuModel("NVIDIA GPU", context_.memory_specs);
      notes->push_back("nvidia: GPU " + std::to_string(i) + ": " + device.identity_error);
      devices_.push_back(std::move(device));
      return gpu;
    }
    char uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE] = {};
    if (const nvmlReturn_t urc = api_.uuid(device.handle, uuid, sizeof(uuid));
        urc == NVML_SUCCESS) {
      gpu.uuid = CString(uuid, sizeof(uuid));
    } else {
      notes->push_back("nvidia: GPU " + std::to_string(i) +
                       ": nvmlDeviceGetUUID failed: " + ErrorText(api_, urc));
    }
    char name[NVML_DEVICE_NAME_V2_BUFFER_SIZE] = {};
    std::string model_name = "NVIDIA GPU";
    if (const nvmlReturn_t nrc = api_.name(device.handle, name, sizeof(name));
        nrc == NVML_SUCCESS) {
      model_name = CString(name, sizeof(name));
    } else {
      notes->push_back("nvidia: GPU " + std::to_string(i) +
                       ": nvmlDeviceGetName failed: " + ErrorText(api_, nrc));
    }
    gpu.model = ParseGpuModel(model_name, context_.memory_specs);
    if (api_.pci_info != nullptr) {
      nvmlPciInfo_t pci{};
      if (api_.pci_info(device.handle, &pci) == NVML_SUCCESS) gpu.pci_bus_id = BusIdOf(pci);
    }
    // A GPU without a UUID still needs a stable identity on this node.
    if (gpu.uuid.empty()) {
      gpu.uuid = context_.node_name + "-" +
                 (gpu.pci_bus_id.empty() ? "nvidia-" + std::to_string(i) : gpu.pci_bus_id);
    }
    device.uuid = gpu.uuid;
    if (api_.mig_mode != nullptr) {
      unsigned int current = 0;
      unsigned int pending = 0;
      if (api_.mig_mode(device.handle, &current, &pending) == NVML_SUCCESS) {
        gpu.mig_enabled = current == NVML_DEVICE_MIG_ENABLE;
      }
    }
    // NVML gives no utilization for a GPU in MIG mode.
    gpu.utilization_available = !gpu.mig_enabled;
    devices_.push_back(std::move(device));
    return gpu;
  }

  // The MIG devices of GPU `i` (in MIG mode), as NVML lists them: units of
  // their own with a "MIG-..." uuid, the parent's index and PCI address, a
  // model named "<parent's name> MIG <profile>" and the memory the device
  // reports (read by Sample). Only read: gpurm never changes the layout.
  std::vector<Gpu> DescribeMigDevices(unsigned int i, const Gpu& parent,
                                      std::vector<std::string>* notes) {
    std::vector<Gpu> found;
    const nvmlDevice_t parent_handle = devices_[i].handle;
    const std::string who = "nvidia: GPU " + std::to_string(i) + " (" + parent.uuid + ")";
    if (parent_handle == nullptr) return found;
    if (api_.max_mig_devices == nullptr || api_.mig_handle_by_index == nullptr) {
      notes->push_back(who + ": in MIG mode, but this driver has no MIG device queries: " +
                       "no MIG devices are offered");
      return found;
    }
    unsigned int max_count = 0;
    if (const nvmlReturn_t rc = api_.max_mig_devices(parent_handle, &max_count);
        rc != NVML_SUCCESS) {
      notes->push_back(who + ": nvmlDeviceGetMaxMigDeviceCount failed: " + ErrorText(api_, rc));
      return found;
    }
    for (unsigned int m = 0; m < max_count; ++m) {
      nvmlDevice_t handle = nullptr;
      const nvmlReturn_t rc = api_.mig_handle_by_index(parent_handle, m, &handle);
      if (rc == NVML_ERROR_NOT_FOUND) continue;  // No MIG device at this index.
      if (rc != NVML_SUCCESS) {
        notes->push_back(who + ": MIG device " + std::to_string(m) +
                         ": nvmlDeviceGetMigDeviceHandleByIndex failed: " + ErrorText(api_, rc));
        continue;
      }
      char uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE] = {};
      if (const nvmlReturn_t urc = api_.uuid(handle, uuid, sizeof(uuid)); urc != NVML_SUCCESS) {
        // Without its uuid a MIG device cannot be handed to CUDA: leave it out.
        notes->push_back(who + ": MIG device " + std::to_string(m) +
                         ": nvmlDeviceGetUUID failed: " + ErrorText(api_, urc) + " (not offered)");
        continue;
      }
      Gpu gpu;
      gpu.index = parent.index;
      gpu.uuid = CString(uuid, sizeof(uuid));
      gpu.pci_bus_id = parent.pci_bus_id;
      gpu.mig_parent_uuid = parent.uuid;
      gpu.mig_profile = MigProfileName(parent_handle, handle);
      gpu.model =
          ParseGpuModel(parent.model.raw_name + " MIG " + gpu.mig_profile, context_.memory_specs);
      gpu.utilization_available = false;  // NVML has no utilization for MIG devices.
      Device device;
      device.handle = handle;
      device.uuid = gpu.uuid;
      device.mig = true;
      devices_.push_back(std::move(device));
      found.push_back(std::move(gpu));
    }
    return found;
  }

  // "3g.40gb": the GPU instance profile's name; "1c.3g.40gb" for a compute
  // instance smaller than its GPU instance. From the GPU instance's profile
  // info when the driver gives it, else from the device's attributes (as GPU
  // Feature Discovery names them), else from the device's name.
  std::string MigProfileName(nvmlDevice_t parent, nvmlDevice_t mig) const {
    nvmlDeviceAttributes_t attributes{};
    const bool have_attributes =
        api_.attributes != nullptr && api_.attributes(mig, &attributes) == NVML_SUCCESS;
    std::string compute_prefix;
    if (have_attributes && attributes.computeInstanceSliceCount > 0 &&
        attributes.computeInstanceSliceCount < attributes.gpuInstanceSliceCount) {
      compute_prefix = std::to_string(attributes.computeInstanceSliceCount) + "c.";
    }
    if (std::string name = GpuInstanceProfileName(parent, mig); !name.empty()) {
      return compute_prefix + name;
    }
    if (have_attributes && attributes.gpuInstanceSliceCount > 0) {
      const unsigned long long gb = (attributes.memorySizeMB + 1023) / 1024;
      return compute_prefix + std::to_string(attributes.gpuInstanceSliceCount) + "g." +
             std::to_string(gb) + "gb";
    }
    char name[NVML_DEVICE_NAME_V2_BUFFER_SIZE] = {};
    if (api_.name(mig, name, sizeof(name)) == NVML_SUCCESS) {
      const std::string text = CString(name, sizeof(name));
      if (const size_t at = text.rfind("MIG "); at != std::string::npos) return text.substr(at + 4);
    }
    return "";
  }

  std::string GpuInstanceProfileName(nvmlDevice_t parent, nvmlDevice_t mig) const {
    if (api_.gpu_instance_id == nullptr || api_.gpu_instance_by_id == nullptr ||
        api_.gpu_instance_info == nullptr || api_.gpu_instance_profile_info == nullptr) {
      return "";
    }
    unsigned int instance_id = 0;
    nvmlGpuInstance_t instance = nullptr;
    nvmlGpuInstanceInfo_t info{};
    if (api_.gpu_instance_id(mig, &instance_id) != NVML_SUCCESS ||
        api_.gpu_instance_by_id(parent, instance_id, &instance) != NVML_SUCCESS ||
        api_.gpu_instance_info(instance, &info) != NVML_SUCCESS) {
      return "";
    }
    for (unsigned int profile = 0; profile < NVML_GPU_INSTANCE_PROFILE_COUNT; ++profile) {
      nvmlGpuInstanceProfileInfo_v2_t profile_info{};
      profile_info.version = nvmlGpuInstanceProfileInfo_v2;
      if (api_.gpu_instance_profile_info(parent, profile, &profile_info) != NVML_SUCCESS ||
          profile_info.id != info.profileId) {
        continue;
      }
      std::string name = CString(profile_info.name, sizeof(profile_info.name));
      if (name.rfind("MIG ", 0) == 0) name.erase(0, 4);
      return name;
    }
    return "";
  }

  // The NVLink endpoints GPU `i` reaches over its active links.
  FabricLinks Links(unsigned int i, const std::string& bus_id) const {
    FabricLinks links;
    links.self = bus_id.empty() ? "nvidia-gpu-" + std::to_string(i) : bus_id;
    const Device& device = devices_[i];
    if (device.handle == nullptr || api_.nvlink_state == nullptr) return links;
    for (unsigned int link = 0; link < NVML_NVLINK_MAX_LINKS; ++link) {
      nvmlEnableState_t active = NVML_FEATURE_DISABLED;
      const nvmlReturn_t rc = api_.nvlink_state(device.handle, link, &active);
      if (rc == NVML_ERROR_NOT_SUPPORTED) break;  // No NVLink on this GPU.
      if (rc != NVML_SUCCESS || active != NVML_FEATURE_ENABLED) continue;
      nvmlPciInfo_t remote{};
      if (api_.nvlink_remote_pci != nullptr &&
          api_.nvlink_remote_pci(device.handle, link, &remote) == NVML_SUCCESS) {
        const std::string peer = BusIdOf(remote);
        if (!peer.empty()) {
          links.peers.push_back(peer);
          continue;
        }
      }
      // An active link whose far end NVML does not name (NVSwitch fabrics on
      // some drivers) still joins this GPU to the node's NVLink fabric.
      links.peers.emplace_back("nvlink-fabric");
    }
    return links;
  }

  void RegisterHealthEvents(std::vector<std::string>* notes) {
    if (api_.event_set_create == nullptr || api_.register_events == nullptr ||
        api_.event_set_wait == nullptr) {
      notes->push_back("nvidia: this driver has no NVML events: health from ECC counters only");
      return;
    }
    if (const nvmlReturn_t rc = api_.event_set_create(&events_); rc != NVML_SUCCESS) {
      events_ = nullptr;
      notes->push_back("nvidia: nvmlEventSetCreate failed: " + ErrorText(api_, rc) +
                       ": health from ECC counters only");
      return;
    }
    for (size_t i = 0; i < devices_.size(); ++i) {
      const Device& device = devices_[i];
      if (device.handle == nullptr) continue;
      unsigned long long supported = kHealthEvents;
      if (api_.supported_events != nullptr &&
          api_.supported_events(device.handle, &supported) != NVML_SUCCESS) {
        supported = kHealthEvents;
      }
      const unsigned long long wanted = supported & kHealthEvents;
      if (wanted == 0) continue;
      const nvmlReturn_t rc = api_.register_events(device.handle, wanted, events_);
      if (Classify(rc) == Outcome::kFailed) {
        notes->push_back("nvidia: GPU " + std::to_string(i) +
                         ": no XID events (nvmlDeviceRegisterEvents: " + ErrorText(api_, rc) + ")");
      }
    }
  }

  // Appends "nvidia: GPU i: <what>: <call> failed: <error>" for real failures;
  // returns true when the value was read.
  bool Check(nvmlReturn_t rc, const Gpu& gpu, std::string_view what, std::string_view call,
             Device& device, std::vector<std::string>* notes) const {
    switch (Classify(rc)) {
      case Outcome::kOk:
        return true;
      case Outcome::kUnsupported:
        return false;
      case Outcome::kGpuLost:
        device.sample_error = "GPU lost: " + ErrorText(api_, rc);
        return false;
      case Outcome::kFailed:
        notes->push_back("nvidia: GPU " + std::to_string(gpu.index) + " (" + gpu.uuid +
                         "): " + std::string(what) + ": " + std::string(call) +
                         " failed: " + ErrorText(api_, rc));
        return false;
    }
    return false;
  }

  // A MIG device reports its memory and processes; utilization, temperature,
  // power, clocks and ECC are its GPU's (or not reported at all).
  void SampleMigDevice(Device& device, Gpu* gpu, std::vector<std::string>* notes) const {
    device.sample_error.clear();
    SampleMemory(device, gpu, notes);
    gpu->utilization = 0;
    gpu->memory_utilization = 0;
    gpu->utilization_available = false;
    SampleProcesses(device, gpu, notes);
  }

  void SampleDevice(Device& device, Gpu* gpu, std::vector<std::string>* notes) const {
    device.sample_error.clear();
    SampleMemory(device, gpu, notes);
    gpu->utilization = 0;
    gpu->memory_utilization = 0;
    if (api_.utilization != nullptr && !gpu->mig_enabled) {
      nvmlUtilization_t rates{};
      if (Check(api_.utilization(device.handle, &rates), *gpu, "utilization",
                "nvmlDeviceGetUtilizationRates", device, notes)) {
        gpu->utilization = std::clamp(rates.gpu / 100.0, 0.0, 1.0);
        gpu->memory_utilization = std::clamp(rates.memory / 100.0, 0.0, 1.0);
      }
    }
    gpu->temperature_c.reset();
    if (api_.temperature != nullptr) {
      unsigned int celsius = 0;
      if (Check(api_.temperature(device.handle, NVML_TEMPERATURE_GPU, &celsius), *gpu,
                "temperature", "nvmlDeviceGetTemperature", device, notes)) {
        gpu->temperature_c = celsius;
      }
    }
    gpu->power_w.reset();
    if (api_.power_usage != nullptr) {
      unsigned int milliwatts = 0;
      if (Check(api_.power_usage(device.handle, &milliwatts), *gpu, "power",
                "nvmlDeviceGetPowerUsage", device, notes)) {
        gpu->power_w = milliwatts / 1000.0;
      }
    }
    gpu->power_limit_w.reset();
    if (api_.power_limit != nullptr) {
      unsigned int milliwatts = 0;
      if (Check(api_.power_limit(device.handle, &milliwatts), *gpu, "power limit",
                "nvmlDeviceGetEnforcedPowerLimit", device, notes)) {
        gpu->power_limit_w = milliwatts / 1000.0;
      }
    }
    gpu->sm_clock_mhz.reset();
    if (api_.clock_info != nullptr) {
      unsigned int mhz = 0;
      if (Check(api_.clock_info(device.handle, NVML_CLOCK_SM, &mhz), *gpu, "SM clock",
                "nvmlDeviceGetClockInfo", device, notes)) {
        gpu->sm_clock_mhz = mhz;
      }
    }
    gpu->ecc_double_bit_errors.reset();
    if (api_.ecc_errors != nullptr) {
      unsigned long long count = 0;
      if (Check(api_.ecc_errors(device.handle, NVML_MEMORY_ERROR_TYPE_UNCORRECTED,
                                NVML_VOLATILE_ECC, &count),
                *gpu, "ECC", "nvmlDeviceGetTotalEccErrors", device, notes)) {
        gpu->ecc_double_bit_errors = static_cast<int64_t>(count);
      }
    }
    SampleProcesses(device, gpu, notes);
  }

  // used = total - free: everything a new allocation cannot have, including
  // what the driver reserves (_v2 reports that apart from `used`).
  void SampleMemory(Device& device, Gpu* gpu, std::vector<std::string>* notes) const {
    unsigned long long total = 0;
    unsigned long long free = 0;
    nvmlReturn_t rc = NVML_ERROR_FUNCTION_NOT_FOUND;
    if (api_.memory_info_v2 != nullptr) {
      nvmlMemory_v2_t memory{};
      memory.version = nvmlMemory_v2;
      rc = api_.memory_info_v2(device.handle, &memory);
      total = memory.total;
      free = memory.free;
    }
    // A driver may export _v2 yet refuse the struct version: use the original.
    if (rc != NVML_SUCCESS && Classify(rc) != Outcome::kGpuLost && api_.memory_info_v1 != nullptr) {
      nvmlMemory_t memory{};
      rc = api_.memory_info_v1(device.handle, &memory);
      total = memory.total;
      free = memory.free;
    }
    if (rc == NVML_SUCCESS) {
      gpu->memory_total_mib = static_cast<int64_t>(total / kBytesPerMib);
      gpu->memory_used_mib = static_cast<int64_t>((total - std::min(free, total)) / kBytesPerMib);
      return;
    }
    if (Classify(rc) == Outcome::kGpuLost) {
      device.sample_error = "GPU lost: " + ErrorText(api_, rc);
      return;
    }
    device.sample_error = "memory unreadable: nvmlDeviceGetMemoryInfo: " + ErrorText(api_, rc);
    notes->push_back("nvidia: GPU " + std::to_string(gpu->index) + " (" + gpu->uuid +
                     "): " + device.sample_error);
  }

  void SampleProcesses(Device& device, Gpu* gpu, std::vector<std::string>* notes) const {
    gpu->processes.clear();
    if (api_.processes_v2_layout != nullptr) {
      ReadProcesses<nvmlProcessInfo_v2_t>(api_.processes_v2_layout, device, gpu, notes);
    } else if (api_.processes_v1_layout != nullptr) {
      ReadProcesses<nvmlProcessInfo_v1_t>(api_.processes_v1_layout, device, gpu, notes);
    }
  }

  template <typename Info, typename Call>
  void ReadProcesses(Call call, Device& device, Gpu* gpu, std::vector<std::string>* notes) const {
    std::vector<Info> infos(16);
    unsigned int count = static_cast<unsigned int>(infos.size());
    nvmlReturn_t rc = call(device.handle, &count, infos.data());
    // The list can grow between the two calls; retry a few times, bounded.
    for (int attempt = 0; rc == NVML_ERROR_INSUFFICIENT_SIZE && attempt < 3; ++attempt) {
      infos.resize(std::min(kMaxProcesses, count + 16));
      count = static_cast<unsigned int>(infos.size());
      rc = call(device.handle, &count, infos.data());
    }
    if (!Check(rc, *gpu, "processes", "nvmlDeviceGetComputeRunningProcesses", device, notes)) {
      return;
    }
    for (unsigned int p = 0; p < count && p < infos.size(); ++p) {
      GpuProcess process;
      process.pid = infos[p].pid;
      // NVML_VALUE_NOT_AVAILABLE (all ones) where the driver cannot attribute memory.
      const unsigned long long used = infos[p].usedGpuMemory;
      process.memory_used_mib = used == static_cast<unsigned long long>(NVML_VALUE_NOT_AVAILABLE)
                                    ? 0
                                    : static_cast<int64_t>(used / kBytesPerMib);
      gpu->processes.push_back(process);
    }
  }

  void Close() {
    if (events_ != nullptr && api_.event_set_free != nullptr) api_.event_set_free(events_);
    events_ = nullptr;
    if (initialized_) api_.shutdown();
    initialized_ = false;
    devices_.clear();
    library_.reset();
    api_ = NvmlApi{};
  }

  const std::vector<std::string> libraries_;
  const BackendContext context_;
  std::unique_ptr<DynamicLibrary> library_;
  NvmlApi api_;
  bool initialized_ = false;
  nvmlEventSet_t events_ = nullptr;
  std::vector<Device> devices_;      // Parallel to the GPU list of the last Discover.
  mutable std::mutex events_mutex_;  // Guards Device::events.
};

}  // namespace

std::vector<std::string> DefaultNvmlLibraries() { return {"libnvidia-ml.so.1"}; }

std::unique_ptr<VendorBackend> MakeNvmlBackend(std::vector<std::string> libraries,
                                               BackendContext context) {
  return std::make_unique<NvmlBackend>(std::move(libraries), std::move(context));
}

}  // namespace gpurm
