#include "core/gpu_model.h"

#include <gtest/gtest.h>

#include <optional>
#include <ostream>
#include <string>

namespace gpurm {
namespace {

constexpr std::optional<double> kNoMemory = std::nullopt;

// One name and everything ParseGpuModel (with no memory specs) must read from it.
struct ParseCase {
  const char* name;
  const char* canonical;
  const char* variant;
  Vendor vendor;
  std::optional<double> memory_gb;
  bool bf16;
};

void PrintTo(const ParseCase& c, std::ostream* os) { *os << '"' << c.name << '"'; }

class ParseGpuModelTest : public testing::TestWithParam<ParseCase> {};

TEST_P(ParseGpuModelTest, ReadsName) {
  const ParseCase& c = GetParam();
  const GpuModel model = ParseGpuModel(c.name);
  EXPECT_EQ(model.raw_name, c.name);
  EXPECT_EQ(model.canonical, c.canonical);
  EXPECT_EQ(model.known(), std::string(c.canonical) != "");
  EXPECT_EQ(model.variant, c.variant);
  EXPECT_EQ(VendorName(model.vendor), std::string(VendorName(c.vendor)));
  EXPECT_EQ(model.memory_gb, c.memory_gb);
  EXPECT_EQ(model.supports_bf16, c.bf16);
}

// nvidia-smi's "Product Name" (and NVML's nvmlDeviceGetName).
INSTANTIATE_TEST_SUITE_P(
    NvidiaSmi, ParseGpuModelTest,
    testing::Values(
        ParseCase{"Tesla V100-SXM2-32GB", "V100", "SXM2", Vendor::kNvidia, 32, false},
        ParseCase{"Tesla V100-SXM2-16GB", "V100", "SXM2", Vendor::kNvidia, 16, false},
        ParseCase{"Tesla V100-PCIE-16GB", "V100", "PCIE", Vendor::kNvidia, 16, false},
        ParseCase{"Tesla V100-PCIE-32GB", "V100", "PCIE", Vendor::kNvidia, 32, false},
        ParseCase{"Tesla V100S-PCIE-32GB", "V100S", "PCIE", Vendor::kNvidia, 32, false},
        ParseCase{"Tesla V100-SXM2-32GB-LS", "V100", "SXM2-LS", Vendor::kNvidia, 32, false},
        // V100 ships as 16 or 32 GB in every form factor: no size, no guess.
        ParseCase{"Tesla V100-SXM2", "V100", "SXM2", Vendor::kNvidia, kNoMemory, false},
        ParseCase{"NVIDIA A100-SXM4-80GB", "A100", "SXM4", Vendor::kNvidia, 80, true},
        ParseCase{"NVIDIA A100-SXM4-40GB", "A100", "SXM4", Vendor::kNvidia, 40, true},
        ParseCase{"NVIDIA A100-PCIE-40GB", "A100", "PCIE", Vendor::kNvidia, 40, true},
        ParseCase{"NVIDIA A100 80GB PCIe", "A100", "PCIE", Vendor::kNvidia, 80, true},
        ParseCase{"NVIDIA A100-SXM-80GB", "A100", "SXM", Vendor::kNvidia, 80, true},
        ParseCase{"NVIDIA A800-SXM4-80GB", "A800", "SXM4", Vendor::kNvidia, 80, true},
        ParseCase{"NVIDIA H100 80GB HBM3", "H100", "HBM3", Vendor::kNvidia, 80, true},
        ParseCase{"NVIDIA H100 PCIe", "H100", "PCIE", Vendor::kNvidia, 80, true},
        ParseCase{"NVIDIA H100 NVL", "H100", "NVL", Vendor::kNvidia, 94, true},
        ParseCase{"NVIDIA H800 PCIe", "H800", "PCIE", Vendor::kNvidia, 80, true},
        ParseCase{"NVIDIA H200", "H200", "", Vendor::kNvidia, 141, true},
        ParseCase{"NVIDIA H200 NVL", "H200", "NVL", Vendor::kNvidia, 141, true},
        // "480GB" is the Grace CPU's LPDDR5X; the GPU has 96 GB.
        ParseCase{"NVIDIA GH200 480GB", "GH200", "480GB", Vendor::kNvidia, 96, true},
        ParseCase{"NVIDIA GH200 144G HBM3e", "GH200", "HBM3E", Vendor::kNvidia, 144, true},
        ParseCase{"Tesla T4", "T4", "", Vendor::kNvidia, 16, false},
        ParseCase{"NVIDIA A10", "A10", "", Vendor::kNvidia, 24, true},
        ParseCase{"NVIDIA A10G", "A10G", "", Vendor::kNvidia, 24, true},
        ParseCase{"NVIDIA A30", "A30", "", Vendor::kNvidia, 24, true},
        ParseCase{"NVIDIA A40", "A40", "", Vendor::kNvidia, 48, true},
        ParseCase{"NVIDIA L4", "L4", "", Vendor::kNvidia, 24, true},
        ParseCase{"NVIDIA L40", "L40", "", Vendor::kNvidia, 48, true},
        ParseCase{"NVIDIA L40S", "L40S", "", Vendor::kNvidia, 48, true},
        ParseCase{"NVIDIA GeForce RTX 4090", "RTX4090", "", Vendor::kNvidia, 24, true},
        ParseCase{"NVIDIA GeForce RTX 3090", "RTX3090", "", Vendor::kNvidia, 24, true},
        ParseCase{"NVIDIA GeForce RTX 3090 Ti", "RTX3090TI", "", Vendor::kNvidia, 24, true},
        ParseCase{"NVIDIA RTX A6000", "A6000", "", Vendor::kNvidia, 48, true},
        ParseCase{"NVIDIA RTX 6000 Ada Generation", "RTX6000ADA", "", Vendor::kNvidia, 48, true},
        ParseCase{"Tesla P100-PCIE-12GB", "P100", "PCIE", Vendor::kNvidia, 12, false},
        ParseCase{"Tesla P100-SXM2-16GB", "P100", "SXM2", Vendor::kNvidia, 16, false},
        ParseCase{"Tesla P40", "P40", "", Vendor::kNvidia, 24, false},
        ParseCase{"Tesla K80", "K80", "", Vendor::kNvidia, 12, false}));

// GPU Feature Discovery's nvidia.com/gpu.product label values.
INSTANTIATE_TEST_SUITE_P(
    KubernetesLabels, ParseGpuModelTest,
    testing::Values(ParseCase{"Tesla-V100-SXM2-32GB", "V100", "SXM2", Vendor::kNvidia, 32, false},
                    ParseCase{"NVIDIA-A100-SXM4-80GB", "A100", "SXM4", Vendor::kNvidia, 80, true},
                    ParseCase{"NVIDIA-H100-80GB-HBM3", "H100", "HBM3", Vendor::kNvidia, 80, true},
                    ParseCase{"NVIDIA-GeForce-RTX-4090", "RTX4090", "", Vendor::kNvidia, 24, true},
                    ParseCase{"Tesla-T4-SHARED", "T4", "SHARED", Vendor::kNvidia, 16, false},
                    // A MIG slice: memory is the profile's, never the whole GPU's 40 GB.
                    ParseCase{"NVIDIA-A100-SXM4-40GB-MIG-1g.5gb", "A100", "SXM4-MIG-1g.5gb",
                              Vendor::kNvidia, 5, true},
                    ParseCase{"NVIDIA-A100-SXM4-80GB-MIG-3g.40gb", "A100", "SXM4-MIG-3g.40gb",
                              Vendor::kNvidia, 40, true},
                    ParseCase{"NVIDIA-H100-80GB-HBM3-MIG-1g.10gb", "H100", "HBM3-MIG-1g.10gb",
                              Vendor::kNvidia, 10, true},
                    ParseCase{"NVIDIA H100 80GB HBM3 MIG 1g.10gb+me", "H100", "HBM3-MIG-1g.10gb+me",
                              Vendor::kNvidia, 10, true},
                    // No readable profile: the slice size is unknown, and the built-in
                    // 80 GB of a whole H100 must not stand in for it.
                    ParseCase{"NVIDIA-H100-PCIe-MIG", "H100", "PCIE-MIG", Vendor::kNvidia,
                              kNoMemory, true},
                    ParseCase{"NVIDIA-H100-PCIe-MIG-big", "H100", "PCIE-MIG-big", Vendor::kNvidia,
                              kNoMemory, true}));

// rocm-smi, amd-smi and lspci.
INSTANTIATE_TEST_SUITE_P(
    Amd, ParseGpuModelTest,
    testing::Values(
        // MI250/MI250X: one device per GCD, 64 GB each.
        ParseCase{"AMD Instinct MI250X", "MI250X", "", Vendor::kAmd, 64, true},
        ParseCase{"AMD Instinct MI250", "MI250", "", Vendor::kAmd, 64, true},
        ParseCase{"AMD Instinct MI300X", "MI300X", "", Vendor::kAmd, 192, true},
        ParseCase{"AMD Instinct MI300X OAM", "MI300X", "OAM", Vendor::kAmd, 192, true},
        ParseCase{"AMD_Instinct_MI300X", "MI300X", "", Vendor::kAmd, 192, true},
        ParseCase{"AMD Instinct MI325X", "MI325X", "", Vendor::kAmd, 256, true},
        ParseCase{"AMD Instinct MI210", "MI210", "", Vendor::kAmd, 64, true},
        ParseCase{"Instinct MI100", "MI100", "", Vendor::kAmd, 32, false},
        ParseCase{"Arcturus GL-XL [AMD Instinct MI100]", "MI100", "", Vendor::kAmd, 32, false},
        ParseCase{"NVIDIA Corporation GH100 [H200 SXM 141GB] [10de:2335]", "H200", "SXM",
                  Vendor::kNvidia, 141, true}));

// xpu-smi.
INSTANTIATE_TEST_SUITE_P(Intel, ParseGpuModelTest,
                         testing::Values(ParseCase{"Intel(R) Data Center GPU Max 1550", "MAX1550",
                                                   "", Vendor::kIntel, 128, true},
                                         ParseCase{"Intel(R) Data Center GPU Max 1100", "MAX1100",
                                                   "", Vendor::kIntel, 48, true},
                                         ParseCase{"Intel(R) Data Center GPU Flex 170", "FLEX170",
                                                   "", Vendor::kIntel, 16, false},
                                         ParseCase{"Intel\u00ae Data Center GPU Max 1550",
                                                   "MAX1550", "", Vendor::kIntel, 128, true}));

// npu-smi and the names Ascend users write.
INSTANTIATE_TEST_SUITE_P(
    Ascend, ParseGpuModelTest,
    testing::Values(ParseCase{"Ascend910B", "ASCEND910B", "", Vendor::kHuawei, 64, true},
                    ParseCase{"910B3", "ASCEND910B", "910B3", Vendor::kHuawei, 64, true},
                    ParseCase{"Ascend910B2C", "ASCEND910B", "910B2C", Vendor::kHuawei, 64, true},
                    ParseCase{"910B4", "ASCEND910B", "910B4", Vendor::kHuawei, 32, true},
                    ParseCase{"Ascend 910", "ASCEND910", "", Vendor::kHuawei, 32, false},
                    ParseCase{"910ProB", "ASCEND910", "910PROB", Vendor::kHuawei, 32, false},
                    // 310P cards carry 24 or 48 GB per chip: the name cannot tell.
                    ParseCase{"310P3", "ASCEND310P", "310P3", Vendor::kHuawei, kNoMemory, false},
                    ParseCase{"Huawei Ascend 310P", "ASCEND310P", "", Vendor::kHuawei, kNoMemory,
                              false}));

// Short spellings users put in requests and configs.
INSTANTIATE_TEST_SUITE_P(
    UserSpellings, ParseGpuModelTest,
    testing::Values(ParseCase{"T4", "T4", "", Vendor::kNvidia, 16, false},
                    ParseCase{"RTX4090", "RTX4090", "", Vendor::kNvidia, 24, true},
                    ParseCase{"rtx 3090", "RTX3090", "", Vendor::kNvidia, 24, true},
                    ParseCase{"rtx3090ti", "RTX3090TI", "", Vendor::kNvidia, 24, true},
                    ParseCase{"a100-80gb", "A100", "", Vendor::kNvidia, 80, true},
                    ParseCase{"A100 40 GB", "A100", "", Vendor::kNvidia, 40, true},
                    ParseCase{"a100", "A100", "", Vendor::kNvidia, kNoMemory, true},
                    ParseCase{"v100", "V100", "", Vendor::kNvidia, kNoMemory, false},
                    ParseCase{"h100", "H100", "", Vendor::kNvidia, 80, true},
                    ParseCase{"h100-nvl", "H100", "NVL", Vendor::kNvidia, 94, true},
                    ParseCase{"RTXA6000", "A6000", "", Vendor::kNvidia, 48, true},
                    ParseCase{"A6000", "A6000", "", Vendor::kNvidia, 48, true},
                    ParseCase{"mi250x", "MI250X", "", Vendor::kAmd, 64, true},
                    ParseCase{"max1550", "MAX1550", "", Vendor::kIntel, 128, true},
                    ParseCase{"Flex 170", "FLEX170", "", Vendor::kIntel, 16, false},
                    ParseCase{"  Tesla T4\n", "T4", "", Vendor::kNvidia, 16, false}));

// Near misses and names we cannot read: kept, never guessed. Vendor words in
// the name still say the vendor.
INSTANTIATE_TEST_SUITE_P(
    Unknown, ParseGpuModelTest,
    testing::Values(
        ParseCase{"NVIDIA A1000", "", "", Vendor::kNvidia, kNoMemory, false},
        ParseCase{"NVIDIA RTX A1000", "", "", Vendor::kNvidia, kNoMemory, false},
        ParseCase{"A1000", "", "", Vendor::kUnknown, kNoMemory, false},
        ParseCase{"NVIDIA A100X", "", "", Vendor::kNvidia, kNoMemory, false},
        ParseCase{"H1000", "", "", Vendor::kUnknown, kNoMemory, false},
        ParseCase{"NVIDIA H1000 80GB", "", "", Vendor::kNvidia, kNoMemory, false},
        ParseCase{"AMD Instinct MI2500", "", "", Vendor::kAmd, kNoMemory, false},
        ParseCase{"MI25", "", "", Vendor::kUnknown, kNoMemory, false},
        ParseCase{"T40", "", "", Vendor::kUnknown, kNoMemory, false},
        ParseCase{"Tesla T40", "", "", Vendor::kNvidia, kNoMemory, false},
        ParseCase{"V1000", "", "", Vendor::kUnknown, kNoMemory, false},
        ParseCase{"RTX 409", "", "", Vendor::kUnknown, kNoMemory, false},
        ParseCase{"RTX40900", "", "", Vendor::kUnknown, kNoMemory, false},
        ParseCase{"Intel(R) Data Center GPU Max 1450", "", "", Vendor::kIntel, kNoMemory, false},
        ParseCase{"9100", "", "", Vendor::kUnknown, kNoMemory, false},
        ParseCase{"Ascend 310", "", "", Vendor::kHuawei, kNoMemory, false},
        // A known model word with a word we do not know: a different product.
        ParseCase{"NVIDIA GeForce RTX 4090 Laptop GPU", "", "", Vendor::kNvidia, kNoMemory, false},
        ParseCase{"Atlas 800T A2", "", "", Vendor::kUnknown, kNoMemory, false},
        // Contradictions and ambiguity.
        ParseCase{"NVIDIA Instinct MI250X", "", "", Vendor::kUnknown, kNoMemory, false},
        ParseCase{"AMD A100", "", "", Vendor::kAmd, kNoMemory, false},
        ParseCase{"Aldebaran/MI200 [Instinct MI250X/MI250]", "", "", Vendor::kAmd, kNoMemory,
                  false},
        ParseCase{"A100 40GB 80GB", "", "", Vendor::kUnknown, kNoMemory, false},
        ParseCase{"NVIDIA B300 SXM6 AC", "", "", Vendor::kNvidia, kNoMemory, false},
        ParseCase{"", "", "", Vendor::kUnknown, kNoMemory, false},
        ParseCase{" - ", "", "", Vendor::kUnknown, kNoMemory, false},
        ParseCase{"GPU", "", "", Vendor::kUnknown, kNoMemory, false}));

// Current generations, as their drivers name them, with the memory per
// device from the vendors' data sheets.
INSTANTIATE_TEST_SUITE_P(
    CurrentGenerations, ParseGpuModelTest,
    testing::Values(
        ParseCase{"NVIDIA B200", "B200", "", Vendor::kNvidia, 180, true},
        ParseCase{"NVIDIA B100", "B100", "", Vendor::kNvidia, 192, true},
        ParseCase{"NVIDIA GB200", "GB200", "", Vendor::kNvidia, 186, true},
        ParseCase{"NVIDIA B300", "B300", "", Vendor::kNvidia, 288, true},
        ParseCase{"NVIDIA GB300", "GB300", "", Vendor::kNvidia, 288, true},
        ParseCase{"NVIDIA H20", "H20", "", Vendor::kNvidia, 96, true},
        ParseCase{"NVIDIA H200", "H200", "", Vendor::kNvidia, 141, true},
        ParseCase{"NVIDIA H200 NVL", "H200", "NVL", Vendor::kNvidia, 141, true},
        ParseCase{"NVIDIA L20", "L20", "", Vendor::kNvidia, 48, true},
        ParseCase{"NVIDIA GeForce RTX 4090 D", "RTX4090D", "", Vendor::kNvidia, 24, true},
        ParseCase{"NVIDIA GeForce RTX 4080 SUPER", "RTX4080SUPER", "", Vendor::kNvidia, 16, true},
        ParseCase{"NVIDIA GeForce RTX 4070 Ti SUPER", "RTX4070TISUPER", "", Vendor::kNvidia, 16,
                  true},
        ParseCase{"NVIDIA GeForce RTX 5090", "RTX5090", "", Vendor::kNvidia, 32, true},
        ParseCase{"NVIDIA GeForce RTX 5090 D", "RTX5090D", "", Vendor::kNvidia, 32, true},
        ParseCase{"NVIDIA GeForce RTX 5080", "RTX5080", "", Vendor::kNvidia, 16, true},
        ParseCase{"NVIDIA GeForce RTX 5070 Ti", "RTX5070TI", "", Vendor::kNvidia, 16, true},
        ParseCase{"NVIDIA GeForce RTX 5060 Ti", "RTX5060TI", "", Vendor::kNvidia, kNoMemory, true},
        ParseCase{"NVIDIA RTX PRO 6000 Blackwell Workstation Edition", "RTXPRO6000", "WORKSTATION",
                  Vendor::kNvidia, 96, true},
        ParseCase{"NVIDIA RTX PRO 6000 Blackwell Server Edition", "RTXPRO6000", "SERVER",
                  Vendor::kNvidia, 96, true},
        ParseCase{"NVIDIA RTX PRO 6000 Blackwell Max-Q Workstation Edition", "RTXPRO6000",
                  "MAXQ-WORKSTATION", Vendor::kNvidia, 96, true},
        ParseCase{"NVIDIA RTX PRO 4500 Blackwell", "RTXPRO4500", "", Vendor::kNvidia, 32, true},
        ParseCase{"Quadro RTX 8000", "RTX8000", "", Vendor::kNvidia, 48, false},
        ParseCase{"Quadro RTX 6000", "RTX6000", "", Vendor::kNvidia, 24, false},
        ParseCase{"AMD Radeon PRO W7900", "W7900", "", Vendor::kAmd, 48, true},
        ParseCase{"AMD Instinct MI300X", "MI300X", "", Vendor::kAmd, 192, true},
        ParseCase{"AMD Instinct MI325X", "MI325X", "", Vendor::kAmd, 256, true},
        ParseCase{"AMD Instinct MI355X", "MI355X", "", Vendor::kAmd, 288, true},
        ParseCase{"AMD Instinct MI300A", "MI300A", "", Vendor::kAmd, 128, true},
        ParseCase{"Intel(R) Arc(TM) Pro B60 Graphics", "B60", "", Vendor::kIntel, 24, true},
        ParseCase{"Intel(R) Arc(TM) B580 Graphics", "B580", "", Vendor::kIntel, 12, true}));

// Memory overrides (gpu_memory_specs).
struct SpecCase {
  const char* name;
  GpuMemorySpecs specs;
  std::optional<double> memory_gb;
};

TEST(ParseGpuModelSpecsTest, AppliesOnlyWhenTheNameStatesNoSize) {
  const GpuMemorySpecs mission_defaults = {{"T4", 16.0},    {"V100", 32.0},    {"A100", 80.0},
                                           {"H100", 80.0},  {"RTX3090", 24.0}, {"RTX4090", 24.0},
                                           {"A6000", 48.0}, {"A40", 48.0}};
  const SpecCase cases[] = {
      {"Tesla V100-SXM2", mission_defaults, 32},
      {"v100", mission_defaults, 32},
      {"Tesla V100-SXM2-16GB", mission_defaults, 16},  // The name wins.
      {"NVIDIA A100-SXM4-40GB", mission_defaults, 40},
      {"a100", mission_defaults, 80},
      {"Tesla T4", {{"T4", 15.0}}, 15},  // Configured beats built-in.
      {"Tesla T4", {{"T4", 0.0}}, 16},   // Non-positive entries are ignored.
      {"Tesla T4", {{"V100", 32.0}}, 16},
      // A SKU whose size is fixed counts as stated by its name.
      {"NVIDIA H100 NVL", mission_defaults, 94},
      {"910B4", {{"ASCEND910B", 64.0}}, 32},
      // MIG slices never take the whole GPU's configured size.
      {"NVIDIA-A100-SXM4-40GB-MIG-1g.5gb", mission_defaults, 5},
      {"NVIDIA-A100-SXM4-MIG", mission_defaults, std::nullopt},
      // Keys written the way users write models still apply.
      {"NVIDIA A100-PCIE", {{"a100", 40.0}}, 40},
      {"NVIDIA GeForce RTX 3090", {{"rtx 3090", 22.0}}, 22},
      {"310P3", {{"Ascend310P", 24.0}}, 24},
      // Unknown names: only an entry naming the raw string (or its spelling).
      {"My Custom GPU", {{"My Custom GPU", 12.0}}, 12},
      {"my-custom-gpu", {{"MYCUSTOMGPU", 12.0}}, 12},
      {"NVIDIA A1000", mission_defaults, std::nullopt},
      {"NVIDIA A1000", {{"A100", 80.0}, {"NVIDIA A1000", 8.0}}, 8},
      {"H1000", {{"H100", 80.0}}, std::nullopt},
  };
  for (const SpecCase& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(ParseGpuModel(c.name, c.specs).memory_gb, c.memory_gb);
  }
}

TEST(ParseGpuModelSpecsTest, SpecsDoNotMakeAnUnknownNameKnown) {
  const GpuModel model = ParseGpuModel("NVIDIA A1000", {{"NVIDIA A1000", 8.0}});
  EXPECT_FALSE(model.known());
  EXPECT_EQ(model.variant, "");
  EXPECT_FALSE(model.supports_bf16);
}

TEST(CanonicalGpuTypeTest, CanonicalisesUserSpellings) {
  const struct {
    const char* user_type;
    const char* canonical;
  } cases[] = {
      {"v100", "V100"},
      {"V100", "V100"},
      {"A100-80GB", "A100"},
      {"a100 40gb", "A100"},
      {"rtx 4090", "RTX4090"},
      {"RTX4090", "RTX4090"},
      {"rtx-3090", "RTX3090"},
      {"H100", "H100"},
      {"h100 nvl", "H100"},
      {"Tesla V100-SXM2-32GB", "V100"},
      {"NVIDIA-A100-SXM4-40GB-MIG-1g.5gb", "A100"},
      {"RTX A6000", "A6000"},
      {"ascend910b", "ASCEND910B"},
      {"Ascend 910B", "ASCEND910B"},
      {"910B", "ASCEND910B"},
      {"mi250x", "MI250X"},
      {"Max 1550", "MAX1550"},
      {"flex-170", "FLEX170"},
      // Unknown: upper-cased, separators dropped, so it still matches an
      // unknown device of the same spelling.
      {"", ""},
      {"b2000", "B2000"},
      {"NVIDIA B2000", "NVIDIAB2000"},
      {"A1000", "A1000"},
      {"t40", "T40"},
      {"my-gpu x", "MYGPUX"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.user_type);
    EXPECT_EQ(CanonicalGpuType(c.user_type), c.canonical);
  }
}

TEST(CanonicalGpuTypeTest, CanonicalNamesAreFixedPoints) {
  const char* const canonicals[] = {
      "K80",     "P40",        "P100",    "V100",     "T4",        "A10",        "A10G",
      "A30",     "A40",        "A100",    "A800",     "A6000",     "RTX3090",    "RTX3090TI",
      "RTX4090", "RTX6000ADA", "L4",      "L40",      "L40S",      "H100",       "H800",
      "H200",    "GH200",      "MI100",   "MI210",    "MI250",     "MI250X",     "MI300X",
      "MI325X",  "MAX1100",    "MAX1550", "FLEX170",  "ASCEND910", "ASCEND910B", "ASCEND310P",
      "V100S",   "RTX6000",    "RTX8000", "RTX4090D", "RTX5090",   "RTXPRO6000", "B200",
      "B100",    "GB200",      "B300",    "GB300",    "H20",       "MI355X",     "W7900"};
  for (const char* canonical : canonicals) {
    SCOPED_TRACE(canonical);
    EXPECT_EQ(CanonicalGpuType(canonical), canonical);
    const GpuModel model = ParseGpuModel(canonical);
    EXPECT_EQ(model.canonical, canonical);
    EXPECT_NE(model.vendor, Vendor::kUnknown);
  }
}

TEST(CanonicalGpuTypeTest, AgreesWithParseGpuModelForDeviceNames) {
  for (const char* name : {"Tesla V100-PCIE-16GB", "NVIDIA H100 80GB HBM3", "AMD Instinct MI210",
                           "Intel(R) Data Center GPU Max 1100", "910B3", "NVIDIA A1000"}) {
    SCOPED_TRACE(name);
    const GpuModel model = ParseGpuModel(name);
    if (model.known()) {
      EXPECT_EQ(CanonicalGpuType(name), model.canonical);
    }
    EXPECT_EQ(CanonicalGpuType(name), CanonicalGpuType(CanonicalGpuType(name)));
  }
}

// Found by fuzz/gpu_model_fuzzer: separators inside a word used to survive
// the first reading but not the second.
TEST(CanonicalGpuTypeTest, IsIdempotentWhenStrippingRevealsAFamily) {
  for (const char* name : {"A-scend 310P3", "A\xff\xff\xffscend 310P3", "V 100", "rtx_4090"}) {
    SCOPED_TRACE(name);
    const std::string canonical = CanonicalGpuType(name);
    EXPECT_EQ(CanonicalGpuType(canonical), canonical);
  }
  EXPECT_EQ(CanonicalGpuType("A-scend 310P3"), "ASCEND310P");
}

// A request's type against device names: a bare family matches all of it,
// a type that names a variant (form factor, SKU, size, MIG profile) only
// that variant.
TEST(GpuTypePatternTest, MatchesVariantsExactlyAndFamiliesWhole) {
  const struct {
    const char* requested;
    const char* device;
    double device_gb;  // As the device reports it; 0 = not reported.
    bool matches;
  } cases[] = {
      {"V100", "Tesla V100-SXM2-32GB", 31.7, true},
      {"V100", "Tesla V100-PCIE-16GB", 15.8, true},
      {"V100S", "Tesla V100-SXM2-32GB", 31.7, false},
      {"V100", "Tesla V100S-PCIE-32GB", 31.7, false},
      {"V100S", "Tesla V100S-PCIE-32GB", 31.7, true},
      {"A100", "NVIDIA A100-SXM4-80GB", 80, true},
      {"A100", "NVIDIA A100-PCIE-40GB", 40, true},
      {"A100-40GB", "NVIDIA A100-SXM4-80GB", 80, false},
      {"A100-40GB", "NVIDIA A100-PCIE-40GB", 40, true},
      {"A100-80GB", "NVIDIA A100-SXM4-80GB", 80, true},
      // The size the device reports decides when its name states none.
      {"A100-40GB", "NVIDIA A100-SXM4", 80, false},
      {"A100-80GB", "NVIDIA A100-SXM4", 79.6, true},
      {"A100-80GB", "NVIDIA A100-SXM4", 0, false},  // Cannot tell.
      {"T4-16GB", "Tesla T4", 15.0, true},
      {"A100-SXM4", "NVIDIA A100-SXM4-80GB", 80, true},
      {"A100-SXM4", "NVIDIA A100-PCIE-40GB", 40, false},
      {"A100 SXM4 40GB", "NVIDIA A100-SXM4-80GB", 80, false},
      {"H100", "NVIDIA H100 NVL", 93.6, true},
      {"H100 NVL", "NVIDIA H100 NVL", 93.6, true},
      {"H100 NVL", "NVIDIA H100 80GB HBM3", 79.6, false},
      {"910B", "Ascend910B4", 32, true},
      {"910B4", "Ascend910B4", 32, true},
      {"910B4", "Ascend910B3", 64, false},
      {"A100", "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb", 4.75, true},
      {"A100-MIG-1g.5gb", "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb", 4.75, true},
      {"A100-MIG-1g.5gb", "NVIDIA-A100-SXM4-40GB-MIG-2g.10gb", 9.75, false},
      {"RTX4090", "NVIDIA GeForce RTX 4090 D", 24, false},
      {"RTX 4090 D", "NVIDIA GeForce RTX 4090 D", 24, true},
      {"B200", "NVIDIA B200", 179, true},
      {"B200", "NVIDIA GB200", 186, false},
      {"my-gpu", "My GPU", 8, true},
      {"my-gpu", "Other GPU", 8, false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.requested) + " vs " + c.device);
    EXPECT_EQ(GpuTypePattern(c.requested).Matches(ParseGpuModel(c.device), c.device_gb), c.matches);
  }
}

TEST(VendorTest, NamesRoundTrip) {
  for (Vendor vendor :
       {Vendor::kUnknown, Vendor::kNvidia, Vendor::kAmd, Vendor::kIntel, Vendor::kHuawei}) {
    SCOPED_TRACE(VendorName(vendor));
    EXPECT_EQ(ParseVendor(VendorName(vendor)), vendor);
  }
  EXPECT_STREQ(VendorName(Vendor::kNvidia), "nvidia");
  EXPECT_STREQ(VendorName(Vendor::kAmd), "amd");
  EXPECT_STREQ(VendorName(Vendor::kIntel), "intel");
  EXPECT_STREQ(VendorName(Vendor::kHuawei), "huawei");
  EXPECT_STREQ(VendorName(Vendor::kUnknown), "unknown");
}

TEST(VendorTest, ParsesAliasesAndRejectsOthers) {
  EXPECT_EQ(ParseVendor("ascend"), Vendor::kHuawei);
  EXPECT_EQ(ParseVendor("npu"), Vendor::kHuawei);
  EXPECT_EQ(ParseVendor("NVIDIA"), Vendor::kNvidia);
  EXPECT_EQ(ParseVendor("Amd"), Vendor::kAmd);
  EXPECT_EQ(ParseVendor(""), std::nullopt);
  EXPECT_EQ(ParseVendor("nvidia.com/gpu"), std::nullopt);
  EXPECT_EQ(ParseVendor("nvidiaa"), std::nullopt);
  EXPECT_EQ(ParseVendor(" nvidia"), std::nullopt);
}

}  // namespace
}  // namespace gpurm
