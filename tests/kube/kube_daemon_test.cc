// `gpurm serve` in Kubernetes mode, two replicas against one API server:
// only the Lease holder places; POST /api/v1/gpu/jobs creates a Job with the
// right resources, nodeSelector and environment; killing the leader (kill
// -9) hands over to the other replica without losing or doubling an
// allocation; a finished Job's allocation is released.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "cli/client.h"
#include "kube/api_server.h"
#include "support/daemon_process.h"
#include "support/eventually.h"
#include "support/loopback.h"
#include "support/run_command.h"

namespace gpurm {
namespace {

using nlohmann::json;
using testing::FreeLoopbackPort;
using testing::TestApiServer;

// One `gpurm serve` replica with a kubernetes: section in its config.
class Replica {
 public:
  Replica(const std::string& name, const std::string& kubeconfig) : name_(name) {
    dir_ = testing::MakeTempDir("gpurm-kube-" + name);
    config_ = dir_ + "/gpu_config.yaml";
    std::ofstream(config_) << "monitor_update_interval: 0.5\n"
                           << "kubernetes:\n"
                           << "  enabled: true\n"
                           << "  kubeconfig: " << kubeconfig << "\n"
                           << "  namespace: gpurm\n"
                           << "  lease_duration_s: 3\n"
                           << "  renew_deadline_s: 2\n"
                           << "  retry_period_s: 0.3\n";
  }
  ~Replica() { Kill(); }

