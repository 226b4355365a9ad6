// The AMD back end against the fake librocm_smi64.so.1 (tests/fakes/rocm_smi)
// and against fake amdgpu sysfs trees.
#include "inventory/providers/amd/amd_backend.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "inventory/providers/common/test_support.h"

namespace gpurm {
namespace {

using ::testing::ElementsAre;
using testing::FakeMachine;
using testing::FakeSysfs;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::ScopedEnv;

constexpr char kMachineVariable[] = "GPURM_FAKE_ROCM_SMI_MACHINE";

void AddAmdFunction(FakeSysfs& tree, const std::string& bus_id) {
  tree.AddDevice(bus_id, {{"class", "0x038000"}, {"vendor", "0x1002"}, {"device", "0x740c"}});
}

std::vector<Gpu> RunBackend(VendorBackend& backend, const sysfs::PciListing& pci, VendorScan* scan,
                            std::vector<std::string>* notes) {
  *scan = backend.Discover(pci);
  testing::SampleAll(backend, &scan->gpus, notes);
  return scan->gpus;
}

TEST(AmdBackendTest, ReadsGpusThroughRocmSmi) {
  FakeSysfs tree("amd_rocm_smi");
  AddAmdFunction(tree, "0000:c1:00.0");
  AddAmdFunction(tree, "0000:c2:00.0");
  tree.AddDevice("0000:c1:00.0", {{"product_name", "AMD Instinct MI250X"}, {"numa_node", "1"}});
  ScopedEnv machine(kMachineVariable, FakeMachine("rocm_smi_mi250x.json"));
  auto backend = MakeAmdBackend({GPURM_FAKE_ROCM_SMI}, {"node-a", {}});
  VendorScan scan;
  std::vector<std::string> notes;
  const std::vector<Gpu> gpus =
      RunBackend(*backend, sysfs::ListPciAccelerators(tree.root()), &scan, &notes);

  EXPECT_THAT(scan.notes, ElementsAre("amd: ROCm SMI 5.7.0, 2 GPU(s)"));
  EXPECT_THAT(notes, IsEmpty());
  ASSERT_EQ(gpus.size(), 2u);
  EXPECT_EQ(gpus[0].uuid, "node-a-0000:c1:00.0");
  EXPECT_EQ(gpus[0].pci_bus_id, "0000:c1:00.0");
  EXPECT_EQ(gpus[0].model.raw_name, "AMD Instinct MI250X");  // sysfs product_name first.
  EXPECT_EQ(gpus[0].model.canonical, "MI250X");
  EXPECT_EQ(gpus[0].numa_node, 1);
  EXPECT_EQ(gpus[0].memory_total_mib, 65520);
  EXPECT_EQ(gpus[0].memory_used_mib, 2048);
  EXPECT_DOUBLE_EQ(gpus[0].utilization, 0.37);
  EXPECT_DOUBLE_EQ(gpus[0].memory_utilization, 0.05);
  EXPECT_EQ(gpus[0].temperature_c, 45.0);  // Junction: there is no edge sensor.
  EXPECT_EQ(gpus[0].power_w, 120.0);
  EXPECT_EQ(gpus[0].power_limit_w, 500.0);
  EXPECT_TRUE(gpus[0].healthy);
  // The second has no product_name: ROCm SMI's name, which names both models.
  EXPECT_EQ(gpus[1].model.raw_name, "Aldebaran/MI200 [Instinct MI250X/MI250]");
  EXPECT_EQ(gpus[1].temperature_c, 40.0);
  EXPECT_FALSE(gpus[1].power_w.has_value());
  EXPECT_FALSE(gpus[1].healthy);
  EXPECT_EQ(gpus[1].health_reason, "3 uncorrectable ECC error(s)");
  // xGMI links make one island.
  EXPECT_EQ(gpus[0].nvlink_group, 0);
  EXPECT_EQ(gpus[1].nvlink_group, 0);
}

TEST(AmdBackendTest, FallsBackToAmdgpuSysfsWhenRocmSmiFails) {
  FakeSysfs tree("amd_sysfs");
  AddAmdFunction(tree, "0000:c1:00.0");
  tree.AddDevice("0000:c1:00.0", {{"mem_info_vram_total", "68702699520"},  // 65520 MiB
                                  {"mem_info_vram_used", "2147483648"},
                                  {"gpu_busy_percent", "37"},
                                  {"product_name", "AMD Instinct MI210"},
                                  {"hwmon/hwmon4/temp1_input", "45000"},
                                  {"ras/umc_err_count", "ue: 1\nce: 7"}});
  ScopedEnv machine(kMachineVariable, std::nullopt);  // rsmi_init fails.
  auto backend = MakeAmdBackend({GPURM_FAKE_ROCM_SMI}, {"node-a", {}});
  VendorScan scan;
  std::vector<std::string> notes;
  const std::vector<Gpu> gpus =
      RunBackend(*backend, sysfs::ListPciAccelerators(tree.root()), &scan, &notes);
  ASSERT_EQ(scan.notes.size(), 1u);
  EXPECT_THAT(scan.notes[0], HasSubstr("amd: rsmi_init failed: RSMI_STATUS_INIT_ERROR"));
  EXPECT_THAT(scan.notes[0], HasSubstr("; amdgpu sysfs: 1 GPU(s)"));
  ASSERT_EQ(gpus.size(), 1u);
  EXPECT_EQ(gpus[0].model.canonical, "MI210");
  EXPECT_EQ(gpus[0].memory_used_mib, 2048);
  EXPECT_EQ(gpus[0].temperature_c, 45.0);
  EXPECT_EQ(gpus[0].ecc_double_bit_errors, 1);
  EXPECT_FALSE(gpus[0].healthy);
}

TEST(AmdBackendTest, NoAmdGpuOnPciLoadsNothing) {
  FakeSysfs tree("amd_none");
  auto backend = MakeAmdBackend({GPURM_FAKE_ROCM_SMI}, {"node-a", {}});
  VendorScan scan;
  std::vector<std::string> notes;
  EXPECT_THAT(RunBackend(*backend, sysfs::ListPciAccelerators(tree.root()), &scan, &notes),
              IsEmpty());
  EXPECT_THAT(scan.notes, ElementsAre("amd: no AMD GPU on PCI"));
}

TEST(AmdBackendTest, MissingLibraryAndNoDriverIsANote) {
  FakeSysfs tree("amd_no_driver");
  AddAmdFunction(tree, "0000:c1:00.0");
  auto backend = MakeAmdBackend({"/nonexistent/librocm_smi64.so.1"}, {"node-a", {}});
  VendorScan scan;
  std::vector<std::string> notes;
  EXPECT_THAT(RunBackend(*backend, sysfs::ListPciAccelerators(tree.root()), &scan, &notes),
              IsEmpty());
  EXPECT_THAT(scan.notes,
              ElementsAre("amd: /nonexistent/librocm_smi64.so.1 not found; amdgpu sysfs: 0 GPU(s)",
                          HasSubstr("amd: 1 GPU(s) on PCI (0000:c1:00.0) without amdgpu memory "
                                    "info")));
}

}  // namespace
}  // namespace gpurm
