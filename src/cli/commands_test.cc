#include "cli/commands.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

namespace gpurm::cli {
namespace {

using nlohmann::json;
using testing::HasSubstr;

TEST(ExitCodeTest, ByHttpStatus) {
  EXPECT_EQ(ExitCodeForHttpStatus(200), kExitOk);
  EXPECT_EQ(ExitCodeForHttpStatus(204), kExitOk);
  EXPECT_EQ(ExitCodeForHttpStatus(400), kExitRefused);
  EXPECT_EQ(ExitCodeForHttpStatus(409), kExitRefused);
  EXPECT_EQ(ExitCodeForHttpStatus(500), kExitUnavailable);
  EXPECT_EQ(ExitCodeForHttpStatus(503), kExitUnavailable);
  EXPECT_EQ(ExitCodeForHttpStatus(302), kExitUnavailable);
}

TEST(PercentEncodeTest, KeepsUnreservedOnly) {
  EXPECT_EQ(PercentEncode("V100-SXM2_a.b~"), "V100-SXM2_a.b~");
  EXPECT_EQ(PercentEncode("a b/c&d=e"), "a%20b%2Fc%26d%3De");
  EXPECT_EQ(PercentEncode("\xC3\xB6"), "%C3%B6");
}

TEST(RequestJsonTest, DefaultsSendOnlyTheCount) {
  EXPECT_EQ(BuildGpuRequestJson(RequestFlags{}), json({{"gpu_count", 1}}));
}

TEST(RequestJsonTest, EveryFlag) {
  RequestFlags flags;
  flags.gpus = 4;
  flags.type = "V100";
  flags.memory_gb = 16.5;
  flags.distributed = true;
  flags.mixed_precision = true;
  flags.fraction = 0.8;
  flags.node = "n1";
  flags.shared = true;
  flags.policy = "spread";
  flags.lease_ttl_seconds = 600;
  flags.owner = "alice";
  EXPECT_EQ(BuildGpuRequestJson(flags), json({{"gpu_count", 4},
                                              {"gpu_type", "V100"},
                                              {"memory_gb", 16.5},
                                              {"distributed_training", true},
                                              {"mixed_precision", true},
                                              {"gpu_memory_fraction", 0.8},
                                              {"node_name", "n1"},
                                              {"shared", true},
                                              {"policy", "spread"},
                                              {"lease_ttl_seconds", 600},
                                              {"owner", "alice"}}));
}

TEST(ApiCallTest, AllocateSendsTheIdempotencyKeyAsHeader) {
  RequestFlags flags;
  flags.gpus = 2;
  const ApiCall call = BuildAllocateCall(flags, "job-42");
  EXPECT_EQ(call.method, "POST");
  EXPECT_EQ(call.path, "/api/v1/gpu/allocate");
  EXPECT_EQ(call.body, json({{"gpu_count", 2}}));
  EXPECT_EQ(call.headers, (HttpHeaders{{"Idempotency-Key", "job-42"}}));
  EXPECT_TRUE(BuildAllocateCall(flags, "").headers.empty());
}

TEST(ApiCallTest, ValidateStatusNodesAllocationsHeartbeat) {
  EXPECT_EQ(BuildValidateCall(RequestFlags{}).path, "/api/v1/gpu/validate");
  EXPECT_EQ(BuildStatusCall().path, "/api/v1/gpu/status");
  EXPECT_EQ(BuildStatusCall().method, "GET");
  EXPECT_EQ(BuildNodesCall(std::nullopt, std::nullopt).path, "/api/v1/gpu/nodes");
  EXPECT_EQ(BuildNodesCall("V100", 16.0).path,
            "/api/v1/gpu/nodes?gpu_type=V100&min_memory_gb=16.0");
  EXPECT_EQ(BuildNodesCall(std::nullopt, 8.5).path, "/api/v1/gpu/nodes?min_memory_gb=8.5");
  EXPECT_EQ(BuildAllocationsCall(false, std::nullopt).path, "/api/v1/gpu/allocations");
  EXPECT_EQ(BuildAllocationsCall(true, "bob smith").path,
            "/api/v1/gpu/allocations?all=true&owner=bob%20smith");
  const ApiCall heartbeat = BuildHeartbeatCall("a/1");
  EXPECT_EQ(heartbeat.method, "POST");
  EXPECT_EQ(heartbeat.path, "/api/v1/gpu/allocations/a%2F1/heartbeat");
  EXPECT_EQ(heartbeat.body, json::object());
}

TEST(ApiCallTest, ReleaseById) {
  ReleaseFlags flags;
  flags.allocation_id = "alloc-1";
  Result<ApiCall> call = BuildReleaseCall(flags);
  ASSERT_TRUE(call.ok());
  EXPECT_EQ(call->method, "DELETE");
  EXPECT_EQ(call->path, "/api/v1/gpu/allocations/alloc-1");
  EXPECT_TRUE(call->body.is_null());
  EXPECT_TRUE(call->headers.empty());
}

TEST(ApiCallTest, ReleaseByNode) {
  ReleaseFlags flags;
  flags.node = "n1";
  flags.gpus = 2;
  flags.owner = "alice";
  Result<ApiCall> call = BuildReleaseCall(flags);
  ASSERT_TRUE(call.ok());
  EXPECT_EQ(call->method, "POST");
  EXPECT_EQ(call->path, "/api/v1/gpu/release");
  EXPECT_EQ(call->body, json({{"node_name", "n1"}, {"gpu_count", 2}, {"owner", "alice"}}));
  EXPECT_EQ(call->headers, (HttpHeaders{{"X-Gpurm-Owner", "alice"}}));
}

TEST(ApiCallTest, ReleaseNeedsExactlyOneForm) {
  EXPECT_FALSE(BuildReleaseCall(ReleaseFlags{}).ok());
  ReleaseFlags half;
  half.node = "n1";
  EXPECT_FALSE(BuildReleaseCall(half).ok());
  ReleaseFlags both;
  both.allocation_id = "a";
  both.node = "n1";
  both.gpus = 1;
  EXPECT_EQ(BuildReleaseCall(both).status().code(), StatusCode::kInvalidArgument);
}

TEST(RenderTest, Status) {
  const json body = {{"utilization", {{"gpu_utilization", 0.31}, {"gpu_memory_usage", 0.12}}},
                     {"available_nodes",
                      {{{"node_name", "n1"},
                        {"gpu_type", "V100"},
                        {"available_gpus", 3},
                        {"memory_per_gpu", 32.0},
                        {"utilization", 0.5}}}},
                     {"total_nodes", 1},
                     {"total_gpus", 4},
                     {"available_gpus", 3},
                     {"allocated_gpus", 1},
                     {"active_allocations", 1},
                     {"timestamp", "2024-05-01T10:00:00Z"}};
  EXPECT_EQ(RenderStatus(body),
            "As of 2024-05-01T10:00:00Z: 1 node(s), 4 GPU(s) (3 available, 1 allocated), 1 "
            "active allocation(s)\n"
            "GPU utilization:  [###       ]  31%\n"
            "GPU memory usage: [#         ]  12%\n"
            "\n"
            "NODE  TYPE  AVAILABLE  MEMORY/GPU  UTILIZATION\n"
            "n1    V100          3     32.0 GB  [#####     ]  50%\n");
}

TEST(RenderTest, PoliciesMarkTheDefault) {
  EXPECT_EQ(BuildPoliciesCall().method, "GET");
  EXPECT_EQ(BuildPoliciesCall().path, "/api/v1/gpu/policies");
  const json body = {{"policies",
                      {{{"name", "binpack"}, {"description", "best fit"}},
                       {{"name", "spread"}, {"description", "least allocated"}}}},
                     {"default", "spread"}};
  EXPECT_EQ(RenderPolicies(body),
            "POLICY            DESCRIPTION\n"
            "binpack           best fit\n"
            "spread (default)  least allocated\n");
  EXPECT_EQ(RenderPolicies(json::object()), "The daemon lists no placement policy.\n");
}

TEST(RenderTest, StatusWithoutFreeNodes) {
  EXPECT_THAT(RenderStatus(json::object()), HasSubstr("No node has a free GPU."));
}

TEST(RenderTest, Nodes) {
  const json body = {{"nodes",
                      {{{"node_name", "n1"},
                        {"gpus",
                         {{{"index", 0},
                           {"gpu_type", "V100"},
                           {"state", "free"},
                           {"memory_total_gb", 32.0},
                           {"memory_free_gb", 20.0},
                           {"utilization", 0.07},
                           {"temperature_c", 41.6},
                           {"healthy", true}},
                          {{"index", 1},
                           {"gpu_type", ""},
                           {"name", "Mystery"},
                           {"state", "shared"},
                           {"memory_total_gb", 16.0},
                           {"memory_free_gb", 16.0},
                           {"utilization", nullptr},
                           {"healthy", false}}}}}}},
                     {"count", 1}};
  EXPECT_EQ(RenderNodes(body),
            "NODE  GPU  TYPE     STATE   MEMORY USED                UTIL  TEMP  HEALTHY\n"
            "n1      0  V100     free    [####      ] 12.0/32.0 GB    7%  42 C  yes\n"
            "n1      1  Mystery  shared  [          ] 0.0/16.0 GB      -     -  no\n"
            "1 node(s)\n");
  EXPECT_EQ(RenderNodes(json{{"nodes", json::array()}}), "No node matches.\n");
}

TEST(RenderTest, Allocated) {
  const json body = {
      {"success", true},
      {"allocation_id", "a-1"},
      {"node_name", "n1"},
      {"gpus",
       {{{"node_name", "n1"},
         {"gpu_index", 0},
         {"gpu_uuid", "GPU-a"},
         {"memory_gb", 32.0},
         {"exclusive", true}},
        {{"node_name", "n1"},
         {"gpu_index", 2},
         {"gpu_uuid", "GPU-b"},
         {"memory_gb", 32.0},
         {"exclusive", true},
         {"access", "exclusive_with_outside_processes"},
         {"outside_use_gb", 20.0}}}},
      {"gpu_config",
       {{"environment", {{"CUDA_DEVICE_ORDER", "PCI_BUS_ID"}, {"CUDA_VISIBLE_DEVICES", "0,2"}}}}},
      {"allocation", {{"lease_expires_at", "2024-05-01T11:00:00Z"}}}};
  EXPECT_EQ(RenderAllocated(body),
            "Allocated a-1: n1:0,2\n"
            "NODE  GPU  UUID    MEMORY  ACCESS\n"
            "n1      0  GPU-a  32.0 GB  exclusive\n"
            "n1      2  GPU-b  32.0 GB  NOT exclusive: outside use 20.0 GB\n"
            "Warning: n1 GPU 2 is used by processes outside gpurm (20.0 GB); no GPU free of them "
            "fits the request\n"
            "Environment: CUDA_DEVICE_ORDER=PCI_BUS_ID CUDA_VISIBLE_DEVICES=0,2\n"
            "Lease expires at 2024-05-01T11:00:00Z; renew with: gpurm heartbeat a-1\n");
}

TEST(RenderTest, RefusalExplainsWhyAndWhatFits) {
  const json body = {
      {"success", false},
      {"error", {{"code", "unschedulable_now"}, {"message", "no node has 4 free V100"}}},
      {"reasons", {{{"node_name", "n1"}, {"reason", "only 2 free GPUs"}}}},
      {"would_fit",
       {{"max_gpus_on_one_node", 2},
        {"max_memory_gb_per_gpu", 32.0},
        {"gpu_types_available", {{"V100", 2}}},
        {"suggestion", "ask for 2 GPUs"}}}};
  EXPECT_EQ(RenderError(body),
            "Error: unschedulable_now: no node has 4 free V100\n"
            "Reasons:\n"
            "  n1: only 2 free GPUs\n"
            "Would fit now: up to 2 GPU(s) on one node, up to 32.0 GB free per GPU; free GPUs by "
            "type: V100 x2\n"
            "Suggestion: ask for 2 GPUs\n");
  EXPECT_EQ(
      RenderError(json{
          {"error",
           {{"code", "invalid_argument"}, {"message", "must be >= 1"}, {"field", "gpu_count"}}}}),
      "Error: invalid_argument: must be >= 1 (field: gpu_count)\n");
}

TEST(RenderTest, Validation) {
  const json body = {{"valid", false},
                     {"possible_now", false},
                     {"possible_ever", true},
                     {"message", "busy"},
                     {"reasons", json::array()},
                     {"would_fit", {{"max_gpus_on_one_node", 1}, {"max_memory_gb_per_gpu", 16}}}};
  EXPECT_EQ(RenderValidation(body),
            "Possible now:  no\n"
            "Possible ever: yes\n"
            "busy\n"
            "Would fit now: up to 1 GPU(s) on one node, up to 16.0 GB free per GPU\n");
  // A request that fits says nothing of what would fit instead (the daemon's
  // would_fit then holds zeros).
  const json fits = {
      {"possible_now", true},
      {"possible_ever", true},
      {"placement", {{"policy", "binpack"}, {"gpus", {{{"node_name", "n2"}, {"gpu_index", 1}}}}}},
      {"would_fit", {{"max_gpus_on_one_node", 0}, {"max_memory_gb_per_gpu", 0}}}};
  EXPECT_EQ(RenderValidation(fits),
            "Possible now:  yes\n"
            "Possible ever: yes\n"
            "Would get: n2:1 (policy binpack)\n");
  const json nothing_free = {
      {"possible_now", false},
      {"possible_ever", true},
      {"would_fit", {{"max_gpus_on_one_node", 0}, {"max_memory_gb_per_gpu", 0}}}};
  EXPECT_THAT(RenderValidation(nothing_free),
              HasSubstr("Would fit now: no GPU of the requested type\n"));
}

TEST(RenderTest, AllocationsReleasedHeartbeat) {
  const json list = {
      {"allocations",
       {{{"allocation_id", "a-1"},
         {"owner", "alice"},
         {"state", "active"},
         {"gpus",
          {{{"node_name", "n1"}, {"gpu_index", 0}}, {{"node_name", "n2"}, {"gpu_index", 3}}}},
         {"created_at", "2024-05-01T10:00:00Z"},
         {"lease_expires_at", nullptr}}}},
      {"count", 1}};
  EXPECT_EQ(RenderAllocations(list),
            "ID   OWNER  STATE   GPUS       CREATED               LEASE EXPIRES\n"
            "a-1  alice  active  n1:0 n2:3  2024-05-01T10:00:00Z  -\n");
  EXPECT_EQ(RenderAllocations(json{{"allocations", json::array()}}), "No allocations.\n");
  EXPECT_EQ(RenderReleased(json{{"released", true}, {"allocation", {{"allocation_id", "a-1"}}}}),
            "Released a-1\n");
  EXPECT_EQ(RenderReleased(json{{"released", {"a-1", "a-2"}}, {"count", 2}}), "Released a-1 a-2\n");
  EXPECT_EQ(RenderHeartbeat(
                json{{"allocation",
                      {{"allocation_id", "a-1"}, {"lease_expires_at", "2024-05-01T11:00:00Z"}}}}),
            "Renewed a-1; lease expires at 2024-05-01T11:00:00Z\n");
}

TEST(RenderTest, MistypedFieldsDoNotThrow) {
  const json odd = {{"nodes", "oops"},
                    {"available_nodes", {{{"node_name", 5}, {"available_gpus", "x"}}}},
                    {"allocations", {1, 2}},
                    {"gpus", {{{"node_name", nullptr}}}}};
  EXPECT_NO_THROW(RenderStatus(odd));
  EXPECT_NO_THROW(RenderNodes(odd));
  EXPECT_NO_THROW(RenderAllocated(odd));
  EXPECT_NO_THROW(RenderAllocations(odd));
  EXPECT_NO_THROW(RenderValidation(json::array()));
  EXPECT_NO_THROW(RenderError(json("text")));
}

// Parsing and exit codes, without a daemon.
struct Cli {
  CLI::App app{"gpurm"};
  int exit_code = kExitOk;
  std::ostringstream out;
  std::ostringstream err;

