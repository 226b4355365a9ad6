// TestApiServer: a Kubernetes API server for the Kubernetes tests.
//
// The real one when it is available: etcd (Debian's etcd-server) and a
// kube-apiserver built by tests/kube/build-apiserver.sh, found through
// $GPURM_KUBE_APISERVER or the build's cache (~/.cache/gpurm-kube/bin). Else
// tests/kube/fake_apiserver.py, which answers with the real server's shapes
// (tests/kube/README.md says why CI uses it). Either way the server is
// private to the test process: its own ports on 127.0.0.1, its own data dir.
#ifndef GPURM_TESTS_KUBE_API_SERVER_H_
#define GPURM_TESTS_KUBE_API_SERVER_H_

#include <sys/types.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "core/status.h"
#include "kube/client.h"
#include "kube/connection.h"

namespace gpurm::testing {

class TestApiServer {
 public:
  // Starts a server (bounded wait until it answers) with the namespace
  // `namespace_name` and the GpuAllocation CRD of deploy/kubernetes/crd.yaml
  // installed.
  static Result<std::unique_ptr<TestApiServer>> Start(const std::string& namespace_name);
  ~TestApiServer();

  bool real() const { return real_; }
  // Full access (system:masters on the real server).
  const kube::Connection& connection() const { return connection_; }
  // A kubeconfig file with that connection, for `gpurm serve`.
  const std::string& kubeconfig() const { return kubeconfig_; }
  const kube::KubeClient& client() const { return *client_; }

  // Forgets the watch history, so watches from older versions get 410 Gone.
  // Only the fake can; kUnavailable on the real server.
  Status Compact() const;

  // Creates a Node with GPUs (status written through the status
  // subresource): `gpus` of `resource` in capacity, `allocatable` of them
  // allocatable (-1: all), `labels`, Ready unless `ready` is false.
  Status CreateNode(const std::string& name, const std::string& resource, int gpus,
                    const nlohmann::json& labels, bool ready = true, int allocatable = -1,
                    bool unschedulable = false) const;
  // Creates a Pod bound to `node` whose one container requests `gpus` of
  // `resource`, then sets its phase (Pending, Running, Succeeded, Failed).
  Status CreatePod(const std::string& namespace_name, const std::string& name,
                   const std::string& node, const std::string& resource, int gpus,
                   const std::string& phase, const nlohmann::json& labels = nullptr) const;

 private:
  TestApiServer() = default;
  Status StartReal(const std::string& binary);
  Status StartFake();
  Status Bootstrap(const std::string& namespace_name);

  bool real_ = false;
  std::string dir_;
  kube::Connection connection_;
  std::string kubeconfig_;
  std::unique_ptr<kube::KubeClient> client_;
  pid_t etcd_pid_ = -1;
  pid_t server_pid_ = -1;
};

// A YAML document as JSON (plain scalars typed as YAML 1.2's core schema
// does: true/false, null, integers, floats; quoted scalars stay strings).
Result<nlohmann::json> YamlToJson(const std::string& yaml_text);

}  // namespace gpurm::testing

#endif  // GPURM_TESTS_KUBE_API_SERVER_H_
