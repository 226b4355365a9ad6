#include "cli/commands.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <exception>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cli/queue_command.h"
#include "cli/run_command.h"
#include "cli/table.h"
#include "cli/token_command.h"
#include "cli/top_command.h"

namespace gpurm::cli {
namespace {

using nlohmann::json;

constexpr char kApi[] = "/api/v1/gpu";

// --- Reading server JSON without throwing -----------------------------------

// The member `key` of `object`, or null when `object` is not an object or has
// no such member.
const json& Get(const json& object, const char* key) {
  static const json kNull;  // Immutable; shared by every miss.
  if (!object.is_object()) return kNull;
  const auto it = object.find(key);
  return it == object.end() ? kNull : *it;
}

// A scalar as text: strings verbatim, numbers as JSON writes them, booleans
// as yes/no, null (missing) as "-".
std::string Text(const json& value) {
  if (value.is_string()) return value.get_ref<const std::string&>();
  if (value.is_boolean()) return value.get<bool>() ? "yes" : "no";
  if (value.is_null()) return "-";
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

// A string field, or `fallback` when it is missing, empty or not a string.
std::string Str(const json& object, const char* key, const std::string& fallback = "-") {
  const json& value = Get(object, key);
  return value.is_string() && !value.get_ref<const std::string&>().empty()
             ? value.get_ref<const std::string&>()
             : fallback;
}

double Num(const json& value, double fallback = 0.0) {
  return value.is_number() ? value.get<double>() : fallback;
}

// An array to iterate over; a missing or non-array member iterates as empty.
const json& List(const json& object, const char* key) {
  static const json kEmpty = json::array();
  const json& value = Get(object, key);
  return value.is_array() ? value : kEmpty;
}

std::string Temperature(const json& value) {
  return value.is_number() ? std::to_string(std::lround(value.get<double>())) + " C" : "-";
}

// Grants as "n1:0,1 n2:0,1" (node order as given).
std::string GrantList(const json& grants) {
  std::vector<std::pair<std::string, std::string>> nodes;
  for (const json& grant : grants) {
    const std::string node = Str(grant, "node_name");
    const std::string index = Text(Get(grant, "gpu_index"));
    auto it = nodes.begin();
    while (it != nodes.end() && it->first != node) ++it;
    if (it == nodes.end()) {
      nodes.emplace_back(node, index);
    } else {
      it->second += "," + index;
    }
  }
  std::string text;
  for (const auto& [node, indices] : nodes) {
    if (!text.empty()) text += ' ';
    text += node + ":" + indices;
  }
  return text.empty() ? "-" : text;
}

std::string ReasonLines(const json& body) {
  std::string text;
  for (const json& reason : List(body, "reasons")) {
    const std::string node = Str(reason, "node_name", "");
    text += "  " + (node.empty() ? "" : node + ": ") + Str(reason, "reason") + "\n";
  }
  return text.empty() ? "" : "Reasons:\n" + text;
}

std::string WouldFitLines(const json& body) {
  const json& would_fit = Get(body, "would_fit");
  if (!would_fit.is_object()) return "";
  std::string types;
  const json& available = Get(would_fit, "gpu_types_available");
  if (available.is_object()) {
    for (const auto& [type, count] : available.items()) {
      if (!types.empty()) types += ", ";
      types += type + " x" + Text(count);
    }
  }
  std::string text = "Would fit: up to " + Text(Get(would_fit, "max_gpus_on_one_node")) +
                     " GPU(s) on one node, up to " +
                     FormatGb(Num(Get(would_fit, "max_memory_gb_per_gpu"))) + " GB per GPU";
  if (!types.empty()) text += "; free GPUs by type: " + types;
  text += "\n";
  const std::string suggestion = Str(would_fit, "suggestion", "");
  if (!suggestion.empty()) text += "Suggestion: " + suggestion + "\n";
  return text;
}

// --- Running commands ---------------------------------------------------------

// Settings and outputs shared by every subcommand; owned by the callbacks.
struct Session {
  std::string url = "http://127.0.0.1:8000";
  std::string output = "table";
  double timeout_s = 10.0;
  TlsClientOptions tls;    // --cacert, --cert, --key, --insecure.
  std::string token;       // --token / $GPURM_TOKEN.
  std::string token_file;  // --token-file / $GPURM_TOKEN_FILE.
  int* exit_code = nullptr;
  std::ostream* out = nullptr;
  std::ostream* err = nullptr;

  RequestFlags allocate;
  std::string idempotency_key;
  RequestFlags validate;
  ReleaseFlags release;
  std::optional<std::string> nodes_type;
  std::optional<double> nodes_min_memory_gb;
  bool allocations_all = false;
  std::optional<std::string> allocations_owner;
  std::string heartbeat_id;
};

struct Outcome {
  int exit_code = kExitOk;
  json body;  // The parsed answer on success; null otherwise.
};

using Renderer = std::string (*)(const json&);

// Sends `call`, prints the answer as the session's output format asks, and
// returns the exit code with the answer.
Outcome Execute(const Session& session, const ApiCall& call, Renderer render) {
  HttpClientOptions options;
  options.base_url = session.url;
  // A day bounds the conversion; --timeout has already rejected values <= 0.
  const double seconds = std::min(session.timeout_s, 86'400.0);
  options.timeout = std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000.0));
  const HttpClient client(std::move(options));
  Result<HttpResponse> response = call.method == "GET" ? client.Get(call.path, call.headers)
                                  : call.method == "DELETE"
                                      ? client.Delete(call.path, call.headers)
                                      : client.Post(call.path, call.body, call.headers);
  std::ostream& out = *session.out;
  std::ostream& err = *session.err;
  if (!response.ok()) {
    err << "gpurm: " << response.status().message() << "\n";
    return {kExitUnavailable, nullptr};
  }
  if (!response->body.is_object()) {
    // Not the daemon's JSON (a proxy's error page, another service...).
    err << "gpurm: unexpected answer from " << client.base_url() << " (HTTP " << response->status
        << "): " << response->raw_body.substr(0, 200) << "\n";
    return {kExitUnavailable, nullptr};
  }
  const int code = ExitCodeForHttpStatus(response->status);
  if (session.output == "json") {
    out << response->body.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
  } else if (code == kExitOk) {
    out << render(response->body);
  } else {
    err << RenderError(response->body);
  }
  if (response->status == 401 && session.output != "json") {
    err << "hint: the daemon requires a bearer token: pass --token (or --token-file), or set "
           "GPURM_TOKEN\n";
  }
  return {code, code == kExitOk ? std::move(response->body) : json()};
}

// Checks that an option's value is a number `accept` takes; the message says
// "must be <description>". (CLI11's own range checks print unreadable bounds.)
CLI::Validator NumberCheck(const char* description, bool (*accept)(double)) {
  return CLI::Validator(
      [description, accept](std::string& text) -> std::string {
        try {
          size_t used = 0;
          const double value = std::stod(text, &used);
          if (used == text.size() && accept(value)) return "";
        } catch (const std::exception&) {
          // Not a number: reported below.
        }
        return std::string("must be ") + description;
      },
      /*validator_desc=*/"");
}

bool AtLeastOne(double value) { return value >= 1.0; }
bool NonNegative(double value) { return value >= 0.0; }
bool Positive(double value) { return value > 0.0; }
bool Fraction(double value) { return value > 0.0 && value <= 1.0; }

}  // namespace

// The flags shared by `allocate`, `validate` and `run`.
void AddRequestFlags(CLI::App* command, RequestFlags* flags) {
  command->add_option("--gpus", flags->gpus, "Number of GPUs")
      ->check(NumberCheck("an integer >= 1", &AtLeastOne))
      ->capture_default_str();
  command->add_option_function<std::string>(
      "--type", [flags](const std::string& type) { flags->type = type; },
      "GPU type, e.g. V100 (default: any)");
  command
      ->add_option_function<double>(
          "--memory-gb", [flags](const double& gb) { flags->memory_gb = gb; },
          "GPU memory needed per GPU, in GB")
      ->check(NumberCheck("a number >= 0", &NonNegative));
  command->add_flag("--distributed", flags->distributed, "Configure distributed training");
  command->add_flag("--mixed-precision", flags->mixed_precision, "Configure mixed precision");
  command
      ->add_option_function<double>(
          "--fraction", [flags](const double& fraction) { flags->fraction = fraction; },
          "Share of the granted memory the framework may use (server default 0.9)")
      ->check(NumberCheck("a number in (0, 1]", &Fraction));
  command->add_option_function<std::string>(
      "--node", [flags](const std::string& node) { flags->node = node; }, "Only this node");
  command->add_flag("--shared", flags->shared,
                    "Accept a memory slice of a shared GPU (needs --memory-gb)");
  command->add_option_function<std::string>(
      "--policy", [flags](const std::string& policy) { flags->policy = policy; },
      "Placement policy: binpack or spread");
  command
      ->add_option_function<int64_t>(
          "--lease-ttl", [flags](const int64_t& ttl) { flags->lease_ttl_seconds = ttl; },
          "Lease in seconds; the GPUs come back unless renewed with heartbeat (0: no lease)")
      ->check(NumberCheck("an integer >= 0", &NonNegative));
  command->add_option_function<std::string>(
      "--owner", [flags](const std::string& owner) { flags->owner = owner; },
      "Owner of the allocation (default: the server's, \"anonymous\")");
}

int ExitCodeForHttpStatus(long status) {
  if (status >= 200 && status < 300) return kExitOk;
  if (status >= 400 && status < 500) return kExitRefused;
  return kExitUnavailable;
}

std::string PercentEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string encoded;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      encoded += c;
    } else {
      encoded += '%';
      encoded += kHex[byte >> 4];
      encoded += kHex[byte & 0x0F];
    }
  }
  return encoded;
}

