// gpu_config.yaml: the daemon's configuration. Keys are the documented ones
// (README.md, docs/api.md) plus a `server` section. Loading is strict: every error names the key,
// the line and what was expected, and unknown keys are errors (a misspelt key silently falling back
// to a default is worse than refusing to start).
#ifndef GPURM_CONFIG_CONFIG_H_
#define GPURM_CONFIG_CONFIG_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/enforcement.h"
#include "core/gpu_model.h"
#include "core/placement_policies.h"
#include "core/status.h"

namespace gpurm {

// TLS on the API listener: PEM files, re-read on SIGHUP. No cert_file = plain HTTP.
struct TlsConfig {
  std::string cert_file;       // Certificate chain, leaf first. Needs key_file.
  std::string key_file;        // The leaf's private key. Needs cert_file.
  std::string client_ca_file;  // When set, clients must present a certificate it signed.
};

// Access control (docs/SECURITY.md): bearer tokens from a file. No
// tokens_file = every endpoint open, which is only allowed on a loopback
// listen address unless allow_unauthenticated says otherwise.
struct AuthConfig {
  std::string tokens_file;             // `gpurm token create` writes it; re-read when it changes.
  bool allow_unauthenticated = false;  // Serve a non-loopback address without tokens.
  std::string audit_log;               // Empty: <server.log_dir>/audit.log.
};

struct ServerConfig {
  std::string listen = "127.0.0.1:8000";  // HOST:PORT
  std::string data_dir = "data";          // SQLite ledger lives here.
  std::string log_dir = "logs";
  std::string inventory;  // Static inventory YAML; empty = local discovery.
  // Default placement policy, one of kPlacementPolicies.
  std::string policy{kDefaultPlacementPolicy};
  int64_t max_body_bytes = 1 << 20;
  int io_threads = 1;                 // Beast I/O threads.
  int worker_threads = 2;             // Threads running handlers (SQLite, scheduling).
  double request_timeout_s = 30;      // Per-request read/write timeout.
  double lease_check_interval_s = 1;  // How often expired leases are reaped.
  // Monitoring history kept per GPU (GET /monitoring?window=...), > 0.
  double monitor_history_s = 3600;
  // How long a sampling pass waits for one GPU's vendor calls, > 0; a GPU
  // whose calls take longer is reported stale and the pass goes on.
  double monitor_sample_timeout_s = 2;
  // Limits of the HTTP server (docs/SECURITY.md).
  int64_t max_header_bytes = 16384;  // Beyond: 431.
  double header_timeout_s = 10;      // First byte of a request to the end of its headers.
  double idle_timeout_s = 15;        // A kept-alive connection waiting for its next request.
  int64_t max_connections = 1024;    // Beyond: 503 and close.
  // Per remote address; 0 = no cap. Beyond: 503. Unset: kDefaultConnectionsPerClient
  // on a listen address other than loopback, no cap on loopback.
  std::optional<int64_t> max_connections_per_client;
  double rate_limit_rps = 0;    // Requests per second per remote address; 0 = no limit.
  double rate_limit_burst = 0;  // Bucket size; 0 = max(1, rate_limit_rps). Beyond: 429.
  TlsConfig tls;
  AuthConfig auth;
  // Active plus queued allocations one owner may hold; 0 = no cap. Beyond: 429.
  int64_t max_allocations_per_owner = 0;
  // The lease of an allocation whose request names none (lease_ttl_seconds
  // absent or 0), whatever the client: GPUs come back this long after the
  // last heartbeat. 0 = none (held until released), only with no maximum.
  int64_t default_lease_ttl_s = 300;
  // The longest lease a request may ask for (400 beyond); 0 = no maximum.
  // Holding GPUs longer takes heartbeats. >= default_lease_ttl_s.
  int64_t max_lease_ttl_s = 86'400;

