// The one JSON form of a GpuRequest, used by the REST API, the SQLite ledger
// and the Kubernetes ledger, so that what a client sent is what is stored and
// what every reader gets back. Each GpuRequest field is listed once (in
// request_codec.cc), with its name and bounds; adding a field to GpuRequest
// without listing it there fails to compile.
//
// Thread-safety: every function is safe to call concurrently.
#ifndef GPURM_CODEC_REQUEST_CODEC_H_
#define GPURM_CODEC_REQUEST_CODEC_H_

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "core/types.h"

namespace gpurm {

// How field names are spelled: kSnake as the REST API and the SQLite ledger
// write them ("lease_ttl_seconds"), kCamel as Kubernetes objects do
// ("leaseTtlSeconds").
enum class FieldCase { kSnake, kCamel };

// The request's field names in `names` spelling, in declaration order.
const std::vector<std::string>& GpuRequestFieldNames(FieldCase names = FieldCase::kSnake);

// Every field of `request`, defaults included.
nlohmann::json EncodeGpuRequest(const GpuRequest& request, FieldCase names = FieldCase::kSnake);

// Decodes one field into *request. kNotFound when `key` is no request field
// (callers with fields of their own decide what that means); kInvalidArgument
// naming `field_prefix + key` on a wrong type, a number out of the field's
// bounds or a string longer than 256 characters. A null value leaves the
// field as it is.
Status DecodeGpuRequestField(std::string_view key, const nlohmann::json& value, GpuRequest* request,
                             FieldCase names = FieldCase::kSnake,
                             const std::string& field_prefix = "");

// Decodes a whole object: missing fields keep GpuRequest's defaults, unknown
// fields and bad values are kInvalidArgument naming the field (with
// `field_prefix`, e.g. "request.").
Result<GpuRequest> DecodeGpuRequest(const nlohmann::json& object,
                                    FieldCase names = FieldCase::kSnake,
                                    const std::string& field_prefix = "");

}  // namespace gpurm

#endif  // GPURM_CODEC_REQUEST_CODEC_H_
