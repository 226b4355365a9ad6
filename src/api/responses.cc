#include "api/responses.h"

#include <utility>

#include "api/json_codec.h"

namespace gpurm {

HttpResponse JsonResponse(int status, const nlohmann::json& body) {
  HttpResponse response;
  response.status = status;
  response.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return response;
}

HttpResponse ErrorResponse(const Status& status) {
  return JsonResponse(HttpStatusFor(status.code()), ErrorJson(status));
}

}  // namespace gpurm
