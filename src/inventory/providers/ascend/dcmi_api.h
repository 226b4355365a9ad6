// The few parts of Huawei's DCMI (Ascend NPU management library, libdcmi.so)
// gpurm uses, declared from Huawei's public DCMI API reference because the
// header ships only with the Ascend driver. Types and layouts follow that
// reference; all functions return 0 on success and a negative DCMI error code
// otherwise. Only the Ascend back end includes this file.
#ifndef GPURM_INVENTORY_PROVIDERS_ASCEND_DCMI_API_H_
#define GPURM_INVENTORY_PROVIDERS_ASCEND_DCMI_API_H_

namespace gpurm::dcmi {

inline constexpr int kOk = 0;
// Error codes (dcmi_interface_api.h, DCMI_ERR_CODE_*).
inline constexpr int kErrInvalidParameter = -8001;
inline constexpr int kErrOperationNotPermitted = -8002;
inline constexpr int kErrTimeout = -8006;
inline constexpr int kErrInvalidDeviceId = -8007;
inline constexpr int kErrDeviceNotExist = -8008;
inline constexpr int kErrNotReady = -8012;
inline constexpr int kErrNotSupportedInContainer = -8013;
inline constexpr int kErrNotSupported = -8255;

// dcmi_get_device_utilization_rate input types.
inline constexpr int kUtilizationAiCore = 2;
inline constexpr int kUtilizationHbmBandwidth = 10;

// dcmi_get_device_health: 0 normal, 1 minor alarm, 2 major alarm, 3 critical.
inline constexpr unsigned int kHealthMajor = 2;

inline constexpr int kMaxChipNameLength = 32;

struct ChipInfo {  // struct dcmi_chip_info
  unsigned char chip_type[kMaxChipNameLength];
  unsigned char chip_name[kMaxChipNameLength];  // "910B3"
  unsigned char chip_ver[kMaxChipNameLength];
  unsigned int aicore_cnt;
};

struct HbmInfo {  // struct dcmi_hbm_info; sizes in MB.
  unsigned long long memory_size;
  unsigned int freq;
  unsigned long long memory_usage;
  int temp;
  unsigned int bandwith_util_rate;
};

struct MemoryInfo {  // struct dcmi_get_memory_info_stru (96 bytes); sizes in MB.
  unsigned long long memory_size;
  unsigned long long memory_available;
  unsigned int freq;
  unsigned long hugepagesize;
  unsigned long hugepages_total;
  unsigned long hugepages_free;
  unsigned int utiliza;
  unsigned char reserve[60];
};

struct PcieInfo {  // struct dcmi_pcie_info_all (64 bytes)
  unsigned int venderid;
  unsigned int subvenderid;
  unsigned int deviceid;
  unsigned int subdeviceid;
  int domain;
  unsigned int bdf_busid;
  unsigned int bdf_deviceid;
  unsigned int bdf_funcid;
  unsigned char reserve[32];
};

using InitFn = int (*)();
using GetDriverVersionFn = int (*)(char* driver_version, unsigned int length);
// dcmi_get_card_num_list (older name dcmi_get_card_list): card ids into `card_list`.
using GetCardListFn = int (*)(int* card_num, int* card_list, int list_len);
using GetDeviceNumInCardFn = int (*)(int card_id, int* device_num);
using GetChipInfoFn = int (*)(int card_id, int device_id, ChipInfo* chip_info);
// dcmi_get_device_pcie_info_v2 (the original fills a shorter struct).
using GetPcieInfoFn = int (*)(int card_id, int device_id, PcieInfo* pcie_info);
using GetHbmInfoFn = int (*)(int card_id, int device_id, HbmInfo* hbm_info);
using GetMemoryInfoFn = int (*)(int card_id, int device_id, MemoryInfo* memory_info);
using GetUtilizationFn = int (*)(int card_id, int device_id, int input_type,
                                 unsigned int* utilization_rate);
using GetTemperatureFn = int (*)(int card_id, int device_id, int* temperature);  // Celsius.
using GetPowerFn = int (*)(int card_id, int device_id, int* power);              // 0.1 W units.
using GetHealthFn = int (*)(int card_id, int device_id, unsigned int* health);

}  // namespace gpurm::dcmi

#endif  // GPURM_INVENTORY_PROVIDERS_ASCEND_DCMI_API_H_
