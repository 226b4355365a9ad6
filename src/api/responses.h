// JSON answers of the handlers: one way to write a body and one way to
// answer an error, for every endpoint.
#ifndef GPURM_API_RESPONSES_H_
#define GPURM_API_RESPONSES_H_

#include <nlohmann/json.hpp>

#include "api/http_types.h"
#include "core/status.h"

namespace gpurm {

// `body` as the answer with `status`. Bytes that are not UTF-8 (from a path,
// a header, a query) are rendered as U+FFFD rather than failing the answer
// with a 500.
HttpResponse JsonResponse(int status, const nlohmann::json& body);

// A non-OK `status` as {"error": {"code", "message", "field"}} with the HTTP
// status its code maps to (HttpStatusFor).
HttpResponse ErrorResponse(const Status& status);

}  // namespace gpurm

#endif  // GPURM_API_RESPONSES_H_
