#include "ledger/kubernetes_ledger.h"

#include <algorithm>
#include <map>
#include <thread>
#include <utility>

#include "codec/request_codec.h"
#include "ledger/allocation_rules.h"

namespace gpurm {
namespace {

using nlohmann::json;

constexpr char kStateLabel[] = "gpurm.io/state";

Result<AllocationState> ParseState(const std::string& text) {
  if (text == "active") return AllocationState::kActive;
  if (text == "released") return AllocationState::kReleased;
  if (text == "expired") return AllocationState::kExpired;
  return InvalidArgument("unknown state \"" + text + "\"", "status.state");
}

}  // namespace

json AllocationToObject(const Allocation& allocation, const std::string& namespace_name) {
  json grants = json::array();
  for (const GpuGrant& g : allocation.grants) {
    grants.push_back({{"nodeName", g.node_name},
                      {"gpuIndex", g.gpu_index},
                      {"gpuUuid", g.gpu_uuid},
                      {"memoryMib", g.memory_mib},
                      {"exclusive", g.exclusive}});
  }
  const std::string state = AllocationStateName(allocation.state);
  return {
      {"apiVersion", kGpuAllocationApiVersion},
      {"kind", "GpuAllocation"},
      {"metadata",
       {{"name", allocation.id},
        {"namespace", namespace_name},
        {"labels", {{kStateLabel, state}}}}},
      {"spec",
       {{"owner", allocation.owner},
        {"idempotencyKey", allocation.idempotency_key},
        {"requestDigest", allocation.request_digest},
        {"createdUnixMs", allocation.created_unix_ms},
        {"request", EncodeGpuRequest(allocation.request, FieldCase::kCamel)},
        {"grants", std::move(grants)}}},
      {"status",
       {{"state", state},
        {"endedUnixMs", allocation.ended_unix_ms},
        {"leaseExpiresUnixMs", allocation.lease_expires_unix_ms}}},
  };
}

Result<Allocation> AllocationFromObject(const json& object) {
  try {
    Allocation a;
    a.id = object.at("metadata").at("name").get<std::string>();
    const json& spec = object.at("spec");
    const json& status = object.value("status", json::object());
    a.owner = spec.value("owner", "");
    a.idempotency_key = spec.value("idempotencyKey", "");
    a.request_digest = spec.value("requestDigest", "");
    a.created_unix_ms = spec.value("createdUnixMs", int64_t{0});
    Result<GpuRequest> request =
        DecodeGpuRequest(spec.value("request", json::object()), FieldCase::kCamel, "spec.request.");
    if (!request.ok()) return request.status();
    a.request = *std::move(request);
    for (const json& g : spec.value("grants", json::array())) {
      a.grants.push_back(GpuGrant{g.value("nodeName", ""), g.value("gpuIndex", 0),
                                  g.value("gpuUuid", ""), g.value("memoryMib", int64_t{0}),
                                  g.value("exclusive", true)});
    }
    Result<AllocationState> state = ParseState(status.value("state", "active"));
    if (!state.ok()) return state.status();
    a.state = *state;
    a.ended_unix_ms = status.value("endedUnixMs", int64_t{0});
    a.lease_expires_unix_ms = status.value("leaseExpiresUnixMs", int64_t{0});
    return a;
  } catch (const json::exception& e) {
    return InvalidArgument(std::string("not a GpuAllocation: ") + e.what());
  }
}

KubernetesLedger::KubernetesLedger(const kube::KubeClient* client, KubernetesLedgerOptions options)
    : client_(client),
      options_(std::move(options)),
      collection_path_("/apis/gpurm.io/v1alpha1/namespaces/" + options_.namespace_name +
                       "/gpuallocations") {
  kube::ReflectorOptions reflector;
  reflector.path = collection_path_;
  reflector.watch_timeout_s = options_.watch_timeout_s;
  reflector.retry_delay_s = options_.retry_delay_s;
  cache_ = std::make_unique<kube::Reflector>(client_, std::move(reflector));
}

Result<std::unique_ptr<KubernetesLedger>> OpenKubernetesLedger(const kube::KubeClient* client,
                                                               KubernetesLedgerOptions options) {
  auto ledger = std::make_unique<KubernetesLedger>(client, std::move(options));
  const Status listed = ledger->Resync();
  if (listed.code() == StatusCode::kNotFound) {
    return Unavailable(
        "the GpuAllocation resource (gpuallocations.gpurm.io) is not installed: kubectl apply "
        "-f deploy/kubernetes/crd.yaml (" +
        listed.message() + ")");
  }
  if (!listed.ok() && listed.code() != StatusCode::kUnavailable) {
    return Unavailable("cannot list GpuAllocations: " + listed.message());
  }
  // An unreachable API server is not fatal: the reflector keeps trying, and
  // until it has listed, Insert refuses and the daemon answers 503.
  ledger->cache_->Start();
  return ledger;
}

std::string KubernetesLedger::ObjectPath(const std::string& id) const {
  return collection_path_ + "/" + id;
}

Status KubernetesLedger::Resync() { return cache_->Relist(); }

std::vector<Allocation> KubernetesLedger::Cached() const {
  const kube::ReflectorView view = cache_->View();
  std::vector<Allocation> out;
  out.reserve(view.objects->size());
  for (const auto& [key, object] : *view.objects) {
    Result<Allocation> allocation = AllocationFromObject(object);
    if (allocation.ok()) out.push_back(std::move(allocation).value());
  }
  return out;
}

bool KubernetesLedger::WaitUntil(
    const std::function<bool(const std::vector<Allocation>&)>& predicate,
    std::chrono::milliseconds timeout) const {
  return cache_->WaitFor(
      [&](const kube::ReflectorView& view) {
        std::vector<Allocation> all;
        for (const auto& [key, object] : *view.objects) {
          if (Result<Allocation> a = AllocationFromObject(object); a.ok()) all.push_back(*a);
        }
        return predicate(all);
      },
      timeout);
}

Status KubernetesLedger::Insert(const Allocation& allocation) {
  // The rules every ledger applies to a new allocation, and nothing recorded
  // that the request codec could not read back.
  if (Status status = ValidateNewAllocation(allocation); !status.ok()) return status;
  if (Status storable = StorableRequestJson(allocation.request).status(); !storable.ok()) {
    return storable;
  }
  if (const kube::ReflectorView view = cache_->View(); !view.synced) {
    return Unavailable("the cluster's allocations are not loaded yet" +
                       (view.last_error.ok() ? std::string() : ": " + view.last_error.message()));
  }
  if (options_.may_place) {
    if (const std::string why_not = options_.may_place(); !why_not.empty()) {
      return Unavailable("this replica does not place allocations now: " + why_not);
    }
  }
  const std::vector<Allocation> cached = Cached();
  for (const Allocation& earlier : cached) {
    if (earlier.id == allocation.id) {
      return Status(StatusCode::kAlreadyExists, "allocation " + allocation.id + " already exists");
    }
    if (!allocation.idempotency_key.empty() && earlier.owner == allocation.owner &&
        earlier.idempotency_key == allocation.idempotency_key) {
      return Status(StatusCode::kAlreadyExists, "idempotency key " + allocation.idempotency_key +
                                                    " of owner " + allocation.owner +
                                                    " is already used");
    }
  }
  // Exclusive grants must not touch a held GPU; shared ones must not touch
  // an exclusively held one (the scheduler checked memory; the ledger only
  // guards against a decision made on a stale view).
  for (const Allocation& active : cached) {
    if (active.state != AllocationState::kActive) continue;
    for (const GpuGrant& held : active.grants) {
      for (const GpuGrant& wanted : allocation.grants) {
        if (wanted.gpu_uuid == held.gpu_uuid && (wanted.exclusive || held.exclusive)) {
          return Status(StatusCode::kFailedPrecondition,
                        "GPU " + wanted.gpu_uuid + " is already held by allocation " + active.id);
        }
      }
    }
  }
  Result<json> created =
      client_->Create(collection_path_, AllocationToObject(allocation, options_.namespace_name));
  if (!created.ok()) {
    if (kube::IsAlreadyExists(created.status())) {
      return Status(StatusCode::kAlreadyExists, "allocation " + allocation.id + " already exists");
    }
    return Unavailable("cannot record allocation " + allocation.id +
                       " in the cluster: " + created.status().message());
  }
  cache_->Apply(*created, /*deleted=*/false);
  return Status::Ok();
}

Result<json> KubernetesLedger::Fetch(const std::string& id, bool fresh) const {
  if (!fresh) {
    const kube::ReflectorView view = cache_->View();
    const auto it = view.objects->find(options_.namespace_name + "/" + id);
    if (it != view.objects->end()) return it->second;
  }
  Result<json> object = client_->Get(ObjectPath(id));
  if (!object.ok() && object.status().code() == StatusCode::kNotFound) {
    return NotFound("allocation " + id + " not found");
  }
  return object;
}

Result<Allocation> KubernetesLedger::Update(
    const std::string& id, const std::function<Result<bool>(Allocation&)>& change) {
  bool fresh = false;
  for (int attempt = 0; attempt <= options_.conflict_retries; ++attempt) {
    Result<json> object = Fetch(id, fresh);
    if (!object.ok()) return object.status();
    Result<Allocation> allocation = AllocationFromObject(*object);
    if (!allocation.ok()) return allocation.status();
    Result<bool> changed = change(*allocation);
    if (!changed.ok()) return changed.status();
    if (!*changed) return allocation;
    json updated = *object;
    const json written = AllocationToObject(*allocation, options_.namespace_name);
    updated["status"] = written["status"];
    updated["metadata"]["labels"][kStateLabel] = written["metadata"]["labels"][kStateLabel];
    Result<json> replaced = client_->Replace(ObjectPath(id), updated);
    if (replaced.ok()) {
      cache_->Apply(*replaced, /*deleted=*/false);
      return AllocationFromObject(*replaced);
    }
    if (!kube::IsConflict(replaced.status())) {
      if (replaced.status().code() == StatusCode::kNotFound) {
        return NotFound("allocation " + id + " not found");
      }
      return Unavailable("cannot update allocation " + id + ": " + replaced.status().message());
    }
    fresh = true;  // Someone else changed it: read it from the API server and redo.
  }
  return Unavailable("allocation " + id + " kept changing under " +
                     std::to_string(options_.conflict_retries + 1) + " attempts to update it");
}

Result<Allocation> KubernetesLedger::End(const std::string& id, AllocationState state,
                                         int64_t now_unix_ms) {
  if (state == AllocationState::kActive) {
    return InvalidArgument("an allocation ends released or expired", "state");
  }
  return Update(id, [&](Allocation& allocation) -> Result<bool> {
    if (allocation.state != AllocationState::kActive) return false;  // Idempotent.
    allocation.state = state;
    allocation.ended_unix_ms = now_unix_ms;
    return true;
  });
}

Result<Allocation> KubernetesLedger::RenewLease(const std::string& id, int64_t expires_unix_ms) {
  return Update(id, [&](Allocation& allocation) -> Result<bool> {
    if (allocation.state != AllocationState::kActive) {
      return Status(StatusCode::kFailedPrecondition,
                    std::string("allocation is ") + AllocationStateName(allocation.state));
    }
    allocation.lease_expires_unix_ms = expires_unix_ms;
    return true;
  });
}

Result<Allocation> KubernetesLedger::Get(const std::string& id) const {
  Result<json> object = Fetch(id, /*fresh=*/false);
  if (!object.ok()) return object.status();
  return AllocationFromObject(*object);
}

std::optional<Allocation> KubernetesLedger::FindByIdempotencyKey(const std::string& owner,
                                                                 const std::string& key) const {
  for (Allocation& allocation : Cached()) {
    if (allocation.owner == owner && allocation.idempotency_key == key) return allocation;
  }
  return std::nullopt;
}

std::vector<Allocation> KubernetesLedger::List(const AllocationFilter& filter) const {
  std::vector<Allocation> out;
  for (Allocation& allocation : Cached()) {
    if (!filter.include_ended && allocation.state != AllocationState::kActive) continue;
    if (!filter.owner.empty() && allocation.owner != filter.owner) continue;
    if (!filter.AfterCursor(allocation)) continue;
    out.push_back(std::move(allocation));
  }
  std::sort(out.begin(), out.end(), NewerFirst);
  if (filter.limit >= 0 && out.size() > static_cast<size_t>(filter.limit)) {
    out.resize(static_cast<size_t>(filter.limit));
  }
  return out;
}

size_t KubernetesLedger::CountActive() const {
  const std::vector<Allocation> cached = Cached();
  return static_cast<size_t>(std::count_if(cached.begin(), cached.end(), [](const Allocation& a) {
    return a.state == AllocationState::kActive;
  }));
}

std::vector<GpuGrant> KubernetesLedger::ActiveGrants() const {
  AllocationFilter every_active;
  every_active.limit = INT32_MAX;
  std::vector<Allocation> active = List(every_active);
  std::reverse(active.begin(), active.end());  // Oldest first.
  std::vector<GpuGrant> grants;
  for (const Allocation& allocation : active) {
    grants.insert(grants.end(), allocation.grants.begin(), allocation.grants.end());
  }
  return grants;
}

std::vector<Allocation> KubernetesLedger::ExpiredLeases(int64_t now_unix_ms) const {
  std::vector<Allocation> expired;
  for (Allocation& allocation : Cached()) {
    if (allocation.state == AllocationState::kActive && allocation.lease_expires_unix_ms > 0 &&
        allocation.lease_expires_unix_ms <= now_unix_ms) {
      expired.push_back(std::move(allocation));
    }
  }
  std::sort(expired.begin(), expired.end(), [](const Allocation& a, const Allocation& b) {
    return a.lease_expires_unix_ms < b.lease_expires_unix_ms;
  });
  return expired;
}

Status KubernetesLedger::CheckIntegrity() const {
  const kube::ReflectorView view = cache_->View();
  std::string problems;
  std::map<std::string, std::vector<std::pair<std::string, bool>>> holders;
  for (const auto& [key, object] : *view.objects) {
    Result<Allocation> allocation = AllocationFromObject(object);
    if (!allocation.ok()) {
      problems += "; " + key + ": " + allocation.status().message();
      continue;
    }
    if (allocation->state != AllocationState::kActive) continue;
    if (allocation->grants.empty()) problems += "; active allocation " + key + " has no grant";
    for (const GpuGrant& grant : allocation->grants) {
      holders[grant.gpu_uuid].emplace_back(allocation->id, grant.exclusive);
    }
  }
  for (const auto& [uuid, held] : holders) {
    const bool any_exclusive =
        std::any_of(held.begin(), held.end(), [](const auto& h) { return h.second; });
    if (held.size() > 1 && any_exclusive) {
      std::string ids;
      for (const auto& [id, exclusive] : held) ids += (ids.empty() ? "" : ", ") + id;
      problems += "; GPU " + uuid + " is held by active allocations " + ids +
                  " and at least one holds it exclusively";
    }
  }
  if (problems.empty()) return Status::Ok();
  return Internal("GpuAllocations in namespace " + options_.namespace_name + ": " +
                  problems.substr(2));
}

}  // namespace gpurm
