#include "inventory/providers/agents/agents_provider.h"

#include <map>
#include <optional>
#include <utility>

namespace gpurm {
namespace {

// One agent across passes.
struct AgentState {
  AgentsProviderOptions::Agent config;
  std::optional<Node> last_known;  // Its node as it last answered validly.
  int64_t lost_since_unix_ms = 0;  // 0 while it answers.
};

}  // namespace

struct AgentsProvider::Impl {
  explicit Impl(AgentsProviderOptions options)
      : clock(options.clock), puller(std::move(options.pull)) {
    for (const AgentsProviderOptions::Agent& agent : options.agents) {
      agents.push_back({agent, std::nullopt, 0});
      urls.push_back(agent.url);
    }
  }

  const Clock* clock;
  AgentPuller puller;
  std::vector<AgentState> agents;
  std::vector<std::string> urls;  // Of `agents`, in their order.
};

AgentsProvider::AgentsProvider(AgentsProviderOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

AgentsProvider::~AgentsProvider() = default;

Result<DiscoveryReport> AgentsProvider::Discover() {
  std::vector<AgentPull> pulls = impl_->puller.Pull(impl_->urls);
  const int64_t now = impl_->clock->NowUnixMs();
  DiscoveryReport report;
  // GPU uuid -> the agent that reported it first this pass (config order).
  std::map<std::string, std::string> uuid_owners;
  int answering = 0;
  for (size_t i = 0; i < impl_->agents.size(); ++i) {
    AgentState& agent = impl_->agents[i];
    AgentPull& pull = pulls[i];
    std::string problem = std::move(pull.problem);
    if (problem.empty() && pull.report.node.name != agent.config.name) {
      problem = "reports node '" + pull.report.node.name + "', but is configured as '" +
                agent.config.name + "' (controller.agents)";
    }
    if (problem.empty()) {
      for (const Gpu& gpu : pull.report.node.gpus) {
        auto [owner, inserted] = uuid_owners.emplace(gpu.uuid, agent.config.name);
        if (!inserted) {
          problem =
              "reports GPU " + gpu.uuid + ", which agent '" + owner->second + "' reported first";
          break;
        }
      }
    }
    const std::string who = "agent " + agent.config.name + " (" + agent.config.url + ")";
    if (problem.empty()) {
      ++answering;
      if (agent.lost_since_unix_ms != 0) {
        report.notes.push_back(who + ": answering again");
        agent.lost_since_unix_ms = 0;
      }
      AgentReport& answer = pull.report;
      Node node = std::move(answer.node);
      if (node.address.empty()) node.address = HostOfUrl(agent.config.url);
      report.stale_gpus.insert(report.stale_gpus.end(), answer.stale_gpus.begin(),
                               answer.stale_gpus.end());
      for (const std::string& note : answer.notes) {
        report.notes.push_back(agent.config.name + ": " + note);
      }
      agent.last_known = node;
      report.nodes.push_back(std::move(node));
      continue;
    }
    if (agent.lost_since_unix_ms == 0) agent.lost_since_unix_ms = now;
    Node node;
    if (agent.last_known) {
      node = *agent.last_known;
      // Processes it last reported may be gone: nothing is claimed of them.
      for (Gpu& gpu : node.gpus) {
        gpu.processes.clear();
        report.stale_gpus.push_back(gpu.uuid);
      }
    } else {
      node.name = agent.config.name;
      node.address = HostOfUrl(agent.config.url);
    }
    node.schedulable = false;
    node.lost_reason = "lost since " + FormatIso8601(agent.lost_since_unix_ms);
    node.lost_reason.append(": ").append(who).append(" ").append(problem);
    report.notes.push_back(node.lost_reason);  // It names the agent.
    report.nodes.push_back(std::move(node));
  }
  report.notes.insert(report.notes.begin(), std::to_string(answering) + " of " +
                                                std::to_string(impl_->agents.size()) +
                                                " agents answering");
  return report;
}

}  // namespace gpurm
