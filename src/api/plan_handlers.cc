#include "api/plan_handlers.h"

#include <nlohmann/json.hpp>
#include <string>

#include "api/json_codec.h"
#include "api/responses.h"

namespace gpurm {
namespace {

using nlohmann::json;

const Gpu* FindGpu(const InventorySnapshot& snapshot, const std::string& uuid,
                   const Node** node_out) {
  for (const Node& node : snapshot.nodes) {
    for (const Gpu& gpu : node.gpus) {
      if (gpu.uuid == uuid) {
        *node_out = &node;
        return &gpu;
      }
    }
  }
  return nullptr;
}

using PlanBuilder = json (*)(const PlanInput&);

// The plan builder of `framework`, or nullptr when gpurm plans no such one.
PlanBuilder PlanBuilderFor(const std::string& framework) {
  if (framework == "pytorch") return &BuildPyTorchPlan;
  if (framework == "tensorflow") return &BuildTensorFlowPlan;
  return nullptr;
}

// 200 {"success", "node_name", "message", "plan", "allocation_id"}: success
// is false, and the plan for the CPU, when a granted GPU is no longer in the
// inventory (a plan for part of the allocation would run the job on fewer
// GPUs than it asked for). An ended allocation holds no GPUs: 409.
HttpResponse AllocationPlan(GpuManager& manager, const HttpRequest& request) {
  auto framework = request.query.find("framework");
  const std::string framework_name = framework == request.query.end() ? "" : framework->second;
  const PlanBuilder build_plan = PlanBuilderFor(framework_name);
  if (build_plan == nullptr) {
    return ErrorResponse(InvalidArgument(
        "expected pytorch or tensorflow, got \"" + framework_name + "\"", "framework"));
  }
  Result<Allocation> allocation = manager.ledger().Get(request.path_params.at("id"));
  if (!allocation.ok()) return ErrorResponse(allocation.status());
  if (allocation->state != AllocationState::kActive) {
    return ErrorResponse(
        Status(StatusCode::kFailedPrecondition, "allocation " + allocation->id + " is " +
                                                    AllocationStateName(allocation->state) +
                                                    ": it holds no GPUs to plan for"));
  }
  auto snapshot = manager.inventory().Snapshot();
  PlanInput input = PlanInputFor(allocation->request, allocation->grants, snapshot.get());
  const bool complete = input.gpus.size() == allocation->grants.size();
  std::string message = "the " + std::to_string(allocation->grants.size()) +
                        " GPU(s) of allocation " + allocation->id;
  if (!complete) {
    message = std::to_string(allocation->grants.size() - input.gpus.size()) + " of the " +
              std::to_string(allocation->grants.size()) + " GPU(s) of allocation " +
              allocation->id + " are not in the inventory now: the plan is for the CPU";
    input.gpus.clear();
  }
  const std::string node_name = input.gpus.empty() ? "" : input.gpus.front().node_name;
  return JsonResponse(200, json{{"success", complete},
                                {"node_name", node_name},
                                {"message", std::move(message)},
                                {"allocation_id", allocation->id},
                                {"plan", build_plan(input)}});
}

}  // namespace

PlanInput PlanInputFor(const GpuRequest& request, const std::vector<GpuGrant>& grants,
                       const InventorySnapshot* snapshot) {
  PlanInput input;
  input.request = request;
  if (snapshot == nullptr) return input;
  for (const GpuGrant& grant : grants) {
    const Node* node = nullptr;
    const Gpu* gpu = FindGpu(*snapshot, grant.gpu_uuid, &node);
    if (gpu == nullptr) continue;
    input.gpus.push_back(
        PlannedGpu{node->name, node->address, *gpu, grant.memory_mib, grant.exclusive});
  }
  return input;
}

void RegisterPlanRoutes(GpuManager* manager, Router& router) {
  router.Add("GET", "/api/v1/gpu/allocations/{id}/plan",
             [manager](const HttpRequest& request) { return AllocationPlan(*manager, request); });
}

}  // namespace gpurm
