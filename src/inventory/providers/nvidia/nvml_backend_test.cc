// The NVML back end against the fake libnvidia-ml.so.1 (tests/fakes/nvml),
// loaded by path: a current driver serving scripted machines, and a driver
// without the versioned entry points.
#include "inventory/providers/nvidia/nvml_backend.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "inventory/providers/common/test_support.h"

namespace gpurm {
namespace {

using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using testing::FakeMachine;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::ScopedEnv;

constexpr char kMachineVariable[] = "GPURM_FAKE_NVML_MACHINE";

struct Scan {
  VendorScan scan;
  std::vector<std::string> notes;  // From the refresh.
};

// Discover, then one refresh, as the local provider does.
Scan RunBackend(VendorBackend& backend, const sysfs::PciListing& pci = {}) {
  Scan out;
  out.scan = backend.Discover(pci);
  testing::SampleAll(backend, &out.scan.gpus, &out.notes);
  return out;
}

std::unique_ptr<VendorBackend> Backend(const std::string& library) {
  return MakeNvmlBackend({library}, BackendContext{"node-a", {}});
}

TEST(NvmlBackendTest, ReadsAnEightGpuH100NodeWithNvLink) {
  ScopedEnv machine(kMachineVariable, FakeMachine("nvml_h100x8.json"));
  auto backend = Backend(GPURM_FAKE_NVML);
  EXPECT_EQ(backend->vendor(), "nvidia");
  const Scan run = RunBackend(*backend);

  EXPECT_TRUE(run.scan.settled);
  EXPECT_THAT(run.scan.notes, ElementsAre("nvidia: NVML 12.550.54.15, driver 550.54.15, 8 GPU(s)"));
  EXPECT_THAT(run.notes, IsEmpty());
  const std::vector<std::string> bus = {"1b", "43", "52", "61", "9d", "c3", "d1", "df"};
  ASSERT_EQ(run.scan.gpus.size(), 8u);
  for (int i = 0; i < 8; ++i) {
    SCOPED_TRACE("GPU " + std::to_string(i));
    const Gpu& gpu = run.scan.gpus[i];
    EXPECT_EQ(gpu.index, i);
    EXPECT_EQ(gpu.pci_bus_id, "0000:" + bus[i] + ":00.0");
    EXPECT_THAT(gpu.uuid, HasSubstr("GPU-"));
    EXPECT_EQ(gpu.model.raw_name, "NVIDIA H100 80GB HBM3");
    EXPECT_EQ(gpu.model.canonical, "H100");
    EXPECT_EQ(gpu.memory_total_mib, 81559);
    // used = total - free: the driver's 512 MiB reservation counts as used.
    EXPECT_EQ(gpu.memory_used_mib, 512 + 1024 * i);
    EXPECT_DOUBLE_EQ(gpu.utilization, 0.10 * i);
    EXPECT_DOUBLE_EQ(gpu.memory_utilization, 0.05 * i);
    EXPECT_EQ(gpu.temperature_c, 30.0 + i);
    EXPECT_EQ(gpu.power_w, 70.0 + 10.0 * i);
    EXPECT_EQ(gpu.power_limit_w, 700.0);
    EXPECT_EQ(gpu.sm_clock_mhz, 1980);
    EXPECT_EQ(gpu.ecc_double_bit_errors, 0);
    EXPECT_FALSE(gpu.mig_enabled);
    EXPECT_EQ(gpu.nvlink_group, 0);  // All-to-all: one island.
    EXPECT_TRUE(gpu.healthy) << gpu.health_reason;
    EXPECT_EQ(gpu.memory_used_by_managed_mib, 0);
    ASSERT_EQ(gpu.processes.size(), static_cast<size_t>(i % 3));
    for (size_t p = 0; p < gpu.processes.size(); ++p) {
      EXPECT_EQ(gpu.processes[p].pid, 4200 + 10 * i + static_cast<int>(p));
      EXPECT_EQ(gpu.processes[p].memory_used_mib, 512 * static_cast<int64_t>(p + 1));
    }
  }
}

TEST(NvmlBackendTest, FailingGpusAreUnhealthyAndTheRestStillWork) {
  ScopedEnv machine(kMachineVariable, FakeMachine("nvml_failing.json"));
  auto backend = Backend(GPURM_FAKE_NVML);
  Scan run = RunBackend(*backend);
  ASSERT_EQ(run.scan.gpus.size(), 6u);
  const std::vector<Gpu>& gpus = run.scan.gpus;

  // XID 13 is an application error; the power call failing loses that value only.
  EXPECT_TRUE(gpus[0].healthy) << gpus[0].health_reason;
  EXPECT_FALSE(gpus[0].power_w.has_value());
  EXPECT_EQ(gpus[0].temperature_c, 40.0);
  EXPECT_THAT(run.notes, Contains(AllOf(HasSubstr("GPU 0 (GPU-a100-0)"), HasSubstr("XID 13"),
                                        HasSubstr("application error"))));
  EXPECT_THAT(run.notes,
              Contains("nvidia: GPU 0 (GPU-a100-0): power: nvmlDeviceGetPowerUsage failed: "
                       "Unknown Error (NVML error 999)"));

  EXPECT_FALSE(gpus[1].healthy);
  EXPECT_EQ(gpus[1].health_reason, "XID 79");
  // The latest XID of each GPU, application XIDs included (DCGM_FI_DEV_XID_ERRORS).
  EXPECT_EQ(gpus[0].last_xid, 13);
  EXPECT_EQ(gpus[1].last_xid, 79);
  EXPECT_EQ(gpus[2].last_xid, 0);
  EXPECT_FALSE(gpus[2].healthy);
  EXPECT_EQ(gpus[2].health_reason, "2 volatile double-bit ECC error(s)");
  EXPECT_FALSE(gpus[3].healthy);
  EXPECT_THAT(gpus[3].health_reason, HasSubstr("memory unreadable"));
  // A GPU NVML will not hand out keeps its place (indices stay CUDA's).
  EXPECT_FALSE(gpus[4].healthy);
  EXPECT_EQ(gpus[4].index, 4);
  EXPECT_EQ(gpus[4].uuid, "node-a-nvidia-4");
  EXPECT_THAT(gpus[4].health_reason, HasSubstr("GPU is lost (NVML error 15)"));
  EXPECT_THAT(run.scan.notes, Contains(HasSubstr("nvidia: GPU 4: nvmlDeviceGetHandleByIndex")));
  EXPECT_FALSE(gpus[5].healthy);
  EXPECT_EQ(gpus[5].health_reason, "double-bit ECC error event");
  EXPECT_TRUE(gpus[5].mig_enabled);

  // Islands: 0-1 are linked, the others are alone.
  EXPECT_EQ(gpus[0].nvlink_group, 0);
  EXPECT_EQ(gpus[1].nvlink_group, 0);
  EXPECT_EQ(gpus[2].nvlink_group, -1);

  // Events are delivered once, but a GPU they broke stays unhealthy.
  std::vector<std::string> notes;
  testing::SampleAll(*backend, &run.scan.gpus, &notes);
  EXPECT_FALSE(run.scan.gpus[1].healthy);
  EXPECT_EQ(run.scan.gpus[1].health_reason, "XID 79");
  EXPECT_EQ(run.scan.gpus[1].last_xid, 79);
  EXPECT_FALSE(run.scan.gpus[5].healthy);
  EXPECT_TRUE(run.scan.gpus[0].healthy);
}

TEST(NvmlBackendTest, DriverWithoutVersionedEntryPointsStillWorks) {
  ScopedEnv machine(kMachineVariable, FakeMachine("nvml_old_driver.json"));
  auto backend = Backend(GPURM_FAKE_NVML_OLD);
  const Scan run = RunBackend(*backend);
  EXPECT_THAT(run.scan.notes,
              ElementsAre("nvidia: NVML 10.418.87.01, driver 418.87.01, 2 GPU(s) (driver "
                          "without the _v2 entry points)"));
  EXPECT_THAT(run.notes, IsEmpty());
  ASSERT_EQ(run.scan.gpus.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    SCOPED_TRACE("GPU " + std::to_string(i));
    const Gpu& gpu = run.scan.gpus[i];
    EXPECT_EQ(gpu.model.canonical, "V100");
    EXPECT_EQ(gpu.pci_bus_id, i == 0 ? "0000:3b:00.0" : "0000:3c:00.0");  // The legacy field.
    EXPECT_EQ(gpu.memory_total_mib, 32510);
    EXPECT_EQ(gpu.memory_used_mib, 1000 * (i + 1));
    EXPECT_DOUBLE_EQ(gpu.utilization, (50 + i) / 100.0);
    EXPECT_EQ(gpu.nvlink_group, 0);
    EXPECT_FALSE(gpu.mig_enabled);  // No nvmlDeviceGetMigMode in that driver.
    EXPECT_TRUE(gpu.healthy);
    // The original process call fills 16-byte records: read with that stride.
    ASSERT_EQ(gpu.processes.size(), 1u);
    EXPECT_EQ(gpu.processes[0].pid, 777 + i);
    EXPECT_EQ(gpu.processes[0].memory_used_mib, 900);
  }
}

// A DGX-H100-like machine: GPUs 4 and 5 in MIG mode (two 3g.40gb; a 2g.20gb,
// two 1g.10gb with a destroyed instance between them, and a 3g.40gb), the
// other six whole.
TEST(NvmlBackendTest, MigDevicesAreUnitsOfTheirGpuAfterAllGpus) {
  ScopedEnv machine(kMachineVariable, FakeMachine("nvml_dgx_h100_mig.json"));
  auto backend = Backend(GPURM_FAKE_NVML);
  const Scan run = RunBackend(*backend);
  EXPECT_THAT(run.scan.notes,
              ElementsAre("nvidia: NVML 12.550.54.15, driver 550.54.15, 8 GPU(s), 6 MIG "
                          "device(s) on 2 GPU(s) in MIG mode"));
  EXPECT_THAT(run.notes, IsEmpty());
  const std::vector<Gpu>& gpus = run.scan.gpus;
  ASSERT_EQ(gpus.size(), 14u);
  for (int i = 0; i < 8; ++i) {
    SCOPED_TRACE("GPU " + std::to_string(i));
    EXPECT_EQ(gpus[i].index, i);
    EXPECT_FALSE(gpus[i].is_mig_device());
    EXPECT_EQ(gpus[i].mig_enabled, i == 4 || i == 5);
    EXPECT_TRUE(gpus[i].allocatable_unit() == !(i == 4 || i == 5));
    // NVML gives no utilization for a GPU in MIG mode: unavailable, not 0.
    EXPECT_EQ(gpus[i].utilization_available, !(i == 4 || i == 5));
    EXPECT_EQ(gpus[i].memory_total_mib, 81559);
    EXPECT_TRUE(gpus[i].healthy) << gpus[i].health_reason;
  }
  struct Expected {
    int parent;
    std::string uuid;
    std::string profile;
    int64_t total_mib;
    int64_t used_mib;
  };
  const std::vector<Expected> expected = {
      {4, "MIG-00000004-0000-4000-8000-000000000000", "3g.40gb", 40320, 13},
      {4, "MIG-00000004-0000-4000-8000-000000000001", "3g.40gb", 40320, 2061},
      {5, "MIG-00000005-0000-4000-8000-000000000000", "2g.20gb", 20096, 13},
      {5, "MIG-00000005-0000-4000-8000-000000000001", "1g.10gb", 9984, 1037},
      {5, "MIG-00000005-0000-4000-8000-000000000002", "1g.10gb", 9984, 13},
      {5, "MIG-00000005-0000-4000-8000-000000000003", "3g.40gb", 40320, 13},
  };
  for (size_t m = 0; m < expected.size(); ++m) {
    SCOPED_TRACE("MIG device " + std::to_string(m));
    const Gpu& mig = gpus[8 + m];
    const Gpu& parent = gpus[static_cast<size_t>(expected[m].parent)];
    EXPECT_TRUE(mig.is_mig_device());
    EXPECT_TRUE(mig.allocatable_unit());
    EXPECT_EQ(mig.index, expected[m].parent);
    EXPECT_EQ(mig.uuid, expected[m].uuid);
    EXPECT_EQ(mig.mig_parent_uuid, parent.uuid);
    EXPECT_EQ(mig.mig_profile, expected[m].profile);
    EXPECT_EQ(mig.pci_bus_id, parent.pci_bus_id);
    EXPECT_EQ(mig.model.raw_name, "NVIDIA H100 80GB HBM3 MIG " + expected[m].profile);
    EXPECT_EQ(mig.model.canonical, "H100");
    EXPECT_EQ(GpuTypeLabel(mig), "H100 MIG " + expected[m].profile);
    EXPECT_EQ(mig.memory_total_mib, expected[m].total_mib);  // As the device reports it.
    EXPECT_EQ(mig.memory_used_mib, expected[m].used_mib);
    EXPECT_FALSE(mig.utilization_available);
    EXPECT_FALSE(mig.temperature_c.has_value());
    EXPECT_EQ(mig.nvlink_group, -1);
    EXPECT_TRUE(mig.healthy) << mig.health_reason;
  }
  ASSERT_EQ(gpus[11].processes.size(), 1u);
  EXPECT_EQ(gpus[11].processes[0].pid, 5051);
  EXPECT_EQ(gpus[11].processes[0].memory_used_mib, 1024);
}

// Without the GPU instance queries the profile comes from the device's
// attributes, as GPU Feature Discovery names it.
TEST(NvmlBackendTest, MigProfileFromAttributesWhenGpuInstancesCannotBeRead) {
  const std::string path = ::testing::TempDir() + "/nvml_mig_no_gi.json";
  {
    std::ifstream in(FakeMachine("nvml_dgx_h100_mig.json"));
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // GPU 4 refuses the GPU instance lookup (e.g. without privileges).
    const std::string marker = "\"uuid\": \"GPU-abc00004-0000-4000-8000-000000000004\",";
    const size_t at = text.find(marker);
    ASSERT_NE(at, std::string::npos);
    text.insert(at + marker.size(), "\"errors\": {\"nvmlDeviceGetGpuInstanceById\": 4},");
    std::ofstream(path) << text;
  }
  ScopedEnv machine(kMachineVariable, path);
  auto backend = Backend(GPURM_FAKE_NVML);
  const Scan run = RunBackend(*backend);
  ASSERT_EQ(run.scan.gpus.size(), 14u);
  EXPECT_EQ(run.scan.gpus[8].mig_profile, "3g.40gb");  // 3 slices, 40320 MiB -> 40 GB.
  EXPECT_EQ(run.scan.gpus[10].mig_profile, "2g.20gb");
}

TEST(NvmlBackendTest, OldDriverWithoutMigQueriesOffersNoMigDevices) {
  ScopedEnv machine(kMachineVariable, FakeMachine("nvml_dgx_h100_mig.json"));
  auto backend = Backend(GPURM_FAKE_NVML_OLD);
  const Scan run = RunBackend(*backend);
  // That driver cannot tell MIG mode either: 8 GPUs, no MIG devices.
  EXPECT_EQ(run.scan.gpus.size(), 8u);
}

TEST(NvmlBackendTest, MissingLibraryIsANoteAndNoGpus) {
  auto backend = Backend("/nonexistent/libnvidia-ml.so.1");
  const Scan run = RunBackend(*backend);
  EXPECT_TRUE(run.scan.settled);
  EXPECT_THAT(run.scan.gpus, IsEmpty());
  EXPECT_THAT(run.scan.notes,
              ElementsAre("nvidia: /nonexistent/libnvidia-ml.so.1 not found (no NVIDIA driver)"));
}

TEST(NvmlBackendTest, MissingLibraryWithNvidiaGpusOnPciSaysSo) {
  sysfs::PciListing pci;
  pci.accelerators.push_back({"0000:17:00.0", {}, sysfs::kVendorNvidia, 0x20b2});
  auto backend = Backend("/nonexistent/libnvidia-ml.so.1");
  const Scan run = RunBackend(*backend, pci);
  EXPECT_THAT(run.scan.notes,
              ElementsAre("nvidia: 1 GPU(s) on PCI (0000:17:00.0) but "
                          "/nonexistent/libnvidia-ml.so.1 not found: install the NVIDIA driver, "
                          "or start with --inventory FILE"));
}

TEST(NvmlBackendTest, ALibraryThatIsNotNvmlIsANote) {
  auto backend = Backend(GPURM_FAKE_ROCM_SMI);
  const Scan run = RunBackend(*backend);
  EXPECT_THAT(run.scan.gpus, IsEmpty());
  ASSERT_EQ(run.scan.notes.size(), 1u);
  EXPECT_THAT(run.scan.notes[0],
              HasSubstr("does not export nvmlInit_v2: not a usable NVML library"));
}

TEST(NvmlBackendTest, AnUnloadableLibraryIsANote) {
  const std::string path = ::testing::TempDir() + "/libnvidia-ml.so.1";
  std::ofstream(path) << "not an ELF file\n";
  auto backend = Backend(path);
  const Scan run = RunBackend(*backend);
  EXPECT_THAT(run.scan.gpus, IsEmpty());
  ASSERT_EQ(run.scan.notes.size(), 1u);
  EXPECT_THAT(run.scan.notes[0], HasSubstr("nvidia: cannot load " + path + ": "));
}

TEST(NvmlBackendTest, InitFailureIsRetriedLater) {
  ScopedEnv machine(kMachineVariable, std::nullopt);  // The fake driver is "not loaded".
  auto backend = Backend(GPURM_FAKE_NVML);
  const Scan run = RunBackend(*backend);
  EXPECT_FALSE(run.scan.settled);
  EXPECT_THAT(run.scan.gpus, IsEmpty());
  EXPECT_THAT(run.scan.notes,
              ElementsAre("nvidia: nvmlInit_v2 failed: Driver Not Loaded (NVML error 9)"));

  ScopedEnv loaded(kMachineVariable, FakeMachine("nvml_old_driver.json"));
  const Scan again = RunBackend(*backend);
  EXPECT_TRUE(again.scan.settled);
  EXPECT_EQ(again.scan.gpus.size(), 2u);
}

}  // namespace
}  // namespace gpurm