json BuildGpuRequestJson(const RequestFlags& flags) {
  json request = {{"gpu_count", flags.gpus}};
  if (flags.type) request["gpu_type"] = *flags.type;
  if (flags.memory_gb) request["memory_gb"] = *flags.memory_gb;
  if (flags.distributed) request["distributed_training"] = true;
  if (flags.mixed_precision) request["mixed_precision"] = true;
  if (flags.fraction) request["gpu_memory_fraction"] = *flags.fraction;
  if (flags.node) request["node_name"] = *flags.node;
  if (flags.shared) request["shared"] = true;
  if (flags.policy) request["policy"] = *flags.policy;
  if (flags.lease_ttl_seconds) request["lease_ttl_seconds"] = *flags.lease_ttl_seconds;
  if (flags.owner) request["owner"] = *flags.owner;
  return request;
}

ApiCall BuildAllocateCall(const RequestFlags& flags, const std::string& idempotency_key) {
  ApiCall call{"POST", std::string(kApi) + "/allocate", BuildGpuRequestJson(flags), {}};
  if (!idempotency_key.empty()) call.headers.emplace_back("Idempotency-Key", idempotency_key);
  return call;
}

ApiCall BuildValidateCall(const RequestFlags& flags) {
  return {"POST", std::string(kApi) + "/validate", BuildGpuRequestJson(flags), {}};
}

