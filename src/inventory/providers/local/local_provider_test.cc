#include "inventory/providers/local/local_provider.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

namespace gpurm {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

namespace fs = std::filesystem;

// Builds a fake sysfs tree: <root>/sys/bus/pci/devices/<bus id>/<file>.
class LocalProviderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::path(::testing::TempDir()) /
            ("gpurm_local_provider_test-" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(devices_dir());
  }
  void TearDown() override { fs::remove_all(root_); }

  fs::path devices_dir() const { return root_ / "sys" / "bus" / "pci" / "devices"; }

  void AddDevice(const std::string& bus_id, const std::map<std::string, std::string>& files) {
    const fs::path dir = devices_dir() / bus_id;
    for (const auto& [name, content] : files) {
      fs::create_directories((dir / name).parent_path());
      std::ofstream(dir / name) << content << "\n";
    }
  }

  void AddMi210(const std::string& bus_id) {
    AddDevice(bus_id, {{"class", "0x038000"},
                       {"vendor", "0x1002"},
                       {"device", "0x740f"},
                       {"mem_info_vram_total", "68702699520"},  // 65520 MiB
                       {"mem_info_vram_used", "2147483648"},    // 2048 MiB
                       {"gpu_busy_percent", "37"},
                       {"mem_busy_percent", "5"},
                       {"numa_node", "1"},
                       {"product_name", "AMD Instinct MI210"},
                       {"hwmon/hwmon4/temp1_input", "45000"},
                       {"hwmon/hwmon4/power1_average", "120000000"},
                       {"hwmon/hwmon4/power1_cap", "300000000"}});
  }

  DiscoveryReport Discover() {
    LocalProvider provider("host-a", {}, root_.string());
    EXPECT_EQ(provider.name(), "local");
    Result<DiscoveryReport> report = provider.Discover();
    EXPECT_TRUE(report.ok()) << report.status().ToString();
    return report.ok() ? *report : DiscoveryReport{};
  }

  fs::path root_;
};

TEST_F(LocalProviderTest, ReportsAmdGpuFromAmdgpuSysfs) {
  AddMi210("0000:c1:00.0");
  DiscoveryReport report = Discover();
  ASSERT_EQ(report.nodes.size(), 1u);
  EXPECT_EQ(report.nodes[0].name, "host-a");
  ASSERT_EQ(report.nodes[0].gpus.size(), 1u);
  const Gpu& gpu = report.nodes[0].gpus[0];
  EXPECT_EQ(gpu.index, 0);
  EXPECT_EQ(gpu.pci_bus_id, "0000:c1:00.0");
  EXPECT_EQ(gpu.uuid, "host-a-0000:c1:00.0");
  EXPECT_EQ(gpu.model.raw_name, "AMD Instinct MI210");
  EXPECT_EQ(gpu.model.vendor, Vendor::kAmd);
  EXPECT_EQ(gpu.memory_total_mib, 65520);
  EXPECT_EQ(gpu.memory_used_mib, 2048);
  EXPECT_DOUBLE_EQ(gpu.utilization, 0.37);
  EXPECT_DOUBLE_EQ(gpu.memory_utilization, 0.05);
  EXPECT_EQ(gpu.numa_node, 1);
  EXPECT_EQ(gpu.temperature_c, 45.0);
  EXPECT_EQ(gpu.power_w, 120.0);
  EXPECT_EQ(gpu.power_limit_w, 300.0);
  EXPECT_TRUE(gpu.healthy);
  EXPECT_THAT(report.notes, ElementsAre("amd: 1 GPU(s) from amdgpu sysfs"));
}

TEST_F(LocalProviderTest, NumbersGpusInPciBusOrderAndNamesUnlabelledOnes) {
  AddMi210("0000:c1:00.0");
  AddDevice("0000:83:00.0", {{"class", "0x030000"},
                             {"vendor", "0x1002"},
                             {"device", "0x73bf"},
                             {"mem_info_vram_total", "17163091968"},
                             {"numa_node", "-1"}});
  DiscoveryReport report = Discover();
  ASSERT_EQ(report.nodes.size(), 1u);
  const std::vector<Gpu>& gpus = report.nodes[0].gpus;
  ASSERT_EQ(gpus.size(), 2u);
  EXPECT_EQ(gpus[0].pci_bus_id, "0000:83:00.0");
  EXPECT_EQ(gpus[0].index, 0);
  EXPECT_EQ(gpus[0].model.raw_name, "AMD GPU 0x73bf");
  EXPECT_EQ(gpus[0].memory_total_mib, 16368);
  EXPECT_EQ(gpus[0].memory_used_mib, 0);
  EXPECT_EQ(gpus[0].numa_node, -1);
  EXPECT_FALSE(gpus[0].temperature_c.has_value());
  EXPECT_EQ(gpus[1].pci_bus_id, "0000:c1:00.0");
  EXPECT_EQ(gpus[1].index, 1);
}

