// Strict reading of single JSON values, shared by every codec that turns
// client- or disk-supplied JSON into domain values. Each failure is a
// kInvalidArgument Status naming the field and saying what was expected and
// what was found. Nothing here throws.
#ifndef GPURM_CODEC_JSON_FIELDS_H_
#define GPURM_CODEC_JSON_FIELDS_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "core/status.h"

namespace gpurm {

// "an integer", "a string", ... for messages ("expected X, got Y").
const char* JsonTypeName(const nlohmann::json& value);

// kInvalidArgument "expected <expected>, got <type of value>" for `field`.
Status WrongType(const std::string& field, const char* expected, const nlohmann::json& value);

// Reads a whole number, whether JSON wrote it as 2 or 2.0, into [min, max].
// Out of range is "must be between min and max, got N" (also for numbers
// beyond int64, which JSON allows); a fraction or a non-number is WrongType.
Result<int64_t> ReadInteger(const std::string& field, const nlohmann::json& value, int64_t min,
                            int64_t max);

}  // namespace gpurm

#endif  // GPURM_CODEC_JSON_FIELDS_H_