ApiCall BuildStatusCall() { return {"GET", std::string(kApi) + "/status", nullptr, {}}; }

ApiCall BuildNodesCall(const std::optional<std::string>& gpu_type,
                       const std::optional<double>& min_memory_gb) {
  std::string query;
  if (gpu_type) query += "gpu_type=" + PercentEncode(*gpu_type);
  if (min_memory_gb) {
    if (!query.empty()) query += '&';
    query += "min_memory_gb=" + PercentEncode(json(*min_memory_gb).dump());
  }
  return {"GET", std::string(kApi) + "/nodes" + (query.empty() ? "" : "?" + query), nullptr, {}};
}

ApiCall BuildAllocationsCall(bool all, const std::optional<std::string>& owner) {
  std::string query;
  if (all) query += "all=true";
  if (owner) {
    if (!query.empty()) query += '&';
    query += "owner=" + PercentEncode(*owner);
  }
  return {
      "GET", std::string(kApi) + "/allocations" + (query.empty() ? "" : "?" + query), nullptr, {}};
}

ApiCall BuildHeartbeatCall(const std::string& allocation_id) {
  return {"POST",
          std::string(kApi) + "/allocations/" + PercentEncode(allocation_id) + "/heartbeat",
          json::object(),
          {}};
}

Result<ApiCall> BuildReleaseCall(const ReleaseFlags& flags) {
  const bool by_id = !flags.allocation_id.empty();
  const bool by_node = flags.node.has_value() || flags.gpus.has_value();
  if (by_id && by_node) {
    return InvalidArgument("give an allocation ID or --node with --gpus, not both");
  }
  if (!by_id && !(flags.node && flags.gpus)) {
    return InvalidArgument("give an allocation ID, or --node NAME together with --gpus COUNT");
  }
  HttpHeaders headers;
  if (flags.owner) headers.emplace_back("X-Gpurm-Owner", *flags.owner);
  if (by_id) {
    return ApiCall{"DELETE",
                   std::string(kApi) + "/allocations/" + PercentEncode(flags.allocation_id),
                   nullptr, std::move(headers)};
  }
  json body = {{"node_name", *flags.node}, {"gpu_count", *flags.gpus}};
  if (flags.owner) body["owner"] = *flags.owner;
  return ApiCall{"POST", std::string(kApi) + "/release", std::move(body), std::move(headers)};
}

