#include "kube/job.h"

#include <algorithm>
#include <cctype>
#include <utility>

#include "guard/guard_config.h"

namespace gpurm::kube {
namespace {

using nlohmann::json;

bool IsDnsLabel(const std::string& name, size_t max) {
  if (name.empty() || name.size() > max) return false;
  if (!std::isalnum(static_cast<unsigned char>(name.front())) ||
      !std::isalnum(static_cast<unsigned char>(name.back()))) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](unsigned char c) {
    return (std::islower(c) != 0) || (std::isdigit(c) != 0) || c == '-';
  });
}

json Labels(const JobSpec& spec) {
  return {{kJobAllocationLabel, spec.allocation_id},
          {"app.kubernetes.io/managed-by", "gpurm"},
          {"gpurm.io/job", spec.name}};
}

}  // namespace

Status ValidateJobSpec(const JobSpec& spec) {
  // Kubernetes adds "-<index>-<random>" to pod names and uses the name as
  // a label value: 52 leaves room for both.
  if (!IsDnsLabel(spec.name, 52)) {
    return InvalidArgument(
        "must be 1-52 lower-case letters, digits or '-', starting and ending with a letter or "
        "digit",
        "job.name");
  }
  if (spec.image.empty()) return InvalidArgument("must name a container image", "job.image");
  if (spec.command.empty()) return InvalidArgument("must not be empty", "job.command");
  if (spec.gpus_per_node.empty()) return InvalidArgument("no GPUs granted", "allocation");
  const int first = spec.gpus_per_node.begin()->second;
  for (const auto& [node, gpus] : spec.gpus_per_node) {
    if (gpus != first) {
      return InvalidArgument(
          "a multi-node Job runs the same pod on every node, but the allocation has " +
              std::to_string(gpus) + " GPU(s) on " + node + " and " + std::to_string(first) +
              " on " + spec.gpus_per_node.begin()->first +
              "; ask for a GPU count the nodes divide evenly",
          "gpu_count");
    }
  }
  if (spec.gpu_resource.empty()) return InvalidArgument("unknown GPU resource", "allocation");
  return Status::Ok();
}

