// deploy/kubernetes/ stays consistent with the code: the ConfigMaps hold
// gpu_config.yaml files gpurm accepts, the Role allows the Lease name the
// config uses, and the probes hit endpoints that exist. (Their validity as
// Kubernetes objects is checked by tests/kube/validate-manifests.sh against
// a real API server.)
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "config/config.h"
#include "kube/api_server.h"
#include "support/daemon_process.h"

namespace gpurm {
namespace {

using nlohmann::json;

// Every document of a multi-document manifest file.
std::vector<json> Documents(const std::string& file) {
  std::ifstream in(testing::SourceDir() + "/deploy/kubernetes/" + file);
  std::stringstream text;
  text << in.rdbuf();
  std::vector<json> documents;
  std::string document;
  std::istringstream lines(text.str());
  for (std::string line; std::getline(lines, line);) {
    if (line == "---") {
      if (Result<json> parsed = testing::YamlToJson(document); parsed.ok() && !parsed->is_null()) {
        documents.push_back(*parsed);
      }
      document.clear();
    } else {
      document += line + "\n";
    }
  }
  if (Result<json> parsed = testing::YamlToJson(document); parsed.ok() && !parsed->is_null()) {
    documents.push_back(*parsed);
  }
  return documents;
}

json Find(const std::vector<json>& documents, const std::string& kind) {
  for (const json& d : documents) {
    if (d.value("kind", "") == kind) return d;
  }
  return nullptr;
}

TEST(KubeManifestsTest, ConfigMapsHoldValidConfigs) {
  const json manager = Find(Documents("configmap.yaml"), "ConfigMap");
  ASSERT_TRUE(manager.is_object());
  Result<Config> config =
      ParseConfig(manager["data"]["gpu_config.yaml"].get<std::string>(), "configmap.yaml");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_TRUE(config->kubernetes.enabled);
  EXPECT_TRUE(config->kubernetes.kubeconfig.empty()) << "in-cluster credentials";
  EXPECT_EQ(config->server.listen, "0.0.0.0:8000");

  // The Role lets the service account get and update exactly that Lease.
  bool lease_rule = false;
  const json role = Find(Documents("rbac.yaml"), "Role");
  for (const json& rule : role["rules"]) {
    if (rule.contains("resourceNames")) {
      lease_rule = rule["resourceNames"] == json::array({config->kubernetes.lease_name});
    }
  }
  EXPECT_TRUE(lease_rule);

  const json node = Find(Documents("daemonset.yaml"), "ConfigMap");
  ASSERT_TRUE(node.is_object());
  Result<Config> node_config =
      ParseConfig(node["data"]["gpu_config.yaml"].get<std::string>(), "daemonset.yaml");
  ASSERT_TRUE(node_config.ok()) << node_config.status().ToString();
  EXPECT_FALSE(node_config->kubernetes.enabled);
  EXPECT_EQ(node_config->server.enforcement.foreign_process, EnforcementAction::kIgnore);

  // The manager's node agent selector selects the DaemonSet's pods, whose
  // container port named http is the one the manager pulls.
  const json daemon_set = Find(Documents("daemonset.yaml"), "DaemonSet");
  ASSERT_TRUE(daemon_set.is_object());
  const json& pod = daemon_set["spec"]["template"];
  std::istringstream terms(config->kubernetes.node_agent_selector);
  int matched = 0;
  for (std::string term; std::getline(terms, term, ',');) {
    const size_t equals = term.find('=');
    ASSERT_NE(equals, std::string::npos) << term;
    EXPECT_EQ(pod["metadata"]["labels"].value(term.substr(0, equals), ""), term.substr(equals + 1))
        << term;
    ++matched;
  }
  EXPECT_GT(matched, 0) << "the manager pulls no node agents";
  EXPECT_EQ(pod["spec"]["containers"][0]["ports"][0]["name"], "http");
  EXPECT_EQ(pod["spec"]["hostPID"], true);
}

TEST(KubeManifestsTest, DeploymentProbesAndIdentity) {
  const json deployment = Find(Documents("deployment.yaml"), "Deployment");
  ASSERT_TRUE(deployment.is_object());
  const json& container = deployment["spec"]["template"]["spec"]["containers"][0];
  EXPECT_EQ(container["livenessProbe"]["httpGet"]["path"], "/api/v1/gpu/health");
  EXPECT_EQ(container["readinessProbe"]["httpGet"]["path"], "/api/v1/gpu/leader");
  EXPECT_EQ(container["env"][0]["name"], "POD_NAME");
  EXPECT_EQ(deployment["spec"]["template"]["spec"]["serviceAccountName"], "gpurm");
}

}  // namespace
}  // namespace gpurm
