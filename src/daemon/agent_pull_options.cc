#include "daemon/agent_pull_options.h"

#include <cctype>
#include <cmath>
#include <fstream>
#include <string>

namespace gpurm {

Result<AgentPullOptions> AgentPullOptionsFrom(const Config& config) {
  AgentPullOptions options;
  if (!config.controller.token_file.empty()) {
    std::ifstream in(config.controller.token_file);
    std::string token;
    if (!in || !std::getline(in, token)) {
      return InvalidArgument("cannot read a token from " + config.controller.token_file,
                             "controller.token_file");
    }
    while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) {
      token.pop_back();
    }
    if (token.empty()) {
      return InvalidArgument(config.controller.token_file + " holds no token on its first line",
                             "controller.token_file");
    }
    options.bearer_token = std::move(token);
  }
  options.ca_file = config.controller.ca_file;
  options.request_timeout =
      std::chrono::milliseconds(std::llround(config.controller.request_timeout_s * 1000.0));
  options.memory_specs = config.gpu_memory_specs;
  return options;
}

}  // namespace gpurm
