#include "guard/guard_config.h"

#include <string>

#include "gtest/gtest.h"

namespace gpurm {
namespace {

struct Parsed {
  int code = 0;
  gpurm_guard_config config{};
  std::string error;
};

Parsed Parse(const char* allocation_id, const char* limits_mb) {
  Parsed parsed;
  char error[256];
  parsed.code =
      gpurm_guard_parse_config(allocation_id, limits_mb, &parsed.config, error, sizeof(error));
  parsed.error = error;
  return parsed;
}

TEST(GuardConfigTest, ReadsOneLimitPerDeviceInMiB) {
  const Parsed parsed = Parse("alloc-0123", "4096,81920");
  ASSERT_EQ(parsed.code, 0) << parsed.error;
  EXPECT_TRUE(parsed.config.enabled);
  ASSERT_EQ(parsed.config.device_count, 2);
  EXPECT_EQ(parsed.config.limit_bytes[0], 4096ull << 20);
  EXPECT_EQ(parsed.config.limit_bytes[1], 81920ull << 20);
  EXPECT_STREQ(parsed.config.ledger_path, "/dev/shm/gpurm-cuda-guard-alloc-0123");
}

TEST(GuardConfigTest, NoLimitsMeansDisabled) {
  for (const char* limits : {static_cast<const char*>(nullptr), ""}) {
    const Parsed parsed = Parse("alloc-0123", limits);
    EXPECT_EQ(parsed.code, 0);
    EXPECT_FALSE(parsed.config.enabled);
  }
  EXPECT_FALSE(Parse(nullptr, nullptr).config.enabled);
}

TEST(GuardConfigTest, RefusesMalformedLimitsNamingTheVariable) {
  for (const char* limits :
       {"abc", "4096,", ",4096", "4096 ,1", "0", "-1", "4096;4096", "1e3", "2000000"}) {
    const Parsed parsed = Parse("alloc-0123", limits);
    EXPECT_EQ(parsed.code, -1) << limits;
    EXPECT_FALSE(parsed.config.enabled) << limits;
    EXPECT_EQ(parsed.error.rfind("GPURM_CUDA_MEMORY_LIMITS_MB=\"", 0), 0u) << parsed.error;
  }
}

TEST(GuardConfigTest, RefusesMoreThanSixtyFourDevices) {
  std::string limits = "1";
  for (int i = 1; i < 65; ++i) limits += ",1";
  EXPECT_EQ(Parse("a", limits.c_str()).code, -1);
  EXPECT_EQ(Parse("a", limits.substr(2).c_str()).code, 0);
}

TEST(GuardConfigTest, LimitsNeedAnAllocationIdThatCanNameAFile) {
  EXPECT_NE(Parse(nullptr, "4096").error.find("set without GPURM_ALLOCATION_ID"),
            std::string::npos);
  for (const char* id : {"../etc", "a/b", ".hidden", "with space", ""}) {
    const Parsed parsed = Parse(id, "4096");
    EXPECT_EQ(parsed.code, -1) << id;
  }
  EXPECT_EQ(Parse(std::string(129, 'a').c_str(), "4096").code, -1);
  EXPECT_EQ(Parse(std::string(128, 'a').c_str(), "4096").code, 0);
}

}  // namespace
}  // namespace gpurm