  Cli() { RegisterClientCommands(app, &exit_code, out, err); }

  int Run(std::vector<const char*> args) {
    args.insert(args.begin(), "gpurm");
    return ParseAndRun(app, static_cast<int>(args.size()), args.data(), &exit_code);
  }
};

TEST(ParseAndRunTest, ReleaseWithoutTargetIsAUsageError) {
  Cli cli;
  EXPECT_EQ(cli.Run({"release"}), kExitUsage);
  EXPECT_THAT(cli.err.str(), HasSubstr("allocation ID"));
}

TEST(ParseAndRunTest, BadValuesAreUsageErrors) {
  EXPECT_EQ(Cli().Run({"-o", "xml", "status"}), kExitUsage);
  EXPECT_EQ(Cli().Run({"allocate", "--gpus", "0"}), kExitUsage);
  EXPECT_EQ(Cli().Run({"allocate", "--gpus", "two"}), kExitUsage);
  EXPECT_EQ(Cli().Run({"allocate", "--memory-gb", "-1"}), kExitUsage);
  EXPECT_EQ(Cli().Run({"release", "--node", "n1", "--gpus", "0"}), kExitUsage);
  EXPECT_EQ(Cli().Run({"--timeout", "0", "status"}), kExitUsage);
  EXPECT_EQ(Cli().Run({"allocate", "--fraction", "0"}), kExitUsage);
  EXPECT_EQ(Cli().Run({"allocate", "--fraction", "1.5"}), kExitUsage);
  EXPECT_EQ(Cli().Run({"heartbeat"}), kExitUsage);
  EXPECT_EQ(Cli().Run({"status", "--bogus"}), kExitUsage);
}

TEST(ParseAndRunTest, UnreachableDaemonExitsThree) {
  // Port 1 on the loopback: nothing listens, the connection is refused at once.
  Cli cli;
  EXPECT_EQ(cli.Run({"status", "--url", "http://127.0.0.1:1", "-o", "json"}), kExitUnavailable);
  EXPECT_THAT(cli.err.str(), HasSubstr("cannot reach http://127.0.0.1:1/api/v1/gpu/status"));
  EXPECT_TRUE(cli.out.str().empty());
}

}  // namespace
}  // namespace gpurm::cli
