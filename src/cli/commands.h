// The gpurm command-line client: subcommands that talk to the daemon's REST
// API (docs/api.md) and print human tables or the server's JSON.
//
// The daemon's main owns the CLI::App, adds `serve` itself and calls:
//
//   CLI::App app{"gpurm: GPU resource manager"};
//   int exit_code = gpurm::cli::kExitOk;
//   gpurm::cli::RegisterClientCommands(app, &exit_code);
//   app.add_subcommand("serve", ...)->callback(...);  // may set exit_code too
//   app.require_subcommand(1);
//   return gpurm::cli::ParseAndRun(app, argc, argv, &exit_code);
//
// Subcommands: status, nodes, allocate, release, validate, allocations,
// heartbeat, policies, run (run_command.h), top (top_command.h), queue
// (queue_command.h), token (token_command.h). Global options (accepted
// before or after the subcommand):
//   --url URL        daemon address; default $GPURM_URL, else http://127.0.0.1:8000
//   --token T        bearer token; default $GPURM_TOKEN
//   --token-file F   file holding the bearer token; default $GPURM_TOKEN_FILE
//   -o, --output F   "table" (default) or "json" (the server's JSON, verbatim)
//   --timeout S      seconds for the whole request (default 10)
//
// Exit codes, the same in both output formats, for scripts to rely on:
//   0  success (validate: the request can be met now)
//   1  the daemon refused the request: any 4xx (nothing fits, unknown
//      allocation, invalid value); validate: cannot be met now
//   2  usage error: bad or missing arguments (nothing was sent)
//   3  daemon unreachable, timed out, answered 5xx (e.g. 503 not initialized)
//      or answered something that is not gpurm JSON
#ifndef GPURM_CLI_COMMANDS_H_
#define GPURM_CLI_COMMANDS_H_

#include <CLI/CLI.hpp>
#include <cstdint>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

#include "cli/client.h"
#include "core/status.h"

namespace gpurm::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitRefused = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitUnavailable = 3;

// Adds the client subcommands and global options to `app`. Each subcommand,
// when it runs (inside app.parse), stores its exit code in *exit_code, which
// must outlive `app`; output goes to `out`, diagnostics and refusals (in table
// mode) to `err`. The callbacks share state owned by `app`; no globals.
void RegisterClientCommands(CLI::App& app, int* exit_code, std::ostream& out = std::cout,
                            std::ostream& err = std::cerr);

// Parses argv and runs the chosen subcommand. Returns *exit_code after a
// successful parse, 0 for --help, and kExitUsage (message on stderr) for a
// parse error. Never throws.
int ParseAndRun(CLI::App& app, int argc, const char* const* argv, const int* exit_code);

// 2xx -> kExitOk, 4xx -> kExitRefused, anything else -> kExitUnavailable.
int ExitCodeForHttpStatus(long status);

// ---------------------------------------------------------------------------
// Pure building blocks, exposed for tests.

// One HTTP request to the daemon.
struct ApiCall {
  std::string method;   // "GET", "POST" or "DELETE".
  std::string path;     // From the server root, query included: "/api/v1/gpu/nodes?...".
  nlohmann::json body;  // Null: no body.
  HttpHeaders headers;
};

// The flags of `allocate` and `validate`. Unset optionals and false booleans
// are left out of the request so the server's defaults apply.
struct RequestFlags {
  int gpus = 1;                              // --gpus
  std::optional<std::string> type;           // --type
  std::optional<double> memory_gb;           // --memory-gb
  bool distributed = false;                  // --distributed
  bool mixed_precision = false;              // --mixed-precision
  std::optional<double> fraction;            // --fraction
  std::optional<std::string> node;           // --node
  bool shared = false;                       // --shared
  std::optional<std::string> policy;         // --policy
  std::optional<int64_t> lease_ttl_seconds;  // --lease-ttl
  std::optional<std::string> owner;          // --owner
};

// Who a request from this user is for when --owner is not given:
// $GPURM_OWNER, else the login name, else empty (the daemon's default). With
// a token the daemon records the token's name instead (admins excepted, who
// may act for others), so commands send it only without one.
std::string DefaultOwner();

// Adds the request flags (--gpus, --type, --memory-gb, --distributed,
// --mixed-precision, --fraction, --node, --shared, --policy, --lease-ttl,
// --owner) to `command`, storing into *flags, which must outlive it.
void AddRequestFlags(CLI::App* command, RequestFlags* flags);

// The GPU request body (TrainingGPUConfig field names).
nlohmann::json BuildGpuRequestJson(const RequestFlags& flags);
// POST /allocate; a non-empty key is sent as the Idempotency-Key header.
ApiCall BuildAllocateCall(const RequestFlags& flags, const std::string& idempotency_key);
ApiCall BuildValidateCall(const RequestFlags& flags);
ApiCall BuildStatusCall();
ApiCall BuildNodesCall(const std::optional<std::string>& gpu_type,
                       const std::optional<double>& min_memory_gb);
ApiCall BuildAllocationsCall(bool all, const std::optional<std::string>& owner);
// GET /monitoring without history: every node the daemon manages, busy or
// not (GET /nodes lists only the nodes with a free GPU).
ApiCall BuildAllNodesCall();
ApiCall BuildHeartbeatCall(const std::string& allocation_id);
// GET /policies: the daemon's placement policies, the one list --policy
// values are checked against (by the daemon).
ApiCall BuildPoliciesCall();

struct ReleaseFlags {
  std::string allocation_id;         // Positional ID; empty when not given.
  std::optional<std::string> node;   // --node
  std::optional<int> gpus;           // --gpus
  std::optional<std::string> owner;  // --owner
};
// DELETE /allocations/{id} for an ID, else POST /release {node_name, gpu_count}.
// InvalidArgument when neither or both forms are given, or only half of the
// second.
Result<ApiCall> BuildReleaseCall(const ReleaseFlags& flags);

// RFC 3986 percent-encoding of everything but unreserved characters, for
// path segments and query values.
std::string PercentEncode(std::string_view text);

// Human renderings of the server's answers. They never throw: missing or
// mistyped fields show as "-".
std::string RenderStatus(const nlohmann::json& body);
std::string RenderNodes(const nlohmann::json& body);
std::string RenderAllocated(const nlohmann::json& body);
std::string RenderValidation(const nlohmann::json& body);
std::string RenderAllocations(const nlohmann::json& body);
std::string RenderReleased(const nlohmann::json& body);
std::string RenderHeartbeat(const nlohmann::json& body);
std::string RenderPolicies(const nlohmann::json& body);
// An error answer: the error code and message, and for refused allocations
// the per-node reasons and what would fit.
std::string RenderError(const nlohmann::json& body);

}  // namespace gpurm::cli

#endif  // GPURM_CLI_COMMANDS_H_
