#include "inventory/providers/static/static_provider.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

namespace gpurm {
namespace {

using ::testing::HasSubstr;

// The repository root: GPURM_SOURCE_DIR when ctest runs the test, else derived
// from this file's path so the binary also runs on its own.
std::filesystem::path SourceDir() {
  if (const char* dir = std::getenv("GPURM_SOURCE_DIR")) return dir;
  return std::filesystem::path(__FILE__)
      .parent_path()
      .parent_path()
      .parent_path()
      .parent_path()
      .parent_path();
}

std::vector<Node> Parse(const std::string& yaml, const GpuMemorySpecs& specs = {}) {
  Result<std::vector<Node>> nodes = ParseStaticInventory(yaml, "inventory.yaml", specs);
  EXPECT_TRUE(nodes.ok()) << nodes.status().ToString();
  return nodes.ok() ? *nodes : std::vector<Node>{};
}

std::vector<Node> ParseExample(const std::string& file) {
  StaticProvider provider((SourceDir() / "examples" / file).string(), {});
  Result<DiscoveryReport> report = provider.Discover();
  EXPECT_TRUE(report.ok()) << report.status().ToString();
  return report.ok() ? report->nodes : std::vector<Node>{};
}

TEST(StaticInventoryTest, AppliesDefaults) {
  std::vector<Node> nodes = Parse(R"(
nodes:
  - name: n1
    gpus:
      - name: "Tesla V100-SXM2-32GB"
)");
  ASSERT_EQ(nodes.size(), 1u);
  const Node& node = nodes[0];
  EXPECT_EQ(node.name, "n1");
  EXPECT_EQ(node.address, "");
  EXPECT_TRUE(node.schedulable);
  ASSERT_EQ(node.gpus.size(), 1u);
  const Gpu& gpu = node.gpus[0];
  EXPECT_EQ(gpu.index, 0);
  EXPECT_EQ(gpu.uuid, "n1-gpu0");
  EXPECT_EQ(gpu.model.raw_name, "Tesla V100-SXM2-32GB");
  EXPECT_EQ(gpu.model.canonical, "V100");
  EXPECT_EQ(gpu.memory_total_mib, 32 * 1024);
  EXPECT_EQ(gpu.memory_used_mib, 0);
  EXPECT_EQ(gpu.utilization, 0.0);
  EXPECT_FALSE(gpu.temperature_c.has_value());
  EXPECT_FALSE(gpu.power_w.has_value());
  EXPECT_TRUE(gpu.healthy);
  EXPECT_EQ(gpu.nvlink_group, -1);
  EXPECT_EQ(gpu.numa_node, -1);
}

TEST(StaticInventoryTest, ReadsEveryField) {
  std::vector<Node> nodes = Parse(R"(
nodes:
  - name: n1
    address: 10.1.2.3
    schedulable: false
    gpus:
      - name: "NVIDIA A100-SXM4-80GB"
        nvlink_group: 2
        memory_total_mb: 81000
        memory_used_mb: 2048
        utilization: 0.35
        memory_utilization: 0.1
        temperature_c: 41.5
        power_w: 250
        power_limit_w: 400
        numa_node: 1
        healthy: false
        health_reason: "XID 79"
        uuid: "GPU-1234"
)");
  ASSERT_EQ(nodes.size(), 1u);
  EXPECT_EQ(nodes[0].address, "10.1.2.3");
  EXPECT_FALSE(nodes[0].schedulable);
  ASSERT_EQ(nodes[0].gpus.size(), 1u);
  const Gpu& gpu = nodes[0].gpus[0];
  EXPECT_EQ(gpu.model.canonical, "A100");
  EXPECT_EQ(gpu.nvlink_group, 2);
  EXPECT_EQ(gpu.memory_total_mib, 81000);
  EXPECT_EQ(gpu.memory_used_mib, 2048);
  EXPECT_EQ(gpu.utilization, 0.35);
  EXPECT_EQ(gpu.memory_utilization, 0.1);
  EXPECT_EQ(gpu.temperature_c, 41.5);
  EXPECT_EQ(gpu.power_w, 250.0);
  EXPECT_EQ(gpu.power_limit_w, 400.0);
  EXPECT_EQ(gpu.numa_node, 1);
  EXPECT_FALSE(gpu.healthy);
  EXPECT_EQ(gpu.health_reason, "XID 79");
  EXPECT_EQ(gpu.uuid, "GPU-1234");
}

TEST(StaticInventoryTest, CountRepeatsEntriesWithConsecutiveIndices) {
  std::vector<Node> nodes = Parse(R"(
nodes:
  - name: n1
    gpus:
      - {name: "Tesla T4", count: 2}
      - {name: "Tesla T4", uuid: "GPU-t4-c", memory_used_mb: 100}
  - name: n2
    gpus: []
  - name: n3
)");
  ASSERT_EQ(nodes.size(), 3u);
  ASSERT_EQ(nodes[0].gpus.size(), 3u);
  EXPECT_EQ(nodes[0].gpus[0].uuid, "n1-gpu0");
  EXPECT_EQ(nodes[0].gpus[1].uuid, "n1-gpu1");
  EXPECT_EQ(nodes[0].gpus[2].uuid, "GPU-t4-c");
  for (int i = 0; i < 3; ++i) EXPECT_EQ(nodes[0].gpus[i].index, i);
  EXPECT_EQ(nodes[0].gpus[2].memory_used_mib, 100);
  EXPECT_EQ(nodes[0].gpus[0].memory_used_mib, 0);
  EXPECT_TRUE(nodes[1].gpus.empty());
  EXPECT_TRUE(nodes[2].gpus.empty());
}

TEST(StaticInventoryTest, MemoryComesFromSpecsWhenTheNameHasNone) {
  std::vector<Node> nodes = Parse("nodes: [{name: n, gpus: [{name: \"Tesla T4\"}]}]", {{"T4", 15}});
  ASSERT_EQ(nodes.size(), 1u);
  EXPECT_EQ(nodes[0].gpus[0].memory_total_mib, 15 * 1024);
}

// GPUs teams buy today are known models: their memory comes from the model
// table, so an inventory need not state it.
TEST(StaticInventoryTest, CurrentGenerationsNeedNoMemoryTotal) {
  std::vector<Node> nodes = Parse(
      "nodes: [{name: n, gpus: [{name: \"NVIDIA GeForce RTX 4090 D\"}, {name: \"NVIDIA B200\"}, "
      "{name: \"AMD Radeon PRO W7900\"}, {name: \"Quadro RTX 8000\"}]}]");
  ASSERT_EQ(nodes.size(), 1u);
  ASSERT_EQ(nodes[0].gpus.size(), 4u);
  EXPECT_EQ(nodes[0].gpus[0].model.canonical, "RTX4090D");
  EXPECT_EQ(nodes[0].gpus[0].memory_total_mib, 24 * 1024);
  EXPECT_EQ(nodes[0].gpus[1].memory_total_mib, 180 * 1024);
  EXPECT_EQ(nodes[0].gpus[2].memory_total_mib, 48 * 1024);
  EXPECT_EQ(nodes[0].gpus[3].memory_total_mib, 48 * 1024);
}

TEST(StaticInventoryTest, UnknownModelWithExplicitMemoryIsKept) {
  std::vector<Node> nodes =
      Parse("nodes: [{name: n, gpus: [{name: \"Acme Matrix 9000\", memory_total_mb: 4096}]}]");
  ASSERT_EQ(nodes.size(), 1u);
  const Gpu& gpu = nodes[0].gpus[0];
  EXPECT_EQ(gpu.model.raw_name, "Acme Matrix 9000");
  EXPECT_FALSE(gpu.model.known());
  EXPECT_EQ(gpu.memory_total_mib, 4096);
}

TEST(StaticInventoryTest, UnhealthyWithoutReasonGetsOne) {
  std::vector<Node> nodes = Parse("nodes: [{name: n, gpus: [{name: T4, healthy: false}]}]");
  ASSERT_EQ(nodes.size(), 1u);
  EXPECT_FALSE(nodes[0].gpus[0].healthy);
  EXPECT_FALSE(nodes[0].gpus[0].health_reason.empty());
}

TEST(StaticInventoryTest, EmptyNodeListIsAnEmptyCluster) {
  EXPECT_TRUE(Parse("nodes: []").empty());
  EXPECT_TRUE(Parse("nodes:").empty());
}

// One invalid inventory: the field() expected and a part of the message.
struct BadInventory {
  std::string yaml;
  std::string field;
  std::string message_part;
};

// Names the case by its field in test listings (ctest shows the parameter).
void PrintTo(const BadInventory& c, std::ostream* os) { *os << c.field; }

class BadInventoryTest : public ::testing::TestWithParam<BadInventory> {};

TEST_P(BadInventoryTest, FailsWithLineAndExpectation) {
  const BadInventory& bad = GetParam();
  Result<std::vector<Node>> nodes = ParseStaticInventory(bad.yaml, "inventory.yaml", {});
  ASSERT_FALSE(nodes.ok());
  EXPECT_EQ(nodes.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(nodes.status().field(), bad.field);
  EXPECT_THAT(nodes.status().message(), HasSubstr(bad.message_part));
}

INSTANTIATE_TEST_SUITE_P(
    Errors, BadInventoryTest,
    ::testing::Values(
        BadInventory{"", "nodes", "inventory.yaml:1: expected a mapping with a `nodes` list"},
        BadInventory{"- a\n", "nodes", "expected a mapping with a `nodes` list, got a list"},
        BadInventory{"nodes: {a: 1}\n", "nodes", "inventory.yaml:1: nodes: expected a list"},
        BadInventory{"nodes: []\nnode: []\n", "node",
                     "inventory.yaml:2: unknown key 'node'; did you mean 'nodes'?"},
        BadInventory{"nodes:\n  - address: 10.0.0.1\n", "nodes[0].name",
                     "inventory.yaml:2: nodes[0].name: missing"},
        BadInventory{"nodes:\n  - name: \"\"\n", "nodes[0].name", "expected a non-empty string"},
        BadInventory{"nodes:\n  - name: a\n  - name: b\n  - name: a\n", "nodes[2].name",
                     "inventory.yaml:4: nodes[2].name: duplicate node name 'a' (first at line 2)"},
        BadInventory{"nodes:\n  - name: a\n    gpu: []\n", "nodes[0].gpu",
                     "inventory.yaml:3: unknown key 'nodes[0].gpu'; did you mean 'nodes[0].gpus'?"},
        BadInventory{"nodes:\n  - name: a\n    schedulable: maybe\n", "nodes[0].schedulable",
                     "expected true or false, got \"maybe\""},
        BadInventory{"nodes:\n  - name: a\n    gpus: T4\n", "nodes[0].gpus", "expected a list"},
        BadInventory{"nodes:\n  - name: a\n    gpus:\n      - T4\n", "nodes[0].gpus[0]",
                     "inventory.yaml:4: nodes[0].gpus[0]: expected a GPU mapping"},
        BadInventory{"nodes:\n  - name: a\n    gpus:\n      - count: 2\n", "nodes[0].gpus[0].name",
                     "inventory.yaml:4: nodes[0].gpus[0].name: missing"},
        BadInventory{"nodes:\n  - name: a\n    gpus:\n      - name: T4\n        count: 0\n",
                     "nodes[0].gpus[0].count",
                     "inventory.yaml:5: nodes[0].gpus[0].count: expected an integer from 1 to "
                     "1024, got \"0\""},
        BadInventory{"nodes: [{name: a, gpus: [{name: T4, count: 1.5}]}]", "nodes[0].gpus[0].count",
                     "got \"1.5\""},
        BadInventory{"nodes:\n  - name: a\n    gpus:\n      - name: T4\n        memory_total_mb: "
                     "1000\n        memory_used_mb: 2000\n",
                     "nodes[0].gpus[0].memory_used_mb",
                     "inventory.yaml:6: nodes[0].gpus[0].memory_used_mb: 2000 MiB is more than "
                     "the GPU's 1000 MiB"},
        BadInventory{"nodes: [{name: a, gpus: [{name: \"Tesla T4\", memory_used_mb: 16385}]}]",
                     "nodes[0].gpus[0].memory_used_mb", "is more than the GPU's 16384 MiB"},
        BadInventory{"nodes: [{name: a, gpus: [{name: T4, memory_used_mb: -1}]}]",
                     "nodes[0].gpus[0].memory_used_mb", "expected a whole number of MiB >= 0"},
        BadInventory{"nodes: [{name: a, gpus: [{name: T4, memory_total_mb: 0}]}]",
                     "nodes[0].gpus[0].memory_total_mb", "positive whole number of MiB"},
        BadInventory{"nodes:\n  - name: a\n    gpus:\n      - name: T4\n        utilization: 35\n",
                     "nodes[0].gpus[0].utilization",
                     "inventory.yaml:5: nodes[0].gpus[0].utilization: expected a ratio from 0 to "
                     "1, got \"35\""},
        BadInventory{"nodes: [{name: a, gpus: [{name: T4, utilization: -0.1}]}]",
                     "nodes[0].gpus[0].utilization", "ratio from 0 to 1"},
        BadInventory{"nodes: [{name: a, gpus: [{name: T4, memory_utilization: 1.01}]}]",
                     "nodes[0].gpus[0].memory_utilization", "ratio from 0 to 1"},
        BadInventory{"nodes: [{name: a, gpus: [{name: T4, power_w: -5}]}]",
                     "nodes[0].gpus[0].power_w", "watts"},
        BadInventory{"nodes: [{name: a, gpus: [{name: T4, temperature_c: hot}]}]",
                     "nodes[0].gpus[0].temperature_c", "degrees Celsius"},
        BadInventory{"nodes: [{name: a, gpus: [{name: T4, nvlink_group: -1}]}]",
                     "nodes[0].gpus[0].nvlink_group", "integer >= 0"},
        BadInventory{
            "nodes:\n  - name: a\n    gpus:\n      - name: T4\n        memory_total_mib: 9\n",
            "nodes[0].gpus[0].memory_total_mib",
            "inventory.yaml:5: unknown key 'nodes[0].gpus[0].memory_total_mib'; did you "
            "mean 'nodes[0].gpus[0].memory_total_mb'?"},
        BadInventory{
            "nodes:\n  - name: a\n    gpus:\n      - name: T4\n        count: 2\n        "
            "uuid: GPU-x\n",
            "nodes[0].gpus[0].uuid",
            "inventory.yaml:6: nodes[0].gpus[0].uuid: a uuid names one GPU but count is 2"},
        BadInventory{"nodes:\n  - name: a\n    gpus:\n      - {name: T4, uuid: GPU-x}\n  - name: "
                     "b\n    gpus:\n      - {name: T4, uuid: GPU-x}\n",
                     "nodes[1].gpus[0].uuid",
                     "inventory.yaml:7: nodes[1].gpus[0].uuid: duplicate uuid 'GPU-x' (already GPU "
                     "0 of node 'a', line 4)"},
        BadInventory{"nodes:\n  - name: a\n    gpus:\n      - {name: T4, uuid: a-gpu1}\n      - "
                     "{name: T4}\n",
                     "nodes[0].gpus[1].uuid", "duplicate uuid 'a-gpu1'"},
        BadInventory{"nodes:\n  - name: a\n    gpus:\n      - name: \"Acme Matrix 9000\"\n",
                     "nodes[0].gpus[0].memory_total_mb",
                     "inventory.yaml:4: nodes[0].gpus[0].memory_total_mb: missing, and the memory "
                     "of \"Acme Matrix 9000\" is not known"},
        BadInventory{"nodes: [{name: a, gpus: [{name: T4, health_reason: hot}]}]",
                     "nodes[0].gpus[0].health_reason", "only meaningful with healthy: false"},
        BadInventory{"nodes: [{name: a, gpus: [{name: T4, name: T4}]}]", "nodes[0].gpus[0].name",
                     "duplicate key"}));

TEST(StaticInventoryTest, SyntaxErrorNamesTheLine) {
  Result<std::vector<Node>> nodes =
      ParseStaticInventory("nodes:\n  - name: a\n    gpus: [\n", "inventory.yaml", {});
  ASSERT_FALSE(nodes.ok());
  EXPECT_EQ(nodes.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(nodes.status().message(), HasSubstr("inventory.yaml:"));
  EXPECT_THAT(nodes.status().message(), HasSubstr("YAML syntax error"));
}

// Found by fuzz/static_inventory_fuzzer: yaml-cpp 0.7's LoadAll never
// returned on these (see strict_yaml/documents.h).
TEST(StaticInventoryTest, MalformedDocumentsThatHungYamlCppAreRefused) {
  for (const std::string& text :
       {std::string("&a,\xc2*a]"), std::string(",\n"), std::string("nodes: []\n,\n")}) {
    EXPECT_FALSE(ParseStaticInventory(text, "i.yaml", {}).ok()) << text;
  }
}

TEST(StaticInventoryTest, ClusterExampleParses) {
  std::vector<Node> nodes = ParseExample("cluster-3node.yaml");
  ASSERT_EQ(nodes.size(), 3u);
  struct Expected {
    std::string name, address, canonical;
    size_t gpus;
    int64_t memory_mib;
  };
  const Expected expected[] = {{"gpu-node-1", "10.0.0.11", "V100", 4, 32 * 1024},
                               {"gpu-node-2", "10.0.0.12", "A100", 8, 80 * 1024},
                               {"gpu-node-3", "10.0.0.13", "T4", 4, 16 * 1024}};
  std::set<std::string> uuids;
  for (size_t n = 0; n < 3; ++n) {
    const Node& node = nodes[n];
    EXPECT_EQ(node.name, expected[n].name);
    EXPECT_EQ(node.address, expected[n].address);
    ASSERT_EQ(node.gpus.size(), expected[n].gpus);
    for (size_t i = 0; i < node.gpus.size(); ++i) {
      const Gpu& gpu = node.gpus[i];
      EXPECT_EQ(gpu.index, static_cast<int>(i));
      EXPECT_EQ(gpu.model.canonical, expected[n].canonical);
      EXPECT_EQ(gpu.memory_total_mib, expected[n].memory_mib);
      EXPECT_TRUE(gpu.temperature_c.has_value());
      EXPECT_TRUE(gpu.power_w.has_value());
      uuids.insert(gpu.uuid);
    }
  }
  EXPECT_EQ(uuids.size(), 16u);
  // Outside use makes free memory differ from total on some GPUs.
  EXPECT_EQ(nodes[0].gpus[0].memory_used_mib, 8192);
  EXPECT_EQ(nodes[0].gpus[0].memory_free_of_outside_use_mib(), 32 * 1024 - 8192);
  EXPECT_EQ(nodes[1].gpus[0].memory_used_mib, 20480);
  EXPECT_EQ(nodes[2].gpus[0].memory_used_mib, 6144);
  EXPECT_EQ(nodes[2].gpus[1].memory_used_mib, 0);
  // gpu-node-2: two NVLink groups of four.
  for (int i = 0; i < 8; ++i) EXPECT_EQ(nodes[1].gpus[i].nvlink_group, i < 4 ? 0 : 1);
}

TEST(StaticInventoryTest, DgxExampleParses) {
  std::vector<Node> nodes = ParseExample("dgx-h100.yaml");
  ASSERT_EQ(nodes.size(), 1u);
  EXPECT_EQ(nodes[0].name, "dgx-h100-1");
  ASSERT_EQ(nodes[0].gpus.size(), 8u);
  for (int i = 0; i < 8; ++i) {
    const Gpu& gpu = nodes[0].gpus[i];
    EXPECT_EQ(gpu.index, i);
    EXPECT_EQ(gpu.model.raw_name, "NVIDIA H100 80GB HBM3");
    EXPECT_EQ(gpu.model.canonical, "H100");
    EXPECT_EQ(gpu.memory_total_mib, 81559);
    EXPECT_EQ(gpu.nvlink_group, 0);
    EXPECT_EQ(gpu.numa_node, i < 4 ? 0 : 1);
    EXPECT_EQ(gpu.power_limit_w, 700.0);
  }
}

TEST(StaticInventoryTest, MigDevicesFollowTheirGpuWithItsIndex) {
  std::vector<Node> nodes = ParseExample("dgx-h100-mig.yaml");
  ASSERT_EQ(nodes.size(), 1u);
  const std::vector<Gpu>& gpus = nodes[0].gpus;
  ASSERT_EQ(gpus.size(), 8u + 6u);
  // GPU 0..3, GPU 4 and its two MIG devices, GPU 5 and its four, GPU 6, 7.
  const std::vector<int> indices = {0, 1, 2, 3, 4, 4, 4, 5, 5, 5, 5, 5, 6, 7};
  for (size_t i = 0; i < gpus.size(); ++i) EXPECT_EQ(gpus[i].index, indices[i]) << i;
  EXPECT_TRUE(gpus[4].mig_enabled);
  EXPECT_FALSE(gpus[4].allocatable_unit());
  EXPECT_FALSE(gpus[4].utilization_available);
  EXPECT_FALSE(gpus[3].mig_enabled);
  const Gpu& mig = gpus[6];
  EXPECT_EQ(mig.uuid, "MIG-dgx-h100-mig-gpu4-1");
  EXPECT_EQ(mig.mig_parent_uuid, gpus[4].uuid);
  EXPECT_EQ(mig.mig_profile, "3g.40gb");
  EXPECT_EQ(mig.memory_total_mib, 40320);
  EXPECT_EQ(GpuTypeLabel(mig), "H100 MIG 3g.40gb");
  EXPECT_FALSE(mig.utilization_available);
  EXPECT_EQ(gpus[9].mig_profile, "1g.10gb");
  EXPECT_EQ(gpus[9].uuid, "MIG-dgx-h100-mig-gpu5-1");
}

TEST(StaticInventoryTest, MigDeviceMemoryDefaultsToTheProfilesAndIsChecked) {
  std::vector<Node> nodes = Parse(
      "nodes:\n  - name: a\n    gpus:\n      - name: NVIDIA A100-SXM4-40GB\n"
      "        mig_devices:\n          - profile: 1g.5gb\n            uuid: MIG-x\n");
  ASSERT_EQ(nodes.size(), 1u);
  ASSERT_EQ(nodes[0].gpus.size(), 2u);
  EXPECT_EQ(nodes[0].gpus[1].memory_total_mib, 5 * 1024);
  EXPECT_EQ(nodes[0].gpus[1].uuid, "MIG-x");
  Result<std::vector<Node>> bad = ParseStaticInventory(
      "nodes:\n  - name: a\n    gpus:\n      - name: NVIDIA A100-SXM4-40GB\n"
      "        mig_devices:\n          - count: 2\n",
      "inventory.yaml", {});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().field(), "nodes[0].gpus[0].mig_devices[0].profile");
}

class StaticProviderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("gpurm_static_provider_test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "inventory.yaml").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Write(const std::string& text) { std::ofstream(path_) << text; }

  std::filesystem::path dir_;
  std::string path_;
};

TEST_F(StaticProviderTest, RereadsTheFileOnEveryDiscover) {
  StaticProvider provider(path_, {});
  EXPECT_EQ(provider.name(), "static");
  Write("nodes: [{name: a, gpus: [{name: T4}]}]");
  Result<DiscoveryReport> first = provider.Discover();
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_EQ(first->nodes.size(), 1u);
  ASSERT_EQ(first->notes.size(), 1u);
  EXPECT_THAT(first->notes[0], HasSubstr("1 node(s), 1 GPU(s)"));

  Write("nodes: [{name: a, gpus: [{name: T4, count: 2}]}, {name: b}]");
  Result<DiscoveryReport> second = provider.Discover();
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  ASSERT_EQ(second->nodes.size(), 2u);
  EXPECT_EQ(second->nodes[0].gpus.size(), 2u);
}

TEST_F(StaticProviderTest, ErrorsNameTheFile) {
  StaticProvider provider(path_, {});
  Write("nodes:\n  - name: a\n    gpus: [{name: T4, count: -1}]\n");
  Result<DiscoveryReport> bad = provider.Discover();
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr(path_ + ":3: nodes[0].gpus[0].count"));

  StaticProvider missing((dir_ / "missing.yaml").string(), {});
  Result<DiscoveryReport> unreadable = missing.Discover();
  ASSERT_FALSE(unreadable.ok());
  EXPECT_THAT(unreadable.status().message(), HasSubstr("missing.yaml"));
}

}  // namespace
}  // namespace gpurm
