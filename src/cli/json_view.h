// Reading the daemon's JSON in the CLI without throwing: one set of
// accessors for every command. A missing member, or one of another type than
// asked, reads as null / empty / the fallback, so a newer or older daemon's
// answer never crashes a command; what the daemon guarantees is checked by
// its own tests, not here.
#ifndef GPURM_CLI_JSON_VIEW_H_
#define GPURM_CLI_JSON_VIEW_H_

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace gpurm::cli {

// The member `key` of `object`; null when `object` is not an object or has
// no such member.
const nlohmann::json& Member(const nlohmann::json& object, std::string_view key);

// The array member `key` to iterate over; empty when missing or not an array.
const nlohmann::json& Array(const nlohmann::json& object, std::string_view key);

// A scalar as text: strings verbatim, numbers as JSON writes them, booleans
// as yes/no; `fallback` for null (missing) and the empty string.
std::string Text(const nlohmann::json& value, const std::string& fallback = "-");

// Text(Member(object, key), fallback).
std::string String(const nlohmann::json& object, std::string_view key,
                   const std::string& fallback = "-");

// A number member; nullopt when missing or not a number.
std::optional<double> Number(const nlohmann::json& object, std::string_view key);

// `value` when it is a number, else `fallback`.
double NumberOr(const nlohmann::json& value, double fallback = 0.0);

}  // namespace gpurm::cli

#endif  // GPURM_CLI_JSON_VIEW_H_
