#include "kube/leader_election.h"

#include <cstdio>
#include <ctime>
#include <utility>

namespace gpurm::kube {
namespace {

std::chrono::steady_clock::duration Seconds(double seconds) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(seconds));
}

}  // namespace

std::string FormatMicroTime(std::chrono::system_clock::time_point time) {
  const auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(time.time_since_epoch()).count();
  const std::time_t seconds = static_cast<std::time_t>(micros / 1'000'000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[96];
  std::snprintf(buffer, sizeof(buffer), "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<long long>(micros % 1'000'000));
  return buffer;
}

LeaderElector::LeaderElector(const KubeClient* client, LeaderElectionOptions options,
                             std::function<Status()> on_acquired)
    : client_(client),
      options_(std::move(options)),
      on_acquired_(std::move(on_acquired)),
      lease_path_("/apis/coordination.k8s.io/v1/namespaces/" + options_.lease_namespace +
                  "/leases/" + options_.lease_name) {}

LeaderElector::~LeaderElector() {
  bool was_running;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    was_running = !stop_;
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (was_running) Release();
}

void LeaderElector::Start() {
  if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
}

bool LeaderElector::IsLeader() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return holding_ && ready_ &&
         std::chrono::steady_clock::now() - last_renew_sent_ < Seconds(options_.renew_deadline_s);
}

std::string LeaderElector::leader() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return leader_;
}

uint64_t LeaderElector::terms() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return terms_;
}

void LeaderElector::Abandon() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
    holding_ = false;
    ready_ = false;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

nlohmann::json LeaderElector::LeaseObject(const nlohmann::json& previous, bool take_over) const {
  const std::string now = FormatMicroTime(std::chrono::system_clock::now());
  nlohmann::json lease =
      previous.is_object()
          ? previous
          : nlohmann::json{
                {"apiVersion", "coordination.k8s.io/v1"},
                {"kind", "Lease"},
                {"metadata",
                 {{"name", options_.lease_name}, {"namespace", options_.lease_namespace}}},
                {"spec", {{"leaseTransitions", 0}}}};
  nlohmann::json& spec = lease["spec"];
  if (take_over) {
    spec["acquireTime"] = now;
    if (previous.is_object()) spec["leaseTransitions"] = spec.value("leaseTransitions", 0) + 1;
  }
  spec["holderIdentity"] = options_.identity;
  spec["leaseDurationSeconds"] = static_cast<int64_t>(options_.lease_duration_s + 0.999);
  spec["renewTime"] = now;
  return lease;
}

Status LeaderElector::TryAcquireOrRenew() {
  const SteadyTime sent = std::chrono::steady_clock::now();
  Result<nlohmann::json> current = client_->Get(lease_path_);
  Result<nlohmann::json> written = Status(StatusCode::kInternal, "not written");
  bool new_term = false;
  if (!current.ok()) {
    if (current.status().code() != StatusCode::kNotFound) return current.status();
    const std::string collection =
        "/apis/coordination.k8s.io/v1/namespaces/" + options_.lease_namespace + "/leases";
    written = client_->Create(collection, LeaseObject(nullptr, /*take_over=*/true));
    if (!written.ok()) return written.status();  // AlreadyExists: another replica won.
    new_term = true;
  } else {
    const nlohmann::json spec = current->value("spec", nlohmann::json::object());
    const std::string holder = spec.value("holderIdentity", "");
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (spec != observed_spec_) {
        observed_spec_ = spec;
        observed_time_ = sent;
      }
      leader_ = holder;
      const double duration = spec.value("leaseDurationSeconds", options_.lease_duration_s);
      if (!holder.empty() && holder != options_.identity &&
          std::chrono::steady_clock::now() < observed_time_ + Seconds(duration)) {
        holding_ = false;
        ready_ = false;
        return Status(StatusCode::kFailedPrecondition, "the lease is held by " + holder);
      }
      new_term = holder != options_.identity || !holding_ ||
                 sent - last_renew_sent_ >= Seconds(options_.renew_deadline_s);
    }
    written = client_->Replace(lease_path_,
                               LeaseObject(*current, /*take_over=*/holder != options_.identity));
    if (!written.ok()) return written.status();  // Conflict: another replica won this round.
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    holding_ = true;
    if (new_term) ready_ = false;
    last_renew_sent_ = sent;
    observed_spec_ = written->value("spec", nlohmann::json::object());
    observed_time_ = sent;
    leader_ = options_.identity;
    if (ready_) return Status::Ok();
  }
  const Status acquired = on_acquired_ ? on_acquired_() : Status::Ok();
  std::lock_guard<std::mutex> lock(mutex_);
  if (acquired.ok() && holding_) {
    ready_ = true;
    ++terms_;
  }
  return acquired;
}

void LeaderElector::Run() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stop_) {
    lock.unlock();
    TryAcquireOrRenew();
    lock.lock();
    wake_.wait_for(lock, Seconds(options_.retry_period_s), [this] { return stop_; });
  }
}

void LeaderElector::Release() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!holding_) return;
    holding_ = false;
    ready_ = false;
  }
  Result<nlohmann::json> current = client_->Get(lease_path_);
  if (!current.ok()) return;
  nlohmann::json& spec = (*current)["spec"];
  if (spec.value("holderIdentity", "") != options_.identity) return;
  // As client-go releases: no holder and a one-second duration, so the next
  // candidate takes over at its next round.
  spec["holderIdentity"] = "";
  spec["leaseDurationSeconds"] = 1;
  spec["renewTime"] = FormatMicroTime(std::chrono::system_clock::now());
  client_->Replace(lease_path_, *current);
}

}  // namespace gpurm::kube
