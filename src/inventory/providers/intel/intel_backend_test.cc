// The Intel back end against the fake libze_loader.so.1 (tests/fakes/level_zero)
// and against fake i915/xe sysfs trees.
#include "inventory/providers/intel/intel_backend.h"

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

void AddIntelFunction(FakeSysfs& tree, const std::string& bus_id, const std::string& device) {
  tree.AddDevice(bus_id, {{"class", "0x038000"}, {"vendor", "0x8086"}, {"device", device}});
}

TEST(IntelBackendTest, ReadsGpusThroughLevelZeroSysman) {
  FakeSysfs tree("intel_level_zero");
  AddIntelFunction(tree, "0000:3a:00.0", "0x0bd5");
  AddIntelFunction(tree, "0000:9a:00.0", "0x0bd5");
  ScopedEnv machine("GPURM_FAKE_ZE_MACHINE", FakeMachine("level_zero_max1550.json"));
  auto backend = MakeIntelBackend({GPURM_FAKE_ZE_LOADER}, {"node-a", {}});
  VendorScan scan = backend->Discover(sysfs::ListPciAccelerators(tree.root()));
  EXPECT_THAT(scan.notes, ElementsAre("intel: Level Zero Sysman, 2 GPU(s)"));
  std::vector<std::string> notes;
  testing::SampleAll(*backend, &scan.gpus, &notes);
  ASSERT_EQ(scan.gpus.size(), 2u);
  const Gpu& gpu = scan.gpus[0];
  EXPECT_EQ(gpu.uuid, "node-a-0000:3a:00.0");
  EXPECT_EQ(gpu.model.canonical, "MAX1550");
  EXPECT_EQ(gpu.memory_total_mib, 131072);  // Two tiles.
  EXPECT_EQ(gpu.memory_used_mib, 4096);
  EXPECT_EQ(gpu.temperature_c, 41.5);
  // Utilization and power come from counter deltas: unknown after one sample.
  EXPECT_EQ(gpu.utilization, 0.0);
  EXPECT_FALSE(gpu.power_w.has_value());
  EXPECT_TRUE(gpu.healthy);
  EXPECT_FALSE(scan.gpus[1].healthy);
  EXPECT_EQ(scan.gpus[1].health_reason, "the device needs a reset (zesDeviceGetState)");

  testing::SampleAll(*backend, &scan.gpus, &notes);
  EXPECT_DOUBLE_EQ(scan.gpus[0].utilization, 0.25);
  EXPECT_EQ(scan.gpus[0].power_w, 300.0);
  EXPECT_THAT(notes, IsEmpty());
}

TEST(IntelBackendTest, FallsBackToXeAndI915Sysfs) {
  FakeSysfs tree("intel_sysfs");
  AddIntelFunction(tree, "0000:00:02.0", "0x46a6");  // Integrated: no local memory.
  AddIntelFunction(tree, "0000:3a:00.0", "0x0bd5");  // xe, two tiles.
  tree.AddDevice("0000:3a:00.0", {{"tile0/physical_vram_size_bytes", "68719476736"},
                                  {"tile1/physical_vram_size_bytes", "68719476736"},
                                  {"hwmon/hwmon2/temp1_input", "38000"}});
  AddIntelFunction(tree, "0000:4d:00.0", "0x56c0");  // Out-of-tree i915.
  tree.AddDevice("0000:4d:00.0", {{"drm/card1/lmem_total_bytes", "17179869184"}});
  auto backend = MakeIntelBackend({"/nonexistent/libze_loader.so.1"}, {"node-a", {}});
  VendorScan scan = backend->Discover(sysfs::ListPciAccelerators(tree.root()));
  std::vector<std::string> notes;
  testing::SampleAll(*backend, &scan.gpus, &notes);
  EXPECT_THAT(scan.notes,
              ElementsAre("intel: /nonexistent/libze_loader.so.1 not found; i915/xe sysfs: 2 "
                          "GPU(s) (memory in use not measured without Level Zero)",
                          HasSubstr("intel: 1 GPU(s) on PCI (0000:00:02.0) without a local "
                                    "memory size")));
  ASSERT_EQ(scan.gpus.size(), 2u);
  EXPECT_EQ(scan.gpus[0].model.raw_name, "Intel(R) Data Center GPU Max 1550");
  EXPECT_EQ(scan.gpus[0].memory_total_mib, 131072);
  EXPECT_EQ(scan.gpus[0].memory_used_mib, 0);
  EXPECT_EQ(scan.gpus[0].temperature_c, 38.0);
  EXPECT_EQ(scan.gpus[1].model.raw_name, "Intel(R) Data Center GPU Flex 170");
  EXPECT_EQ(scan.gpus[1].memory_total_mib, 16384);
  EXPECT_TRUE(scan.gpus[1].healthy);
}

TEST(IntelBackendTest, NoIntelGpuOnPciLoadsNothing) {
  FakeSysfs tree("intel_none");
  auto backend = MakeIntelBackend({GPURM_FAKE_ZE_LOADER}, {"node-a", {}});
  VendorScan scan = backend->Discover(sysfs::ListPciAccelerators(tree.root()));
  EXPECT_THAT(scan.gpus, IsEmpty());
  EXPECT_THAT(scan.notes, ElementsAre("intel: no Intel GPU on PCI"));
}

}  // namespace
}  // namespace gpurm
