// Query parameters of the API's GET endpoints, parsed alike by every
// handler: a malformed value is a 400 naming the parameter.
#ifndef GPURM_API_QUERY_PARAMS_H_
#define GPURM_API_QUERY_PARAMS_H_

#include <optional>
#include <string>

#include "api/http_types.h"
#include "core/status.h"

namespace gpurm {

// Lists are answered in pages of at most kMaxPageSize entries (the default
// size too), each with a `next` link while more follow: a client that reads
// slowly then holds one page, never a whole history, in the daemon.
inline constexpr int kMaxPageSize = 1000;

// An optional non-negative number parameter; nullopt when absent.
Result<std::optional<double>> QueryNumber(const HttpRequest& request, const std::string& name);

// The parameter `limit`: 1..kMaxPageSize, kMaxPageSize when absent.
Result<int> QueryLimit(const HttpRequest& request);

// The link to the next page: this request's path and other parameters with
// after=`cursor`.
std::string NextLink(const HttpRequest& request, const std::string& cursor);

// An optional boolean parameter ("true"/"1", "false"/"0"); false when absent.
Result<bool> QueryBool(const HttpRequest& request, const std::string& name);

}  // namespace gpurm

#endif  // GPURM_API_QUERY_PARAMS_H_
