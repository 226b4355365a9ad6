#include "codec/node_codec.h"

#include <gtest/gtest.h>

namespace gpurm {
namespace {

using nlohmann::json;

// A node with every field away from its default: a GPU in MIG mode with one
// MIG device, and a plain GPU with two processes, one identified by its
// agent and one the agent could not tell.
AgentReport ReportWithEveryFieldSet() {
  AgentReport report;
  report.node.name = "gpu-node-7";
  report.node.address = "10.0.0.7";
  report.node.schedulable = false;
  report.taken_unix_ms = 1'765'000'000'123;
  report.stale_gpus = {"GPU-b"};
  report.notes = {"nvidia: 2 GPUs", "nvidia: GPU 1 sampling timed out"};

  Gpu& mig = report.node.gpus.emplace_back();
  mig.index = 0;
  mig.uuid = "GPU-a";
  mig.pci_bus_id = "00000000:17:00.0";
  mig.model = ParseGpuModel("NVIDIA A100-SXM4-80GB");
  mig.memory_total_mib = 81920;
  mig.memory_used_mib = 10;
  mig.mig_enabled = true;
  mig.utilization_available = false;
  mig.nvlink_group = 1;
  mig.numa_node = 0;
  Gpu& device = report.node.gpus.emplace_back(mig);
  device.uuid = "MIG-a1";
  device.pci_bus_id.clear();
  device.model = ParseGpuModel("NVIDIA A100-SXM4-80GB MIG 3g.40gb");
  device.memory_total_mib = 40192;
  device.mig_enabled = false;
  device.mig_parent_uuid = "GPU-a";
  device.mig_profile = "3g.40gb";

  Gpu& plain = report.node.gpus.emplace_back();
  plain.index = 1;
  plain.uuid = "GPU-b";
  plain.model = ParseGpuModel("NVIDIA H100 80GB HBM3");
  plain.memory_total_mib = 81559;
  plain.memory_used_mib = 30000;
  plain.utilization = 0.75;
  plain.memory_utilization = 0.5;
  plain.temperature_c = 61.5;
  plain.power_w = 350.25;
  plain.power_limit_w = 700;
  plain.healthy = false;
  plain.health_reason = "XID 79: fell off the bus";
  plain.sm_clock_mhz = 1980;
  plain.ecc_double_bit_errors = 2;
  plain.last_xid = 79;
  GpuProcess identified(4242, 20000);
  identified.identity.emplace();
  identified.identity->command = "python";
  identified.identity->uid = 1000;
  identified.identity->allocation_id = "a-1";
  GpuProcess untold(77, 10000);
  untold.identity.emplace();
  untold.identity->unknown_reason = "permission denied";
  GpuProcess in_pod(79, 512);
  in_pod.identity.emplace();
  in_pod.identity->command = "python";
  in_pod.identity->pod_uid = "6f1c2d3e-0000-4000-8000-000000000001";
  // Reported by an older agent or by this machine's own driver: no identity.
  const GpuProcess bare(78, 0);
  plain.processes = {identified, untold, in_pod, bare};
  return report;
}

TEST(NodeCodecTest, EveryFieldRoundTrips) {
  const AgentReport report = ReportWithEveryFieldSet();
  const json encoded = EncodeAgentReport(report);
  // Through text, as it travels.
  Result<AgentReport> decoded = DecodeAgentReport(json::parse(encoded.dump()), {});
  ASSERT_TRUE(decoded.ok()) << decoded.status().message();
  EXPECT_EQ(decoded->node, report.node);
  EXPECT_EQ(decoded->taken_unix_ms, report.taken_unix_ms);
  EXPECT_EQ(decoded->stale_gpus, report.stale_gpus);
  EXPECT_EQ(decoded->notes, report.notes);
  EXPECT_EQ(EncodeAgentReport(*decoded), encoded);
}

TEST(NodeCodecTest, TheReaderParsesModelsWithItsOwnMemorySpecs) {
  AgentReport report;
  report.node.name = "n";
  report.node.gpus.emplace_back().uuid = "GPU-x";
  report.node.gpus.back().model = ParseGpuModel("Tesla T4");
  Result<AgentReport> decoded = DecodeAgentReport(EncodeAgentReport(report), {{"T4", 15.0}});
  ASSERT_TRUE(decoded.ok()) << decoded.status().message();
  ASSERT_TRUE(decoded->node.gpus[0].model.memory_gb.has_value());
  EXPECT_EQ(*decoded->node.gpus[0].model.memory_gb, 15.0);
}

// Each bad answer is refused with the field at fault.
TEST(NodeCodecTest, BadAnswersNameTheField) {
  const json good = EncodeAgentReport(ReportWithEveryFieldSet());
  struct Case {
    const char* what;
    json document;
    const char* field;
  };
  std::vector<Case> cases;
  auto with = [&](const char* what, auto change, const char* field) {
    json document = good;
    change(document);
    cases.push_back({what, std::move(document), field});
  };
  with(
      "not an object", [](json& d) { d = json::array(); }, "body");
  with(
      "no version", [](json& d) { d.erase("agent_protocol"); }, "agent_protocol");
  with(
      "another version", [](json& d) { d["agent_protocol"] = 2; }, "agent_protocol");
  with(
      "no node", [](json& d) { d.erase("node"); }, "node");
  with(
      "unknown top-level key", [](json& d) { d["extra"] = 1; }, "extra");
  with(
      "empty node name", [](json& d) { d["node"]["name"] = ""; }, "node.name");
  with(
      "unknown GPU key", [](json& d) { d["node"]["gpus"][2]["fan"] = 1; }, "node.gpus[2].fan");
  with(
      "negative memory", [](json& d) { d["node"]["gpus"][1]["memory_total_mib"] = -1; },
      "node.gpus[1].memory_total_mib");
  with(
      "used above total", [](json& d) { d["node"]["gpus"][2]["memory_used_mib"] = 1 << 30; },
      "node.gpus[2].memory_used_mib");
  with(
      "utilization above 1", [](json& d) { d["node"]["gpus"][2]["utilization"] = 7; },
      "node.gpus[2].utilization");
  with(
      "string for a bool", [](json& d) { d["node"]["gpus"][0]["healthy"] = "yes"; },
      "node.gpus[0].healthy");
  with(
      "duplicate uuid", [](json& d) { d["node"]["gpus"][2]["uuid"] = "GPU-a"; },
      "node.gpus[2].uuid");
  with(
      "no uuid", [](json& d) { d["node"]["gpus"][0].erase("uuid"); }, "node.gpus[0].uuid");
  with(
      "process without pid", [](json& d) { d["node"]["gpus"][2]["processes"][0].erase("pid"); },
      "node.gpus[2].processes[0].pid");
  with(
      "huge string", [](json& d) { d["notes"][0] = std::string(5000, 'x'); }, "notes[0]");
  with(
      "gpus not an array", [](json& d) { d["node"]["gpus"] = json::object(); }, "node.gpus");
  for (const Case& c : cases) {
    Result<AgentReport> decoded = DecodeAgentReport(c.document, {});
    ASSERT_FALSE(decoded.ok()) << c.what;
    EXPECT_EQ(decoded.status().code(), StatusCode::kInvalidArgument) << c.what;
    EXPECT_EQ(decoded.status().field(), c.field) << c.what << ": " << decoded.status().message();
  }
}

}  // namespace
}  // namespace gpurm
