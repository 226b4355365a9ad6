// A fake librocm_smi64.so for tests: ROCm SMI's C entry points over the
// scripted machine in GPURM_FAKE_ROCM_SMI_MACHINE (machines/README.md).
// Process-wide state like the real library; not thread-safe.
#include <rocm_smi/rocm_smi.h>

#include <cstring>
#include <nlohmann/json.hpp>
#include <string>

#include "fake_machine.h"

namespace {

using nlohmann::json;

constexpr uint64_t kMib = 1024ULL * 1024ULL;

json g_machine;
bool g_initialized = false;

const json* Gpu(uint32_t index) {
  if (!g_initialized) return nullptr;
  const json& gpus = g_machine["gpus"];
  return index < gpus.size() ? &gpus[index] : nullptr;
}

// A numeric field of GPU `index`, or NOT_SUPPORTED when the spec leaves it out.
template <typename T>
rsmi_status_t Field(uint32_t index, const char* key, T* out) {
  const json* gpu = Gpu(index);
  if (gpu == nullptr) return RSMI_STATUS_INVALID_ARGS;
  if (!gpu->contains(key)) return RSMI_STATUS_NOT_SUPPORTED;
  *out = (*gpu)[key].get<T>();
  return RSMI_STATUS_SUCCESS;
}

}  // namespace

extern "C" {

rsmi_status_t rsmi_init(uint64_t) {
  g_machine = gpurm::fakes::LoadMachine("GPURM_FAKE_ROCM_SMI_MACHINE");
  if (g_machine.is_discarded()) return RSMI_STATUS_INIT_ERROR;
  if (g_machine.contains("init_error")) {
    return static_cast<rsmi_status_t>(g_machine["init_error"].get<int>());
  }
  if (!g_machine.contains("gpus")) g_machine["gpus"] = json::array();
  g_initialized = true;
  return RSMI_STATUS_SUCCESS;
}

rsmi_status_t rsmi_shut_down(void) {
  g_initialized = false;
  return RSMI_STATUS_SUCCESS;
}

rsmi_status_t rsmi_status_string(rsmi_status_t status, const char** text) {
  *text = status == RSMI_STATUS_INIT_ERROR ? "RSMI_STATUS_INIT_ERROR: init failed"
                                           : "RSMI_STATUS_UNKNOWN_ERROR: scripted failure";
  return RSMI_STATUS_SUCCESS;
}

rsmi_status_t rsmi_version_get(rsmi_version_t* version) {
  version->major = 5;
  version->minor = 7;
  version->patch = 0;
  version->build = "fake";
  return RSMI_STATUS_SUCCESS;
}

rsmi_status_t rsmi_num_monitor_devices(uint32_t* count) {
  if (!g_initialized) return RSMI_STATUS_INIT_ERROR;
  *count = static_cast<uint32_t>(g_machine["gpus"].size());
  return RSMI_STATUS_SUCCESS;
}

rsmi_status_t rsmi_dev_pci_id_get(uint32_t index, uint64_t* bdfid) {
  const json* gpu = Gpu(index);
  if (gpu == nullptr) return RSMI_STATUS_INVALID_ARGS;
  const gpurm::fakes::PciAddress a = gpurm::fakes::ParseBusId(gpu->value("bus_id", ""));
  *bdfid = (static_cast<uint64_t>(a.domain) << 32) | (a.bus << 8) | (a.device << 3) | a.function;
  return RSMI_STATUS_SUCCESS;
}

rsmi_status_t rsmi_dev_name_get(uint32_t index, char* name, size_t length) {
  const json* gpu = Gpu(index);
  if (gpu == nullptr) return RSMI_STATUS_INVALID_ARGS;
  std::strncpy(name, gpu->value("name", "").c_str(), length - 1);
  name[length - 1] = '\0';
  return RSMI_STATUS_SUCCESS;
}

rsmi_status_t rsmi_dev_memory_total_get(uint32_t index, rsmi_memory_type_t, uint64_t* total) {
  uint64_t mib = 0;
  const rsmi_status_t rc = Field(index, "vram_total_mib", &mib);
  *total = mib * kMib;
  return rc;
}

rsmi_status_t rsmi_dev_memory_usage_get(uint32_t index, rsmi_memory_type_t, uint64_t* used) {
  uint64_t mib = 0;
  const rsmi_status_t rc = Field(index, "vram_used_mib", &mib);
  *used = mib * kMib;
  return rc;
}

rsmi_status_t rsmi_dev_busy_percent_get(uint32_t index, uint32_t* percent) {
  return Field(index, "busy_percent", percent);
}

rsmi_status_t rsmi_dev_memory_busy_percent_get(uint32_t index, uint32_t* percent) {
  return Field(index, "memory_busy_percent", percent);
}

rsmi_status_t rsmi_dev_temp_metric_get(uint32_t index, uint32_t sensor, rsmi_temperature_metric_t,
                                       int64_t* millidegrees) {
  return Field(index, sensor == RSMI_TEMP_TYPE_EDGE ? "edge_millidegrees" : "junction_millidegrees",
               millidegrees);
}

rsmi_status_t rsmi_dev_power_ave_get(uint32_t index, uint32_t, uint64_t* microwatts) {
  return Field(index, "power_microwatts", microwatts);
}

rsmi_status_t rsmi_dev_power_cap_get(uint32_t index, uint32_t, uint64_t* microwatts) {
  return Field(index, "power_cap_microwatts", microwatts);
}

rsmi_status_t rsmi_dev_ecc_count_get(uint32_t index, rsmi_gpu_block_t, rsmi_error_count_t* count) {
  uint64_t uncorrectable = 0;
  const rsmi_status_t rc = Field(index, "ecc_uncorrectable", &uncorrectable);
  count->correctable_err = 0;
  count->uncorrectable_err = uncorrectable;
  return rc;
}

rsmi_status_t rsmi_topo_get_link_type(uint32_t source, uint32_t destination, uint64_t* hops,
                                      RSMI_IO_LINK_TYPE* type) {
  const json* gpu = Gpu(source);
  if (gpu == nullptr || Gpu(destination) == nullptr) return RSMI_STATUS_INVALID_ARGS;
  *hops = 1;
  *type = RSMI_IOLINK_TYPE_PCIEXPRESS;
  for (const json& peer : gpu->value("xgmi_peers", json::array())) {
    if (peer.get<uint32_t>() == destination) *type = RSMI_IOLINK_TYPE_XGMI;
  }
  return RSMI_STATUS_SUCCESS;
}

}  // extern "C"
