#include "kube/api_server.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "support/daemon_process.h"
#include "support/loopback.h"

namespace gpurm::testing {
namespace {

using nlohmann::json;
constexpr char kAdminToken[] = "gpurm-test-admin-token";

pid_t Spawn(const std::vector<std::string>& argv, const std::string& log_path) {
  const pid_t pid = fork();
  if (pid == 0) {
    std::FILE* log = std::fopen(log_path.c_str(), "w");
    if (log != nullptr) {
      dup2(fileno(log), STDOUT_FILENO);
      dup2(fileno(log), STDERR_FILENO);
    }
    std::vector<char*> args;
    for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  return pid;
}

void Stop(pid_t pid) {
  if (pid <= 0) return;
  kill(pid, SIGTERM);
  for (int i = 0; i < 100; ++i) {
    if (waitpid(pid, nullptr, WNOHANG) == pid) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

json ScalarToJson(const YAML::Node& node) {
  const std::string& text = node.Scalar();
  if (node.Tag() == "!") return text;  // Quoted.
  if (text == "true" || text == "True") return true;
  if (text == "false" || text == "False") return false;
  if (text == "null" || text == "~" || text.empty()) return nullptr;
  char* end = nullptr;
  const long long integer = std::strtoll(text.c_str(), &end, 10);
  if (*end == '\0') return integer;
  const double number = std::strtod(text.c_str(), &end);
  if (*end == '\0') return number;
  return text;
}

json NodeToJson(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      json out = json::object();
      for (const auto& entry : node) out[entry.first.Scalar()] = NodeToJson(entry.second);
      return out;
    }
    case YAML::NodeType::Sequence: {
      json out = json::array();
      for (const auto& entry : node) out.push_back(NodeToJson(entry));
      return out;
    }
    case YAML::NodeType::Scalar:
      return ScalarToJson(node);
    default:
      return nullptr;
  }
}

// Polls `ready` every 100 ms for up to `seconds`.
bool WaitFor(const std::function<bool()>& ready, int seconds) {
  for (int i = 0; i < seconds * 10; ++i) {
    if (ready()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

std::string FindApiServer() {
  if (const char* env = std::getenv("GPURM_KUBE_APISERVER"); env != nullptr && *env != '\0') {
    return std::string(env) == "fake" ? "" : env;
  }
  const char* home = std::getenv("HOME");
  const std::string cached =
      std::string(home != nullptr ? home : "/root") + "/.cache/gpurm-kube/bin/kube-apiserver";
  if (access(cached.c_str(), X_OK) == 0 && access("/usr/bin/etcd", X_OK) == 0) return cached;
  return "";
}

}  // namespace

Result<json> YamlToJson(const std::string& yaml_text) {
  try {
    return NodeToJson(YAML::Load(yaml_text));
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("YAML: ") + e.what());
  }
}

Result<std::unique_ptr<TestApiServer>> TestApiServer::Start(const std::string& namespace_name) {
  std::unique_ptr<TestApiServer> server(new TestApiServer());
  server->dir_ = MakeTempDir("gpurm-kube");
  const std::string binary = FindApiServer();
  Status started = binary.empty() ? server->StartFake() : server->StartReal(binary);
  if (!started.ok()) return started;
  server->client_ = std::make_unique<kube::KubeClient>(server->connection_);
  if (Status booted = server->Bootstrap(namespace_name); !booted.ok()) return booted;
  // A kubeconfig for daemons started by the tests.
  server->kubeconfig_ = server->dir_ + "/kubeconfig";
  std::ofstream(server->kubeconfig_)
      << "apiVersion: v1\nkind: Config\ncurrent-context: test\n"
      << "clusters:\n- name: test\n  cluster:\n    server: " << server->connection_.server << "\n"
      << (server->connection_.ca_file.empty()
              ? ""
              : "    certificate-authority: " + server->connection_.ca_file + "\n")
      << "users:\n- name: admin\n  user:\n    token: " << server->connection_.token << "\n"
      << "contexts:\n- name: test\n  context:\n    cluster: test\n    user: admin\n"
      << "    namespace: " << namespace_name << "\n";
  return server;
}

TestApiServer::~TestApiServer() {
  client_.reset();
  Stop(server_pid_);
  Stop(etcd_pid_);
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

Status TestApiServer::StartFake() {
  const std::string port_file = dir_ + "/port";
  server_pid_ = Spawn({"python3", SourceDir() + "/tests/kube/fake_apiserver.py", "--port-file",
                       port_file, "--bookmark-interval", "0.5"},
                      dir_ + "/fake-apiserver.log");
  if (!WaitFor([&] { return std::filesystem::exists(port_file); }, 30)) {
    return Unavailable("the fake API server did not start: " +
                       ReadFile(dir_ + "/fake-apiserver.log"));
  }
  connection_.server = "http://127.0.0.1:" + ReadFile(port_file);
  connection_.token = kAdminToken;
  return Status::Ok();
}

Status TestApiServer::StartReal(const std::string& binary) {
  real_ = true;
  const int client_port = FreeLoopbackPort();
  const int peer_port = FreeLoopbackPort();
  const int secure_port = FreeLoopbackPort();
  etcd_pid_ =
      Spawn({"etcd", "--name", "gpurm-test", "--data-dir", dir_ + "/etcd", "--listen-client-urls",
             "http://127.0.0.1:" + std::to_string(client_port), "--advertise-client-urls",
             "http://127.0.0.1:" + std::to_string(client_port), "--listen-peer-urls",
             "http://127.0.0.1:" + std::to_string(peer_port), "--initial-advertise-peer-urls",
             "http://127.0.0.1:" + std::to_string(peer_port), "--initial-cluster",
             "gpurm-test=http://127.0.0.1:" + std::to_string(peer_port)},
            dir_ + "/etcd.log");
  std::ofstream(dir_ + "/tokens.csv") << kAdminToken << ",admin,admin,system:masters\n";
  if (std::system(("openssl genrsa -out " + dir_ + "/sa.key 2048 2>/dev/null && openssl rsa -in " +
                   dir_ + "/sa.key -pubout -out " + dir_ + "/sa.pub 2>/dev/null")
                      .c_str()) != 0) {
    return Unavailable("openssl could not make the service-account key");
  }
  server_pid_ = Spawn({binary,
                       "--etcd-servers",
                       "http://127.0.0.1:" + std::to_string(client_port),
                       "--bind-address",
                       "127.0.0.1",
                       "--advertise-address",
                       "127.0.0.1",
                       "--secure-port",
                       std::to_string(secure_port),
                       "--cert-dir",
                       dir_ + "/certs",
                       "--token-auth-file",
                       dir_ + "/tokens.csv",
                       "--authorization-mode",
                       "RBAC",
                       "--service-account-issuer",
                       "https://kubernetes.default.svc.cluster.local",
                       "--service-account-key-file",
                       dir_ + "/sa.pub",
                       "--service-account-signing-key-file",
                       dir_ + "/sa.key",
                       "--service-cluster-ip-range",
                       "10.96.0.0/16",
                       "--disable-admission-plugins",
                       "ServiceAccount",
                       "--enable-priority-and-fairness=false"},
                      dir_ + "/kube-apiserver.log");
  connection_.server = "https://127.0.0.1:" + std::to_string(secure_port);
  connection_.token = kAdminToken;
  connection_.ca_file = dir_ + "/certs/apiserver.crt";
  const bool up = WaitFor(
      [&] {
        if (!std::filesystem::exists(connection_.ca_file)) return false;
        kube::KubeClient probe(connection_);
        return probe.Get("/readyz").ok() || probe.Get("/api/v1/namespaces/default").ok();
      },
      120);
  if (!up) {
    const std::string log = ReadFile(dir_ + "/kube-apiserver.log");
    return Unavailable("kube-apiserver did not become ready: " +
                       log.substr(log.size() > 2000 ? log.size() - 2000 : 0));
  }
  return Status::Ok();
}

Status TestApiServer::Bootstrap(const std::string& namespace_name) {
  if (real_ || namespace_name != "default") {
    Result<json> ns = client_->Create(
        "/api/v1/namespaces",
        {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", namespace_name}}}});
    if (!ns.ok() && !kube::IsAlreadyExists(ns.status())) return ns.status();
  }
  const std::string crd_path = SourceDir() + "/deploy/kubernetes/crd.yaml";
  const std::string crd_text = ReadFile(crd_path);
  if (crd_text.empty()) {
    return Unavailable("cannot read " + crd_path + " (set GPURM_SOURCE_DIR to the repository)");
  }
  Result<json> crd = YamlToJson(crd_text);
  if (!crd.ok()) return crd.status();
  Result<json> created =
      client_->Create("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", *crd);
  if (!created.ok()) return created.status();
  const std::string list =
      "/apis/gpurm.io/v1alpha1/namespaces/" + namespace_name + "/gpuallocations";
  if (!WaitFor([&] { return client_->Get(list).ok(); }, 60)) {
    return Unavailable("the GpuAllocation CRD did not become established");
  }
  return Status::Ok();
}

Status TestApiServer::Compact() const {
  if (real_) return Unavailable("the real API server keeps its own watch history");
  kube::KubeClient raw(connection_);
  Result<json> answer = raw.Create("/compact", json::object());
  return answer.ok() ? Status::Ok() : answer.status();
}

Status TestApiServer::CreateNode(const std::string& name, const std::string& resource, int gpus,
                                 const json& labels, bool ready, int allocatable,
                                 bool unschedulable) const {
  json node = {
      {"apiVersion", "v1"},
      {"kind", "Node"},
      {"metadata", {{"name", name}, {"labels", labels.is_object() ? labels : json::object()}}},
      {"spec", {{"unschedulable", unschedulable}}}};
  Result<json> created = client_->Create("/api/v1/nodes", node);
  if (!created.ok()) return created.status();
  const std::string count = std::to_string(gpus);
  const std::string usable = std::to_string(allocatable < 0 ? gpus : allocatable);
  (*created)["status"] = {
      {"capacity", {{resource, count}, {"cpu", "64"}, {"memory", "512Gi"}, {"pods", "110"}}},
      {"allocatable", {{resource, usable}, {"cpu", "63"}, {"memory", "500Gi"}, {"pods", "110"}}},
      {"conditions",
       {{{"type", "Ready"},
         {"status", ready ? "True" : "False"},
         {"reason", ready ? "KubeletReady" : "KubeletNotReady"},
         {"message", ready ? "kubelet is posting ready status" : "container runtime is down"},
         {"lastHeartbeatTime", "2025-01-01T00:00:00Z"},
         {"lastTransitionTime", "2025-01-01T00:00:00Z"}}}},
      {"addresses",
       {{{"type", "InternalIP"}, {"address", "10.0.0." + std::to_string(name.size())}},
        {{"type", "Hostname"}, {"address", name}}}}};
  Result<json> updated = client_->Replace("/api/v1/nodes/" + name + "/status", *created);
  return updated.ok() ? Status::Ok() : updated.status();
}

Status TestApiServer::CreatePod(const std::string& namespace_name, const std::string& name,
                                const std::string& node, const std::string& resource, int gpus,
                                const std::string& phase, const json& labels) const {
  json container = {{"name", "train"}, {"image", "registry.example/train:1"}};
  if (gpus > 0) {
    container["resources"] = {{"limits", {{resource, std::to_string(gpus)}}},
                              {"requests", {{resource, std::to_string(gpus)}}}};
  }
  json pod = {{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata", {{"name", name}, {"namespace", namespace_name}}},
              {"spec", {{"containers", json::array({container})}, {"restartPolicy", "Never"}}}};
  if (labels.is_object()) pod["metadata"]["labels"] = labels;
  if (!node.empty()) pod["spec"]["nodeName"] = node;
  const std::string pods = "/api/v1/namespaces/" + namespace_name + "/pods";
  Result<json> created = client_->Create(pods, pod);
  if (!created.ok()) return created.status();
  (*created)["status"] = {{"phase", phase}};
  Result<json> updated = client_->Replace(pods + "/" + name + "/status", *created);
  return updated.ok() ? Status::Ok() : updated.status();
}

}  // namespace gpurm::testing
