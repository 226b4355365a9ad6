// LeaderElector: leader election on a coordination.k8s.io/v1 Lease, the
// protocol of client-go's leaderelection package, so that only one gpurm
// replica places allocations at a time.
//
// Every replica tries, every retry period, to create or take over the Lease:
// it may when the Lease is free (no holder) or its holder has not renewed it
// for leaseDurationSeconds as measured by *this* replica's clock from the
// moment it first saw the current record (never by comparing the holder's
// timestamps with the local clock, so clock skew between machines does not
// matter). The holder renews every retry period with a conditional update
// (metadata.resourceVersion), so two replicas can never both win a round.
//
// Fencing: a holder counts itself leader only while less than
// renew_deadline has passed since it *sent* its last successful renewal.
// renew_deadline < lease_duration, so a holder that is cut off (paused,
// partitioned, killed) stops placing before any other replica may take the
// Lease, as long as clock rates differ by less than the margin.
#ifndef GPURM_KUBE_LEADER_ELECTION_H_
#define GPURM_KUBE_LEADER_ELECTION_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "core/status.h"
#include "kube/client.h"

namespace gpurm::kube {

struct LeaderElectionOptions {
  std::string lease_namespace = "default";
  std::string lease_name = "gpurm-leader";
  std::string identity;  // Unique per replica: the pod name.
  double lease_duration_s = 15;
  double renew_deadline_s = 10;  // < lease_duration_s.
  double retry_period_s = 2;
};

// Thread-safe. Start() runs the election on a thread of its own; the
// destructor stops it and, if leading, releases the Lease so that another
// replica takes over at once.
class LeaderElector {
 public:
  // `on_acquired` runs on the election thread after this replica has taken
  // the Lease and before IsLeader() turns true (e.g. the ledger reads the
  // cluster's state afresh); when it fails, the replica keeps the Lease but
  // does not lead, and it runs again at the next renewal. `client` must
  // outlive the elector.
  LeaderElector(const KubeClient* client, LeaderElectionOptions options,
                std::function<Status()> on_acquired = nullptr);
  ~LeaderElector();
  LeaderElector(const LeaderElector&) = delete;
  LeaderElector& operator=(const LeaderElector&) = delete;

  void Start();

  // This replica holds the Lease, has renewed it within renew_deadline, and
  // its on_acquired succeeded.
  bool IsLeader() const;
  // The holder as last read from the Lease ("" when free or unknown).
  std::string leader() const;
  const std::string& identity() const { return options_.identity; }
  // Number of times this replica has become leader.
  uint64_t terms() const;

  // Stops the election thread without releasing the Lease, as a crash would
  // leave it (tests use it to simulate a killed leader). IsLeader() is false
  // afterwards.
  void Abandon();

  // One round of the protocol (create, take over or renew); what the thread
  // does every retry period. OK when this replica holds the Lease after it.
  Status TryAcquireOrRenew();

 private:
  using SteadyTime = std::chrono::steady_clock::time_point;

  void Run();
  void Release();
  nlohmann::json LeaseObject(const nlohmann::json& previous, bool take_over) const;

  const KubeClient* const client_;
  const LeaderElectionOptions options_;
  const std::function<Status()> on_acquired_;
  const std::string lease_path_;

  mutable std::mutex mutex_;  // Guards the members below.
  std::condition_variable wake_;
  bool stop_ = false;
  bool holding_ = false;          // The last round ended with us holding the Lease.
  bool ready_ = false;            // on_acquired succeeded for the current term.
  SteadyTime last_renew_sent_;    // When the last successful renewal was sent.
  nlohmann::json observed_spec_;  // The Lease's spec as last read.
  SteadyTime observed_time_;      // When observed_spec_ last changed.
  std::string leader_;
  uint64_t terms_ = 0;

  std::thread thread_;
};

// Kubernetes MicroTime ("2006-01-02T15:04:05.000000Z") of a Unix time.
std::string FormatMicroTime(std::chrono::system_clock::time_point time);

}  // namespace gpurm::kube

#endif  // GPURM_KUBE_LEADER_ELECTION_H_