TEST_F(LocalProviderTest, NvidiaWithoutNvmlIsANoteNotAGpu) {
  AddMi210("0000:c1:00.0");
  AddDevice("0000:65:00.0", {{"class", "0x030200"}, {"vendor", "0x10de"}, {"device", "0x20b2"}});
  AddDevice("0000:17:00.0", {{"class", "0x030000"}, {"vendor", "0x10de"}, {"device", "0x1db5"}});
  // Not accelerators: NVIDIA's HDMI audio function, a BMC's VGA (ASPEED, and
  // Huawei's own on Kunpeng servers) and a NIC.
  AddDevice("0000:17:00.1", {{"class", "0x040300"}, {"vendor", "0x10de"}});
  AddDevice("0000:02:00.0", {{"class", "0x030000"}, {"vendor", "0x1a03"}});
  AddDevice("0000:03:00.0", {{"class", "0x030000"}, {"vendor", "0x19e5"}});
  AddDevice("0000:04:00.0", {{"class", "0x020000"}, {"vendor", "0x8086"}});
  DiscoveryReport report = Discover();
  ASSERT_EQ(report.nodes.size(), 1u);
  ASSERT_EQ(report.nodes[0].gpus.size(), 1u);
  EXPECT_EQ(report.nodes[0].gpus[0].pci_bus_id, "0000:c1:00.0");
  EXPECT_THAT(report.notes,
              ElementsAre("amd: 1 GPU(s) from amdgpu sysfs",
                          "nvidia: 2 GPU(s) on PCI (0000:17:00.0, 0000:65:00.0) but the NVML "
                          "provider is not available in this build; start with --inventory FILE"));
}

TEST_F(LocalProviderTest, OtherVendorsAndAmdWithoutDriverAreNotes) {
  AddDevice("0000:3a:00.0", {{"class", "0x038000"}, {"vendor", "0x8086"}, {"device", "0x0bd5"}});
  AddDevice("0000:81:00.0", {{"class", "0x120000"}, {"vendor", "0x19e5"}, {"device", "0xd801"}});
  AddDevice("0000:c1:00.0", {{"class", "0x038000"}, {"vendor", "0x1002"}, {"device", "0x740f"}});
  DiscoveryReport report = Discover();
  ASSERT_EQ(report.nodes.size(), 1u);
  EXPECT_THAT(report.nodes[0].gpus, IsEmpty());
  ASSERT_EQ(report.notes.size(), 3u);
  EXPECT_THAT(report.notes[0], HasSubstr("amd: 1 GPU(s) on PCI (0000:c1:00.0) without amdgpu"));
  EXPECT_THAT(report.notes[1], HasSubstr("intel: 1 GPU(s) on PCI (0000:3a:00.0) but the Level "
                                         "Zero provider is not available"));
  EXPECT_THAT(report.notes[2], HasSubstr("huawei: 1 NPU(s) on PCI (0000:81:00.0) but the Ascend"));
}

TEST_F(LocalProviderTest, LongBusIdListsAreCut) {
  for (int i = 0; i < 10; ++i) {
    AddDevice("0000:" + std::to_string(10 + i) + ":00.0",
              {{"class", "0x030200"}, {"vendor", "0x10de"}});
  }
  DiscoveryReport report = Discover();
  ASSERT_EQ(report.notes.size(), 1u);
  EXPECT_THAT(report.notes[0], HasSubstr("nvidia: 10 GPU(s) on PCI (0000:10:00.0, "));
  EXPECT_THAT(report.notes[0], HasSubstr("0000:17:00.0, and 2 more)"));
}

TEST_F(LocalProviderTest, EmptyTreeReportsTheNodeWithANote) {
  DiscoveryReport report = Discover();
  ASSERT_EQ(report.nodes.size(), 1u);
  EXPECT_EQ(report.nodes[0].name, "host-a");
  EXPECT_THAT(report.nodes[0].gpus, IsEmpty());
  EXPECT_THAT(report.notes, ElementsAre("no GPU found under " + devices_dir().string()));
}

TEST_F(LocalProviderTest, MissingSysfsIsANoteNotAnError) {
  fs::remove_all(root_ / "sys");
  DiscoveryReport report = Discover();
  ASSERT_EQ(report.nodes.size(), 1u);
  EXPECT_THAT(report.nodes[0].gpus, IsEmpty());
  ASSERT_EQ(report.notes.size(), 1u);
  EXPECT_THAT(report.notes[0], HasSubstr("no GPU found under " + devices_dir().string()));
  EXPECT_THAT(report.notes[0], HasSubstr("cannot list it"));
}

}  // namespace
}  // namespace gpurm