std::string RenderStatus(const json& body) {
  std::string text = "As of " + Str(body, "timestamp") + ": " + Text(Get(body, "total_nodes")) +
                     " node(s), " + Text(Get(body, "total_gpus")) + " GPU(s) (" +
                     Text(Get(body, "available_gpus")) + " available, " +
                     Text(Get(body, "allocated_gpus")) + " allocated), " +
                     Text(Get(body, "active_allocations")) + " active allocation(s)\n";
  const json& utilization = Get(body, "utilization");
  text += "GPU utilization:  " + PercentBar(Num(Get(utilization, "gpu_utilization"))) + "\n";
  text += "GPU memory usage: " + PercentBar(Num(Get(utilization, "gpu_memory_usage"))) + "\n";
  Table table({"NODE", "TYPE", "AVAILABLE", "MEMORY/GPU", "UTILIZATION"});
  table.SetAlign(2, Table::Align::kRight);
  table.SetAlign(3, Table::Align::kRight);
  for (const json& node : List(body, "available_nodes")) {
    table.AddRow({Str(node, "node_name"), Str(node, "gpu_type"), Text(Get(node, "available_gpus")),
                  FormatGb(Num(Get(node, "memory_per_gpu"))) + " GB",
                  // Null for MIG devices: NVML gives them no utilization.
                  Get(node, "utilization").is_number() ? PercentBar(Num(Get(node, "utilization")))
                                                       : "n/a (MIG)"});
  }
  text += "\n";
  text += table.row_count() == 0 ? "No node has a free GPU.\n" : table.Render();
  return text;
}

std::string RenderNodes(const json& body) {
  Table table({"NODE", "GPU", "TYPE", "STATE", "MEMORY USED", "UTIL", "TEMP", "HEALTHY"});
  table.SetAlign(1, Table::Align::kRight);
  table.SetAlign(5, Table::Align::kRight);
  table.SetAlign(6, Table::Align::kRight);
  const json& nodes = List(body, "nodes");
  for (const json& node : nodes) {
    const std::string name = Str(node, "node_name");
    for (const json& gpu : List(node, "gpus")) {
      const double total = Num(Get(gpu, "memory_total_gb"));
      const double free = Num(Get(gpu, "memory_free_gb"), total);
      const json& utilization = Get(gpu, "utilization");
      table.AddRow({name, Text(Get(gpu, "index")), Str(gpu, "gpu_type", Str(gpu, "name")),
                    Str(gpu, "state"), MemoryBar(total - free, total),
                    utilization.is_number()
                        ? std::to_string(std::lround(utilization.get<double>() * 100.0)) + "%"
                        : "-",
                    Temperature(Get(gpu, "temperature_c")), Text(Get(gpu, "healthy"))});
    }
  }
  if (nodes.empty()) return "No node matches.\n";
  return table.Render() + std::to_string(nodes.size()) + " node(s)\n";
}

