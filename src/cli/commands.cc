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

#include "cli/json_view.h"
#include "cli/queue_command.h"
#include "cli/run_command.h"
#include "cli/table.h"
#include "cli/token_command.h"
#include "cli/top_command.h"

namespace gpurm::cli {
namespace {

using nlohmann::json;

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
      "Placement policy, one the daemon lists (gpurm policies; the daemon refuses others); "
      "default: the daemon's server.policy");
  command
      ->add_option_function<int64_t>(
          "--lease-ttl", [flags](const int64_t& ttl) { flags->lease_ttl_seconds = ttl; },
          "Lease in seconds; the GPUs come back unless renewed with heartbeat (default and "
          "maximum: the server's, 300 s and 1 day unless configured; 0: the default)")
      ->check(NumberCheck("an integer >= 0", &NonNegative));
  command->add_option_function<std::string>(
      "--owner", [flags](const std::string& owner) { flags->owner = owner; },
      "Owner of the allocation (default: $GPURM_OWNER, else your login name; with a token, "
      "its name)");
}

int ExitCodeForHttpStatus(long status) {
  if (status >= 200 && status < 300) return kExitOk;
  if (status >= 400 && status < 500) return kExitRefused;
  return kExitUnavailable;
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
  allocate->callback(simple(
      [](const Session& s) {
        RequestFlags flags = s.allocate;
        // Not "anonymous": the user, unless a token says who it is.
        if (!flags.owner && s.token.empty() && s.token_file.empty()) {
          if (std::string owner = DefaultOwner(); !owner.empty()) flags.owner = std::move(owner);
        }
        return BuildAllocateCall(flags, s.idempotency_key);
      },
      &RenderAllocated));

  CLI::App* validate =
      add("validate", "Can this request be met now, or ever? Why not, and what would fit");
  AddRequestFlags(validate, &session->validate);
  validate->callback([session] {
    const Outcome outcome =
        Execute(*session, BuildValidateCall(session->validate), &RenderValidation);
    const bool refused =
        outcome.exit_code == kExitOk && Member(outcome.body, "possible_now") != true;
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

  add("policies",
      "Placement policies the daemon implements (what --policy accepts), and its default")
      ->callback(simple([](const Session&) { return BuildPoliciesCall(); }, &RenderPolicies));

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
