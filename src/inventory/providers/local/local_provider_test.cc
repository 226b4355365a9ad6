// The local provider composes the vendor back ends; here against the fake
// vendor libraries (tests/fakes) and fake sysfs trees.
#include "inventory/providers/local/local_provider.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "inventory/providers/common/test_support.h"

namespace gpurm {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using testing::FakeMachine;
using testing::FakeSysfs;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::ScopedEnv;

// No vendor library anywhere (whatever this machine has installed).
LocalProviderOptions NoLibraries(const FakeSysfs& tree) {
  LocalProviderOptions options;
  options.sysfs_root = tree.root().string();
  options.nvml_libraries = {"/nonexistent/libnvidia-ml.so.1"};
  options.rocm_smi_libraries = {"/nonexistent/librocm_smi64.so.1"};
  options.level_zero_libraries = {"/nonexistent/libze_loader.so.1"};
  options.dcmi_libraries = {"/nonexistent/libdcmi.so"};
  return options;
}

DiscoveryReport Discover(LocalProvider& provider) {
  Result<DiscoveryReport> report = provider.Discover();
  EXPECT_TRUE(report.ok()) << report.status().ToString();
  return report.ok() ? *report : DiscoveryReport{};
}

TEST(LocalProviderTest, NoVendorLibraryMeansNoGpusAndOneNotePerVendor) {
  FakeSysfs tree("local_empty");
  LocalProvider provider("host-a", {}, NoLibraries(tree));
  EXPECT_EQ(provider.name(), "local");
  const DiscoveryReport report = Discover(provider);
  ASSERT_EQ(report.nodes.size(), 1u);
  EXPECT_EQ(report.nodes[0].name, "host-a");
  EXPECT_THAT(report.nodes[0].gpus, IsEmpty());
  EXPECT_THAT(report.notes,
              ElementsAre("nvidia: /nonexistent/libnvidia-ml.so.1 not found (no NVIDIA driver)",
                          "amd: no AMD GPU on PCI", "intel: no Intel GPU on PCI",
                          "ascend: no Ascend NPU on PCI"));
}

TEST(LocalProviderTest, UnreadableSysfsIsANoteAndLibrariesAreStillAsked) {
  FakeSysfs tree("local_no_sysfs");
  std::filesystem::remove_all(tree.root() / "sys");
  LocalProvider provider("host-a", {}, NoLibraries(tree));
  const DiscoveryReport report = Discover(provider);
  EXPECT_THAT(report.nodes[0].gpus, IsEmpty());
  EXPECT_THAT(report.notes, Contains(HasSubstr("amd: /nonexistent/librocm_smi64.so.1 not found")));
  EXPECT_THAT(report.notes, Contains(HasSubstr("cannot list " + tree.devices_dir().string())));
}

TEST(LocalProviderTest, ComposesVendorsAndNumbersGpusAcrossThem) {
  FakeSysfs tree("local_mixed");
  // One AMD GPU served by amdgpu sysfs, one Ascend NPU by the fake DCMI.
  tree.AddDevice("0000:e1:00.0", {{"class", "0x038000"},
                                  {"vendor", "0x1002"},
                                  {"device", "0x740f"},
                                  {"mem_info_vram_total", "68702699520"},
                                  {"product_name", "AMD Instinct MI210"}});
  tree.AddDevice("0000:c2:00.0", {{"class", "0x120000"}, {"vendor", "0x19e5"}});
  // The NVML fake's GPUs have no sysfs directories, except this one's NUMA node.
  tree.AddDevice("0000:43:00.0", {{"numa_node", "0"}});
  ScopedEnv nvml("GPURM_FAKE_NVML_MACHINE", FakeMachine("nvml_h100x8.json"));
  ScopedEnv dcmi("GPURM_FAKE_DCMI_MACHINE", FakeMachine("dcmi_ascend.json"));
  LocalProviderOptions options = NoLibraries(tree);
  options.nvml_libraries = {GPURM_FAKE_NVML};
  options.dcmi_libraries = {GPURM_FAKE_DCMI};
  LocalProvider provider("host-a", {}, options);
  const DiscoveryReport report = Discover(provider);

  EXPECT_THAT(report.notes,
              ElementsAre("nvidia: NVML 12.550.54.15, driver 550.54.15, 8 GPU(s)",
                          "amd: /nonexistent/librocm_smi64.so.1 not found; amdgpu sysfs: 1 GPU(s)",
                          "intel: no Intel GPU on PCI", "ascend: DCMI, driver 23.0.3, 3 NPU(s)",
                          HasSubstr("dcmi_get_device_temperature failed")));
  const std::vector<Gpu>& gpus = report.nodes[0].gpus;
  ASSERT_EQ(gpus.size(), 8u + 1u + 3u);
  for (size_t i = 0; i < gpus.size(); ++i) EXPECT_EQ(gpus[i].index, static_cast<int>(i));
  EXPECT_EQ(gpus[0].model.vendor, Vendor::kNvidia);
  EXPECT_EQ(gpus[1].numa_node, 0);
  EXPECT_EQ(gpus[7].nvlink_group, 0);
  EXPECT_EQ(gpus[8].model.canonical, "MI210");
  EXPECT_EQ(gpus[8].uuid, "host-a-0000:e1:00.0");
  EXPECT_EQ(gpus[8].nvlink_group, -1);
  EXPECT_EQ(gpus[9].model.vendor, Vendor::kHuawei);
}

TEST(LocalProviderTest, EverySampleIsFreshAndDiscoveryHappensOnce) {
  FakeSysfs tree("local_resample");
  tree.AddDevice("0000:c1:00.0", {{"class", "0x038000"},
                                  {"vendor", "0x1002"},
                                  {"mem_info_vram_total", "68702699520"},
                                  {"gpu_busy_percent", "10"}});
  LocalProvider provider("host-a", {}, NoLibraries(tree));
  EXPECT_DOUBLE_EQ(Discover(provider).nodes[0].gpus.at(0).utilization, 0.10);
  tree.AddDevice("0000:c1:00.0", {{"gpu_busy_percent", "90"}});
  // A device appearing later is not rediscovered: vendors are settled.
  tree.AddDevice(
      "0000:c2:00.0",
      {{"class", "0x038000"}, {"vendor", "0x1002"}, {"mem_info_vram_total", "68702699520"}});
  const DiscoveryReport again = Discover(provider);
  ASSERT_EQ(again.nodes[0].gpus.size(), 1u);
  EXPECT_DOUBLE_EQ(again.nodes[0].gpus[0].utilization, 0.90);
}

TEST(LocalProviderTest, AVendorWhoseInitFailsIsAskedAgain) {
  FakeSysfs tree("local_retry");
  LocalProviderOptions options = NoLibraries(tree);
  options.nvml_libraries = {GPURM_FAKE_NVML};
  LocalProvider provider("host-a", {}, options);
  {
    ScopedEnv unloaded("GPURM_FAKE_NVML_MACHINE", std::nullopt);
    const DiscoveryReport report = Discover(provider);
    EXPECT_THAT(report.nodes[0].gpus, IsEmpty());
    EXPECT_THAT(report.notes, Contains(HasSubstr("nvmlInit_v2 failed: Driver Not Loaded")));
  }
  ScopedEnv loaded("GPURM_FAKE_NVML_MACHINE", FakeMachine("nvml_failing.json"));
  const DiscoveryReport report = Discover(provider);
  ASSERT_EQ(report.nodes[0].gpus.size(), 6u);
  EXPECT_FALSE(report.nodes[0].gpus[1].healthy);
}

TEST(LocalProviderTest, OptionsComeFromTheEnvironment) {
  ScopedEnv nvml("GPURM_NVML_LIBRARY", "/opt/nvidia/libnvidia-ml.so.1");
  ScopedEnv root("GPURM_SYSFS_ROOT", "/fake/root");
  ScopedEnv rocm("GPURM_ROCM_SMI_LIBRARY", std::nullopt);
  const LocalProviderOptions options = LocalProviderOptions::FromEnvironment();
  EXPECT_THAT(options.nvml_libraries, ElementsAre("/opt/nvidia/libnvidia-ml.so.1"));
  EXPECT_EQ(options.sysfs_root, "/fake/root");
  EXPECT_EQ(options.rocm_smi_libraries, DefaultRocmSmiLibraries());
}

}  // namespace
}  // namespace gpurm
