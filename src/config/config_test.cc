#include "config/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace gpurm {
namespace {

using ::testing::HasSubstr;

// The repository root: GPURM_SOURCE_DIR when ctest runs the test, else derived
// from this file's path so the binary also runs on its own.
std::filesystem::path SourceDir() {
  if (const char* dir = std::getenv("GPURM_SOURCE_DIR")) return dir;
  return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path();
}

Config Parse(const std::string& yaml) {
  Result<Config> config = ParseConfig(yaml, "gpu_config.yaml");
  EXPECT_TRUE(config.ok()) << config.status().ToString();
  return config.ok() ? *config : Config{};
}

TEST(ConfigTest, EmptyTextGivesDefaults) {
  for (const std::string text : {"", "\n\n", "# only a comment\n", "---\n"}) {
    Config config = Parse(text);
    EXPECT_EQ(config.monitor_update_interval, 30);
    EXPECT_EQ(config.resource_change_threshold, 0.05);
    EXPECT_EQ(config.log_level, "INFO");
    EXPECT_EQ(config.default_gpu_resource_name, "nvidia.com/gpu");
    EXPECT_EQ(config.gpu_resource.at("amd"), "amd.com/gpu");
    EXPECT_EQ(config.gpu_memory_specs.at("V100"), 32.0);
    EXPECT_EQ(config.server.listen, "127.0.0.1:8000");
    EXPECT_EQ(config.server.policy, "binpack");
  }
}

TEST(ConfigTest, ParsesMissionFile) {
  Config config = Parse(R"(
gpu_resource:
  gpu: "nvidia.com/gpu"
  nvidia: "nvidia.com/gpu"
  amd: "amd.com/gpu"
  intel: "intel.com/gpu"
  npu: "huawei.com/npu"
default_gpu_resource_name: "amd.com/gpu"
gpu_memory_specs:
  T4: 16.0
  V100: 16
  A100: 40.0
monitor_update_interval: 5.5
resource_change_threshold: 0.1
log_level: "debug"
)");
  EXPECT_EQ(config.gpu_resource.at("npu"), "huawei.com/npu");
  EXPECT_EQ(config.default_gpu_resource_name, "amd.com/gpu");
  EXPECT_EQ(config.gpu_memory_specs.at("V100"), 16.0);
  EXPECT_EQ(config.gpu_memory_specs.at("A100"), 40.0);
  EXPECT_EQ(config.gpu_memory_specs.at("H100"), 80.0);  // Not named: default kept.
  EXPECT_EQ(config.monitor_update_interval, 5.5);
  EXPECT_EQ(config.resource_change_threshold, 0.1);
  EXPECT_EQ(config.log_level, "DEBUG");
}

TEST(ConfigTest, ShippedFileParsesToDefaults) {
  Result<Config> loaded = LoadConfigFile((SourceDir() / "gpu_config.yaml").string());
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  const Config defaults;
  EXPECT_EQ(loaded->gpu_resource, defaults.gpu_resource);
  EXPECT_EQ(loaded->default_gpu_resource_name, defaults.default_gpu_resource_name);
  EXPECT_EQ(loaded->gpu_memory_specs, defaults.gpu_memory_specs);
  EXPECT_EQ(loaded->monitor_update_interval, defaults.monitor_update_interval);
  EXPECT_EQ(loaded->resource_change_threshold, defaults.resource_change_threshold);
  EXPECT_EQ(loaded->log_level, defaults.log_level);
  const ServerConfig& server = loaded->server;
  EXPECT_EQ(server.listen, defaults.server.listen);
  EXPECT_EQ(server.data_dir, defaults.server.data_dir);
  EXPECT_EQ(server.log_dir, defaults.server.log_dir);
  EXPECT_EQ(server.inventory, "");
  EXPECT_EQ(server.policy, defaults.server.policy);
  EXPECT_EQ(server.max_body_bytes, defaults.server.max_body_bytes);
  EXPECT_EQ(server.io_threads, defaults.server.io_threads);
  EXPECT_EQ(server.worker_threads, defaults.server.worker_threads);
  EXPECT_EQ(server.request_timeout_s, defaults.server.request_timeout_s);
  EXPECT_EQ(server.lease_check_interval_s, defaults.server.lease_check_interval_s);
  EXPECT_EQ(server.monitor_history_s, 3600);
  EXPECT_EQ(server.monitor_sample_timeout_s, 2);
}

TEST(ConfigTest, MemorySpecKeysAreCanonicalised) {
  Config config = Parse("gpu_memory_specs:\n  v100: 16\n  t4: 15\n  L4: 24\n");
  EXPECT_EQ(config.gpu_memory_specs.at("V100"), 16.0);
  EXPECT_EQ(config.gpu_memory_specs.at("T4"), 15.0);
  EXPECT_EQ(config.gpu_memory_specs.at(CanonicalGpuType("L4")), 24.0);
  EXPECT_EQ(config.gpu_memory_specs.count("v100"), 0u);
}

TEST(ConfigTest, GpuResourceEntriesOverrideDefaults) {
  Config config = Parse("gpu_resource:\n  nvidia: \"example.com/gpu\"\n  ascend: \"x.com/npu\"\n");
  EXPECT_EQ(config.gpu_resource.at("nvidia"), "example.com/gpu");
  EXPECT_EQ(config.gpu_resource.at("ascend"), "x.com/npu");
  EXPECT_EQ(config.gpu_resource.at("amd"), "amd.com/gpu");
}

TEST(ConfigTest, LogLevelIsNormalised) {
  EXPECT_EQ(Parse("log_level: warn").log_level, "WARNING");
  EXPECT_EQ(Parse("log_level: Warning").log_level, "WARNING");
  EXPECT_EQ(Parse("log_level: trace").log_level, "TRACE");
  EXPECT_EQ(Parse("log_level: \"critical\"").log_level, "CRITICAL");
  EXPECT_EQ(Parse("log_level: OFF").log_level, "OFF");
}

TEST(ConfigTest, ThresholdBoundsAreInclusive) {
  EXPECT_EQ(Parse("resource_change_threshold: 0").resource_change_threshold, 0.0);
  EXPECT_EQ(Parse("resource_change_threshold: 1").resource_change_threshold, 1.0);
}

TEST(ConfigTest, ParsesServerSection) {
  Config config = Parse(R"(
server:
  listen: "0.0.0.0:8080"
  data_dir: /var/lib/gpurm
  log_dir: /var/log/gpurm
  inventory: examples/cluster-3node.yaml
  policy: spread
  max_body_bytes: 4096
  io_threads: 4
  worker_threads: 64
  request_timeout_s: 2.5
  lease_check_interval_s: 0.5
  monitor_history_s: 86400
  monitor_sample_timeout_s: 0.5
)");
  EXPECT_EQ(config.server.listen, "0.0.0.0:8080");
  EXPECT_EQ(config.server.data_dir, "/var/lib/gpurm");
  EXPECT_EQ(config.server.log_dir, "/var/log/gpurm");
  EXPECT_EQ(config.server.inventory, "examples/cluster-3node.yaml");
  EXPECT_EQ(config.server.policy, "spread");
  EXPECT_EQ(config.server.max_body_bytes, 4096);
  EXPECT_EQ(config.server.io_threads, 4);
  EXPECT_EQ(config.server.worker_threads, 64);
  EXPECT_EQ(config.server.request_timeout_s, 2.5);
  EXPECT_EQ(config.server.lease_check_interval_s, 0.5);
  EXPECT_EQ(config.server.monitor_history_s, 86400);
  EXPECT_EQ(config.server.monitor_sample_timeout_s, 0.5);
  EXPECT_EQ(config.monitor_update_interval, 30);  // Untouched top-level default.
}

TEST(ConfigTest, EmptyServerSectionAndEmptyInventoryKeepDefaults) {
  EXPECT_EQ(Parse("server:\n  # listen: x\n").server.listen, "127.0.0.1:8000");
  EXPECT_EQ(Parse("server:\n  inventory:\n").server.inventory, "");
}

TEST(ConfigTest, AcceptsListenForms) {
  for (const std::string listen : {"localhost:1", "[::1]:9000", "gpu-host.example.com:65535"}) {
    EXPECT_EQ(Parse("server: {listen: \"" + listen + "\"}").server.listen, listen);
  }
}

// One invalid file: the dotted key reported in field() and a part of the message.
struct BadConfig {
  std::string yaml;
  std::string field;
  std::string message_part;
};

// Names the case by its key in test listings (ctest shows the parameter).
void PrintTo(const BadConfig& c, std::ostream* os) { *os << c.field; }

class BadConfigTest : public ::testing::TestWithParam<BadConfig> {};

TEST_P(BadConfigTest, FailsWithKeyLineAndExpectation) {
  const BadConfig& bad = GetParam();
  Result<Config> config = ParseConfig(bad.yaml, "gpu_config.yaml");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(config.status().field(), bad.field);
  EXPECT_THAT(config.status().message(), HasSubstr(bad.message_part));
}

INSTANTIATE_TEST_SUITE_P(
    Errors, BadConfigTest,
    ::testing::Values(
        BadConfig{"log_level: INFO\n\n\n\n\n\nmonitor_update_interval: abc\n",
                  "monitor_update_interval",
                  "gpu_config.yaml:7: monitor_update_interval: expected a positive number of "
                  "seconds, got \"abc\""},
        BadConfig{"monitor_update_interval: 0", "monitor_update_interval",
                  "gpu_config.yaml:1: monitor_update_interval: expected a positive number"},
        BadConfig{"monitor_update_interval: -3", "monitor_update_interval", "got \"-3\""},
        BadConfig{"monitor_update_interval: .nan", "monitor_update_interval", "expected"},
        BadConfig{"monitor_update_interval: [1]", "monitor_update_interval", "got a list"},
        BadConfig{"monitor_update_interval:", "monitor_update_interval", "got nothing"},
        BadConfig{"resource_change_threshold: 1.5", "resource_change_threshold",
                  "expected a fraction from 0 to 1, got \"1.5\""},
        BadConfig{"resource_change_threshold: -0.1", "resource_change_threshold", "fraction"},
        BadConfig{"log_level: verbose", "log_level",
                  "gpu_config.yaml:1: log_level: expected one of TRACE, DEBUG, INFO, WARNING, "
                  "ERROR, CRITICAL, OFF, got \"verbose\""},
        BadConfig{"default_gpu_resource_name: \"\"", "default_gpu_resource_name",
                  "expected a non-empty string"},
        BadConfig{"gpu_resource: nvidia.com/gpu", "gpu_resource", "expected a mapping"},
        BadConfig{
            "gpu_resource:\n  amd: {a: 1}\n", "gpu_resource.amd",
            "gpu_config.yaml:2: gpu_resource.amd: expected a non-empty string, got a mapping"},
        BadConfig{"gpu_memory_specs:\n  T4: 16\n  V100: -32\n", "gpu_memory_specs.V100",
                  "gpu_config.yaml:3: gpu_memory_specs.V100: expected a positive number of GB"},
        BadConfig{"gpu_memory_specs:\n  V100: big\n", "gpu_memory_specs.V100", "got \"big\""},
        BadConfig{"gpu_memory_specs:\n  A100: 80\n  a100: 40\n", "gpu_memory_specs.a100",
                  "gpu_config.yaml:3: gpu_memory_specs.a100: same model as 'A100' (line 2)"},
        BadConfig{"log_level: INFO\nlog_level: DEBUG\n", "log_level",
                  "gpu_config.yaml:2: log_level: duplicate key (first given at line 1)"},
        BadConfig{"log_level: INFO\nmontor_update_interval: 3\n", "montor_update_interval",
                  "gpu_config.yaml:2: unknown key 'montor_update_interval'; did you mean "
                  "'monitor_update_interval'?"},
        BadConfig{"Log_Level: INFO\n", "Log_Level", "did you mean 'log_level'?"},
        BadConfig{"colour: blue\n", "colour", "gpu_config.yaml:1: unknown key 'colour'"},
        BadConfig{"server:\n  lisen: \"0.0.0.0:1\"\n", "server.lisen",
                  "gpu_config.yaml:2: unknown key 'server.lisen'; did you mean 'server.listen'?"},
        BadConfig{"server: 8000", "server", "expected a mapping of keys, got \"8000\""},
        BadConfig{"server:\n  listen: \"127.0.0.1\"\n", "server.listen",
                  "gpu_config.yaml:2: server.listen: expected HOST:PORT with a port from 1 to "
                  "65535, got \"127.0.0.1\""},
        BadConfig{"server: {listen: \"127.0.0.1:0\"}", "server.listen", "HOST:PORT"},
        BadConfig{"server: {listen: \"host:65536\"}", "server.listen", "HOST:PORT"},
        BadConfig{"server: {listen: \":8000\"}", "server.listen", "HOST:PORT"},
        BadConfig{"server: {listen: \"host:http\"}", "server.listen", "HOST:PORT"},
        BadConfig{"server: {listen: \"a b:80\"}", "server.listen", "HOST:PORT"},
        BadConfig{"server: {listen: \"[]:80\"}", "server.listen", "HOST:PORT"},
        BadConfig{"server: {data_dir: \"\"}", "server.data_dir", "non-empty string"},
        BadConfig{"server: {log_dir: }", "server.log_dir", "non-empty string"},
        BadConfig{"server: {inventory: [a]}", "server.inventory", "expected a string"},
        BadConfig{"server:\n  policy: fastest\n", "server.policy",
                  "gpu_config.yaml:2: server.policy: expected one of binpack, spread, topology, "
                  "fragmentation-aware, random, got \"fastest\""},
        BadConfig{"server: {max_body_bytes: 0}", "server.max_body_bytes",
                  "expected a positive number of bytes"},
        BadConfig{"server: {max_body_bytes: 1.5}", "server.max_body_bytes", "got \"1.5\""},
        BadConfig{"server: {io_threads: 0}", "server.io_threads",
                  "expected an integer from 1 to 64, got \"0\""},
        BadConfig{"server: {worker_threads: 65}", "server.worker_threads", "from 1 to 64"},
        BadConfig{"server: {request_timeout_s: 0}", "server.request_timeout_s",
                  "positive number of seconds"},
        BadConfig{"server: {lease_check_interval_s: -1}", "server.lease_check_interval_s",
                  "positive number of seconds"},
        BadConfig{"server:\n  monitor_history_s: 0\n", "server.monitor_history_s",
                  "gpu_config.yaml:2: server.monitor_history_s: expected a positive number of "
                  "seconds, got \"0\""},
        BadConfig{"server: {monitor_history_s: .inf}", "server.monitor_history_s",
                  "positive number of seconds"},
        BadConfig{"server:\n  monitor_sample_timeout_s: -2\n", "server.monitor_sample_timeout_s",
                  "gpu_config.yaml:2: server.monitor_sample_timeout_s: expected a number of "
                  "seconds >= 0.001, got \"-2\""},
        BadConfig{"server: {monitor_sample_timeout_s: 0.0001}", "server.monitor_sample_timeout_s",
                  "number of seconds >= 0.001"},
        BadConfig{"server: {monitor_sample_timeout_s: soon}", "server.monitor_sample_timeout_s",
                  "number of seconds >= 0.001"},
        BadConfig{"server:\n  rate_limit_rps: -1\n", "server.rate_limit_rps",
                  "gpu_config.yaml:2: server.rate_limit_rps: expected a number of requests per "
                  "second >= 0 (0 = no limit), got \"-1\""},
        BadConfig{"server: {max_connections_per_client: -1}", "server.max_connections_per_client",
                  "from 0 (no cap)"},
        BadConfig{"server: {max_connections: 0}", "server.max_connections", "from 1"},
        BadConfig{"server: {max_header_bytes: 10}", "server.max_header_bytes", "from 1024"},
        BadConfig{"server: {header_timeout_s: 0}", "server.header_timeout_s",
                  "positive number of seconds"},
        BadConfig{"server:\n  tls:\n    cert_file: a.pem\n", "server.tls.key_file",
                  "gpu_config.yaml:2: server.tls.key_file: required when cert_file is set"},
        BadConfig{"server:\n  tls:\n    client_ca_file: ca.pem\n", "server.tls.cert_file",
                  "required when client_ca_file is set"},
        BadConfig{"server:\n  tls:\n    cert_files: a.pem\n", "server.tls.cert_files",
                  "gpu_config.yaml:3: unknown key 'server.tls.cert_files'; did you mean "
                  "'server.tls.cert_file'?"},
        BadConfig{"server: {tls: [a]}", "server.tls", "expected a mapping"},
        BadConfig{"server:\n  auth:\n    allow_unauthenticated: yes\n",
                  "server.auth.allow_unauthenticated",
                  "gpu_config.yaml:3: server.auth.allow_unauthenticated: expected true or false, "
                  "got \"yes\""},
        BadConfig{"server:\n  auth:\n    token_file: t\n", "server.auth.token_file",
                  "did you mean 'server.auth.tokens_file'?"},
        BadConfig{"server: {max_allocations_per_owner: -1}", "server.max_allocations_per_owner",
                  "expected an integer from 0 (no cap) to 1000000, got \"-1\""},
        BadConfig{"server: {default_lease_ttl_s: -1}", "server.default_lease_ttl_s",
                  "from 0 (no lease) to 31536000"},
        BadConfig{"server: {max_lease_ttl_s: 1.5}", "server.max_lease_ttl_s",
                  "whole number of seconds"},
        BadConfig{"server:\n  max_lease_ttl_s: 600\n  default_lease_ttl_s: 900\n",
                  "server.default_lease_ttl_s",
                  "gpu_config.yaml:3: server.default_lease_ttl_s: must be at most "
                  "max_lease_ttl_s (600)"},
        BadConfig{"server:\n  default_lease_ttl_s: 0\n", "server.default_lease_ttl_s",
                  "0 (no lease) needs max_lease_ttl_s: 0 (it is 86400)"},
        BadConfig{"server:\n  allowed_hosts:\n    - gpu-box\n    - http://evil\n",
                  "server.allowed_hosts",
                  "gpu_config.yaml:4: server.allowed_hosts: expected a host name (no port, "
                  "scheme or path) or \"*\", got \"http://evil\""},
        BadConfig{"server: {allowed_hosts: gpu-box}", "server.allowed_hosts",
                  "expected a list of host names"},
        BadConfig{"server: {first_request_timeout_s: 0}", "server.first_request_timeout_s",
                  "positive number of seconds"},
        BadConfig{"server: {min_slice_mib: 0}", "server.min_slice_mib", "from 1"},
        BadConfig{"server: {max_priority_without_admin: 1001}", "server.max_priority_without_admin",
                  "from -1000 to 1000"},
        BadConfig{"server: {max_queued_per_owner: -1}", "server.max_queued_per_owner",
                  "from 0 (no cap)"},
        BadConfig{"server: {max_streams_per_client: x}", "server.max_streams_per_client",
                  "from 0 (no cap)"},
        BadConfig{"server: {max_queued_gpu_hours_per_owner: -2}",
                  "server.max_queued_gpu_hours_per_owner", "GPU-hours >= 0"},
        BadConfig{"server: {queue_head_hold_s: -1}", "server.queue_head_hold_s",
                  "positive number of seconds"},
        BadConfig{"server:\n  dcgm_compatible_metrics: on\n", "server.dcgm_compatible_metrics",
                  "gpu_config.yaml:2: server.dcgm_compatible_metrics: expected true or false, "
                  "got \"on\""},
        BadConfig{"server: {dcgm_compatible_metric: true}", "server.dcgm_compatible_metric",
                  "did you mean 'server.dcgm_compatible_metrics'?"},
        BadConfig{"controller:\n  agents:\n    - {name: a, url: http://a:8000}\n"
                  "    - {name: a, url: http://b:8000}\n",
                  "controller.agents[1].name",
                  "gpu_config.yaml:4: controller.agents[1].name: node 'a' is already "
                  "controller.agents[0]"},
        BadConfig{"controller: {agents: [{name: a, url: 'a:8000'}]}", "controller.agents[0].url",
                  "expected an http:// or https:// URL, got \"a:8000\""},
        BadConfig{"controller: {agents: [{url: 'http://a:8000'}]}", "controller.agents[0].name",
                  "missing; every agent needs a node name"},
        BadConfig{"controller: {agents: [{name: a, url: 'http://a', port: 1}]}",
                  "controller.agents[0].port", "unknown"},
        BadConfig{"controller: {agents: [a]}", "controller.agents[0]",
                  "expected a mapping with name and url"},
        BadConfig{"server:\n  enforcement:\n    over_grant: ignore\n",
                  "server.enforcement.over_grant",
                  "gpu_config.yaml:3: server.enforcement.over_grant: expected warn or terminate, "
                  "got \"ignore\""},
        BadConfig{"server: {enforcement: {foreign_process: kill}}",
                  "server.enforcement.foreign_process", "expected ignore, warn or terminate"},
        BadConfig{"server: {enforcement: {ended_allocation: [warn]}}",
                  "server.enforcement.ended_allocation", "expected warn or terminate, got a list"},
        BadConfig{"server: {enforcement: {grace_s: -1}}", "server.enforcement.grace_s",
                  "a number of seconds >= 0"},
        BadConfig{"server: {enforcement: {grace: 1}}", "server.enforcement.grace",
                  "did you mean 'server.enforcement.grace_s'"},
        BadConfig{"controller: {request_timeout_s: 0}", "controller.request_timeout_s",
                  "positive number of seconds"},
        BadConfig{"server: {inventory: x.yaml}\ncontroller: {agents: [{name: a, url: 'http://a'}]}",
                  "controller.agents", "cannot be used with server.inventory"},
        BadConfig{"kubernetes: {enabled: true}\ncontroller: {agents: [{name: a, url: 'http://a'}]}",
                  "controller.agents", "cannot be used with kubernetes.enabled"},
        BadConfig{"kubernetes: {node_agent_selector: 'app = gpurm'}",
                  "kubernetes.node_agent_selector", "a label selector without spaces"},
        BadConfig{"kubernetes: {node_agent_scheme: ftp}", "kubernetes.node_agent_scheme",
                  "expected http or https, got ftp"}));

TEST(ConfigTest, HostileClientLimits) {
  const Config defaults = Parse("");
  EXPECT_TRUE(defaults.server.allowed_hosts.empty());
  EXPECT_EQ(defaults.server.first_request_timeout_s, 5);
  EXPECT_EQ(defaults.server.min_slice_mib, 256);
  EXPECT_EQ(defaults.server.max_priority_without_admin, 0);
  const Config config = Parse(R"(server:
  allowed_hosts: [gpu-box.lab, "*"]
  first_request_timeout_s: 2
  reserved_connections: 4
  max_streams_per_client: 2
  stream_send_timeout_s: 3
  min_slice_mib: 512
  max_priority_without_admin: 10
  max_queued_per_owner: 5
  max_queued_gpu_hours_per_owner: 16
  queue_head_hold_s: 60
)");
  EXPECT_EQ(config.server.allowed_hosts, (std::vector<std::string>{"gpu-box.lab", "*"}));
  EXPECT_EQ(config.server.first_request_timeout_s, 2);
  EXPECT_EQ(config.server.reserved_connections, 4);
  EXPECT_EQ(config.server.max_streams_per_client, 2);
  EXPECT_EQ(config.server.stream_send_timeout_s, 3);
  EXPECT_EQ(config.server.min_slice_mib, 512);
  EXPECT_EQ(config.server.max_priority_without_admin, 10);
  EXPECT_EQ(config.server.max_queued_per_owner, 5);
  EXPECT_EQ(config.server.max_queued_gpu_hours_per_owner, 16);
  EXPECT_EQ(config.server.queue_head_hold_s, 60);
}

TEST(ConfigTest, DcgmCompatibleMetricsSwitch) {
  EXPECT_FALSE(Parse("").server.dcgm_compatible_metrics) << "off unless configured";
  EXPECT_TRUE(Parse("server: {dcgm_compatible_metrics: true}").server.dcgm_compatible_metrics);
  EXPECT_FALSE(Parse("server: {dcgm_compatible_metrics: false}").server.dcgm_compatible_metrics);
}

TEST(ConfigTest, ServerLimitsAndTls) {
  const Config defaults = Parse("");
  EXPECT_EQ(defaults.server.rate_limit_rps, 0);  // Off unless configured.
  // Unset: the daemon caps it on listen addresses other than loopback.
  EXPECT_FALSE(defaults.server.max_connections_per_client.has_value());
  EXPECT_TRUE(defaults.server.tls.cert_file.empty());
  const Config config = Parse(R"(server:
  max_header_bytes: 8192
  header_timeout_s: 5
  idle_timeout_s: 30
  max_connections: 100
  max_connections_per_client: 8
  rate_limit_rps: 20
  rate_limit_burst: 40
  tls:
    cert_file: /etc/gpurm/server.pem
    key_file: /etc/gpurm/server.key
    client_ca_file: /etc/gpurm/clients.pem
)");
  EXPECT_EQ(config.server.max_header_bytes, 8192);
  EXPECT_EQ(config.server.header_timeout_s, 5);
  EXPECT_EQ(config.server.idle_timeout_s, 30);
  EXPECT_EQ(config.server.max_connections, 100);
  EXPECT_EQ(config.server.max_connections_per_client, 8);
  EXPECT_EQ(config.server.rate_limit_rps, 20);
  EXPECT_EQ(config.server.rate_limit_burst, 40);
  EXPECT_EQ(config.server.tls.cert_file, "/etc/gpurm/server.pem");
  EXPECT_EQ(config.server.tls.key_file, "/etc/gpurm/server.key");
  EXPECT_EQ(config.server.tls.client_ca_file, "/etc/gpurm/clients.pem");
}

TEST(ConfigTest, ServerAuthAndAllocationCap) {
  const Config defaults = Parse("");
  EXPECT_TRUE(defaults.server.auth.tokens_file.empty());  // Open, on loopback only.
  EXPECT_FALSE(defaults.server.auth.allow_unauthenticated);
  EXPECT_EQ(defaults.server.max_allocations_per_owner, 0);
  const Config config = Parse(R"(server:
  max_allocations_per_owner: 4
  auth:
    tokens_file: /etc/gpurm/tokens
    allow_unauthenticated: true
    audit_log: /var/log/gpurm/audit.log
)");
  EXPECT_EQ(config.server.max_allocations_per_owner, 4);
  EXPECT_EQ(config.server.auth.tokens_file, "/etc/gpurm/tokens");
  EXPECT_TRUE(config.server.auth.allow_unauthenticated);
  EXPECT_EQ(config.server.auth.audit_log, "/var/log/gpurm/audit.log");
}

TEST(ConfigTest, LeasesHaveAServerDefaultAndMaximum) {
  const Config defaults = Parse("");
  EXPECT_EQ(defaults.server.default_lease_ttl_s, 300);  // Not "held forever".
  EXPECT_EQ(defaults.server.max_lease_ttl_s, 86'400);
  const Config config = Parse("server:\n  default_lease_ttl_s: 60\n  max_lease_ttl_s: 3600\n");
  EXPECT_EQ(config.server.default_lease_ttl_s, 60);
  EXPECT_EQ(config.server.max_lease_ttl_s, 3600);
  const Config unbounded = Parse("server:\n  default_lease_ttl_s: 0\n  max_lease_ttl_s: 0\n");
  EXPECT_EQ(unbounded.server.default_lease_ttl_s, 0);
}

TEST(ConfigTest, SyntaxErrorNamesTheLine) {
  Result<Config> config =
      ParseConfig("log_level: INFO\nserver:\n  listen: [1\n", "gpu_config.yaml");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(config.status().message(), HasSubstr("gpu_config.yaml:"));
  EXPECT_THAT(config.status().message(), HasSubstr("YAML syntax error"));

  Result<Config> indented = ParseConfig("log_level: INFO\n  server: 1\n", "gpu_config.yaml");
  ASSERT_FALSE(indented.ok());
  EXPECT_THAT(indented.status().message(), HasSubstr("gpu_config.yaml:2: YAML syntax error"));
}

TEST(ConfigTest, RejectsNonMappingsAndSeveralDocuments) {
  Result<Config> list = ParseConfig("- a\n- b\n", "c.yaml");
  ASSERT_FALSE(list.ok());
  EXPECT_THAT(list.status().message(), HasSubstr("c.yaml:1: expected a mapping"));

  Result<Config> documents = ParseConfig("log_level: INFO\n---\nlog_level: OFF\n", "c.yaml");
  ASSERT_FALSE(documents.ok());
  EXPECT_THAT(documents.status().message(), HasSubstr("expected one YAML document"));
}

TEST(ConfigTest, MalformedInputNeverThrows) {
  for (const std::string text :
       {"{", "[", "a: *missing", "? [a, b]\n: c\n", "%YAML 9.9\n---\na: 1\n", "\"unterminated",
        "[a, b]: 1", "!!binary 5"}) {
    Result<Config> config = ParseConfig(text, "x.yaml");
    EXPECT_FALSE(config.ok()) << text;
  }
}

// Found by fuzz/config_fuzzer: yaml-cpp 0.7's LoadAll never returned on
// these (see strict_yaml/documents.h).
TEST(ConfigTest, MalformedDocumentsThatHungYamlCppAreRefused) {
  for (const std::string& text : {std::string("&a,\xc2*a]"), std::string(",\n")}) {
    Result<Config> config = ParseConfig(text, "x.yaml");
    EXPECT_FALSE(config.ok()) << text;
  }
}

TEST(ConfigTest, LoadConfigFileReadsAndNamesThePath) {
  const std::filesystem::path dir = std::filesystem::path(::testing::TempDir()) /
                                    ("gpurm_config_test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::filesystem::path path = dir / "bad.yaml";
  std::ofstream(path) << "log_level: INFO\nmonitor_update_interval: never\n";
  Result<Config> bad = LoadConfigFile(path.string());
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr(path.string() + ":2: monitor_update_interval"));

  std::ofstream(path) << "log_level: error\n";
  Result<Config> good = LoadConfigFile(path.string());
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  EXPECT_EQ(good->log_level, "ERROR");

  for (const std::string& missing : {(dir / "missing.yaml").string(), dir.string()}) {
    Result<Config> unreadable = LoadConfigFile(missing);
    ASSERT_FALSE(unreadable.ok());
    EXPECT_EQ(unreadable.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(unreadable.status().message(), HasSubstr(missing));
  }
  std::filesystem::remove_all(dir);
}

TEST(ConfigTest, EnforcementSection) {
  const Config defaults = ParseConfig("", "gpu_config.yaml").value();
  EXPECT_EQ(defaults.server.enforcement.over_grant, EnforcementAction::kWarn);
  EXPECT_EQ(defaults.server.enforcement.foreign_process, EnforcementAction::kWarn);
  EXPECT_EQ(defaults.server.enforcement.ended_allocation, EnforcementAction::kWarn);
  EXPECT_EQ(defaults.server.enforcement.grace_s, 30);
  const Config config =
      ParseConfig(
          "server:\n  enforcement:\n    over_grant: terminate\n    foreign_process: ignore\n"
          "    ended_allocation: terminate\n    grace_s: 5\n",
          "gpu_config.yaml")
          .value();
  EXPECT_EQ(config.server.enforcement.over_grant, EnforcementAction::kTerminate);
  EXPECT_EQ(config.server.enforcement.foreign_process, EnforcementAction::kIgnore);
  EXPECT_EQ(config.server.enforcement.ended_allocation, EnforcementAction::kTerminate);
  EXPECT_EQ(config.server.enforcement.grace_s, 5);
}

TEST(ConfigTest, ControllerSection) {
  const Config defaults = ParseConfig("", "gpu_config.yaml").value();
  EXPECT_TRUE(defaults.controller.agents.empty());
  EXPECT_EQ(defaults.controller.request_timeout_s, 2);
  const Config config = ParseConfig(
                            "controller:\n"
                            "  agents:\n"
                            "    - name: gpu-node-1\n"
                            "      url: https://gpu-node-1:8000\n"
                            "    - {name: gpu-node-2, url: 'http://10.0.0.2:8000'}\n"
                            "  token_file: /etc/gpurm/agent.token\n"
                            "  ca_file: /etc/gpurm/ca.pem\n"
                            "  request_timeout_s: 0.5\n",
                            "gpu_config.yaml")
                            .value();
  ASSERT_EQ(config.controller.agents.size(), 2u);
  EXPECT_EQ(config.controller.agents[0].name, "gpu-node-1");
  EXPECT_EQ(config.controller.agents[0].url, "https://gpu-node-1:8000");
  EXPECT_EQ(config.controller.agents[1].name, "gpu-node-2");
  EXPECT_EQ(config.controller.agents[1].url, "http://10.0.0.2:8000");
  EXPECT_EQ(config.controller.token_file, "/etc/gpurm/agent.token");
  EXPECT_EQ(config.controller.ca_file, "/etc/gpurm/ca.pem");
  EXPECT_EQ(config.controller.request_timeout_s, 0.5);
}

TEST(ConfigTest, KubernetesSection) {
  Config defaults = Parse("");
  EXPECT_FALSE(defaults.kubernetes.enabled);
  EXPECT_EQ(defaults.kubernetes.lease_name, "gpurm-leader");

  Config config = Parse(
      "kubernetes:\n"
      "  enabled: true\n"
      "  kubeconfig: /etc/gpurm/kubeconfig\n"
      "  context: prod\n"
      "  namespace: gpurm\n"
      "  lease_duration_s: 30\n"
      "  renew_deadline_s: 20\n"
      "  retry_period_s: 3\n"
      "  node_agent_selector: app.kubernetes.io/component=node-monitor\n"
      "  node_agent_scheme: https\n"
      "controller:\n"
      "  token_file: /etc/gpurm/agent-token\n");
  EXPECT_TRUE(config.kubernetes.enabled);
  EXPECT_EQ(config.kubernetes.node_agent_selector, "app.kubernetes.io/component=node-monitor");
  EXPECT_EQ(config.kubernetes.node_agent_scheme, "https");
  EXPECT_EQ(config.controller.token_file, "/etc/gpurm/agent-token");
  EXPECT_EQ(defaults.kubernetes.node_agent_selector, "");
  EXPECT_EQ(defaults.kubernetes.node_agent_scheme, "http");
  EXPECT_EQ(config.kubernetes.kubeconfig, "/etc/gpurm/kubeconfig");
  EXPECT_EQ(config.kubernetes.context, "prod");
  EXPECT_EQ(config.kubernetes.namespace_name, "gpurm");
  EXPECT_EQ(config.kubernetes.lease_duration_s, 30);
  EXPECT_EQ(config.kubernetes.renew_deadline_s, 20);
  EXPECT_EQ(config.kubernetes.retry_period_s, 3);

  Result<Config> yes = ParseConfig("kubernetes:\n  enabled: yes\n", "gpu_config.yaml");
  ASSERT_FALSE(yes.ok());
  EXPECT_EQ(yes.status().field(), "kubernetes.enabled");
  EXPECT_THAT(yes.status().message(), HasSubstr("gpu_config.yaml:2: kubernetes.enabled"));

  Result<Config> deadline = ParseConfig(
      "kubernetes:\n  lease_duration_s: 10\n  renew_deadline_s: 10\n", "gpu_config.yaml");
  ASSERT_FALSE(deadline.ok());
  EXPECT_EQ(deadline.status().field(), "kubernetes.renew_deadline_s");
  EXPECT_THAT(deadline.status().message(), HasSubstr(":3: kubernetes.renew_deadline_s"));

  Result<Config> typo = ParseConfig("kubernetes:\n  namespce: x\n", "gpu_config.yaml");
  ASSERT_FALSE(typo.ok());
  EXPECT_THAT(typo.status().message(), HasSubstr("did you mean 'kubernetes.namespace'"));
}

}  // namespace
}  // namespace gpurm
