// The local provider composes the vendor back ends; here against the fake
// vendor libraries (tests/fakes) and fake sysfs trees.
#include "inventory/providers/local/local_provider.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/clock.h"
#include "inventory/inventory.h"
#include "inventory/providers/common/test_support.h"

namespace gpurm {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using testing::FakeMachine;
using testing::FakeSysfs;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
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

TEST(LocalProviderTest, MigDevicesAreListedUnderTheirGpuWithItsIndex) {
  FakeSysfs tree("local_mig");
  tree.AddDevice("0000:e1:00.0", {{"class", "0x038000"},
                                  {"vendor", "0x1002"},
                                  {"device", "0x740f"},
                                  {"mem_info_vram_total", "68702699520"},
                                  {"product_name", "AMD Instinct MI210"}});
  // GPU 4 (in MIG mode) had a GPU-breaking XID: its MIG devices cannot be used either.
  const std::string machine = ::testing::TempDir() + "/local_mig_xid.json";
  {
    std::ifstream in(FakeMachine("nvml_dgx_h100_mig.json"));
    nlohmann::json spec = nlohmann::json::parse(in);
    spec["gpus"][4]["events"] = nlohmann::json::array({{{"xid", 79}}});
    std::ofstream(machine) << spec.dump();
  }
  ScopedEnv nvml("GPURM_FAKE_NVML_MACHINE", machine);
  LocalProviderOptions options = NoLibraries(tree);
  options.nvml_libraries = {GPURM_FAKE_NVML};
  LocalProvider provider("host-a", {}, options);
  const DiscoveryReport report = Discover(provider);
  const std::vector<Gpu>& gpus = report.nodes[0].gpus;
  ASSERT_EQ(gpus.size(), 8u + 6u + 1u);
  // GPU 0..3, GPU 4, its two MIG devices, GPU 5, its four, GPU 6, 7, then the AMD GPU 8.
  const std::vector<int> indices = {0, 1, 2, 3, 4, 4, 4, 5, 5, 5, 5, 5, 6, 7, 8};
  for (size_t i = 0; i < gpus.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(gpus[i].index, indices[i]);
  }
  EXPECT_TRUE(gpus[4].mig_enabled);
  EXPECT_FALSE(gpus[4].healthy);
  for (size_t i : {5u, 6u}) {
    EXPECT_EQ(gpus[i].mig_parent_uuid, gpus[4].uuid);
    EXPECT_FALSE(gpus[i].healthy);
    EXPECT_EQ(gpus[i].health_reason, "its GPU 4 is unhealthy: XID 79");
  }
  EXPECT_TRUE(gpus[7].mig_enabled);
  for (size_t i = 8; i < 12; ++i) {
    EXPECT_EQ(gpus[i].mig_parent_uuid, gpus[7].uuid);
    EXPECT_TRUE(gpus[i].healthy) << gpus[i].health_reason;
  }
  EXPECT_EQ(gpus[9].mig_profile, "1g.10gb");
  EXPECT_EQ(gpus[14].model.canonical, "MI210");
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

// --- A GPU whose NVML calls hang ---------------------------------------------

// The 8xH100 node with GPU `hung`'s memory call blocking while `hang_file`
// exists (tests/fakes/machines/README.md), written next to the fake sysfs.
std::string HangingMachine(const FakeSysfs& tree, int hung, const std::string& hang_file) {
  std::ifstream in(FakeMachine("nvml_h100x8.json"));
  nlohmann::json machine = nlohmann::json::parse(in);
  machine["gpus"][hung]["hang"] = {{"nvmlDeviceGetMemoryInfo", hang_file}};
  std::string path = (tree.root() / "nvml_hanging.json").string();
  std::ofstream(path) << machine.dump();
  return path;
}

class HungGpuTest : public ::testing::Test {
 protected:
  static constexpr int kHung = 3;

  HungGpuTest()
      : tree_("local_hung"),
        hang_file_((tree_.root() / "gpu3.hang").string()),
        machine_("GPURM_FAKE_NVML_MACHINE", HangingMachine(tree_, kHung, hang_file_)) {}
  // Lets a call still stuck return (its worker was detached), before the
  // fake sysfs tree holding the machine file goes.
  ~HungGpuTest() override { std::filesystem::remove(hang_file_); }

  LocalProviderOptions Options() {
    LocalProviderOptions options = NoLibraries(tree_);
    options.nvml_libraries = {GPURM_FAKE_NVML};
    // Generous: a healthy fake GPU answers in microseconds, so only the hung
    // one ever reaches it, however loaded the test machine.
    options.sample_timeout = std::chrono::seconds(2);
    options.clock = &clock_;
    return options;
  }
  void Hang() { std::ofstream(hang_file_) << "hang\n"; }
  void Release() { std::filesystem::remove(hang_file_); }

  FakeSysfs tree_;
  std::string hang_file_;
  ScopedEnv machine_;
  FakeClock clock_;
};

TEST_F(HungGpuTest, TheOthersArePublishedFreshWhileOneHangsAndItRecovers) {
  auto owned = std::make_unique<LocalProvider>("host-a", GpuMemorySpecs{}, Options());
  Inventory inventory(std::move(owned), &clock_, 100);
  ASSERT_TRUE(inventory.Refresh().ok());
  std::vector<Gpu> before = inventory.Snapshot()->nodes.at(0).gpus;
  ASSERT_EQ(before.size(), 8u);
  for (const Gpu& gpu : before) EXPECT_TRUE(gpu.healthy) << gpu.health_reason;
  const Gpu last_known = before[kHung];
  EXPECT_EQ(last_known.memory_used_mib, 512 + 1024 * kHung);
  const std::string first_values = FormatIso8601(clock_.NowUnixMs());

  // GPU 3 hangs in its memory call: the pass ends at its deadline anyway.
  Hang();
  clock_.AdvanceMs(30'000);
  ASSERT_TRUE(inventory.Refresh().ok());
  const std::vector<Gpu> during = inventory.Snapshot()->nodes.at(0).gpus;
  ASSERT_EQ(during.size(), 8u);
  for (int i = 0; i < 8; ++i) {
    SCOPED_TRACE("GPU " + std::to_string(i));
    const Gpu& gpu = during[i];
    // Every GPU has its history sample of this pass but the hung one.
    EXPECT_EQ(inventory.History(gpu.uuid, 0).size(), i == kHung ? 1u : 2u);
    if (i == kHung) continue;
    EXPECT_TRUE(gpu.healthy) << gpu.health_reason;
    EXPECT_DOUBLE_EQ(gpu.utilization, 0.10 * i);
  }
  // Stale: last values kept, never freer than they were, and not offerable.
  const Gpu& stale = during[kHung];
  EXPECT_FALSE(stale.healthy);
  EXPECT_EQ(stale.health_reason, "sampling timed out after 2 s; values from " + first_values);
  EXPECT_EQ(stale.memory_used_mib, last_known.memory_used_mib);
  EXPECT_EQ(stale.memory_total_mib, last_known.memory_total_mib);
  EXPECT_EQ(stale.memory_free_of_outside_use_mib(), last_known.memory_free_of_outside_use_mib());
  EXPECT_THAT(inventory.Notes(),
              Contains("nvidia: GPU 3 (" + stale.uuid +
                       "): sampling timed out after 2 s; the call started 0 s ago is still "
                       "running; its last values are 30 s old"));

  // Still stuck a pass later: no second call was queued behind the first
  // (the one in flight is the one started 30 s ago), the others go on.
  clock_.AdvanceMs(30'000);
  ASSERT_TRUE(inventory.Refresh().ok());
  const std::vector<Gpu> still = inventory.Snapshot()->nodes.at(0).gpus;
  EXPECT_FALSE(still[kHung].healthy);
  EXPECT_EQ(still[kHung].health_reason, stale.health_reason);
  EXPECT_THAT(inventory.Notes(), Contains(HasSubstr("the call started 30 s ago is still running; "
                                                    "its last values are 60 s old")));
  EXPECT_EQ(inventory.History(still[0].uuid, 0).size(), 3u);
  EXPECT_EQ(inventory.History(still[kHung].uuid, 0).size(), 1u);

  // The call returns: at the next pass that finds the worker free, GPU 3 is
  // sampled again and fresh.
  Release();
  for (int pass = 0; pass < 20 && !inventory.Snapshot()->nodes[0].gpus[kHung].healthy; ++pass) {
    clock_.AdvanceMs(30'000);
    ASSERT_TRUE(inventory.Refresh().ok());
  }
  const Gpu recovered = inventory.Snapshot()->nodes.at(0).gpus.at(kHung);
  EXPECT_TRUE(recovered.healthy) << recovered.health_reason;
  EXPECT_EQ(recovered.memory_used_mib, last_known.memory_used_mib);
  EXPECT_THAT(inventory.Notes(), Not(Contains(HasSubstr("timed out"))));
  EXPECT_GE(inventory.History(recovered.uuid, 0).size(), 2u);
}

TEST_F(HungGpuTest, AGpuHungFromTheFirstSampleHasNoValuesAndIsStale) {
  Hang();
  LocalProvider provider("host-a", {}, Options());
  const DiscoveryReport report = Discover(provider);
  const std::vector<Gpu>& gpus = report.nodes.at(0).gpus;
  ASSERT_EQ(gpus.size(), 8u);
  EXPECT_EQ(report.stale_gpus, std::vector<std::string>{gpus[kHung].uuid});
  EXPECT_FALSE(gpus[kHung].healthy);
  EXPECT_EQ(gpus[kHung].health_reason, "sampling timed out after 2 s; no values read yet");
  EXPECT_EQ(gpus[kHung].memory_total_mib, 0);  // Nothing measured, nothing offered.
  EXPECT_TRUE(gpus[kHung + 1].healthy);
  EXPECT_EQ(gpus[kHung + 1].memory_used_mib, 512 + 1024 * (kHung + 1));
  Release();  // The provider's destructor then waits for the call to return.
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

// Last in this file: the abandoned back end keeps the fake NVML initialised
// for the rest of the process (ctest runs each test in a process of its own).
TEST_F(HungGpuTest, DestroyingTheProviderDoesNotWaitForAStuckCall) {
  auto provider = std::make_unique<LocalProvider>("host-a", GpuMemorySpecs{}, Options());
  ASSERT_EQ(Discover(*provider).nodes.at(0).gpus.size(), 8u);
  Hang();
  const DiscoveryReport report = Discover(*provider);
  ASSERT_EQ(report.stale_gpus.size(), 1u);
  // Returns after the grace period with the call still stuck (the fixture's
  // destructor then lets it return into the leaked back end).
  provider.reset();
  EXPECT_TRUE(std::filesystem::exists(hang_file_));
}

}  // namespace
}  // namespace gpurm