  // --- Hostile clients on a shared machine (docs/SECURITY.md) ---
  // Names clients use for the daemon besides the listen address, IP
  // literals and localhost, accepted in Host; "*" = any (behind a proxy).
  std::vector<std::string> allowed_hosts;
  double first_request_timeout_s = 5;  // From accept to the first byte of the first request.
  // Connections beyond max_connections that may only ask GET /health or /metrics.
  int64_t reserved_connections = 8;
  int64_t max_streams_per_client = 8;  // Event streams per remote address; 0 = no cap. Beyond: 429.
  double stream_send_timeout_s = 10;   // A stream's write not taken by then drops the subscriber.
  int64_t min_slice_mib = 256;         // Smallest shared slice (memory_gb with shared: true).
  // Highest priority a caller below the admin role may ask for (with tokens on).
  int64_t max_priority_without_admin = 0;
  int64_t max_queued_per_owner = 100;  // Waiting queue entries per owner; 0 = no cap. Beyond: 429.
  // GPU-hours one owner's waiting entries may ask for (gpu_count x wait
  // timeout); 0 = no cap. Beyond: 429.
  double max_queued_gpu_hours_per_owner = 192;
  // How long GPUs are held for one queue head before it yields to the next.
  double queue_head_hold_s = 600;
  // /metrics also exports the NVIDIA GPUs' series under dcgm-exporter's
  // names, units and labels (DCGM_FI_DEV_GPU_UTIL, ...), so dashboards and
  // alerts written for NVIDIA's DCGM exporter work unchanged.
  bool dcgm_compatible_metrics = false;
  // What is done about GPU processes over their grant, outside gpurm, or of
  // ended allocations (monitor/enforcer.h); the default only warns.
  EnforcementPolicy enforcement;
};

// max_connections_per_client when it is not set and the daemon listens on
// an address other than loopback.
inline constexpr int64_t kDefaultConnectionsPerClient = 64;

// Kubernetes mode (docs/kubernetes.md): the inventory from the cluster's
// Nodes and Pods, the ledger as GpuAllocation objects, placement by the
// holder of a coordination.k8s.io Lease.
struct KubernetesConfig {
  bool enabled = false;
  std::string kubeconfig;      // Empty: the pod's service account (in-cluster).
  std::string context;         // Kubeconfig context; empty: its current-context.
  std::string namespace_name;  // Key `namespace`; empty: the context's or the pod's.
  std::string lease_name = "gpurm-leader";
  double lease_duration_s = 15;  // > renew_deadline_s.
  double renew_deadline_s = 10;
  double retry_period_s = 2;
  // The per-node agents (docs/kubernetes.md): a label selector of pods in
  // the namespace, each a `gpurm serve` with local discovery on its node
  // (the chart's DaemonSet). Every replica pulls each Ready one's snapshot
  // (controller.token_file, ca_file and request_timeout_s apply) from its
  // pod IP and the container port named "http", and shows its node's live
  // GPU data and processes. Empty: none; the cluster view has no live data.
  std::string node_agent_selector;
  std::string node_agent_scheme = "http";  // "http" or "https".
};

// One server's agent, as the controller reaches it.
struct AgentConfig {
  std::string name;  // The node name the agent must report (its host name by default).
  std::string url;   // Its API base: "http://gpu-node-1:8000" or "https://...".
};

// Controller mode (docs/agents.md): the inventory is pulled from one agent
// per server -- a `gpurm serve` with local discovery there -- every
// monitor_update_interval, and this daemon alone keeps the ledger. In
// Kubernetes mode `agents` must be empty; the other keys apply to the node
// agents (KubernetesConfig::node_agent_selector).
struct ControllerConfig {
  std::vector<AgentConfig> agents;  // Empty: not a controller.
  // A file holding the bearer token sent to agents (an identity of role
  // `agent` in each agent's token file); empty: agents without tokens.
  std::string token_file;
  // CA bundle that signed the agents' certificates (https URLs); empty: the
  // system's CAs.
  std::string ca_file;
  // How long one pull may take before the agent counts as not answering.
  double request_timeout_s = 2;
};

struct Config {
  std::map<std::string, std::string> gpu_resource = {{"gpu", "nvidia.com/gpu"},
                                                     {"nvidia", "nvidia.com/gpu"},
                                                     {"amd", "amd.com/gpu"},
                                                     {"intel", "intel.com/gpu"},
                                                     {"npu", "huawei.com/npu"}};
  std::string default_gpu_resource_name = "nvidia.com/gpu";
  GpuMemorySpecs gpu_memory_specs = {{"T4", 16.0},    {"V100", 32.0},    {"A100", 80.0},
                                     {"H100", 80.0},  {"RTX3090", 24.0}, {"RTX4090", 24.0},
                                     {"A6000", 48.0}, {"A40", 48.0}};
  double monitor_update_interval = 30;      // seconds, > 0
  double resource_change_threshold = 0.05;  // fraction, 0..1
  std::string log_level = "INFO";           // TRACE DEBUG INFO WARNING ERROR CRITICAL OFF
  ServerConfig server;
  KubernetesConfig kubernetes;
  ControllerConfig controller;
};

// Parses YAML text. `source_name` prefixes error messages ("gpu_config.yaml:7: ...").
// Errors: kInvalidArgument with field() = the dotted key ("server.listen").
Result<Config> ParseConfig(std::string_view yaml_text, std::string_view source_name);

// Reads and parses a file; a missing or unreadable file is kInvalidArgument naming the path.
Result<Config> LoadConfigFile(const std::string& path);

}  // namespace gpurm

#endif  // GPURM_CONFIG_CONFIG_H_
