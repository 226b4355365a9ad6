#include "daemon/serve.h"

#include <malloc.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <thread>

#include "api/browser_guard.h"
#include "api/handlers.h"
#include "api/http_server.h"
#include "api/router.h"
#include "api/static_assets.h"
#include "config/config.h"
#include "core/clock.h"
#include "daemon/access_control.h"
#include "daemon/agent_pull_options.h"
#include "daemon/kubernetes_mode.h"
#include "daemon/logging.h"
#include "daemon/openapi_document.h"
#include "daemon/web_assets.h"
#include "integrations/launchers/local_node.h"
#include "inventory/inventory.h"
#include "inventory/providers/agents/agents_provider.h"
#include "inventory/providers/local/local_provider.h"
#include "inventory/providers/static/static_provider.h"
#include "ledger/sqlite_ledger.h"
#include "manager/manager.h"
#include "monitor/enforcer.h"
#include "monitor/event_hub.h"
#include "monitor/http_metrics.h"
#include "monitor/process_accounting.h"
#include "monitor/sampler.h"

namespace gpurm {
namespace {

constexpr char kDefaultConfigPath[] = "gpu_config.yaml";

Result<Config> LoadEffectiveConfig(const ServeOptions& options) {
  std::string path = options.config_path;
  if (path.empty() && std::filesystem::exists(kDefaultConfigPath)) path = kDefaultConfigPath;
  Result<Config> config = path.empty() ? Result<Config>(Config{}) : LoadConfigFile(path);
  if (!config.ok()) return config;
  if (!options.inventory_path.empty()) config->server.inventory = options.inventory_path;
  if (!options.listen.empty()) config->server.listen = options.listen;
  if (!options.data_dir.empty()) config->server.data_dir = options.data_dir;
  if (!options.log_dir.empty()) config->server.log_dir = options.log_dir;
  return config;
}

Result<std::pair<std::string, uint16_t>> SplitListen(const std::string& listen) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == listen.size()) {
    return InvalidArgument("expected HOST:PORT, got \"" + listen + "\"", "server.listen");
  }
  std::string host = listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  char* end = nullptr;
  const long port = std::strtol(listen.c_str() + colon + 1, &end, 10);
  if (*end != '\0' || port < 0 || port > 65535) {
    return InvalidArgument("port must be 0..65535 in \"" + listen + "\"", "server.listen");
  }
  return std::make_pair(host, static_cast<uint16_t>(port));
}

// The agents provider's options from the controller section (an error
// names its key).
Result<AgentsProviderOptions> AgentsOptions(const Config& config, const Clock* clock) {
  Result<AgentPullOptions> pull = AgentPullOptionsFrom(config);
  if (!pull.ok()) return pull.status();
  AgentsProviderOptions options;
  for (const AgentConfig& agent : config.controller.agents) {
    options.agents.push_back({agent.name, agent.url});
  }
  options.pull = std::move(pull).value();
  options.clock = clock;
  return options;
}

// Logs what each sampling pass found worth telling: refresh failures, the
// first inventory, GPUs that change health, appear or disappear.
void LogSample(spdlog::logger& log, const Inventory& inventory, const SampleReport& report) {
  if (!report.status.ok()) {
    log.error("inventory refresh failed ({}): {}", inventory.provider_name(),
              report.status.ToString());
    return;
  }
  if (report.first) {
    log.info("inventory loaded from provider \"{}\": {} node(s), {} GPU(s)",
             inventory.provider_name(), report.nodes, report.gpus);
    for (const std::string& note : inventory.Notes()) log.info("inventory: {}", note);
    if (report.gpus == 0) {
      log.warn(
          "no GPU found on this machine: the API works but has nothing to allocate. For a demo, "
          "start with an example inventory: gpurm serve --inventory examples/cluster-3node.yaml");
    }
  }
  for (const GpuEvent& event : report.notable_events) {
    const std::string gpu =
        fmt::format("GPU {} ({}) on {}", event.gpu_index, event.gpu_uuid, event.node_name);
    switch (event.type) {
      case GpuEventType::kHealth:
        if (event.current.healthy) {
          log.info("{} is healthy again", gpu);
        } else {
          log.warn("{} is unhealthy: {}", gpu, event.current.health_reason);
        }
        break;
      case GpuEventType::kAdded:
        log.info("{} appeared: {}", gpu, event.model);
        break;
      case GpuEventType::kRemoved:
        log.warn("{} disappeared from the inventory", gpu);
        break;
      case GpuEventType::kChange:
      case GpuEventType::kProcess:
      case GpuEventType::kEnforcement:  // Logged where the enforcer acts.
        break;
    }
  }
}

