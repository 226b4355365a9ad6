// FakeMachineEnvironment: points the local discovery of every daemon the
// test starts from now on (DaemonProcess forks with this process's
// environment) at the fakes of tests/fakes instead of this host's drivers:
// an empty sysfs tree, no AMD, Intel or Ascend library, and the fake NVML
// serving a scripted machine (or no NVIDIA driver at all). The destructor
// unsets every variable it set. Not thread-safe (setenv).
#ifndef GPURM_TESTS_SUPPORT_FAKE_MACHINE_ENVIRONMENT_H_
#define GPURM_TESTS_SUPPORT_FAKE_MACHINE_ENVIRONMENT_H_

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>

namespace gpurm::testing {

class FakeMachineEnvironment {
 public:
  // `dir` gets the empty sysfs tree; `fake_nvml` is the fake
  // libnvidia-ml.so.1 (the test target's GPURM_FAKE_NVML).
  FakeMachineEnvironment(const std::string& dir, std::string fake_nvml)
      : fake_nvml_(std::move(fake_nvml)) {
    std::filesystem::create_directories(dir + "/sys/bus/pci/devices");
    setenv("GPURM_SYSFS_ROOT", dir.c_str(), 1);
    setenv("GPURM_ROCM_SMI_LIBRARY", "/nonexistent/librocm_smi64.so.1", 1);
    setenv("GPURM_LEVEL_ZERO_LIBRARY", "/nonexistent/libze_loader.so.1", 1);
    setenv("GPURM_DCMI_LIBRARY", "/nonexistent/libdcmi.so", 1);
    SetNvmlMachine(std::nullopt);
  }
  ~FakeMachineEnvironment() {
    for (const char* name : {"GPURM_SYSFS_ROOT", "GPURM_NVML_LIBRARY", "GPURM_ROCM_SMI_LIBRARY",
                             "GPURM_LEVEL_ZERO_LIBRARY", "GPURM_DCMI_LIBRARY",
                             "GPURM_FAKE_NVML_MACHINE", "GPURM_NODE_NAME"}) {
      unsetenv(name);
    }
  }
  FakeMachineEnvironment(const FakeMachineEnvironment&) = delete;
  FakeMachineEnvironment& operator=(const FakeMachineEnvironment&) = delete;

  // The fake NVML serving `machine_file` (tests/fakes/machines/README.md),
  // or, with nullopt, no NVIDIA driver.
  void SetNvmlMachine(const std::optional<std::string>& machine_file) {
    if (machine_file) {
      setenv("GPURM_NVML_LIBRARY", fake_nvml_.c_str(), 1);
      setenv("GPURM_FAKE_NVML_MACHINE", machine_file->c_str(), 1);
    } else {
      setenv("GPURM_NVML_LIBRARY", "/nonexistent/libnvidia-ml.so.1", 1);
      unsetenv("GPURM_FAKE_NVML_MACHINE");
    }
  }
  // The node name the next daemons give their machine (GPURM_NODE_NAME).
  void SetNodeName(const std::string& name) { setenv("GPURM_NODE_NAME", name.c_str(), 1); }

 private:
  std::string fake_nvml_;
};

// Writes a fake NVML machine to `path`: the first two H100s of
// `machines_dir`/nvml_h100x8.json (the test target's GPURM_FAKE_MACHINES)
// without NVLink peers, GPU `busy_gpu` running `processes` ({pid,
// used_mib}); with a `uuid_prefix` their uuids are "<prefix>-0" and
// "<prefix>-1" (machines of several agents must not share uuids).
inline void WriteTwoH100Machine(const std::string& machines_dir, const std::string& path,
                                int busy_gpu, const nlohmann::json& processes,
                                const std::string& uuid_prefix = "") {
  std::ifstream in(machines_dir + "/nvml_h100x8.json");
  nlohmann::json machine = nlohmann::json::parse(in);
  nlohmann::json gpus = nlohmann::json::array();
  for (int i = 0; i < 2; ++i) {
    nlohmann::json gpu = machine["gpus"][i];
    if (!uuid_prefix.empty()) gpu["uuid"] = uuid_prefix + "-" + std::to_string(i);
    gpu.erase("nvlink_peers");
    gpu["processes"] = i == busy_gpu ? processes : nlohmann::json::array();
    gpus.push_back(gpu);
  }
  machine["gpus"] = gpus;
  std::ofstream(path) << machine.dump();
}

}  // namespace gpurm::testing

#endif  // GPURM_TESTS_SUPPORT_FAKE_MACHINE_ENVIRONMENT_H_