std::string RenderAllocated(const json& body) {
  const std::string id = Str(body, "allocation_id");
  std::string text = "Allocated " + id + ": " + GrantList(List(body, "gpus"));
  if (Get(body, "replayed") == true) text += " (replayed: same idempotency key)";
  text += "\n";
  Table table({"NODE", "GPU", "UUID", "MEMORY", "EXCLUSIVE"});
  table.SetAlign(1, Table::Align::kRight);
  table.SetAlign(3, Table::Align::kRight);
  for (const json& grant : List(body, "gpus")) {
    table.AddRow({Str(grant, "node_name"), Text(Get(grant, "gpu_index")), Str(grant, "gpu_uuid"),
                  FormatGb(Num(Get(grant, "memory_gb"))) + " GB", Text(Get(grant, "exclusive"))});
  }
  text += table.Render();
  const json& environment = Get(Get(body, "gpu_config"), "environment");
  if (environment.is_object() && !environment.empty()) {
    text += "Environment:";
    for (const auto& [name, value] : environment.items()) text += " " + name + "=" + Text(value);
    text += "\n";
  }
  const json& lease = Get(Get(body, "allocation"), "lease_expires_at");
  if (lease.is_string()) {
    text += "Lease expires at " + lease.get<std::string>() + "; renew with: gpurm heartbeat " + id +
            "\n";
  }
  return text;
}

std::string RenderValidation(const json& body) {
  std::string text = "Possible now:  " + Text(Get(body, "possible_now")) + "\n" +
                     "Possible ever: " + Text(Get(body, "possible_ever")) + "\n";
  const std::string message = Str(body, "message", "");
  if (!message.empty()) text += message + "\n";
  const json& placement = Get(body, "placement");
  if (placement.is_object()) {
    text += "Would get: " + GrantList(List(placement, "gpus")) + " (policy " +
            Str(placement, "policy") + ")\n";
  }
  return text + ReasonLines(body) + WouldFitLines(body);
}

std::string RenderAllocations(const json& body) {
  Table table({"ID", "OWNER", "STATE", "GPUS", "CREATED", "LEASE EXPIRES"});
  for (const json& allocation : List(body, "allocations")) {
    table.AddRow({Str(allocation, "allocation_id"), Str(allocation, "owner"),
                  Str(allocation, "state"), GrantList(List(allocation, "gpus")),
                  Str(allocation, "created_at"), Str(allocation, "lease_expires_at")});
  }
  return table.row_count() == 0 ? "No allocations.\n" : table.Render();
}

std::string RenderReleased(const json& body) {
  const json& released = Get(body, "released");
  if (released.is_array()) {
    std::string ids;
    for (const json& id : released) ids += " " + Text(id);
    return released.empty() ? "Nothing released.\n" : "Released" + ids + "\n";
  }
  return "Released " + Str(Get(body, "allocation"), "allocation_id") + "\n";
}

std::string RenderHeartbeat(const json& body) {
  const json& allocation = Get(body, "allocation");
  const json& lease = Get(allocation, "lease_expires_at");
  return "Renewed " + Str(allocation, "allocation_id") + "; " +
         (lease.is_string() ? "lease expires at " + lease.get<std::string>()
                            : std::string("it has no lease")) +
         "\n";
}

std::string RenderError(const json& body) {
  const json& error = Get(body, "error");
  std::string text = "Error: " + Str(error, "code", "error") + ": " + Str(error, "message");
  const std::string field = Str(error, "field", "");
  if (!field.empty()) text += " (field: " + field + ")";
  return text + "\n" + ReasonLines(body) + WouldFitLines(body);
}

