#include "cli/top_command.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

namespace gpurm::cli {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

json Gpu(int index, double utilization, double used_gb, double temperature) {
  return {{"index", index},
          {"uuid", "GPU-" + std::to_string(index)},
          {"name", "NVIDIA H100 80GB HBM3"},
          {"gpu_type", "H100"},
          {"state", "free"},
          {"utilization", utilization},
          {"memory_used_gb", used_gb},
          {"memory_reserved_gb", 0.0},
          {"memory_total_gb", 80.0},
          {"temperature_c", temperature},
          {"power_w", 300.0},
          {"power_limit_w", 700.0},
          {"healthy", true},
          {"health_reason", ""},
          {"processes", json::array()},
          {"allocations", json::array()},
          {"history", json::array()}};
}

json Monitoring() {
  json busy = Gpu(1, 0.9, 60, 81);
  busy["state"] = "allocated";
  busy["memory_reserved_gb"] = 80.0;
  busy["allocations"] = json::array({{{"allocation_id", "alloc-7"}, {"owner", "alice"}}});
  busy["processes"] = json::array({{{"pid", 4242}, {"memory_used_gb", 59.5}},
                                   {{"pid", 4343},
                                    {"memory_used_gb", 2.0},
                                    {"user", "bob"},
                                    {"command", "python"},
                                    {"allocation_id", "alloc-7"},
                                    {"owner", "alice"},
                                    {"class", "foreign"}}});
  busy["history"] = json::array({{{"utilization", 0.0}}, {{"utilization", 1.0}}});
  json broken = Gpu(2, 0.0, 1, 40);
  broken["healthy"] = false;
  broken["health_reason"] = "XID 79";
  broken["state"] = "unhealthy";
  return {
      {"timestamp", "2026-11-25T12:00:00.000Z"},
      {"sampled_at", "2026-11-25T11:59:50.000Z"},
      {"interval_seconds", 30},
      {"nodes",
       json::array({{{"node_name", "dgx-1"}, {"gpus", json::array({Gpu(0, 0.2, 10, 35), busy})}},
                    {{"node_name", "dgx-2"}, {"gpus", json::array({broken})}}})}};
}

TEST(TopFrameTest, ShowsEveryNodeAndGpuWithBarsHealthAndHolders) {
  const std::string frame = RenderTopFrame(Monitoring(), TopOptions{}, "http://h:8000");
  EXPECT_THAT(frame, HasSubstr("gpurm top - http://h:8000 - 2026-11-25T12:00:00.000Z"));
  EXPECT_THAT(frame, HasSubstr("3 GPU(s) on 2 node(s): 1 allocated, 0 shared, 1 unhealthy"));
  EXPECT_THAT(frame, HasSubstr("dgx-1  2 GPU(s)"));
  EXPECT_THAT(frame, HasSubstr("[########==] 60.0/80.0/80.0 GB"));
  EXPECT_THAT(frame, HasSubstr("[######### ]  90% ▁█"));
  EXPECT_THAT(frame, HasSubstr("81 C"));
  EXPECT_THAT(frame, HasSubstr("300/700 W"));
  EXPECT_THAT(frame, HasSubstr("alloc-7 (alice)"));
  EXPECT_THAT(frame, HasSubstr("pid 4242  59.5 GB"));
  EXPECT_THAT(frame, HasSubstr("pid 4343  2.0 GB  bob  python  alloc-7 (alice)  foreign"));
  EXPECT_THAT(frame, HasSubstr("UNHEALTHY: XID 79"));
  EXPECT_THAT(frame, Not(HasSubstr("\x1b[")));  // No colour unless asked.
}

TEST(TopFrameTest, SortsWithinEachNode) {
  TopOptions options;
  options.sort = "util";
  std::string frame = RenderTopFrame(Monitoring(), options, "u");
  EXPECT_LT(frame.find("90%"), frame.find("20%"));
  options.sort = "index";
  frame = RenderTopFrame(Monitoring(), options, "u");
  EXPECT_LT(frame.find("20%"), frame.find("90%"));
  options.sort = "temp";
  frame = RenderTopFrame(Monitoring(), options, "u");
  EXPECT_LT(frame.find("81 C"), frame.find("35 C"));
  options.sort = "memory";
  frame = RenderTopFrame(Monitoring(), options, "u");
  EXPECT_LT(frame.find("60.0/80.0/80.0"), frame.find("10.0/0.0/80.0"));
}

TEST(TopFrameTest, NodeFilter) {
  TopOptions options;
  options.node = "dgx-2";
  std::string frame = RenderTopFrame(Monitoring(), options, "u");
  EXPECT_THAT(frame, HasSubstr("dgx-2"));
  EXPECT_THAT(frame, Not(HasSubstr("dgx-1")));
  options.node = "nope";
  EXPECT_THAT(RenderTopFrame(Monitoring(), options, "u"), HasSubstr("No node named \"nope\""));
}

TEST(TopFrameTest, ColoursKeepColumnsAligned) {
  TopOptions options;
  options.color = true;
  const std::string frame = RenderTopFrame(Monitoring(), options, "u");
  EXPECT_THAT(frame, HasSubstr("\x1b[31m"));  // The hot, busy GPU.
  // The POWER column, after differently coloured cells, starts at the same
  // visible column on both rows of dgx-1.
  auto visible_column_of_power = [&frame](size_t row_start) {
    const size_t power = frame.find("300/700 W", row_start);
    size_t width = 0;
    for (size_t i = row_start; i < power; ++i) {
      if (frame[i] == '\x1b') {
        while (frame[i] != 'm') ++i;
        continue;
      }
      if ((static_cast<unsigned char>(frame[i]) & 0xC0) != 0x80) ++width;
    }
    return width;
  };
  const size_t row0 = frame.find("\n   0  ") + 1;
  const size_t row1 = frame.find("\n   1  ") + 1;
  ASSERT_NE(row0, 0u);
  ASSERT_NE(row1, 0u);
  EXPECT_EQ(visible_column_of_power(row0), visible_column_of_power(row1));
}

TEST(TopFrameTest, MissingFieldsRenderAsDashes) {
  const json sparse = {
      {"nodes", json::array({{{"node_name", "n"}, {"gpus", json::array({{{"index", 0}}})}}})}};
  const std::string frame = RenderTopFrame(sparse, TopOptions{}, "u");
  EXPECT_THAT(frame, HasSubstr("n  1 GPU(s)"));
  EXPECT_THAT(frame, HasSubstr(" 0  -"));
  EXPECT_NO_THROW(RenderTopFrame(json("not an object"), TopOptions{}, "u"));
}

// The live view quits on 'q'; other keys and the end of input do not stop
// it (Wait then returns false when its time is up; no time is measured).
TEST(TopStopperTest, QuitsOnQ) {
  int keys[2];
  ASSERT_EQ(::pipe(keys), 0);
  TopStopper stopper(keys[0]);
  ASSERT_EQ(::write(keys[1], "x", 1), 1);
  EXPECT_FALSE(stopper.Wait(0.05));
  ASSERT_EQ(::write(keys[1], "aq", 2), 2);
  EXPECT_TRUE(stopper.Wait(3600));
  ::close(keys[1]);
  EXPECT_FALSE(stopper.Wait(0.05));
  ::close(keys[0]);
}

TEST(TopStopperTest, StopsOnSigint) {
  TopStopper stopper(-1);
  ASSERT_EQ(::raise(SIGINT), 0);  // Blocked by the stopper in this thread: it waits for it.
  EXPECT_TRUE(stopper.Wait(3600));
}

// A GPU in MIG mode with its MIG devices under it: no utilization for either
// ("n/a", never 0%), memory counted once (the GPU's), the holder on the device.
TEST(TopFrameTest, MigDevicesAreRowsUnderTheirGpuWithoutUtilization) {
  json parent = Gpu(4, 0.0, 2.5, 40);
  parent["state"] = "mig";
  parent["mig_mode"] = true;
  parent["utilization"] = nullptr;
  parent["utilization_available"] = false;
  json device = Gpu(4, 0.0, 2.0, 0);
  device["uuid"] = "MIG-1";
  device["name"] = "NVIDIA H100 80GB HBM3 MIG 3g.40gb";
  device["mig_profile"] = "3g.40gb";
  device["utilization"] = nullptr;
  device["utilization_available"] = false;
  device["temperature_c"] = nullptr;
  device["memory_total_gb"] = 39.4;
  device["memory_reserved_gb"] = 39.4;
  device["state"] = "allocated";
  device["allocations"] = json::array({{{"allocation_id", "alloc-9"}, {"owner", "bob"}}});
  device["history"] = json::array({{{"utilization", nullptr}}});
  parent["mig_devices"] = json::array({device});
  const json monitoring = {
      {"timestamp", "t"},
      {"sampled_at", "s"},
      {"interval_seconds", 30},
      {"nodes", json::array({{{"node_name", "dgx-1"},
                              {"gpus", json::array({Gpu(0, 0.5, 10, 35), parent})}}})}};
  TopOptions options;
  options.sort = "index";
  const std::string frame = RenderTopFrame(monitoring, options, "http://h:8000");
  EXPECT_THAT(frame, HasSubstr("2 GPU(s) and 1 MIG device(s) on 1 node(s): 1 allocated"));
  EXPECT_THAT(frame, HasSubstr("utilization 50%"));  // Over the GPU that reports it.
  EXPECT_THAT(frame, HasSubstr("total 160.0 GB"));   // The MIG device's memory is its GPU's.
  EXPECT_THAT(frame, HasSubstr("dgx-1  2 GPU(s), 1 MIG device(s)"));
  EXPECT_THAT(frame, HasSubstr("n/a (MIG mode)"));
  EXPECT_THAT(frame, HasSubstr("(its MIG devices)"));
  // The device's row follows its GPU's.
  const size_t gpu_row = frame.find("n/a (MIG mode)");
  const size_t device_row = frame.find("└ MIG 3g.40gb");
  ASSERT_NE(device_row, std::string::npos) << frame;
  EXPECT_LT(gpu_row, device_row);
  EXPECT_THAT(frame.substr(device_row), HasSubstr("n/a (MIG)"));
  EXPECT_THAT(frame.substr(device_row), HasSubstr("alloc-9 (bob)"));
  EXPECT_THAT(frame, Not(HasSubstr("  0%")));
}

// Kubernetes' MIG devices have no GPU listed: each is a row of its own, and
// its memory counts (no GPU holds it).
TEST(TopFrameTest, MigDevicesWithoutTheirGpuStandAlone) {
  json device = Gpu(0, 0.0, 0.0, 0);
  device["mig_profile"] = "3g.40gb";
  device["mig_parent_uuid"] = "k8s:n:nvidia.com/gpu:mig";
  device["utilization"] = nullptr;
  device["utilization_available"] = false;
  device["memory_total_gb"] = 40.0;
  const json monitoring = {
      {"timestamp", "t"},
      {"sampled_at", "s"},
      {"interval_seconds", 30},
      {"nodes", json::array({{{"node_name", "k"}, {"gpus", json::array({device})}}})}};
  const std::string frame = RenderTopFrame(monitoring, TopOptions{}, "http://h:8000");
  EXPECT_THAT(frame, HasSubstr("0 GPU(s) and 1 MIG device(s) on 1 node(s)"));
  EXPECT_THAT(frame, HasSubstr("k  0 GPU(s), 1 MIG device(s)"));
  EXPECT_THAT(frame, HasSubstr("total 40.0 GB"));
  EXPECT_THAT(frame, HasSubstr("utilization n/a"));
}

TEST(SparklineTest, OneBlockPerSample) {
  EXPECT_EQ(Sparkline({0.0, 0.5, 1.0, 2.0}), "▁▅██");
  EXPECT_EQ(Sparkline({}), "");
}

}  // namespace
}  // namespace gpurm::cli
