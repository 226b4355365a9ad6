// A fake libdcmi.so for tests: the DCMI entry points gpurm uses, over the
// scripted machine in GPURM_FAKE_DCMI_MACHINE (machines/README.md). Compiled
// against gpurm's own DCMI declarations, which is what it checks: that the
// back end calls what it declares. Process-wide state; not thread-safe.
#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>

#include "fake_machine.h"
#include "inventory/providers/ascend/dcmi_api.h"

namespace {

using nlohmann::json;
namespace dcmi = gpurm::dcmi;

json g_machine;
bool g_initialized = false;

// The scripted cards, by reference: chips are handed out by address.
const json& Cards() {
  static const json kNone = json::array();
  return g_initialized && g_machine.contains("cards") ? g_machine["cards"] : kNone;
}

const json* Chip(int card_id, int device_id) {
  for (const json& card : Cards()) {
    if (card.value("id", -1) != card_id) continue;
    const json& chips = card["chips"];
    if (device_id >= 0 && static_cast<size_t>(device_id) < chips.size()) return &chips[device_id];
  }
  return nullptr;
}

// A scripted failure of `call` on the chip, else 0.
int Scripted(const json& chip, const char* call) {
  if (chip.contains("errors") && chip["errors"].contains(call)) {
    return chip["errors"][call].get<int>();
  }
  return dcmi::kOk;
}

template <typename T>
int Field(int card_id, int device_id, const char* key, const char* call, T* out) {
  const json* chip = Chip(card_id, device_id);
  if (chip == nullptr) return dcmi::kErrInvalidDeviceId;
  if (const int rc = Scripted(*chip, call); rc != dcmi::kOk) return rc;
  if (!chip->contains(key)) return dcmi::kErrNotSupported;
  *out = (*chip)[key].get<T>();
  return dcmi::kOk;
}

}  // namespace

extern "C" {

int dcmi_init(void) {
  g_machine = gpurm::fakes::LoadMachine("GPURM_FAKE_DCMI_MACHINE");
  if (g_machine.is_discarded()) return dcmi::kErrDeviceNotExist;
  g_initialized = true;
  return dcmi::kOk;
}

int dcmi_get_driver_version(char* version, unsigned int length) {
  const std::string text = g_machine.value("driver_version", "");
  if (text.size() + 1 > length) return dcmi::kErrInvalidParameter;
  std::memcpy(version, text.c_str(), text.size() + 1);
  return dcmi::kOk;
}

int dcmi_get_card_num_list(int* card_num, int* card_list, int list_len) {
  if (!g_initialized) return dcmi::kErrNotReady;
  const json& cards = Cards();
  *card_num = std::min(static_cast<int>(cards.size()), list_len);
  for (int i = 0; i < *card_num; ++i) card_list[i] = cards[i]["id"].get<int>();
  return dcmi::kOk;
}

int dcmi_get_device_num_in_card(int card_id, int* device_num) {
  for (const json& card : Cards()) {
    if (card.value("id", -1) == card_id) {
      *device_num = static_cast<int>(card["chips"].size());
      return dcmi::kOk;
    }
  }
  return dcmi::kErrInvalidDeviceId;
}

int dcmi_get_device_chip_info(int card_id, int device_id, dcmi::ChipInfo* info) {
  const json* chip = Chip(card_id, device_id);
  if (chip == nullptr) return dcmi::kErrInvalidDeviceId;
  std::memset(info, 0, sizeof(*info));
  const std::string name = chip->value("chip_name", "");
  std::strncpy(reinterpret_cast<char*>(info->chip_name), name.c_str(), sizeof(info->chip_name) - 1);
  std::strncpy(reinterpret_cast<char*>(info->chip_type), "Ascend", sizeof(info->chip_type) - 1);
  return dcmi::kOk;
}

int dcmi_get_device_pcie_info_v2(int card_id, int device_id, dcmi::PcieInfo* info) {
  const json* chip = Chip(card_id, device_id);
  if (chip == nullptr) return dcmi::kErrInvalidDeviceId;
  const gpurm::fakes::PciAddress a = gpurm::fakes::ParseBusId(chip->value("bus_id", ""));
  std::memset(info, 0, sizeof(*info));
  info->venderid = 0x19e5;
  info->domain = static_cast<int>(a.domain);
  info->bdf_busid = a.bus;
  info->bdf_deviceid = a.device;
  info->bdf_funcid = a.function;
  return dcmi::kOk;
}

int dcmi_get_device_hbm_info(int card_id, int device_id, dcmi::HbmInfo* hbm) {
  const json* chip = Chip(card_id, device_id);
  if (chip == nullptr) return dcmi::kErrInvalidDeviceId;
  if (const int rc = Scripted(*chip, "dcmi_get_device_hbm_info"); rc != dcmi::kOk) return rc;
  if (!chip->contains("hbm_total_mb")) return dcmi::kErrNotSupported;
  std::memset(hbm, 0, sizeof(*hbm));
  hbm->memory_size = (*chip)["hbm_total_mb"].get<unsigned long long>();
  hbm->memory_usage = chip->value("hbm_used_mb", 0ULL);
  hbm->bandwith_util_rate = chip->value("hbm_bandwidth_percent", 0U);
  return dcmi::kOk;
}

int dcmi_get_device_memory_info_v3(int card_id, int device_id, dcmi::MemoryInfo* memory) {
  const json* chip = Chip(card_id, device_id);
  if (chip == nullptr) return dcmi::kErrInvalidDeviceId;
  if (const int rc = Scripted(*chip, "dcmi_get_device_memory_info_v3"); rc != dcmi::kOk) return rc;
  if (!chip->contains("ddr_total_mb")) return dcmi::kErrNotSupported;
  std::memset(memory, 0, sizeof(*memory));
  memory->memory_size = (*chip)["ddr_total_mb"].get<unsigned long long>();
  memory->memory_available = chip->value("ddr_available_mb", 0ULL);
  return dcmi::kOk;
}

int dcmi_get_device_utilization_rate(int card_id, int device_id, int input_type,
                                     unsigned int* rate) {
  if (input_type != dcmi::kUtilizationAiCore) return dcmi::kErrNotSupported;
  return Field(card_id, device_id, "aicore_percent", "dcmi_get_device_utilization_rate", rate);
}

int dcmi_get_device_temperature(int card_id, int device_id, int* temperature) {
  return Field(card_id, device_id, "temperature_c", "dcmi_get_device_temperature", temperature);
}

int dcmi_get_device_power_info(int card_id, int device_id, int* power) {
  return Field(card_id, device_id, "power_deciwatts", "dcmi_get_device_power_info", power);
}

int dcmi_get_device_health(int card_id, int device_id, unsigned int* health) {
  return Field(card_id, device_id, "health", "dcmi_get_device_health", health);
}

}  // extern "C"