void RegisterClientCommands(CLI::App& app, int* exit_code, std::ostream& out, std::ostream& err) {
  auto session = std::make_shared<Session>();
  session->exit_code = exit_code;
  session->out = &out;
  session->err = &err;

  app.add_option("--url", session->url, "gpurm daemon address")
      ->envname("GPURM_URL")
      ->capture_default_str();
  app.add_option("-o,--output", session->output, "Output format")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  app.add_option("--timeout", session->timeout_s, "Request timeout in seconds")
      ->check(NumberCheck("a number > 0", &Positive))
      ->capture_default_str();
  app.add_option("--cacert", session->tls.ca_bundle,
                 "PEM CA bundle that signed an https:// daemon's certificate (default: the "
                 "system's trust store)")
      ->envname("GPURM_CA_BUNDLE");
  app.add_option("--cert", session->tls.client_cert,
                 "PEM client certificate, for a daemon that requires one (mutual TLS)")
      ->envname("GPURM_CLIENT_CERT");
  app.add_option("--key", session->tls.client_key, "PEM private key of --cert")
      ->envname("GPURM_CLIENT_KEY");
  app.add_option("--token", session->token,
                 "Bearer token for a daemon that requires one (gpurm token create)")
      ->envname("GPURM_TOKEN");
  app.add_option("--token-file", session->token_file,
                 "File whose first line is the bearer token (keeps it out of ps and history)")
      ->envname("GPURM_TOKEN_FILE");
  app.add_flag("--insecure", session->tls.insecure,
               "INSECURE: do not verify the daemon's TLS certificate (anyone on the path can "
               "read and change the traffic); for tests only");
  // Runs after parsing, before any command: every client of this process
  // (and, through the environment, programs `gpurm run` starts) verifies the
  // daemon the same way. --insecure is never exported.
  app.parse_complete_callback([session] {
    // --token wins over --token-file; the token reaches programs `gpurm run`
    // starts through GPURM_TOKEN, as the TLS settings do.
    if (session->token.empty() && !session->token_file.empty()) {
      Result<std::string> token = ReadBearerTokenFile(session->token_file);
      if (!token.ok()) throw CLI::ValidationError("--token-file", token.status().message());
      session->token = *token;
    }
    SetDefaultToken(session->token);
    if (!session->token.empty()) ::setenv("GPURM_TOKEN", session->token.c_str(), 1);
    SetDefaultTlsOptions(session->tls);
    const std::pair<const char*, const std::string*> exported[] = {
        {"GPURM_CA_BUNDLE", &session->tls.ca_bundle},
        {"GPURM_CLIENT_CERT", &session->tls.client_cert},
        {"GPURM_CLIENT_KEY", &session->tls.client_key}};
    for (const auto& [name, value] : exported) {
      if (!value->empty()) ::setenv(name, value->c_str(), /*overwrite=*/1);
    }
  });

  // Global options may follow the subcommand too.
  auto add = [&app](const char* name, const char* description) {
    CLI::App* command = app.add_subcommand(name, description);
    command->fallthrough();
    return command;
  };
  auto simple = [session](ApiCall (*build)(const Session&), Renderer render) {
    return [session, build, render] {
      *session->exit_code = Execute(*session, build(*session), render).exit_code;
    };
  };

  add("status", "Cluster summary: free GPUs per node, utilization")
      ->callback(simple([](const Session&) { return BuildStatusCall(); }, &RenderStatus));

  CLI::App* nodes = add("nodes", "Nodes with free GPUs matching the filters, per GPU");
  nodes->add_option_function<std::string>(
      "--type", [session](const std::string& type) { session->nodes_type = type; },
      "Only GPUs of this type");
  nodes
      ->add_option_function<double>(
          "--min-memory-gb", [session](const double& gb) { session->nodes_min_memory_gb = gb; },
          "Only GPUs with at least this much free memory")
      ->check(NumberCheck("a number >= 0", &NonNegative));
  nodes->callback(
      simple([](const Session& s) { return BuildNodesCall(s.nodes_type, s.nodes_min_memory_gb); },
             &RenderNodes));

  CLI::App* allocate = add("allocate", "Allocate GPUs; prints the allocation ID, node and GPUs");
  AddRequestFlags(allocate, &session->allocate);
  allocate->add_option("--idempotency-key", session->idempotency_key,
                       "Retrying with the same key returns the same allocation");
  allocate->callback(
      simple([](const Session& s) { return BuildAllocateCall(s.allocate, s.idempotency_key); },
             &RenderAllocated));

  CLI::App* validate =
      add("validate", "Can this request be met now, or ever? Why not, and what would fit");
  AddRequestFlags(validate, &session->validate);
  validate->callback([session] {
    const Outcome outcome =
        Execute(*session, BuildValidateCall(session->validate), &RenderValidation);
    const bool refused = outcome.exit_code == kExitOk && Get(outcome.body, "possible_now") != true;
    *session->exit_code = refused ? kExitRefused : outcome.exit_code;
  });

  CLI::App* release = add("release", "Release an allocation by ID, or by --node and --gpus");
  release->add_option("id", session->release.allocation_id, "Allocation ID");
  release
      ->add_option_function<std::string>(
          "--node", [session](const std::string& node) { session->release.node = node; },
          "Node of the allocation to release (with --gpus)")
      ->group("By node");
  release
      ->add_option_function<int>(
          "--gpus", [session](const int& gpus) { session->release.gpus = gpus; },
          "GPU count of the allocation to release (with --node); your newest match is released")
      ->check(NumberCheck("an integer >= 1", &AtLeastOne))
      ->group("By node");
  release->add_option_function<std::string>(
      "--owner", [session](const std::string& owner) { session->release.owner = owner; },
      "Act as this owner");
  release->callback([session] {
    Result<ApiCall> call = BuildReleaseCall(session->release);
    if (!call.ok()) {
      *session->err << "gpurm release: " << call.status().message() << "\n";
      *session->exit_code = kExitUsage;
      return;
    }
    *session->exit_code = Execute(*session, *call, &RenderReleased).exit_code;
  });

  CLI::App* allocations = add("allocations", "List allocations (active ones by default)");
  allocations->add_flag("--all", session->allocations_all, "Include released and expired ones");
  allocations->add_option_function<std::string>(
      "--owner", [session](const std::string& owner) { session->allocations_owner = owner; },
      "Only this owner's");
  allocations->callback(simple(
      [](const Session& s) { return BuildAllocationsCall(s.allocations_all, s.allocations_owner); },
      &RenderAllocations));

  CLI::App* heartbeat = add("heartbeat", "Renew an allocation's lease by its TTL");
  heartbeat->add_option("id", session->heartbeat_id, "Allocation ID")->required();
  heartbeat->callback(simple([](const Session& s) { return BuildHeartbeatCall(s.heartbeat_id); },
                             &RenderHeartbeat));

  auto daemon = [session] { return DaemonAddress{session->url, session->timeout_s}; };
  RegisterRunCommand(app, exit_code, daemon, out, err);
  RegisterTopCommand(
      app, exit_code,
      [session] {
        return TopGlobals{session->url, session->timeout_s, session->output};
      },
      out, err, &out == &std::cout && ::isatty(STDOUT_FILENO) == 1);
  RegisterTokenCommand(app, exit_code, out, err);
  RegisterQueueCommand(
      app, exit_code,
      [session] {
        return QueueGlobals{session->url, session->timeout_s, session->output};
      },
      out, err);
}

int ParseAndRun(CLI::App& app, int argc, const char* const* argv, const int* exit_code) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // Prints the help text (exit code 0) or the error with a usage hint.
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  } catch (const std::exception& e) {
    // Not a refusal by the daemon: reported like a failure scripts should not
    // take for "nothing fits".
    std::cerr << "gpurm: " << e.what() << "\n";
    return kExitUnavailable;
  }
  return *exit_code;
}

}  // namespace gpurm::cli