  bool Start() {
    const std::string listen = "127.0.0.1:" + std::to_string(FreeLoopbackPort());
    url_ = "http://" + listen;
    std::vector<std::string> args = {
        testing::GpurmBinary(), "serve",     "--listen",     listen,     "--data-dir",
        dir_ + "/data",         "--log-dir", dir_ + "/logs", "--config", config_};
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    const std::string out = dir_ + "/daemon.out";
    const std::string pod_name = "POD_NAME=" + name_;
    pid_ = fork();
    if (pid_ == 0) {
      const int sink = open(out.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (sink >= 0) dup2(sink, STDERR_FILENO);
      putenv(const_cast<char*>(pod_name.c_str()));
      execv(argv[0], argv.data());
      _exit(127);
    }
    return testing::Eventually([&] {
      Result<cli::HttpResponse> health = Client().Get("/api/v1/gpu/health");
      return health.ok() && health->status == 200;
    });
  }

  void Kill() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  bool Leads() const {
    Result<cli::HttpResponse> leader = Client().Get("/api/v1/gpu/leader");
    return leader.ok() && leader->status == 200;
  }

  const std::string& url() const { return url_; }

  cli::HttpClient Client() const {
    cli::HttpClientOptions options;
    options.base_url = url_;
    options.headers.emplace_back("X-Gpurm-Owner", "alice");
    return cli::HttpClient(options);
  }

  std::string Log() const {
    std::ifstream in(dir_ + "/daemon.out");
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

 private:
  std::string name_;
  std::string dir_;
  std::string config_;
  std::string url_;
  pid_t pid_ = -1;
};

json EnvOf(const json& container) {
  json env = json::object();
  for (const json& var : container["env"]) {
    env[var["name"].get<std::string>()] = var.contains("value") ? var["value"] : var["valueFrom"];
  }
  return env;
}

TEST(KubeDaemonTest, JobsLeaderOnlyPlacementAndHandoverAfterKill) {
  Result<std::unique_ptr<TestApiServer>> started = TestApiServer::Start("gpurm");
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  TestApiServer& server = **started;
  for (const char* node : {"gpu-a", "gpu-b"}) {
    ASSERT_TRUE(server
                    .CreateNode(node, "nvidia.com/gpu", 4,
                                {{"nvidia.com/gpu.product", "NVIDIA-A100-SXM4-80GB"},
                                 {"nvidia.com/gpu.memory", "81920"}})
                    .ok());
  }

  Replica first("gpurm-0", server.kubeconfig());
  ASSERT_TRUE(first.Start()) << first.Log();
  ASSERT_TRUE(testing::Eventually([&] { return first.Leads(); })) << first.Log();
  Replica second("gpurm-1", server.kubeconfig());
  ASSERT_TRUE(second.Start()) << second.Log();
  EXPECT_FALSE(second.Leads());

  // The follower refuses to place and names the leader.
  const json two_a100 = {{"gpu_count", 2}, {"gpu_type", "A100"}};
  Result<cli::HttpResponse> refused = second.Client().Post("/api/v1/gpu/allocate", two_a100);
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(refused->status, 503) << refused->body;
  EXPECT_NE(refused->raw_body.find("gpurm-0"), std::string::npos) << refused->body;

  // A Job through the leader.
  json job_request = two_a100;
  job_request["distributed_training"] = true;
  job_request["job"] = {{"name", "resnet"},
                        {"image", "registry.example/train:1"},
                        {"command", {"python", "train.py", "--epochs", "3"}},
                        {"env", {{"DATASET", "imagenet"}}}};
  Result<cli::HttpResponse> submitted = first.Client().Post("/api/v1/gpu/jobs", job_request);
  ASSERT_TRUE(submitted.ok());
  ASSERT_EQ(submitted->status, 201) << submitted->body;
  const json answer = submitted->body;
  const std::string allocation_id = answer["allocation_id"];
  const std::string node = answer["nodes"][0];

  Result<json> job = server.client().Get("/apis/batch/v1/namespaces/gpurm/jobs/resnet");
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  EXPECT_EQ((*job)["metadata"]["labels"]["gpurm.io/allocation"], allocation_id);
  EXPECT_EQ((*job)["metadata"]["annotations"]["gpurm.io/owner"], "alice");
  const json& pod = (*job)["spec"]["template"]["spec"];
  EXPECT_EQ(pod["nodeSelector"]["kubernetes.io/hostname"], node);
  EXPECT_EQ((*job)["spec"]["template"]["metadata"]["labels"]["gpurm.io/allocation"], allocation_id);
  const json& container = pod["containers"][0];
  EXPECT_EQ(container["image"], "registry.example/train:1");
  EXPECT_EQ(container["command"], json({"python", "train.py", "--epochs", "3"}));
  EXPECT_EQ(container["resources"]["limits"]["nvidia.com/gpu"], "2");
  EXPECT_EQ(container["resources"]["requests"]["nvidia.com/gpu"], "2");
  const json env = EnvOf(container);
  EXPECT_EQ(env["DATASET"], "imagenet");
  EXPECT_EQ(env["GPURM_ALLOCATION_ID"], allocation_id);
  EXPECT_EQ(env["NPROC_PER_NODE"], "2");
  EXPECT_EQ(env["NNODES"], "1");
  EXPECT_EQ(env["CUDA_DEVICE_ORDER"], "PCI_BUS_ID");
  EXPECT_FALSE(env.contains("CUDA_VISIBLE_DEVICES")) << "the device plugin picks the devices";
  Result<json> recorded = server.client().Get(
      "/apis/gpurm.io/v1alpha1/namespaces/gpurm/gpuallocations/" + allocation_id);
  ASSERT_TRUE(recorded.ok());
  EXPECT_EQ((*recorded)["spec"]["idempotencyKey"], "k8s-job:resnet");

  // Submitting the same Job again holds no more GPUs.
  Result<cli::HttpResponse> again = first.Client().Post("/api/v1/gpu/jobs", job_request);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->status, 200) << again->body;
  EXPECT_EQ(again->body["allocation_id"], allocation_id);

  // `gpurm run --k8s` submits a Job the same way (here on the other node).
  const std::string other = node == "gpu-a" ? "gpu-b" : "gpu-a";
  testing::CommandResult cli = testing::RunCommand({testing::GpurmBinary(),
                                                    "--url",
                                                    first.url(),
                                                    "run",
                                                    "--k8s",
                                                    "--image",
                                                    "registry.example/train:1",
                                                    "--job-name",
                                                    "from-cli",
                                                    "--gpus",
                                                    "1",
                                                    "--type",
                                                    "A100",
                                                    "--node",
                                                    other,
                                                    "--owner",
                                                    "bob",
                                                    "--env",
                                                    "SEED=7",
                                                    "--",
                                                    "python",
                                                    "eval.py"});
  ASSERT_EQ(cli.exit_code, 0) << cli.output;
  EXPECT_NE(cli.output.find("job gpurm/from-cli created"), std::string::npos) << cli.output;
  Result<json> cli_job = server.client().Get("/apis/batch/v1/namespaces/gpurm/jobs/from-cli");
  ASSERT_TRUE(cli_job.ok()) << cli_job.status().ToString();
  const json& cli_pod = (*cli_job)["spec"]["template"]["spec"];
  EXPECT_EQ(cli_pod["nodeSelector"]["kubernetes.io/hostname"], other);
  EXPECT_EQ(cli_pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"], "1");
  EXPECT_EQ(cli_pod["containers"][0]["command"], json({"python", "eval.py"}));
  EXPECT_EQ(EnvOf(cli_pod["containers"][0])["SEED"], "7");
  EXPECT_EQ((*cli_job)["metadata"]["annotations"]["gpurm.io/owner"], "bob");

  // kill -9 the leader: the other replica takes over once the Lease lapses.
  first.Kill();
  ASSERT_TRUE(testing::Eventually([&] { return second.Leads(); })) << second.Log();
  Result<cli::HttpResponse> listed = second.Client().Get("/api/v1/gpu/allocations");
  ASSERT_TRUE(listed.ok());
  EXPECT_NE(listed->raw_body.find(allocation_id), std::string::npos) << listed->body;
  Result<cli::HttpResponse> placed = second.Client().Post(
      "/api/v1/gpu/allocate", {{"gpu_count", 4}, {"gpu_type", "A100"}, {"node_name", node}});
  ASSERT_TRUE(placed.ok());
  EXPECT_EQ(placed->status, 409) << "only 2 GPUs of " << node << " are free: " << placed->body;
  placed = second.Client().Post("/api/v1/gpu/allocate",
                                {{"gpu_count", 2}, {"gpu_type", "A100"}, {"node_name", node}});
  ASSERT_TRUE(placed.ok());
  ASSERT_EQ(placed->status, 200) << placed->body;
  std::set<std::string> job_gpus;
  for (const json& g : answer["allocation"]["gpus"])
    job_gpus.insert(g["gpu_uuid"].get<std::string>());
  for (const json& g : placed->body["gpus"]) {
    EXPECT_FALSE(job_gpus.contains(g["gpu_uuid"].get<std::string>())) << "GPU granted twice";
  }
  Result<kube::ListResult> objects =
      server.client().List("/apis/gpurm.io/v1alpha1/namespaces/gpurm/gpuallocations", {});
  ASSERT_TRUE(objects.ok());
  EXPECT_EQ(objects->items.size(), 3u);  // The two Jobs' and the new one.

  // The Job completes (as the job controller would record it): its
  // allocation is released by the new leader.
  // (Kubernetes 1.33 requires SuccessCriteriaMet before Complete.)
  (*job)["status"] = {{"conditions",
                       {{{"type", "SuccessCriteriaMet"},
                         {"status", "True"},
                         {"lastProbeTime", "2025-01-01T00:00:00Z"},
                         {"lastTransitionTime", "2025-01-01T00:00:00Z"}},
                        {{"type", "Complete"},
                         {"status", "True"},
                         {"lastProbeTime", "2025-01-01T00:00:00Z"},
                         {"lastTransitionTime", "2025-01-01T00:00:00Z"}}}},
                      {"succeeded", 1},
                      {"startTime", "2025-01-01T00:00:00Z"},
                      {"completionTime", "2025-01-01T00:00:00Z"}};
  Result<json> finished =
      server.client().Replace("/apis/batch/v1/namespaces/gpurm/jobs/resnet/status", *job);
  ASSERT_TRUE(finished.ok()) << finished.status().ToString();
  EXPECT_TRUE(testing::Eventually([&] {
    Result<json> allocation = server.client().Get(
        "/apis/gpurm.io/v1alpha1/namespaces/gpurm/gpuallocations/" + allocation_id);
    return allocation.ok() && (*allocation)["status"]["state"] == "released";
  })) << second.Log();
}

// GPU Feature Discovery's mixed MIG strategy: a node offering two 3g.40gb MIG
// devices as nvidia.com/mig-3g.40gb. gpurm lists them (no utilization), and a
// Job for one requests that resource, not a whole GPU.
TEST(KubeDaemonTest, AJobForAMigDeviceRequestsItsProfile) {
  Result<std::unique_ptr<TestApiServer>> started = TestApiServer::Start("gpurm");
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  TestApiServer& server = **started;
  ASSERT_TRUE(
      server
          .CreateNode("dgx-mig", "nvidia.com/mig-3g.40gb", 2,
                      {{"nvidia.com/gpu.product", "NVIDIA-H100-80GB-HBM3"},
                       {"nvidia.com/mig.strategy", "mixed"},
                       {"nvidia.com/mig-3g.40gb.product", "NVIDIA-H100-80GB-HBM3-MIG-3g.40gb"},
                       {"nvidia.com/mig-3g.40gb.memory", "40320"}})
          .ok());
  Replica replica("gpurm-0", server.kubeconfig());
  ASSERT_TRUE(replica.Start()) << replica.Log();
  ASSERT_TRUE(testing::Eventually([&] { return replica.Leads(); })) << replica.Log();

  json gpus;
  ASSERT_TRUE(testing::Eventually([&] {
    Result<cli::HttpResponse> monitoring = replica.Client().Get("/api/v1/gpu/monitoring");
    if (!monitoring.ok() || monitoring->body["nodes"].empty()) return false;
    gpus = monitoring->body["nodes"][0]["gpus"];
    return gpus.size() == 2;
  })) << replica.Log();
  for (const json& gpu : gpus) {
    EXPECT_EQ(gpu["gpu_type"], "H100 MIG 3g.40gb");
    EXPECT_EQ(gpu["mig_profile"], "3g.40gb");
    EXPECT_TRUE(gpu["utilization"].is_null());
    EXPECT_DOUBLE_EQ(gpu["memory_total_gb"].get<double>(), 39.38);  // 40320 MiB.
  }

  const json job_request = {{"gpu_count", 1},
                            {"gpu_type", "nvidia.com/mig-3g.40gb"},
                            {"job",
                             {{"name", "small"},
                              {"image", "registry.example/train:1"},
                              {"command", {"python", "train.py"}}}}};
  Result<cli::HttpResponse> submitted = replica.Client().Post("/api/v1/gpu/jobs", job_request);
  ASSERT_TRUE(submitted.ok());
  ASSERT_EQ(submitted->status, 201) << submitted->body;
  Result<json> job = server.client().Get("/apis/batch/v1/namespaces/gpurm/jobs/small");
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  const json& pod = (*job)["spec"]["template"]["spec"];
  const json& container = pod["containers"][0];
  EXPECT_EQ(container["resources"]["limits"]["nvidia.com/mig-3g.40gb"], "1");
  EXPECT_FALSE(container["resources"]["limits"].contains("nvidia.com/gpu"));
  bool tolerates_gpu_taint = false;
  for (const json& toleration : pod["tolerations"]) {
    tolerates_gpu_taint |= toleration["key"] == "nvidia.com/gpu";
  }
  EXPECT_TRUE(tolerates_gpu_taint);
  const json env = EnvOf(container);
  EXPECT_FALSE(env.contains("CUDA_VISIBLE_DEVICES")) << "the device plugin picks the device";
  EXPECT_EQ(env["GPURM_CUDA_MEMORY_LIMITS_MB"], "40320");
}

}  // namespace
}  // namespace gpurm
