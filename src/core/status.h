// Status and Result<T>: how every module reports failure. No exception crosses
// a module boundary; functions that can fail return one of these.
#ifndef GPURM_CORE_STATUS_H_
#define GPURM_CORE_STATUS_H_

#include <cassert>
#include <optional>
#include <string>
#include <utility>

namespace gpurm {

enum class StatusCode {
  kOk,
  kInvalidArgument,     // The caller sent something malformed; `field` names it.
  kNotFound,            // The named object does not exist.
  kAlreadyExists,       // A conflicting object exists (e.g. idempotency key reuse).
  kFailedPrecondition,  // The object is in the wrong state for the operation.
  kUnschedulableNow,    // Could fit this cluster, but not with what is free now.
  kUnschedulableNever,  // Can never fit this cluster as it is built.
  kUnavailable,         // The service is not ready (not initialized, storage down).
  kResourceExhausted,   // A limit was hit (quota, disk full, body too large).
  kPermissionDenied,    // Authenticated but not allowed.
  kUnauthenticated,     // No or bad credentials.
  kInternal,            // A bug or an unexpected failure of a dependency.
};

// Returns a stable lower-case name ("invalid_argument", ...) used in JSON errors.
const char* StatusCodeName(StatusCode code);

class Status {
 public:
  Status() = default;  // OK.
  Status(StatusCode code, std::string message, std::string field = "")
      : code_(code), message_(std::move(message)), field_(std::move(field)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // The request field, config key or parameter the error is about; may be empty.
  const std::string& field() const { return field_; }

  // "invalid_argument: gpu_count: must be >= 1".
  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  std::string field_;
};

inline Status InvalidArgument(std::string message, std::string field = "") {
  return {StatusCode::kInvalidArgument, std::move(message), std::move(field)};
}
inline Status NotFound(std::string message) { return {StatusCode::kNotFound, std::move(message)}; }
inline Status Unavailable(std::string message) {
  return {StatusCode::kUnavailable, std::move(message)};
}
inline Status Internal(std::string message) { return {StatusCode::kInternal, std::move(message)}; }

// Result<T> holds either a value or a non-OK Status.
template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT(google-explicit-constructor)
  Result(Status status) : status_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!status_.ok() && "Result constructed from an OK status without a value");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  const T& value() const& { return *value_; }
  T& value() & { return *value_; }
  T&& value() && { return std::move(*value_); }
  const T& operator*() const& { return *value_; }
  T& operator*() & { return *value_; }
  const T* operator->() const { return &*value_; }
  T* operator->() { return &*value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace gpurm

#endif  // GPURM_CORE_STATUS_H_
