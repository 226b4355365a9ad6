// The Ascend back end against the fake libdcmi.so (tests/fakes/dcmi).
#include "inventory/providers/ascend/ascend_backend.h"

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
using ::testing::IsEmpty;
using testing::ScopedEnv;

void AddNpu(FakeSysfs& tree, const std::string& bus_id) {
  tree.AddDevice(bus_id, {{"class", "0x120000"}, {"vendor", "0x19e5"}, {"device", "0xd802"}});
}

TEST(AscendBackendTest, ReadsNpusThroughDcmi) {
  FakeSysfs tree("ascend_dcmi");
  AddNpu(tree, "0000:c1:00.0");
  AddNpu(tree, "0000:c2:00.0");
  AddNpu(tree, "0000:81:00.0");
  tree.AddDevice("0000:c1:00.0", {{"numa_node", "3"}});
  ScopedEnv machine("GPURM_FAKE_DCMI_MACHINE", FakeMachine("dcmi_ascend.json"));
  auto backend = MakeAscendBackend({GPURM_FAKE_DCMI}, {"node-a", {}});
  EXPECT_EQ(backend->vendor(), "ascend");
  VendorScan scan = backend->Discover(sysfs::ListPciAccelerators(tree.root()));
  std::vector<std::string> notes;
  testing::SampleAll(*backend, &scan.gpus, &notes);

  EXPECT_THAT(scan.notes, ElementsAre("ascend: DCMI, driver 23.0.3, 3 NPU(s)"));
  ASSERT_EQ(scan.gpus.size(), 3u);
  const Gpu& npu = scan.gpus[0];
  EXPECT_EQ(npu.model.raw_name, "Ascend910B3");
  EXPECT_EQ(npu.model.canonical, "ASCEND910B");
  EXPECT_EQ(npu.model.vendor, Vendor::kHuawei);
  EXPECT_EQ(npu.pci_bus_id, "0000:c1:00.0");
  EXPECT_EQ(npu.uuid, "node-a-0000:c1:00.0");
  EXPECT_EQ(npu.numa_node, 3);
  EXPECT_EQ(npu.memory_total_mib, 65536);
  EXPECT_EQ(npu.memory_used_mib, 3072);
  EXPECT_DOUBLE_EQ(npu.utilization, 0.40);
  EXPECT_DOUBLE_EQ(npu.memory_utilization, 0.07);
  EXPECT_EQ(npu.temperature_c, 45.0);
  EXPECT_EQ(npu.power_w, 123.4);
  EXPECT_TRUE(npu.healthy);
  // A critical alarm makes an NPU unhealthy.
  EXPECT_FALSE(scan.gpus[1].healthy);
  EXPECT_EQ(scan.gpus[1].health_reason, "critical alarm (dcmi_get_device_health 3)");
  // An inference card without HBM: DDR memory; a failing call loses that value.
  EXPECT_EQ(scan.gpus[2].model.raw_name, "Ascend310P3");
  EXPECT_EQ(scan.gpus[2].memory_total_mib, 21534);
  EXPECT_EQ(scan.gpus[2].memory_used_mib, 1534);
  EXPECT_FALSE(scan.gpus[2].temperature_c.has_value());
  EXPECT_THAT(notes, ElementsAre("ascend: NPU node-a-0000:81:00.0: dcmi_get_device_temperature "
                                 "failed: error (DCMI error -8005)"));
}

TEST(AscendBackendTest, MissingLibraryWithNpusOnPciIsANote) {
  FakeSysfs tree("ascend_missing");
  AddNpu(tree, "0000:c1:00.0");
  auto backend = MakeAscendBackend({"/nonexistent/libdcmi.so"}, {"node-a", {}});
  VendorScan scan = backend->Discover(sysfs::ListPciAccelerators(tree.root()));
  EXPECT_THAT(scan.gpus, IsEmpty());
  EXPECT_THAT(scan.notes, ElementsAre("ascend: 1 NPU(s) on PCI (0000:c1:00.0) but "
                                      "/nonexistent/libdcmi.so not found: install the Ascend "
                                      "driver, or start with --inventory FILE"));
}

}  // namespace
}  // namespace gpurm
