// KubernetesLedger: the Ledger kept in the cluster, one GpuAllocation object
// (group gpurm.io, deploy/kubernetes/crd.yaml) per allocation, so that
// several gpurm replicas and restarts share one durable state (etcd's).
//
// - Writes go to the API server and are durable when it answers. Ending an
//   allocation and renewing its lease are conditional updates on
//   metadata.resourceVersion: on a 409 Conflict the ledger reads the object
//   again and re-applies the change (bounded retries), so concurrent
//   replicas never overwrite each other.
// - Reads come from a cache kept by a list-watch of the namespace's
//   GpuAllocations (kube/reflector.h), updated with this replica's own
//   writes as soon as they succeed.
// - Placement is gated: Insert is refused (kUnavailable) unless `may_place`
//   says this replica is the leader (kube/leader_election.h). A new leader
//   calls Resync() (a fresh list) before it places, so it never decides on
//   a view older than the previous leader's last write. Insert also refuses
//   an allocation whose exclusive GPUs an active allocation in the cache
//   already holds.
// Allocation ids are the objects' names; the ledger's own fields are in
// spec (owner, request, grants, idempotencyKey, requestDigest, createdUnixMs) and status
// (state, endedUnixMs, leaseExpiresUnixMs; the CRD has no status
// subresource, so one update changes both). The label gpurm.io/state
// mirrors status.state for kubectl selectors.
#ifndef GPURM_LEDGER_KUBERNETES_LEDGER_H_
#define GPURM_LEDGER_KUBERNETES_LEDGER_H_

#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "kube/client.h"
#include "kube/reflector.h"
#include "ledger/ledger.h"

namespace gpurm {

inline constexpr char kGpuAllocationApiVersion[] = "gpurm.io/v1alpha1";

struct KubernetesLedgerOptions {
  std::string namespace_name = "default";
  // Returns "" when this replica may place allocations, else why not (e.g.
  // "not the leader; gpurm-1 is"). Unset: always may (a single replica).
  std::function<std::string()> may_place;
  int conflict_retries = 8;
  int64_t watch_timeout_s = 300;
  double retry_delay_s = 1;
};

class KubernetesLedger;

// Opens the ledger: lists the namespace's GpuAllocations and starts
// watching them. kUnavailable, naming the fix, when the CRD is not installed
// or the list is refused; an unreachable API server is not an error: the
// watch keeps trying and Insert refuses (kUnavailable) until it has listed.
Result<std::unique_ptr<KubernetesLedger>> OpenKubernetesLedger(const kube::KubeClient* client,
                                                               KubernetesLedgerOptions options);

class KubernetesLedger final : public Ledger {
 public:
  // `client` must outlive the ledger. Call Open rather than this.
  KubernetesLedger(const kube::KubeClient* client, KubernetesLedgerOptions options);

  // Lists the allocations (a consistent read) into the cache. The leader
  // election's on_acquired.
  Status Resync();
  // Waits until the cache satisfies `predicate`; for tests.
  bool WaitUntil(const std::function<bool(const std::vector<Allocation>&)>& predicate,
                 std::chrono::milliseconds timeout) const;

  Status Insert(const Allocation& allocation) override;
  Result<Allocation> End(const std::string& id, AllocationState state,
                         int64_t now_unix_ms) override;
  Result<Allocation> RenewLease(const std::string& id, int64_t expires_unix_ms) override;
  Result<Allocation> Get(const std::string& id) const override;
  std::optional<Allocation> FindByIdempotencyKey(const std::string& owner,
                                                 const std::string& key) const override;
  std::vector<Allocation> List(const AllocationFilter& filter) const override;
  size_t CountActive() const override;
  std::vector<GpuGrant> ActiveGrants() const override;
  std::vector<Allocation> ExpiredLeases(int64_t now_unix_ms) const override;
  // No GPU held exclusively by two active allocations (or exclusively and
  // shared), no active allocation without grants, every object readable.
  Status CheckIntegrity() const override;

 private:
  friend Result<std::unique_ptr<KubernetesLedger>> OpenKubernetesLedger(
      const kube::KubeClient* client, KubernetesLedgerOptions options);

  std::string ObjectPath(const std::string& id) const;
  // All cached allocations; objects that do not parse are skipped.
  std::vector<Allocation> Cached() const;
  // Reads an allocation's object: the cache, else the API server.
  Result<nlohmann::json> Fetch(const std::string& id, bool fresh) const;
  // Applies `change` to the allocation's object and writes it with the
  // object's resourceVersion, re-reading and retrying on conflicts.
  // `change` returns false to leave the object as it is (then no write).
  Result<Allocation> Update(const std::string& id,
                            const std::function<Result<bool>(Allocation&)>& change);

  const kube::KubeClient* const client_;
  const KubernetesLedgerOptions options_;
  const std::string collection_path_;
  std::unique_ptr<kube::Reflector> cache_;
};

// The GpuAllocation object of an allocation and back (exposed for tests).
nlohmann::json AllocationToObject(const Allocation& allocation, const std::string& namespace_name);
Result<Allocation> AllocationFromObject(const nlohmann::json& object);

}  // namespace gpurm

#endif  // GPURM_LEDGER_KUBERNETES_LEDGER_H_