json BuildJob(const JobSpec& spec) {
  const int nodes = static_cast<int>(spec.gpus_per_node.size());
  const std::string gpus = std::to_string(spec.gpus_per_node.begin()->second);
  json env = json::array();
  for (const auto& [name, value] : spec.environment) {
    env.push_back({{"name", name}, {"value", value}});
  }
  if (spec.environment.contains(GPURM_ENV_CUDA_MEMORY_LIMITS_MB) &&
      !spec.environment.contains("LD_PRELOAD")) {
    env.push_back({{"name", "LD_PRELOAD"}, {"value", kCudaGuardImagePath}});
  }
  env.push_back({{"name", "GPURM_ALLOCATION_ID"}, {"value", spec.allocation_id}});
  env.push_back({{"name", "NPROC_PER_NODE"}, {"value", gpus}});
  env.push_back({{"name", "NNODES"}, {"value", std::to_string(nodes)}});
  if (nodes > 1) {
    env.push_back({{"name", "MASTER_ADDR"}, {"value", spec.name + "-0." + spec.name}});
    env.push_back({{"name", "MASTER_PORT"}, {"value", std::to_string(spec.master_port)}});
    env.push_back({{"name", "NODE_RANK"},
                   {"valueFrom",
                    {{"fieldRef",
                      {{"fieldPath",
                        "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}}}}});
  } else {
    env.push_back({{"name", "NODE_RANK"}, {"value", "0"}});
  }
  json container = {
      {"name", "train"},
      {"image", spec.image},
      {"command", spec.command},
      {"env", std::move(env)},
      {"resources",
       {{"limits", {{spec.gpu_resource, gpus}}}, {"requests", {{spec.gpu_resource, gpus}}}}}};
  json pod_spec = {
      {"restartPolicy", "Never"},
      {"containers", json::array({std::move(container)})},
      // GPU nodes are often tainted with their resource name.
      {"tolerations",
       json::array(
           {{{"key", spec.gpu_resource}, {"operator", "Exists"}, {"effect", "NoSchedule"}}})}};
  // A MIG device (GPU Feature Discovery's "nvidia.com/mig-<profile>") is on
  // a node tainted for its GPUs.
  if (spec.gpu_resource.rfind("nvidia.com/mig-", 0) == 0) {
    pod_spec["tolerations"].push_back(
        {{"key", "nvidia.com/gpu"}, {"operator", "Exists"}, {"effect", "NoSchedule"}});
  }
  if (nodes == 1) {
    pod_spec["nodeSelector"] = {{"kubernetes.io/hostname", spec.gpus_per_node.begin()->first}};
  } else {
    json names = json::array();
    for (const auto& [node, count] : spec.gpus_per_node) names.push_back(node);
    pod_spec["subdomain"] = spec.name;
    pod_spec["affinity"] = {
        {"nodeAffinity",
         {{"requiredDuringSchedulingIgnoredDuringExecution",
           {{"nodeSelectorTerms",
             json::array(
                 {{{"matchExpressions", json::array({{{"key", "kubernetes.io/hostname"},
                                                      {"operator", "In"},
                                                      {"values", std::move(names)}}})}}})}}}}},
        {"podAntiAffinity",
         {{"requiredDuringSchedulingIgnoredDuringExecution",
           json::array({{{"labelSelector", {{"matchLabels", {{"gpurm.io/job", spec.name}}}}},
                         {"topologyKey", "kubernetes.io/hostname"}}})}}}};
  }
  json job_spec = {{"backoffLimit", spec.backoff_limit},
                   {"completions", nodes},
                   {"parallelism", nodes},
                   {"template", {{"metadata", {{"labels", Labels(spec)}}}, {"spec", pod_spec}}}};
  if (nodes > 1) job_spec["completionMode"] = "Indexed";
  return {{"apiVersion", "batch/v1"},
          {"kind", "Job"},
          {"metadata",
           {{"name", spec.name},
            {"namespace", spec.namespace_name},
            {"labels", Labels(spec)},
            {"annotations", {{"gpurm.io/owner", spec.owner}}}}},
          {"spec", std::move(job_spec)}};
}

json BuildJobService(const JobSpec& spec) {
  return {{"apiVersion", "v1"},
          {"kind", "Service"},
          {"metadata",
           {{"name", spec.name}, {"namespace", spec.namespace_name}, {"labels", Labels(spec)}}},
          {"spec",
           {{"clusterIP", "None"},
            {"selector", {{"gpurm.io/job", spec.name}}},
            {"ports", json::array({{{"name", "rendezvous"}, {"port", spec.master_port}}})}}}};
}

bool JobFinished(const json& job) {
  const json status = job.value("status", json::object());
  for (const json& condition : status.value("conditions", json::array())) {
    const std::string type = condition.value("type", "");
    if ((type == "Complete" || type == "Failed" || type == "SuccessCriteriaMet" ||
         type == "FailureTarget") &&
        condition.value("status", "") == "True") {
      return true;
    }
  }
  return false;
}

JobTracker::JobTracker(const KubeClient* client, JobTrackerOptions options,
                       std::function<std::vector<ActiveAllocation>()> active,
                       std::function<void(const std::string&, const std::string&)> end,
                       std::function<bool()> should_act, std::function<int64_t()> now_unix_ms)
    : client_(client),
      options_(std::move(options)),
      active_(std::move(active)),
      end_(std::move(end)),
      should_act_(std::move(should_act)),
      now_unix_ms_(std::move(now_unix_ms)) {
  ReflectorOptions reflector;
  reflector.path = "/apis/batch/v1/namespaces/" + options_.namespace_name + "/jobs";
  reflector.label_selector = kJobAllocationLabel;
  reflector.watch_timeout_s = options_.watch_timeout_s;
  reflector.retry_delay_s = options_.retry_delay_s;
  jobs_ = std::make_unique<Reflector>(client_, std::move(reflector));
}

JobTracker::~JobTracker() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void JobTracker::Start() {
  jobs_->Start();
  if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
}

void JobTracker::Created(const json& job) { jobs_->Apply(job, /*deleted=*/false); }

int JobTracker::Reconcile() {
  const ReflectorView view = jobs_->View();
  if (!view.synced || !view.last_error.ok() || (should_act_ && !should_act_())) return 0;
  const std::string prefix = kJobKeyPrefix;
  const int64_t now = now_unix_ms_();
  int ended = 0;
  for (const ActiveAllocation& allocation : active_()) {
    if (allocation.idempotency_key.rfind(prefix, 0) != 0) continue;
    const std::string job_name = allocation.idempotency_key.substr(prefix.size());
    const auto job = view.objects->find(options_.namespace_name + "/" + job_name);
    if (job == view.objects->end()) {
      if (now - allocation.created_unix_ms < static_cast<int64_t>(options_.grace_s * 1000)) {
        continue;
      }
      end_(allocation.id, "job " + job_name + " was deleted");
      ++ended;
    } else if (job->second["metadata"]["labels"].value(kJobAllocationLabel, "") == allocation.id &&
               JobFinished(job->second)) {
      end_(allocation.id, "job " + job_name + " finished");
      ++ended;
    }
  }
  return ended;
}

void JobTracker::Run() {
  while (!stop_) {
    Reconcile();
    // Until the Jobs change or resync_s passes, checking for stop often.
    const ReflectorView before = jobs_->View();
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::milliseconds(static_cast<int64_t>(options_.resync_s * 1000));
    while (!stop_ && std::chrono::steady_clock::now() < deadline &&
           !jobs_->WaitFor([&](const ReflectorView& v) { return v.objects != before.objects; },
                           std::chrono::milliseconds(200))) {
    }
  }
}

}  // namespace gpurm::kube
