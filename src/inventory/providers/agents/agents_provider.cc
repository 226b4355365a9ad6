#include "inventory/providers/agents/agents_provider.h"

#include <curl/curl.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "codec/node_codec.h"

namespace gpurm {
namespace {

using nlohmann::json;

// One agent as the provider knows it between passes.
struct AgentState {
  AgentsProviderOptions::Agent config;
  CURL* easy = nullptr;  // Kept across passes: its connection stays open.
  // This pass's answer.
  std::string answer;
  bool answer_too_big = false;
  size_t max_answer_bytes = 0;
  CURLcode transfer = CURLE_OK;
  long http_status = 0;  // NOLINT(google-runtime-int): libcurl's type.
  // Across passes.
  std::optional<Node> last_known;  // Its node as it last answered validly.
  int64_t lost_since_unix_ms = 0;  // 0 while it answers.
};

size_t CollectAnswer(char* data, size_t size, size_t count, void* user) {
  auto* agent = static_cast<AgentState*>(user);
  const size_t bytes = size * count;
  if (agent->answer.size() + bytes > agent->max_answer_bytes) {
    agent->answer_too_big = true;
    return 0;  // Aborts the transfer (CURLE_WRITE_ERROR).
  }
  agent->answer.append(data, bytes);
  return bytes;
}

// The host of "http(s)://host:port/...", for nodes whose agent names no address.
std::string HostOf(const std::string& url) {
  size_t start = url.find("://");
  start = start == std::string::npos ? 0 : start + 3;
  size_t end = url.find_first_of("/", start);
  std::string authority = url.substr(start, end == std::string::npos ? end : end - start);
  if (!authority.empty() && authority.front() == '[') {  // [IPv6]:port
    const size_t close = authority.find(']');
    return close == std::string::npos ? authority : authority.substr(1, close - 1);
  }
  return authority.substr(0, authority.rfind(':'));
}

// Why an answer was not a snapshot, in words; empty when it was one
// (then *report holds it). The one place transfer and HTTP failures are
// turned into reasons.
std::string ReadAnswer(const AgentState& agent, const GpuMemorySpecs& specs, AgentReport* report) {
  if (agent.answer_too_big) {
    return "answered more than " + std::to_string(agent.max_answer_bytes) + " bytes";
  }
  if (agent.transfer != CURLE_OK) {
    return std::string("not answering: ") + curl_easy_strerror(agent.transfer);
  }
  const json document = json::parse(agent.answer, nullptr, /*allow_exceptions=*/false);
  if (agent.http_status != 200) {
    std::string reason = "answered HTTP " + std::to_string(agent.http_status);
    if (document.is_object() && document.contains("error") && document["error"].is_object() &&
        document["error"].value("message", json()).is_string()) {
      reason += ": " + document["error"]["message"].get<std::string>();
    }
    if (agent.http_status == 401 || agent.http_status == 403) {
      reason += " (controller.token_file must hold a token of role agent or above there)";
    }
    return reason;
  }
  if (document.is_discarded()) return "answered something that is not JSON";
  Result<AgentReport> decoded = DecodeAgentReport(document, specs);
  if (!decoded.ok()) {
    return "answered an invalid snapshot: " + decoded.status().field() + ": " +
           decoded.status().message();
  }
  if (decoded->node.name != agent.config.name) {
    return "reports node '" + decoded->node.name + "', but is configured as '" + agent.config.name +
           "' (controller.agents)";
  }
  *report = std::move(decoded).value();
  return "";
}

}  // namespace

struct AgentsProvider::Impl {
  AgentsProviderOptions options;
  CURLM* multi = nullptr;
  curl_slist* headers = nullptr;
  std::vector<AgentState> agents;

