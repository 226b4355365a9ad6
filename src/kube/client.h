// KubeClient: a small REST client for the Kubernetes API over libcurl, just
// what gpurm needs: get, list (all pages), watch (a stream of events),
// create, replace (optimistic concurrency on metadata.resourceVersion) and
// delete, with JSON bodies.
//
// Errors: transport failures (connection refused, TLS, timeouts) are
// kUnavailable. HTTP errors map to status codes as below and keep the API
// server's message; callers that must tell a conflict from other failures use
// IsConflict / IsAlreadyExists / IsGone, which look at the HTTP status the
// error came from.
//   400, 422 -> kInvalidArgument      401 -> kUnauthenticated
//   403 -> kPermissionDenied          404 -> kNotFound
//   409 AlreadyExists -> kAlreadyExists
//   409 Conflict (stale resourceVersion) -> kFailedPrecondition
//   410 Gone (expired resourceVersion or continue token) -> kFailedPrecondition
//   429, 5xx -> kUnavailable          anything else -> kInternal
#ifndef GPURM_KUBE_CLIENT_H_
#define GPURM_KUBE_CLIENT_H_

#include <atomic>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "kube/connection.h"

struct curl_slist;  // libcurl's header list (curl/curl.h).

namespace gpurm::kube {

// True when `status` came from a 409 Conflict (someone else updated the
// object first: read it again and retry).
bool IsConflict(const Status& status);
// True when `status` came from a 409 AlreadyExists.
bool IsAlreadyExists(const Status& status);
// True when `status` came from a 410 Gone or a watch ERROR event with code
// 410 (the resourceVersion is too old: list again).
bool IsGone(const Status& status);

struct ListOptions {
  std::string label_selector;
  std::string field_selector;
  int64_t page_size = 500;  // `limit`; the client follows `continue` tokens.
};

struct ListResult {
  std::vector<nlohmann::json> items;
  std::string resource_version;  // The list's; start a watch from here.
};

struct WatchOptions {
  std::string label_selector;
  std::string field_selector;
  std::string resource_version;  // Events after this version.
  bool allow_bookmarks = true;
  int64_t timeout_s = 300;  // The server ends the watch after this.
};

// One event of a watch stream: type is ADDED, MODIFIED, DELETED, BOOKMARK
// or ERROR (then `object` is a v1 Status).
struct WatchEvent {
  std::string type;
  nlohmann::json object;
};

struct ClientOptions {
  double request_timeout_s = 30;  // Whole-request limit (watches: timeout_s + this).
  double connect_timeout_s = 10;
  std::string user_agent = "gpurm";
};

// Thread-safe: any number of threads may call any method at once. A request
// borrows an idle libcurl handle (or makes one) and gives it back, so its
// keep-alive connection and TLS session serve the next request of any
// thread; one handle is never used by two threads at once. (libcurl's share
// interface is not used: sharing TLS sessions or connections between
// concurrent threads races inside OpenSSL in the libcurl 7.88 that Debian 12
// ships, see curl/curl#14751, and ThreadSanitizer caught it here.) A watch
// holds a handle of its own for its whole stream.
class KubeClient {
 public:
  explicit KubeClient(Connection connection, ClientOptions options = {});
  ~KubeClient();
  KubeClient(const KubeClient&) = delete;
  KubeClient& operator=(const KubeClient&) = delete;

  const Connection& connection() const { return connection_; }

  // `path` is the URL path with any query, e.g. "/api/v1/nodes/n1".
  Result<nlohmann::json> Get(const std::string& path) const;
  // Every page of a collection.
  Result<ListResult> List(const std::string& path, const ListOptions& options) const;
  // POST to a collection; returns the created object (with its resourceVersion).
  Result<nlohmann::json> Create(const std::string& collection_path,
                                const nlohmann::json& object) const;
  // PUT of a whole object. The object's metadata.resourceVersion makes it
  // conditional: a stale one fails with IsConflict.
  Result<nlohmann::json> Replace(const std::string& path, const nlohmann::json& object) const;
  // DELETE with propagationPolicy=Background (dependents such as a Job's pods
  // are removed by the garbage collector). NotFound when already gone.
  Status Delete(const std::string& path) const;

  // Streams a watch of `path` (a collection), calling `on_event` for each
  // event in order, until the server ends the stream (OK), `on_event`
  // returns false (OK), `*cancel` becomes true (OK, noticed within about a
  // second), or an error (transport, HTTP status, an ERROR event: its Status,
  // IsGone for 410).
  Status Watch(const std::string& path, const WatchOptions& options,
               const std::function<bool(const WatchEvent&)>& on_event,
               const std::atomic<bool>* cancel) const;

 private:
  struct Reply {
    long http_status = 0;
    std::string body;
  };
  Result<Reply> Send(const std::string& method, const std::string& path,
                     const std::string* body) const;
  Result<nlohmann::json> Call(const std::string& method, const std::string& path,
                              const std::string* body) const;
  // Applies URL, TLS and auth options to a libcurl handle; false + status on
  // failure (e.g. unreadable token file).
  Status Configure(void* curl, const std::string& url, ::curl_slist** headers) const;

  const Connection connection_;
  const ClientOptions options_;
  // An idle handle from the pool (with no options set) or a new one
  // (nullptr if libcurl cannot make one). Give it back with ReleaseHandle.
  void* AcquireHandle() const;
  void ReleaseHandle(void* handle) const;

  // More idle handles than this are closed (with their connections).
  static constexpr size_t kMaxIdleHandles = 8;
  mutable std::mutex idle_mutex_;
  mutable std::vector<void*> idle_handles_;  // CURL*, guarded by idle_mutex_.
};

// Percent-encodes a query parameter value.
std::string UrlEncode(std::string_view text);

}  // namespace gpurm::kube

#endif  // GPURM_KUBE_CLIENT_H_
