// agents_bench: what a controller's pull of its agents costs.
//
//   build/bench/agents_bench
//
// controller_pull/A/G  One AgentsProvider::Discover over A agents of G GPUs
//                      each (every GPU running 4 processes): every agent's
//                      GET /api/v1/gpu/agent/snapshot at once, then decoding
//                      and checking each answer. The agents are real gpurm
//                      HTTP servers (api/http_server, one I/O and one worker
//                      thread each) in this process, answering from the agent
//                      snapshot codec, so the wall time includes their
//                      serialising. Reported: wall time per pass (real time,
//                      p50 over the repetitions: Google Benchmark's median),
//                      the controller thread's own CPU per pass
//                      (controller_cpu_ms) and the answer bytes per pass. The
//                      budget a pass must stay within is the agents' request
//                      timeout (controller.request_timeout_s, 2 s by default),
//                      itself far below monitor_update_interval (30 s).
#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <vector>

#include "api/http_server.h"
#include "api/responses.h"
#include "api/router.h"
#include "codec/node_codec.h"
#include "core/clock.h"
#include "inventory/providers/agents/agent_puller.h"
#include "inventory/providers/agents/agents_provider.h"
#include "inventory/testing/scripted_provider.h"

namespace gpurm {
namespace {

// An H100 server of `gpus` GPUs, each with four processes an agent identified.
AgentReport ServerReport(const std::string& name, int gpus) {
  AgentReport report;
  report.node = testing::H100Node(name, gpus);
  report.taken_unix_ms = 1'765'000'000'000;
  report.notes = {"nvidia: NVML 12.550.54.15, driver 550.54.15, 8 GPU(s)"};
  for (Gpu& gpu : report.node.gpus) {
    const int i = gpu.index;
    gpu.memory_used_mib = 4096;
    gpu.utilization = 0.5;
    for (int p = 0; p < 4; ++p) {
      GpuProcess& process = gpu.processes.emplace_back(10'000 + i * 10 + p, 1024);
      process.identity.emplace();
      process.identity->command = "python";
      process.identity->uid = 1000;
      process.identity->allocation_id = "alloc-" + std::to_string(i);
    }
  }
  return report;
}

// One agent: a gpurm HTTP server answering its snapshot.
class InProcessAgent {
 public:
  InProcessAgent(const std::string& name, int gpus) : report_(ServerReport(name, gpus)) {
    router_.Add("GET", kAgentSnapshotPath, Access::kAgent, [this](const HttpRequest&) {
      return JsonResponse(200, EncodeAgentReport(report_));
    });
    HttpServerOptions options;
    options.host = "127.0.0.1";
    options.port = 0;
    options.io_threads = 1;
    options.worker_threads = 1;
    server_ = std::make_unique<HttpServer>(options, &router_);
    started_ = server_->Start();
  }
  ~InProcessAgent() { server_->Stop(); }
  bool ok() const { return started_.ok(); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }

 private:
  AgentReport report_;
  Router router_;
  std::unique_ptr<HttpServer> server_;
  Status started_;
};

void BM_ControllerPull(benchmark::State& state) {
  const int agent_count = static_cast<int>(state.range(0));
  const int gpus = static_cast<int>(state.range(1));
  std::vector<std::unique_ptr<InProcessAgent>> agents;
  SystemClock clock;
  AgentsProviderOptions options;
  options.clock = &clock;
  for (int a = 0; a < agent_count; ++a) {
    const std::string name = "gpu-node-" + std::to_string(a);
    agents.push_back(std::make_unique<InProcessAgent>(name, gpus));
    if (!agents.back()->ok()) {
      state.SkipWithError("an agent's server did not start");
      return;
    }
    options.agents.push_back({name, agents.back()->url()});
  }
  AgentsProvider provider(std::move(options));
  // The first pass opens the connections; steady state reuses them.
  if (Result<DiscoveryReport> first = provider.Discover();
      !first.ok() || first->nodes.size() != static_cast<size_t>(agent_count)) {
    state.SkipWithError("the first pull failed");
    return;
  }
  double cpu = 0;
  size_t lost = 0;
  for (auto _ : state) {
    const double before = ThreadCpuSeconds();
    Result<DiscoveryReport> report = provider.Discover();
    cpu += ThreadCpuSeconds() - before;
    for (const Node& node : report->nodes) lost += node.lost() ? 1 : 0;
    benchmark::DoNotOptimize(report);
  }
  const double passes = static_cast<double>(state.iterations());
  state.counters["controller_cpu_ms"] = cpu / passes * 1000.0;
  state.counters["lost_nodes"] = static_cast<double>(lost) / passes;
  state.counters["answer_KiB"] =
      static_cast<double>(EncodeAgentReport(ServerReport("gpu-node-0", gpus)).dump().size()) *
      agent_count / 1024.0;
}
BENCHMARK(BM_ControllerPull)
    ->Args({8, 8})
    ->Args({64, 8})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Repetitions(5)
    ->ReportAggregatesOnly(true);

}  // namespace
}  // namespace gpurm

BENCHMARK_MAIN();