  void Prepare(AgentState& agent) {
    agent.answer.clear();
    agent.answer_too_big = false;
    // Until its transfer reports done: a transfer the multi handle gave up
    // on did not answer.
    agent.transfer = CURLE_OPERATION_TIMEDOUT;
    agent.http_status = 0;
    if (agent.easy == nullptr) {
      agent.easy = curl_easy_init();
      const std::string url = agent.config.url + kAgentSnapshotPath;
      curl_easy_setopt(agent.easy, CURLOPT_URL, url.c_str());  // libcurl copies strings.
      curl_easy_setopt(agent.easy, CURLOPT_HTTPHEADER, headers);
      curl_easy_setopt(agent.easy, CURLOPT_WRITEFUNCTION, &CollectAnswer);
      curl_easy_setopt(agent.easy, CURLOPT_WRITEDATA, &agent);
      curl_easy_setopt(agent.easy, CURLOPT_NOSIGNAL, 1L);
      curl_easy_setopt(agent.easy, CURLOPT_PROTOCOLS_STR, "http,https");
      curl_easy_setopt(agent.easy, CURLOPT_FOLLOWLOCATION, 0L);
      curl_easy_setopt(agent.easy, CURLOPT_TIMEOUT_MS,
                       static_cast<long>(options.request_timeout.count()));  // NOLINT
      curl_easy_setopt(agent.easy, CURLOPT_CONNECTTIMEOUT_MS,
                       static_cast<long>(options.request_timeout.count()));  // NOLINT
      curl_easy_setopt(agent.easy, CURLOPT_USERAGENT, "gpurm-controller");
      if (!options.ca_file.empty()) {
        curl_easy_setopt(agent.easy, CURLOPT_CAINFO, options.ca_file.c_str());
      }
    }
  }

  // Every agent's transfer at once; returns when all ended (each is bounded
  // by the request timeout).
  void PullAll() {
    for (AgentState& agent : agents) {
      Prepare(agent);
      curl_multi_add_handle(multi, agent.easy);
    }
    int running = 0;
    do {
      if (curl_multi_perform(multi, &running) != CURLM_OK) break;
      if (running > 0) curl_multi_poll(multi, nullptr, 0, 100, nullptr);
    } while (running > 0);
    int queued = 0;
    while (CURLMsg* message = curl_multi_info_read(multi, &queued)) {
      if (message->msg != CURLMSG_DONE) continue;
      for (AgentState& agent : agents) {
        if (agent.easy != message->easy_handle) continue;
        agent.transfer = message->data.result;
        curl_easy_getinfo(agent.easy, CURLINFO_RESPONSE_CODE, &agent.http_status);
      }
    }
    for (AgentState& agent : agents) curl_multi_remove_handle(multi, agent.easy);
  }
};

AgentsProvider::AgentsProvider(AgentsProviderOptions options) : impl_(std::make_unique<Impl>()) {
  // Thread-safe since libcurl 7.84; a no-op after the first call.
  curl_global_init(CURL_GLOBAL_DEFAULT);
  impl_->options = std::move(options);
  impl_->multi = curl_multi_init();
  impl_->headers = curl_slist_append(impl_->headers, "Accept: application/json");
  if (!impl_->options.bearer_token.empty()) {
    impl_->headers = curl_slist_append(
        impl_->headers, ("Authorization: Bearer " + impl_->options.bearer_token).c_str());
  }
  // Its own address never moves, so the write callback's pointer stays valid.
  impl_->agents.reserve(impl_->options.agents.size());
  for (const AgentsProviderOptions::Agent& agent : impl_->options.agents) {
    AgentState& state = impl_->agents.emplace_back();
    state.config = agent;
    state.max_answer_bytes = impl_->options.max_answer_bytes;
  }
}

AgentsProvider::~AgentsProvider() {
  for (AgentState& agent : impl_->agents) {
    if (agent.easy != nullptr) curl_easy_cleanup(agent.easy);
  }
  curl_multi_cleanup(impl_->multi);
  curl_slist_free_all(impl_->headers);
}

Result<DiscoveryReport> AgentsProvider::Discover() {
  impl_->PullAll();
  const int64_t now = impl_->options.clock->NowUnixMs();
  DiscoveryReport report;
  // GPU uuid -> the agent that reported it first this pass (config order).
  std::map<std::string, std::string> uuid_owners;
  int answering = 0;
  for (AgentState& agent : impl_->agents) {
    AgentReport answer;
    std::string problem = ReadAnswer(agent, impl_->options.memory_specs, &answer);
    if (problem.empty()) {
      for (const Gpu& gpu : answer.node.gpus) {
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
      Node node = std::move(answer.node);
      if (node.address.empty()) node.address = HostOf(agent.config.url);
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
      node.address = HostOf(agent.config.url);
    }
    node.schedulable = false;
    node.lost_reason =
        "lost since " + FormatIso8601(agent.lost_since_unix_ms) + ": " + who + " " + problem;
    report.notes.push_back(node.lost_reason);  // It names the agent.
    report.nodes.push_back(std::move(node));
  }
  report.notes.insert(report.notes.begin(), std::to_string(answering) + " of " +
                                                std::to_string(impl_->agents.size()) +
                                                " agents answering");
  return report;
}

}  // namespace gpurm
