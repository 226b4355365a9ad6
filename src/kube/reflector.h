// Reflector: an up-to-date copy of one collection of the API (all nodes, the
// pods that are not finished, the GpuAllocations of a namespace), kept by a
// thread that lists it and then watches it from the list's resourceVersion,
// as client-go's reflector does:
// - a watch that ends (the server's timeoutSeconds, a dropped connection) is
//   resumed from the last resourceVersion seen, bookmarks included, so
//   nothing is missed and nothing is listed again;
// - a watch answered 410 Gone (the version is older than the server keeps)
//   lists again;
// - failures are retried after `retry_delay_s` and kept in last_error.
#ifndef GPURM_KUBE_REFLECTOR_H_
#define GPURM_KUBE_REFLECTOR_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>

#include "core/status.h"
#include "kube/client.h"

namespace gpurm::kube {

struct ReflectorOptions {
  std::string path;  // A collection: "/api/v1/nodes", "/apis/gpurm.io/v1alpha1/namespaces/x/...".
  std::string label_selector;
  std::string field_selector;
  int64_t watch_timeout_s = 300;
  int64_t page_size = 500;
  double retry_delay_s = 1;
  // Keeps what the owner needs of each object (smaller caches); identity
  // when unset. Must keep metadata.name, .namespace and .resourceVersion.
  std::function<nlohmann::json(const nlohmann::json&)> transform;
};

// Counters of what the reflector did, for tests and logs.
struct ReflectorStats {
  uint64_t lists = 0;      // Successful lists.
  uint64_t watches = 0;    // Watch requests started.
  uint64_t gone = 0;       // Watches ended by 410 Gone (each followed by a list).
  uint64_t bookmarks = 0;  // BOOKMARK events seen.
  uint64_t events = 0;     // ADDED, MODIFIED and DELETED events applied.
};

// The cache at one moment. Objects are keyed "namespace/name" ("name" for
// cluster-scoped objects).
struct ReflectorView {
  std::shared_ptr<const std::map<std::string, nlohmann::json>> objects;
  std::string resource_version;  // Of the last list, event or bookmark.
  bool synced = false;           // A list has succeeded.
  Status last_error;             // Of the last list or watch; OK after a success.
  ReflectorStats stats;
};

// Thread-safe. Start() runs the list-watch loop on a thread of its own; the
// destructor stops it (a watch in flight is abandoned within about a second).
class Reflector {
 public:
  Reflector(const KubeClient* client, ReflectorOptions options);
  ~Reflector();
  Reflector(const Reflector&) = delete;
  Reflector& operator=(const Reflector&) = delete;

  void Start();

  // Lists from the calling thread and replaces the cache with the answer (a
  // consistent read of the API server's current state), e.g. before a new
  // leader makes its first decision. The watch goes on; events older than
  // this list are ignored.
  Status Relist();

  ReflectorView View() const;

  // Blocks until `predicate` holds for the view (checked at every change) or
  // `timeout` passes; returns whether it held. For tests and start-up.
  bool WaitFor(const std::function<bool(const ReflectorView&)>& predicate,
               std::chrono::milliseconds timeout) const;

  // Stores an object this process has just written (the API server's answer
  // to a create or replace), so that its own reads see its writes before
  // the watch delivers them; `deleted` removes it. An object older than the
  // cached one is ignored.
  void Apply(const nlohmann::json& object, bool deleted);

  // "namespace/name" or "name".
  static std::string KeyOf(const nlohmann::json& object);

 private:
  void Run();
  // Applies a list answer; caller holds mutex_.
  void ReplaceLocked(const ListResult& list);
  // Applies one object change; caller holds mutex_. False when ignored as older.
  bool ApplyLocked(const nlohmann::json& object, bool deleted);

  const KubeClient* const client_;
  const ReflectorOptions options_;
  std::atomic<bool> stop_{false};

  mutable std::mutex mutex_;  // Guards the members below.
  mutable std::condition_variable changed_;
  std::shared_ptr<std::map<std::string, nlohmann::json>> objects_;  // Copy-on-write.
  std::string resource_version_;
  std::string listed_version_;  // Of the last list: older events are stale.
  bool synced_ = false;
  Status last_error_;
  ReflectorStats stats_;

  std::thread thread_;  // Last: started after everything above exists.
};

// Compares two resourceVersions: -1, 0, 1, or nullopt when either is not an
// integer. Kubernetes calls them opaque; every API server backed by etcd
// issues etcd revisions, which order changes, and that is what the
// reflector relies on to drop stale events (it never drops when it cannot
// compare).
std::optional<int> CompareResourceVersions(const std::string& a, const std::string& b);

}  // namespace gpurm::kube

#endif  // GPURM_KUBE_REFLECTOR_H_
