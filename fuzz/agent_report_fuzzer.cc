// An agent's answer as a controller reads it (codec/node_codec.h): bytes from
// the network, from a server that may be broken or hostile. Nothing may
// crash or throw; an answer that decodes must encode, and what it encodes
// must decode back to the same report.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string_view>

#include "codec/node_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const nlohmann::json document = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (document.is_discarded()) return 0;
  gpurm::Result<gpurm::AgentReport> report = gpurm::DecodeAgentReport(document, {});
  if (!report.ok()) return 0;
  const nlohmann::json encoded = gpurm::EncodeAgentReport(*report);
  gpurm::Result<gpurm::AgentReport> again =
      gpurm::DecodeAgentReport(nlohmann::json::parse(encoded.dump()), {});
  if (!again.ok() || !(again->node == report->node) ||
      gpurm::EncodeAgentReport(*again) != encoded) {
    std::abort();
  }
  return 0;
}
