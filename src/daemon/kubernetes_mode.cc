#include "daemon/kubernetes_mode.h"

#include <unistd.h>

#include <cstdlib>

#include "core/clock.h"
#include "daemon/agent_pull_options.h"
#include "inventory/providers/kubernetes/kubernetes_provider.h"

namespace gpurm {
namespace {

// The replica's name in the Lease: the pod's name (downward API env
// POD_NAME, as deploy/kubernetes/deployment.yaml sets it), else host:pid.
std::string Identity() {
  if (const char* pod = std::getenv("POD_NAME"); pod != nullptr && *pod != '\0') return pod;
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return std::string(host[0] != '\0' ? host : "gpurm") + "-" + std::to_string(getpid());
}

}  // namespace

Result<std::unique_ptr<KubernetesMode>> KubernetesMode::Open(const Config& config,
                                                             spdlog::logger* log) {
  const KubernetesConfig& settings = config.kubernetes;
  Result<kube::Connection> connection =
      settings.kubeconfig.empty() ? kube::InClusterConnection()
                                  : kube::LoadKubeconfig(settings.kubeconfig, settings.context);
  if (!connection.ok()) return connection.status();
  std::unique_ptr<KubernetesMode> mode(new KubernetesMode());
  mode->config_ = &config;
  mode->log_ = log;
  mode->namespace_name_ =
      settings.namespace_name.empty() ? connection->default_namespace : settings.namespace_name;
  mode->client_ = std::make_unique<kube::KubeClient>(*connection);
  if (!settings.node_agent_selector.empty()) {
    Result<AgentPullOptions> pull = AgentPullOptionsFrom(config);
    if (!pull.ok()) return pull.status();
    mode->node_agent_pull_ = std::move(pull).value();
    // Reached at their pod IPs, which the certificate the chart gives every
    // pod does not name; its signature by controller.ca_file still counts.
    mode->node_agent_pull_.verify_host = false;
  }

  KubernetesLedgerOptions ledger_options;
  ledger_options.namespace_name = mode->namespace_name_;
  KubernetesMode* self = mode.get();
  ledger_options.may_place = [self]() -> std::string {
    if (self->elector_ == nullptr) return "the leader election has not started";
    if (self->elector_->IsLeader()) return "";
    const std::string holder = self->elector_->leader();
    return holder.empty() ? "no replica holds the lease yet"
                          : "replica \"" + holder + "\" holds the lease; send requests to it";
  };
  Result<std::unique_ptr<KubernetesLedger>> ledger =
      OpenKubernetesLedger(mode->client_.get(), ledger_options);
  if (!ledger.ok()) return ledger.status();
  mode->ledger_ = std::move(ledger).value();

  kube::LeaderElectionOptions election;
  election.lease_namespace = mode->namespace_name_;
  election.lease_name = settings.lease_name;
  election.identity = Identity();
  election.lease_duration_s = settings.lease_duration_s;
  election.renew_deadline_s = settings.renew_deadline_s;
  election.retry_period_s = settings.retry_period_s;
  mode->elector_ =
      std::make_unique<kube::LeaderElector>(mode->client_.get(), election, [self]() -> Status {
        // A new leader reads the cluster's allocations afresh before placing.
        Status synced = self->ledger_->Resync();
        if (synced.ok()) {
          self->log_->info("kubernetes: {} leads (lease {}/{})", self->elector_->identity(),
                           self->namespace_name_, self->config_->kubernetes.lease_name);
        }
        return synced;
      });
  log->info("kubernetes: API server {}, namespace {}, replica {}", connection->server,
            mode->namespace_name_, election.identity);
  return mode;
}

KubernetesMode::~KubernetesMode() { Stop(); }

std::unique_ptr<InventoryProvider> KubernetesMode::TakeProvider() {
  KubernetesProviderOptions options;
  options.gpu_resource = config_->gpu_resource;
  options.memory_specs = config_->gpu_memory_specs;
  options.node_agent_selector = config_->kubernetes.node_agent_selector;
  options.node_agent_namespace = namespace_name_;
  options.node_agent_scheme = config_->kubernetes.node_agent_scheme;
  options.node_agent_pull = node_agent_pull_;
  auto provider = std::make_unique<KubernetesProvider>(client_.get(), std::move(options));
  provider_ = provider.get();
  return provider;
}

PodAllocationLookup KubernetesMode::PodAllocations() const {
  const KubernetesProvider* provider = provider_;
  return [provider](const std::string& pod_uid) -> std::optional<std::string> {
    return provider != nullptr ? provider->AllocationOfPod(pod_uid) : std::nullopt;
  };
}

void KubernetesMode::Serve(GpuManager* manager, Router& router) {
  elector_->Start();
  kube::JobTrackerOptions tracking;
  tracking.namespace_name = namespace_name_;
  tracker_ = std::make_unique<kube::JobTracker>(
      client_.get(), tracking,
      [manager] {
        std::vector<kube::JobTracker::ActiveAllocation> active;
        AllocationFilter filter;
        filter.limit = INT32_MAX;
        for (const Allocation& a : manager->ledger().List(filter)) {
          active.push_back({a.id, a.idempotency_key, a.created_unix_ms});
        }
        return active;
      },
      [this, manager](const std::string& id, const std::string& why) {
        Result<Allocation> ended = manager->Release(id);
        if (ended.ok()) {
          log_->info("allocation {} released: {}", id, why);
        } else {
          log_->warn("cannot release allocation {} ({}): {}", id, why, ended.status().message());
        }
      },
      [this] { return elector_->IsLeader(); }, [manager] { return manager->clock().NowUnixMs(); });
  tracker_->Start();
  jobs_.manager = manager;
  jobs_.client = client_.get();
  jobs_.namespace_name = namespace_name_;
  jobs_.gpu_resource = config_->gpu_resource;
  jobs_.default_gpu_resource = config_->default_gpu_resource_name;
  jobs_.tracker = tracker_.get();
  jobs_.elector = elector_.get();
  RegisterJobRoutes(jobs_, router);
}

void KubernetesMode::Stop() {
  tracker_.reset();
  elector_.reset();  // Releases the Lease: another replica leads at once.
}

}  // namespace gpurm
