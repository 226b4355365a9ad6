// A request body as the API parses it: ParseJsonObject, ParseGpuRequest, the
// scheduler's ValidateRequest, and the request rendered back to JSON (as every
// allocation answer does). None may crash or throw; a request that parses
// must render, and what it renders must parse back to the same request.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "api/json_codec.h"
#include "scheduler/scheduler.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  gpurm::Result<nlohmann::json> object = gpurm::ParseJsonObject(body);
  if (!object.ok()) return 0;
  gpurm::Result<gpurm::ParsedGpuRequest> parsed = gpurm::ParseGpuRequest(*object);
  if (!parsed.ok()) return 0;
  (void)gpurm::ValidateRequest(parsed->request);
  const nlohmann::json rendered = gpurm::RequestToJson(parsed->request);
  const std::string text = rendered.dump();
  gpurm::Result<nlohmann::json> reparsed_object = gpurm::ParseJsonObject(text);
  if (!reparsed_object.ok()) std::abort();
  gpurm::Result<gpurm::ParsedGpuRequest> reparsed = gpurm::ParseGpuRequest(*reparsed_object);
  if (!reparsed.ok() || gpurm::RequestToJson(reparsed->request) != rendered) std::abort();
  return 0;
}