// Reaps expired leases every lease-check interval, until destroyed. (The
// inventory is refreshed by the Sampler.)
class LeaseReaper {
 public:
  LeaseReaper(GpuManager* manager, spdlog::logger* log, double interval_s)
      : manager_(manager),
        log_(log),
        every_(std::chrono::milliseconds(
            std::max<int64_t>(10, static_cast<int64_t>(interval_s * 1000)))),
        thread_([this] { Run(); }) {}

  ~LeaseReaper() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

 private:
  void Run() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!wake_.wait_for(lock, every_, [this] { return stop_; })) {
      lock.unlock();
      for (const Allocation& expired : manager_->ReapExpiredLeases()) {
        log_->info("lease expired: allocation {} of {} released ({} GPU(s) on {})", expired.id,
                   expired.owner, expired.grants.size(), fmt::join(expired.NodeNames(), ","));
      }
      lock.lock();
    }
  }

  GpuManager* manager_;
  spdlog::logger* log_;
  const std::chrono::milliseconds every_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace

int RunServe(const ServeOptions& options) {
  // Block the stop signals in every thread; the main thread waits for them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGHUP);  // Reload (TLS certificate and key), not stop.
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  Result<Config> config = LoadEffectiveConfig(options);
  if (!config.ok()) {
    std::fprintf(stderr, "gpurm: configuration error: %s\n", config.status().message().c_str());
    return 2;
  }
  Result<std::pair<std::string, uint16_t>> listen = SplitListen(config->server.listen);
  if (!listen.ok()) {
    std::fprintf(stderr, "gpurm: configuration error: server.listen: %s\n",
                 listen.status().message().c_str());
    return 2;
  }
  Result<std::shared_ptr<spdlog::logger>> logger =
      MakeDaemonLogger(config->server.log_dir, config->log_level);
  if (!logger.ok()) {
    std::fprintf(stderr, "gpurm: %s\n", logger.status().message().c_str());
    return 2;
  }
  spdlog::logger& log = **logger;
  Result<std::unique_ptr<AccessControl>> access = AccessControl::Open(*config, listen->first, &log);
  if (!access.ok()) {
    log.critical("configuration error: {}", access.status().message());  // Also on stderr.
    return 2;
  }

  // Kubernetes mode: inventory, ledger and placement from the cluster.
  std::unique_ptr<KubernetesMode> kubernetes;
  if (config->kubernetes.enabled) {
    Result<std::unique_ptr<KubernetesMode>> opened = KubernetesMode::Open(*config, &log);
    if (!opened.ok() && !opened.status().field().empty()) {
      log.critical("configuration error: {}: {}", opened.status().field(),
                   opened.status().message());
      return 2;
    }
    if (!opened.ok()) {
      log.critical("kubernetes: {}", opened.status().message());
      return 1;
    }
    kubernetes = std::move(opened).value();
  }
  const std::string ledger_path = config->server.data_dir + "/ledger.db";
  Result<std::unique_ptr<Ledger>> ledger =
      kubernetes ? std::unique_ptr<Ledger>() : OpenSqliteLedger(ledger_path);
  if (!ledger.ok()) {
    log.critical("cannot open the ledger {}: {}", ledger_path, ledger.status().message());
    return 1;
  }

  SystemClock clock;
  std::unique_ptr<InventoryProvider> provider;
  if (kubernetes) {
    provider = kubernetes->TakeProvider();
  } else if (!config->controller.agents.empty()) {
    Result<AgentsProviderOptions> agents = AgentsOptions(*config, &clock);
    if (!agents.ok()) {
      log.critical("configuration error: {}: {}", agents.status().field(),
                   agents.status().message());
      return 2;
    }
    provider = std::make_unique<AgentsProvider>(std::move(agents).value());
  } else if (!config->server.inventory.empty()) {
    provider = std::make_unique<StaticProvider>(config->server.inventory, config->gpu_memory_specs);
  } else {
    LocalProviderOptions local = LocalProviderOptions::FromEnvironment();
    local.sample_timeout =
        std::chrono::milliseconds(std::llround(config->server.monitor_sample_timeout_s * 1000.0));
    local.clock = &clock;
    provider = std::make_unique<LocalProvider>(LocalNodeName(), config->gpu_memory_specs, local);
  }
  const size_t history_capacity = static_cast<size_t>(
      std::max(1.0, std::ceil(config->server.monitor_history_s / config->monitor_update_interval)));
  Inventory inventory(std::move(provider), &clock, history_capacity);
  GpuManager manager(&inventory, kubernetes ? kubernetes->ledger() : ledger->get(), &clock,
                     config->server.policy);
  manager.set_max_allocations_per_owner(static_cast<int>(config->server.max_allocations_per_owner));
  manager.set_lease_limits(config->server.default_lease_ttl_s, config->server.max_lease_ttl_s);
  manager.set_min_slice_mib(config->server.min_slice_mib);
  manager.set_max_queued_per_owner(static_cast<int>(config->server.max_queued_per_owner));
  manager.set_max_queued_gpu_hours_per_owner(config->server.max_queued_gpu_hours_per_owner);
  manager.set_queue_head_hold_ms(std::llround(config->server.queue_head_hold_s * 1000.0));

  // The sampler is the only caller of the provider; its first pass starts
  // now, and /health answers 503 until it has published a snapshot.
  EventHub events;
  // After each pass, on the sampler thread: which allocation each GPU
  // process belongs to (monitor/process_accounting.h).
  const LinuxProcReader proc_reader;
  ProcessAccountant accountant(&proc_reader,
                               kubernetes ? kubernetes->PodAllocations() : PodAllocationLookup());
  KillSignaller kill_signaller;
  Enforcer enforcer(config->server.enforcement, &proc_reader, &kill_signaller, ::getpid());
  AccessControl& audit = **access;
  ProcessAccountBook process_accounts;
  Ledger& accounts_ledger = manager.ledger();
  auto account_processes = [&](const SampleReport& report) {
    if (!report.status.ok()) return;
    const std::shared_ptr<const InventorySnapshot> snapshot = inventory.Snapshot();
    if (!snapshot) return;
    std::vector<GpuAccount> accounts =
        accountant.Account(*snapshot, [&accounts_ledger](const std::string& id) {
          Result<Allocation> allocation = accounts_ledger.Get(id);
          return allocation.ok() ? std::optional(AccountedFrom(*allocation)) : std::nullopt;
        });
    const std::shared_ptr<const ProcessAccountBook::Entry> previous = process_accounts.Latest();
    std::vector<GpuEvent> changes = ProcessEvents(
        previous ? previous->gpus : std::vector<GpuAccount>(), accounts, *snapshot, report.unix_ms);
    inventory.SetManagedUse(ManagedUseByGpu(accounts));
    const std::vector<EnforcementRecord> enforced = enforcer.Apply(accounts, report.unix_ms);
    for (const EnforcementRecord& record : enforced) {
      const std::string line = EnforcementLine(record);
      log.warn("{}", line);
      audit.Audit("event=" + line);
    }
    std::vector<GpuEvent> enforcement_events =
        EnforcementEvents(enforced, *snapshot, report.unix_ms);
    process_accounts.Publish(std::move(accounts), report.unix_ms);
    changes.insert(changes.end(), enforcement_events.begin(), enforcement_events.end());
    if (!changes.empty()) events.Publish(std::move(changes));
  };
  Sampler sampler(
      &inventory, &clock, &events,
      SamplerOptions{config->monitor_update_interval, config->resource_change_threshold},
      [&log, &inventory, &account_processes](const SampleReport& report) {
        account_processes(report);
        LogSample(log, inventory, report);
        // A pass frees what the provider built to discover (a static
        // inventory's parsed YAML: about 60 MiB at 10,000 nodes), and glibc
        // keeps freed heap for reuse: give it back to the system, once per
        // pass (about a millisecond, on the sampler thread).
        malloc_trim(0);
      });
  sampler.Start();
  HttpMetrics http_metrics;

  ApiContext context;
  context.manager = &manager;
  context.monitor_interval_s = config->monitor_update_interval;
  context.openapi_document = OpenApiDocument();
  context.events = &events;
  context.sampler = &sampler;
  context.http_metrics = &http_metrics;
  context.process_accounts = &process_accounts;
  context.max_priority_without_admin = static_cast<int>(config->server.max_priority_without_admin);
  context.dcgm_compatible_metrics = config->server.dcgm_compatible_metrics;
  Router router;
  RegisterApiRoutes(context, router);
  if (kubernetes) kubernetes->Serve(&manager, router);
  RegisterStaticAssets(WebAssets(), router);  // The dashboard at /.
  (*access)->Install(router);
  const BrowserGuard browser_guard(listen->first, config->server.allowed_hosts);
  router.SetRequestGuard([&browser_guard](const HttpRequest& request, bool changes_state) {
    return browser_guard.Check(request, changes_state);
  });

  HttpServerOptions server_options;
  server_options.host = listen->first;
  server_options.port = listen->second;
  server_options.io_threads = config->server.io_threads;
  server_options.worker_threads = config->server.worker_threads;
  server_options.max_body_bytes = static_cast<uint64_t>(config->server.max_body_bytes);
  server_options.timeout_s = config->server.request_timeout_s;
  server_options.max_header_bytes = static_cast<uint32_t>(config->server.max_header_bytes);
  server_options.header_timeout_s = config->server.header_timeout_s;
  server_options.idle_timeout_s = config->server.idle_timeout_s;
  server_options.max_connections = static_cast<int>(config->server.max_connections);
  // Capped by default where other machines can connect: one of them must
  // not take every slot.
  server_options.max_connections_per_client =
      static_cast<int>(config->server.max_connections_per_client.value_or(
          IsLoopbackHost(listen->first) ? 0 : kDefaultConnectionsPerClient));
  server_options.first_request_timeout_s = config->server.first_request_timeout_s;
  server_options.reserved_connections = static_cast<int>(config->server.reserved_connections);
  server_options.max_streams_per_client = static_cast<int>(config->server.max_streams_per_client);
  server_options.stream_send_timeout_s = config->server.stream_send_timeout_s;
  server_options.rate_limit_rps = config->server.rate_limit_rps;
  server_options.rate_limit_burst = config->server.rate_limit_burst;
  server_options.tls = TlsFiles{config->server.tls.cert_file, config->server.tls.key_file,
                                config->server.tls.client_ca_file};
  HttpServer server(
      server_options, &router,
      [&log, &router, &http_metrics](const HttpRequest& request, const HttpResponse& response,
                                     double ms) {
        http_metrics.Observe(request.method, router.RouteOf(request), response.status, ms / 1000);
        // State changes are logged at info (an audit trail); reads at debug.
        const auto level = request.method == "GET" ? spdlog::level::debug : spdlog::level::info;
        if (!log.should_log(level)) return;  // Runs on I/O threads: no needless formatting.
        log.log(level, "{} {} {} {:.2f}ms from {} owner={}", request.method, request.path,
                response.status, ms, request.remote_address, request.Header("x-gpurm-owner"));
      });
  const Status started = server.Start();
  if (!started.ok()) {
    // A TLS file that cannot be loaded is a configuration error: say which
    // key names it (the message names the path and the reason).
    const bool bad_tls_file = started.code() == StatusCode::kInvalidArgument;
    if (bad_tls_file) {
      log.critical("configuration error: server.tls.{}: {}", started.field(), started.message());
    } else {
      log.critical("{}", started.message());
    }
    if (kubernetes) kubernetes->Stop();
    return bad_tls_file ? 2 : 1;
  }
  const bool tls = server_options.tls.enabled();
  log.info("gpurm serving on {}://{}:{}/api/v1/gpu (data dir {}, inventory {}, policy {})",
           tls ? "https" : "http", listen->first, server.port(), config->server.data_dir,
           kubernetes ? std::string("kubernetes")
           : !config->controller.agents.empty()
               ? std::to_string(config->controller.agents.size()) + " agents"
           : config->server.inventory.empty() ? "local discovery"
                                              : config->server.inventory,
           manager.scheduler().default_policy());
  {
    LeaseReaper reaper(&manager, &log, config->server.lease_check_interval_s);
    int signal_number = 0;
    // SIGHUP reloads and goes on waiting; SIGTERM and SIGINT stop.
    while (sigwait(&stop_signals, &signal_number) == 0 && signal_number == SIGHUP) {
      // The token file is also re-read whenever it changes; this forces it.
      (*access)->Reload();
      if (!tls) {
        log.info("received SIGHUP: {} (TLS is off)",
                 (*access)->tokens_required() ? "token file re-read" : "nothing to reload");
        continue;
      }
      const Status reloaded = server.ReloadTls();
      if (reloaded.ok()) {
        log.info(
            "received SIGHUP: TLS certificate and key reloaded from {} and {}; new "
            "connections use them",
            server_options.tls.cert_file, server_options.tls.key_file);
      } else {
        log.error("received SIGHUP: TLS reload failed, still serving the previous certificate: {}",
                  reloaded.message());
      }
    }
    log.info("received {}: draining in-flight requests", strsignal(signal_number));
    // Ends event streams too; then nothing reads the sampler's output.
    server.Stop();
    if (kubernetes) kubernetes->Stop();
  }
  sampler.Stop();
  log.info("gpurm stopped");
  log.flush();
  return 0;
}

}  // namespace gpurm
