// Allocations and filters for ledger tests, shared by the contract test and
// the tests of each ledger.
#ifndef GPURM_LEDGER_TEST_ALLOCATIONS_H_
#define GPURM_LEDGER_TEST_ALLOCATIONS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "core/types.h"
#include "ledger/ledger.h"

namespace gpurm::testing_allocations {

inline GpuGrant Grant(const std::string& uuid, bool exclusive = true, int64_t memory_mib = 81920) {
  GpuGrant grant;
  grant.node_name = "node-a";
  grant.gpu_index = 0;
  grant.gpu_uuid = uuid;
  grant.memory_mib = memory_mib;
  grant.exclusive = exclusive;
  return grant;
}

// An active allocation holding one exclusive GPU named after its id.
inline Allocation MakeAllocation(const std::string& id, int64_t created_unix_ms = 1000,
                                 const std::string& owner = "alice") {
  Allocation allocation;
  allocation.id = id;
  allocation.owner = owner;
  allocation.created_unix_ms = created_unix_ms;
  allocation.grants = {Grant("GPU-" + id)};
  return allocation;
}

inline AllocationFilter Active(const std::string& owner = "", int limit = 1000) {
  AllocationFilter filter;
  filter.owner = owner;
  filter.limit = limit;
  return filter;
}

inline AllocationFilter All(const std::string& owner = "", int limit = 1000) {
  AllocationFilter filter = Active(owner, limit);
  filter.include_ended = true;
  return filter;
}

inline std::vector<std::string> Ids(const std::vector<Allocation>& allocations) {
  std::vector<std::string> ids;
  for (const Allocation& allocation : allocations) ids.push_back(allocation.id);
  return ids;
}

}  // namespace gpurm::testing_allocations

#endif  // GPURM_LEDGER_TEST_ALLOCATIONS_H_
