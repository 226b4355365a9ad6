#include "cli/run_k8s.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>

#include "cli/client.h"

namespace gpurm::cli {
namespace {

std::string Owner(const RequestFlags& request) {
  if (request.owner) return *request.owner;
  if (const char* env = std::getenv("GPURM_OWNER"); env != nullptr && *env != '\0') return env;
  if (const char* user = std::getenv("USER"); user != nullptr && *user != '\0') return user;
  return "";
}

std::string ErrorMessage(const HttpResponse& response) {
  if (response.body.is_object() && response.body.contains("error") &&
      response.body["error"].is_object()) {
    return response.body["error"].value("message", response.raw_body);
  }
  return response.raw_body.substr(0, 300);
}

}  // namespace

void AddKubernetesJobFlags(CLI::App* run, KubernetesJobFlags* flags) {
  run->add_flag("--k8s", flags->enabled,
                "Run the command as a Kubernetes Job on the allocated node(s) (the daemon must "
                "run in Kubernetes mode)");
  run->add_option("--image", flags->image, "With --k8s: the container image to run");
  run->add_option("--job-name", flags->job_name,
                  "With --k8s: the Job's name (lower-case letters, digits, '-'); resubmitting "
                  "the same name holds GPUs once");
  run->add_option("--env", flags->env, "With --k8s: KEY=VALUE for the Job's environment");
}

Result<nlohmann::json> BuildJobRequest(const RequestFlags& request, const KubernetesJobFlags& job,
                                       const std::vector<std::string>& command) {
  if (job.image.empty()) return InvalidArgument("--k8s needs --image", "--image");
  if (command.empty()) return InvalidArgument("no command given after --", "command");
  nlohmann::json body = BuildGpuRequestJson(request);
  body.erase("lease_ttl_seconds");  // The Job's life is the allocation's.
  nlohmann::json spec = {{"image", job.image}, {"command", command}};
  if (!job.job_name.empty()) spec["name"] = job.job_name;
  nlohmann::json env = nlohmann::json::object();
  for (const std::string& pair : job.env) {
    const size_t equals = pair.find('=');
    if (equals == std::string::npos || equals == 0) {
      return InvalidArgument("expected KEY=VALUE, got \"" + pair + "\"", "--env");
    }
    env[pair.substr(0, equals)] = pair.substr(equals + 1);
  }
  if (!env.empty()) spec["env"] = std::move(env);
  body["job"] = std::move(spec);
  return body;
}

int SubmitKubernetesJob(const RunFlags& flags, const KubernetesJobFlags& job,
                        const DaemonAddress& daemon, std::ostream& out, std::ostream& err) {
  RequestFlags request = flags.request;
  const std::string owner = Owner(request);
  if (!owner.empty()) request.owner = owner;
  Result<nlohmann::json> body = BuildJobRequest(request, job, flags.command);
  if (!body.ok()) {
    err << "gpurm run: " << body.status().message() << "\n";
    return kExitUsage;
  }
  HttpClientOptions options;
  options.base_url = daemon.url;
  options.timeout = std::chrono::milliseconds(
      static_cast<int64_t>(std::clamp(daemon.timeout_s, 0.001, 86'400.0) * 1000.0));
  if (!owner.empty()) options.headers.emplace_back("X-Gpurm-Owner", owner);
  const HttpClient client(std::move(options));
  Result<HttpResponse> response = client.Post("/api/v1/gpu/jobs", *body);
  if (!response.ok()) {
    err << "gpurm run: " << response.status().message() << "\n";
    return kExitUnavailable;
  }
  const long status = response->status;
  if (status == 200 || status == 201) {
    const nlohmann::json& answer = response->body;
    const nlohmann::json name = answer["job"]["namespace"].get<std::string>() + "/" +
                                answer["job"]["name"].get<std::string>();
    std::string nodes;
    for (const nlohmann::json& node : answer.value("nodes", nlohmann::json::array())) {
      nodes += (nodes.empty() ? "" : ",") + node.get<std::string>();
    }
    out << "job " << name.get<std::string>() << (status == 200 ? " already exists" : " created")
        << ": allocation " << answer.value("allocation_id", "") << ", "
        << answer["allocation"]["gpus"].size() << " x " << answer.value("gpu_resource", "GPU")
        << " on " << nodes << "\n"
        << "follow it with: kubectl -n " << answer["job"]["namespace"].get<std::string>()
        << " logs -f job/" << answer["job"]["name"].get<std::string>() << "\n";
    return kExitOk;
  }
  err << "gpurm run: " << ErrorMessage(*response) << "\n";
  if (status == 409) return kExitRefused;
  if (status == 404 || status == 405) {
    err << "gpurm run: the daemon at " << daemon.url
        << " does not run Jobs (start it with kubernetes.enabled: true)\n";
    return kExitUnavailable;
  }
  if (status >= 400 && status < 500) return kExitUsage;
  return kExitUnavailable;
}

}  // namespace gpurm::cli
