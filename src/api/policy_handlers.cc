#include "api/policy_handlers.h"

#include <nlohmann/json.hpp>
#include <string>

#include "core/placement_policies.h"

namespace gpurm {

void RegisterPolicyRoutes(const GpuManager* manager, Router& router) {
  router.Add("GET", "/api/v1/gpu/policies", [manager](const HttpRequest&) {
    nlohmann::json policies = nlohmann::json::array();
    for (const PlacementPolicyInfo& policy : kPlacementPolicies) {
      policies.push_back(
          {{"name", std::string(policy.name)}, {"description", std::string(policy.description)}});
    }
    HttpResponse response;
    response.body = nlohmann::json{{"policies", std::move(policies)},
                                   {"default", std::string(manager->scheduler().default_policy())}}
                        .dump();
    return response;
  });
}

}  // namespace gpurm
