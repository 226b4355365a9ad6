// Values with every field away from its default, for round-trip tests: a
// codec or store that drops or mangles any field fails them. When GpuRequest
// gains a field, the request codec fails to compile until it carries it, and
// codec_test fails until the field is set here.
#ifndef GPURM_TESTS_SUPPORT_EVERY_FIELD_H_
#define GPURM_TESTS_SUPPORT_EVERY_FIELD_H_

#include <string>

#include "core/types.h"

namespace gpurm::testing {

inline GpuRequest RequestWithEveryFieldSet() {
  GpuRequest r;
  r.gpu_count = 2;
  r.gpu_type = "A100-80GB";
  r.memory_gb = 37.5;
  r.distributed_training = true;
  r.mixed_precision = true;
  r.gpu_memory_fraction = 0.123456789012345;  // Exactly back: JSON round-trips doubles.
  r.node_name = "gpu-node-2";
  r.shared = true;
  r.gpu_milli = 250;
  r.policy = "spread";
  r.lease_ttl_s = 600;
  return r;
}

// An allocation as a ledger stores it: active, two shared grants, a lease,
// an idempotency key and its request's digest. `id` names it.
inline Allocation AllocationWithEveryFieldSet(const std::string& id = "alloc-1") {
  Allocation a;
  a.id = id;
  a.owner = "team-vision/ünïcode";
  a.request = RequestWithEveryFieldSet();
  a.grants = {
      {.node_name = "gpu-node-2",
       .gpu_index = 3,
       .gpu_uuid = "GPU-3",
       .memory_mib = 38400,
       .exclusive = false},
      {.node_name = "gpu-node-3",
       .gpu_index = 1,
       .gpu_uuid = "GPU-1",
       .memory_mib = 38400,
       .exclusive = false},
  };
  a.state = AllocationState::kActive;
  a.created_unix_ms = 1'700'000'000'123;
  a.lease_expires_unix_ms = 1'700'000'600'123;
  a.idempotency_key = "key-1";
  a.request_digest = "fnv1a64:0123456789abcdef";
  return a;
}

}  // namespace gpurm::testing

#endif  // GPURM_TESTS_SUPPORT_EVERY_FIELD_H_
