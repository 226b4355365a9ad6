#include "api/jobs_handlers.h"

#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <utility>

#include "api/auth.h"
#include "api/json_codec.h"
#include "api/responses.h"
#include "integrations/frameworks/plan.h"

namespace gpurm {
namespace {

using nlohmann::json;

// Environment variables that pick devices: inside a Job's container the
// device plugin exposes exactly the granted GPUs, numbered from 0, so the
// host-side indices of a plan would be wrong there.
const std::set<std::string>& DeviceSelectionVariables() {
  static const std::set<std::string> names = {"CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES",
                                              "ROCR_VISIBLE_DEVICES", "ZE_AFFINITY_MASK",
                                              "ASCEND_RT_VISIBLE_DEVICES"};
  return names;
}

struct JobRequest {
  std::string name;
  std::string image;
  std::vector<std::string> command;
  std::map<std::string, std::string> env;
  int64_t backoff_limit = 0;
};

Result<JobRequest> ParseJob(const json& job) {
  if (!job.is_object()) return InvalidArgument("must be an object", "job");
  JobRequest parsed;
  for (const auto& [key, value] : job.items()) {
    if (key == "name" || key == "image") {
      if (!value.is_string()) return InvalidArgument("must be a string", "job." + key);
      (key == "name" ? parsed.name : parsed.image) = value.get<std::string>();
    } else if (key == "command") {
      if (!value.is_array() || value.empty()) {
        return InvalidArgument("must be a non-empty list of strings", "job.command");
      }
      for (const json& part : value) {
        if (!part.is_string()) return InvalidArgument("must be strings", "job.command");
        parsed.command.push_back(part.get<std::string>());
      }
    } else if (key == "env") {
      if (!value.is_object()) return InvalidArgument("must be an object of strings", "job.env");
      for (const auto& [name, text] : value.items()) {
        if (!text.is_string()) return InvalidArgument("must be a string", "job.env." + name);
        parsed.env[name] = text.get<std::string>();
      }
    } else if (key == "backoff_limit") {
      if (!value.is_number_integer() || value.get<int64_t>() < 0) {
        return InvalidArgument("must be an integer >= 0", "job.backoff_limit");
      }
      parsed.backoff_limit = value.get<int64_t>();
    } else {
      return InvalidArgument("unknown field", "job." + key);
    }
  }
  if (parsed.image.empty()) return InvalidArgument("is required", "job.image");
  if (parsed.command.empty()) return InvalidArgument("is required", "job.command");
  if (parsed.name.empty()) {
    std::random_device random;
    char suffix[16];
    std::snprintf(suffix, sizeof(suffix), "%08x", static_cast<unsigned>(random()));
    parsed.name = std::string("gpurm-job-") + suffix;
  }
  return parsed;
}

// The extended resource of a grant: the Kubernetes provider names GPUs
// "k8s:<node>:<resource>:<n>"; else the vendor's entry of gpu_resource.
std::string ResourceOf(const JobsContext& context, const GpuGrant& grant, const Gpu* gpu) {
  const std::string& uuid = grant.gpu_uuid;
  if (uuid.rfind("k8s:", 0) == 0) {
    const size_t node_end = uuid.find(':', 4);
    const size_t resource_end = uuid.rfind(':');
    if (node_end != std::string::npos && resource_end > node_end) {
      return uuid.substr(node_end + 1, resource_end - node_end - 1);
    }
  }
  if (gpu != nullptr) {
    const std::string vendor = VendorName(gpu->model.vendor);
    const std::string key = vendor == "huawei" ? "npu" : vendor;
    if (auto it = context.gpu_resource.find(key); it != context.gpu_resource.end()) {
      return it->second;
    }
  }
  return context.default_gpu_resource;
}

const Gpu* FindGpu(const InventorySnapshot* snapshot, const std::string& uuid, const Node** node) {
  if (snapshot == nullptr) return nullptr;
  for (const Node& n : snapshot->nodes) {
    for (const Gpu& gpu : n.gpus) {
      if (gpu.uuid == uuid) {
        *node = &n;
        return &gpu;
      }
    }
  }
  return nullptr;
}

HttpResponse CreateJob(const JobsContext& context, const HttpRequest& request) {
  Result<json> body = ParseJsonObject(request.body);
  if (!body.ok()) return ErrorResponse(body.status());
  if (!body->contains("job")) return ErrorResponse(InvalidArgument("is required", "job"));
  Result<JobRequest> job = ParseJob((*body)["job"]);
  if (!job.ok()) return ErrorResponse(job.status());
  body->erase("job");
  Result<ParsedGpuRequest> parsed = ParseGpuRequest(*body);
  if (!parsed.ok()) return ErrorResponse(parsed.status());
  const std::string owner = RequestOwner(request, parsed->owner);
  // Checked before allocating: a bad name must not hold GPUs.
  {
    kube::JobSpec probe;
    probe.name = job->name;
    probe.image = job->image;
    probe.command = job->command;
    probe.gpus_per_node = {{"probe", 1}};
    probe.gpu_resource = "probe";
    if (Status valid = kube::ValidateJobSpec(probe); !valid.ok()) return ErrorResponse(valid);
  }

  GpuManager& manager = *context.manager;
  AllocationResult result =
      manager.Allocate(parsed->request, owner, std::string(kube::kJobKeyPrefix) + job->name);
  if (!result.status.ok()) {
    json error = ErrorJson(result.status);
    error["success"] = false;
    if (result.status.code() == StatusCode::kUnschedulableNow ||
        result.status.code() == StatusCode::kUnschedulableNever) {
      error["reasons"] = DiagnosisReasonsToJson(result.diagnosis);
      error["would_fit"] = WouldFitToJson(result.diagnosis.would_fit);
    }
    const bool over_cap = result.status.field() == kOwnerCapField;  // As for /allocate.
    return JsonResponse(over_cap ? 429 : HttpStatusFor(result.status.code()), error);
  }
  const Allocation& allocation = *result.allocation;

  // What the pods get: the PyTorch plan's environment for the first node
  // (NCCL settings, CUDA_DEVICE_ORDER, ...) without host device indices,
  // then the caller's variables.
  const std::shared_ptr<const InventorySnapshot> snapshot = manager.inventory().Snapshot();
  PlanInput input;
  input.request = allocation.request;
  kube::JobSpec spec;
  spec.name = job->name;
  spec.namespace_name = context.namespace_name;
  spec.allocation_id = allocation.id;
  spec.owner = owner;
  spec.image = job->image;
  spec.command = job->command;
  spec.backoff_limit = job->backoff_limit;
  for (const GpuGrant& grant : allocation.grants) {
    const Node* node = nullptr;
    const Gpu* gpu = FindGpu(snapshot.get(), grant.gpu_uuid, &node);
    if (gpu != nullptr) {
      input.gpus.push_back(
          PlannedGpu{node->name, node->address, *gpu, grant.memory_mib, grant.exclusive});
    }
    ++spec.gpus_per_node[grant.node_name];
    if (spec.gpu_resource.empty()) spec.gpu_resource = ResourceOf(context, grant, gpu);
  }
  const json plan = BuildPyTorchPlan(input);
  const auto environment = plan.find("environment");
  const json plan_env = environment != plan.end() ? *environment : json::object();
  for (const auto& [name, value] : plan_env.items()) {
    if (value.is_string() && !DeviceSelectionVariables().contains(name)) {
      spec.environment[name] = value.get<std::string>();
    }
  }
  spec.environment["PYTHONUNBUFFERED"] = "1";
  for (const auto& [name, value] : job->env) spec.environment[name] = value;

  const auto fail = [&](const Status& why) {
    // The Job will not run: give its GPUs back now.
    manager.Release(allocation.id);
    return ErrorResponse(why);
  };
  if (Status valid = kube::ValidateJobSpec(spec); !valid.ok()) return fail(valid);
  const json manifest = kube::BuildJob(spec);
  const std::string prefix = "/apis/batch/v1/namespaces/" + context.namespace_name + "/jobs";
  if (spec.gpus_per_node.size() > 1) {
    Result<json> service = context.client->Create(
        "/api/v1/namespaces/" + context.namespace_name + "/services", kube::BuildJobService(spec));
    if (!service.ok() && !kube::IsAlreadyExists(service.status())) {
      return fail(Unavailable("cannot create the Job's Service: " + service.status().message()));
    }
  }
  Result<json> created = context.client->Create(prefix, manifest);
  bool existed = false;
  if (!created.ok()) {
    if (!kube::IsAlreadyExists(created.status())) {
      return fail(Unavailable("cannot create the Job: " + created.status().message()));
    }
    created = context.client->Get(prefix + "/" + spec.name);
    if (!created.ok()) return ErrorResponse(created.status());
    const json& labels = (*created)["metadata"]["labels"];
    if (!labels.is_object() || labels.value(kube::kJobAllocationLabel, "") != allocation.id) {
      if (!result.replayed) manager.Release(allocation.id);
      return ErrorResponse(Status(StatusCode::kAlreadyExists,
                                  "a Job named " + spec.name + " exists and is not gpurm's"));
    }
    existed = true;
  }
  if (context.tracker != nullptr) context.tracker->Created(*created);
  json nodes = json::array();
  for (const auto& [node, gpus] : spec.gpus_per_node) nodes.push_back(node);
  return JsonResponse(
      existed ? 200 : 201,
      {{"success", true},
       {"replayed", existed},
       {"job", {{"name", spec.name}, {"namespace", spec.namespace_name}}},
       {"allocation_id", allocation.id},
       {"nodes", std::move(nodes)},
       {"gpu_resource", spec.gpu_resource},
       {"allocation", AllocationToJson(allocation, context.manager->inventory().Snapshot().get())},
       {"manifest", *created}});
}

HttpResponse Leader(const JobsContext& context) {
  if (context.elector == nullptr) {
    return JsonResponse(200, {{"leader", true}, {"identity", ""}, {"holder", ""}});
  }
  const bool leading = context.elector->IsLeader();
  return JsonResponse(leading ? 200 : 503, {{"leader", leading},
                                            {"identity", context.elector->identity()},
                                            {"holder", context.elector->leader()}});
}

}  // namespace

void RegisterJobRoutes(const JobsContext& context, Router& router) {
  router.Add("POST", "/api/v1/gpu/jobs", Access::kUser,
             [&context](const HttpRequest& request) { return CreateJob(context, request); });
  // The Deployment's readiness probe, which has no token.
  router.Add("GET", "/api/v1/gpu/leader", Access::kPublic,
             [&context](const HttpRequest&) { return Leader(context); });
}

}  // namespace gpurm
