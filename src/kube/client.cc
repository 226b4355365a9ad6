#include "kube/client.h"

#include <curl/curl.h>

#include <cctype>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <utility>

namespace gpurm::kube {
namespace {

// Message prefixes that carry the HTTP reason through a Status (see the
// file comment of client.h); only this file produces them.
constexpr std::string_view kConflictPrefix = "Conflict: ";
constexpr std::string_view kAlreadyExistsPrefix = "AlreadyExists: ";
constexpr std::string_view kGonePrefix = "Gone: ";

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

// The Status for an HTTP error answer. `body` is usually a v1 Status object.
Status HttpError(long http_status, const std::string& body, const std::string& what) {
  std::string reason;
  std::string message;
  const nlohmann::json parsed = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_object()) {
    reason = parsed.value("reason", "");
    message = parsed.value("message", "");
  }
  if (message.empty()) message = body.substr(0, 200);
  const std::string text = what + ": HTTP " + std::to_string(http_status) +
                           (reason.empty() ? "" : " " + reason) + ": " + message;
  switch (http_status) {
    case 400:
    case 422:
      return InvalidArgument(text);
    case 401:
      return Status(StatusCode::kUnauthenticated, text);
    case 403:
      return Status(StatusCode::kPermissionDenied, text);
    case 404:
      return NotFound(text);
    case 409:
      if (reason == "AlreadyExists") {
        return Status(StatusCode::kAlreadyExists, std::string(kAlreadyExistsPrefix) + text);
      }
      return Status(StatusCode::kFailedPrecondition, std::string(kConflictPrefix) + text);
    case 410:
      return Status(StatusCode::kFailedPrecondition, std::string(kGonePrefix) + text);
    case 429:
      return Unavailable(text);
    default:
      if (http_status >= 500) return Unavailable(text);
      return Internal(text);
  }
}

size_t AppendBody(char* data, size_t size, size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

Result<std::string> ReadToken(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Unavailable("cannot read the token file " + path);
  std::ostringstream text;
  text << in.rdbuf();
  std::string token = text.str();
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' ')) {
    token.pop_back();
  }
  return token;
}

std::string WithQuery(const std::string& path,
                      const std::vector<std::pair<std::string, std::string>>& query) {
  std::string url = path;
  char separator = path.find('?') == std::string::npos ? '?' : '&';
  for (const auto& [key, value] : query) {
    if (value.empty()) continue;
    url += separator + key + "=" + UrlEncode(value);
    separator = '&';
  }
  return url;
}

// State of one watch stream, fed by libcurl's write callback.
struct WatchStream {
  CURL* curl = nullptr;
  const std::function<bool(const WatchEvent&)>* on_event = nullptr;
  const std::atomic<bool>* cancel = nullptr;
  std::string pending;  // Bytes after the last newline.
  std::string error_body;
  long http_status = 0;
  bool stopped = false;  // By on_event or cancel: not an error.
  Status failure;        // A malformed line or an ERROR event.
};

bool HandleWatchLine(WatchStream& stream, const std::string& line) {
  if (line.empty()) return true;
  const nlohmann::json parsed = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object() || !parsed.contains("type") || !parsed["type"].is_string()) {
    stream.failure = Internal("watch: not a watch event: " + line.substr(0, 200));
    return false;
  }
  WatchEvent event{parsed["type"].get<std::string>(), parsed.value("object", nlohmann::json())};
  if (event.type == "ERROR") {
    const long code = event.object.is_object() ? event.object.value("code", 0L) : 0L;
    stream.failure = HttpError(code, event.object.dump(), "watch");
    return false;
  }
  if (!(*stream.on_event)(event)) {
    stream.stopped = true;
    return false;
  }
  return true;
}

size_t WatchWrite(char* data, size_t size, size_t count, void* user) {
  WatchStream& stream = *static_cast<WatchStream*>(user);
  const size_t bytes = size * count;
  if (stream.http_status == 0) {
    curl_easy_getinfo(stream.curl, CURLINFO_RESPONSE_CODE, &stream.http_status);
  }
  if (stream.http_status != 200) {
    stream.error_body.append(data, bytes);
    return bytes;
  }
  if (stream.cancel != nullptr && stream.cancel->load()) {
    stream.stopped = true;
    return 0;
  }
  stream.pending.append(data, bytes);
  size_t start = 0;
  for (size_t newline; (newline = stream.pending.find('\n', start)) != std::string::npos;
       start = newline + 1) {
    if (!HandleWatchLine(stream, stream.pending.substr(start, newline - start))) return 0;
  }
  stream.pending.erase(0, start);
  return bytes;
}

int WatchProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  WatchStream& stream = *static_cast<WatchStream*>(user);
  if (stream.cancel != nullptr && stream.cancel->load()) {
    stream.stopped = true;
    return 1;  // Aborts the transfer.
  }
  return 0;
}

}  // namespace

bool IsConflict(const Status& status) {
  return status.code() == StatusCode::kFailedPrecondition &&
         StartsWith(status.message(), kConflictPrefix);
}

bool IsAlreadyExists(const Status& status) {
  return status.code() == StatusCode::kAlreadyExists &&
         StartsWith(status.message(), kAlreadyExistsPrefix);
}

bool IsGone(const Status& status) {
  return status.code() == StatusCode::kFailedPrecondition &&
         StartsWith(status.message(), kGonePrefix);
}

std::string UrlEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

KubeClient::KubeClient(Connection connection, ClientOptions options)
    : connection_(std::move(connection)), options_(std::move(options)) {
  // Thread-safe since libcurl 7.84; a no-op after the first call.
  curl_global_init(CURL_GLOBAL_DEFAULT);
}

KubeClient::~KubeClient() {
  for (void* handle : idle_handles_) curl_easy_cleanup(static_cast<CURL*>(handle));
}

void* KubeClient::AcquireHandle() const {
  {
    std::lock_guard<std::mutex> lock(idle_mutex_);
    if (!idle_handles_.empty()) {
      void* handle = idle_handles_.back();
      idle_handles_.pop_back();
      return handle;
    }
  }
  return curl_easy_init();
}

void KubeClient::ReleaseHandle(void* handle) const {
  // Forgets the request's options, whose pointers (headers, body, error and
  // write buffers) die with the request; keeps the handle's open
  // connections, TLS session and DNS caches, which are the point.
  curl_easy_reset(static_cast<CURL*>(handle));
  {
    std::lock_guard<std::mutex> lock(idle_mutex_);
    if (idle_handles_.size() < kMaxIdleHandles) {
      idle_handles_.push_back(handle);
      return;
    }
  }
  curl_easy_cleanup(static_cast<CURL*>(handle));
}

Status KubeClient::Configure(void* handle, const std::string& url, ::curl_slist** headers) const {
  CURL* curl = static_cast<CURL*>(handle);
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, options_.user_agent.c_str());
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options_.connect_timeout_s * 1000));
  if (connection_.insecure_skip_tls_verify) {
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (!connection_.ca_pem.empty()) {
    curl_blob blob{const_cast<char*>(connection_.ca_pem.data()), connection_.ca_pem.size(),
                   CURL_BLOB_COPY};
    curl_easy_setopt(curl, CURLOPT_CAINFO_BLOB, &blob);
  } else if (!connection_.ca_file.empty()) {
    curl_easy_setopt(curl, CURLOPT_CAINFO, connection_.ca_file.c_str());
  }
  if (!connection_.client_cert_pem.empty()) {
    curl_blob blob{const_cast<char*>(connection_.client_cert_pem.data()),
                   connection_.client_cert_pem.size(), CURL_BLOB_COPY};
    curl_easy_setopt(curl, CURLOPT_SSLCERT_BLOB, &blob);
    curl_easy_setopt(curl, CURLOPT_SSLCERTTYPE, "PEM");
  } else if (!connection_.client_cert_file.empty()) {
    curl_easy_setopt(curl, CURLOPT_SSLCERT, connection_.client_cert_file.c_str());
  }
  if (!connection_.client_key_pem.empty()) {
    curl_blob blob{const_cast<char*>(connection_.client_key_pem.data()),
                   connection_.client_key_pem.size(), CURL_BLOB_COPY};
    curl_easy_setopt(curl, CURLOPT_SSLKEY_BLOB, &blob);
    curl_easy_setopt(curl, CURLOPT_SSLKEYTYPE, "PEM");
  } else if (!connection_.client_key_file.empty()) {
    curl_easy_setopt(curl, CURLOPT_SSLKEY, connection_.client_key_file.c_str());
  }
  std::string token = connection_.token;
  if (token.empty() && !connection_.token_file.empty()) {
    Result<std::string> read = ReadToken(connection_.token_file);
    if (!read.ok()) return read.status();
    token = *read;
  }
  *headers = curl_slist_append(*headers, "Accept: application/json");
  *headers = curl_slist_append(*headers, "Content-Type: application/json");
  if (!token.empty()) {
    *headers = curl_slist_append(*headers, ("Authorization: Bearer " + token).c_str());
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, *headers);
  return Status::Ok();
}

Result<KubeClient::Reply> KubeClient::Send(const std::string& method, const std::string& path,
                                           const std::string* body) const {
  CURL* curl = static_cast<CURL*>(AcquireHandle());
  if (curl == nullptr) return Internal("curl_easy_init failed");
  struct curl_slist* headers = nullptr;
  Reply reply;
  Status configured = Configure(curl, connection_.server + path, &headers);
  CURLcode code = CURLE_OK;
  char error[CURL_ERROR_SIZE] = {};
  if (configured.ok()) {
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS,
                     static_cast<long>(options_.request_timeout_s * 1000));
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
    if (body != nullptr) {
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body->data());
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body->size()));
    } else if (method == "GET") {
      curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    }
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, AppendBody);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply.body);
    code = curl_easy_perform(curl);
    if (code == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply.http_status);
  }
  ReleaseHandle(curl);
  curl_slist_free_all(headers);
  if (!configured.ok()) return configured;
  if (code != CURLE_OK) {
    return Unavailable(method + " " + connection_.server + path + ": " +
                       (error[0] != '\0' ? error : curl_easy_strerror(code)));
  }
  return reply;
}

Result<nlohmann::json> KubeClient::Call(const std::string& method, const std::string& path,
                                        const std::string* body) const {
  Result<Reply> reply = Send(method, path, body);
  if (!reply.ok()) return reply.status();
  if (reply->http_status < 200 || reply->http_status >= 300) {
    return HttpError(reply->http_status, reply->body, method + " " + path);
  }
  nlohmann::json parsed = nlohmann::json::parse(reply->body, nullptr, false);
  if (parsed.is_discarded()) {
    return Internal(method + " " + path +
                    ": the answer is not JSON: " + reply->body.substr(0, 200));
  }
  return parsed;
}

Result<nlohmann::json> KubeClient::Get(const std::string& path) const {
  return Call("GET", path, nullptr);
}

Result<ListResult> KubeClient::List(const std::string& path, const ListOptions& options) const {
  ListResult result;
  std::string continue_token;
  do {
    const std::string url = WithQuery(path, {{"labelSelector", options.label_selector},
                                             {"fieldSelector", options.field_selector},
                                             {"limit", std::to_string(options.page_size)},
                                             {"continue", continue_token}});
    Result<nlohmann::json> page = Get(url);
    if (!page.ok()) return page.status();
    if (!page->contains("items") || !(*page)["items"].is_array()) {
      return Internal("GET " + url + ": not a list (no items)");
    }
    for (nlohmann::json& item : (*page)["items"]) result.items.push_back(std::move(item));
    const nlohmann::json& metadata = (*page)["metadata"];
    // Every page carries the resourceVersion of the first one's snapshot.
    result.resource_version = metadata.value("resourceVersion", "");
    continue_token = metadata.value("continue", "");
  } while (!continue_token.empty());
  return result;
}

Result<nlohmann::json> KubeClient::Create(const std::string& collection_path,
                                          const nlohmann::json& object) const {
  const std::string body = object.dump();
  return Call("POST", collection_path, &body);
}

Result<nlohmann::json> KubeClient::Replace(const std::string& path,
                                           const nlohmann::json& object) const {
  const std::string body = object.dump();
  return Call("PUT", path, &body);
}

Status KubeClient::Delete(const std::string& path) const {
  const std::string body =
      R"({"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Background"})";
  Result<nlohmann::json> answer = Call("DELETE", path, &body);
  return answer.ok() ? Status::Ok() : answer.status();
}

Status KubeClient::Watch(const std::string& path, const WatchOptions& options,
                         const std::function<bool(const WatchEvent&)>& on_event,
                         const std::atomic<bool>* cancel) const {
  const std::string url =
      WithQuery(path, {{"watch", "1"},
                       {"labelSelector", options.label_selector},
                       {"fieldSelector", options.field_selector},
                       {"resourceVersion", options.resource_version},
                       {"allowWatchBookmarks", options.allow_bookmarks ? "true" : ""},
                       {"timeoutSeconds", std::to_string(options.timeout_s)}});
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return Internal("curl_easy_init failed");
  struct curl_slist* headers = nullptr;
  WatchStream stream;
  stream.curl = curl;
  stream.on_event = &on_event;
  stream.cancel = cancel;
  Status configured = Configure(curl, connection_.server + url, &headers);
  CURLcode code = CURLE_OK;
  char error[CURL_ERROR_SIZE] = {};
  if (configured.ok()) {
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
    curl_easy_setopt(
        curl, CURLOPT_TIMEOUT_MS,
        static_cast<long>((static_cast<double>(options.timeout_s) + options_.request_timeout_s) *
                          1000));
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, WatchWrite);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &stream);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, WatchProgress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &stream);
    code = curl_easy_perform(curl);
    if (stream.http_status == 0)
      curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &stream.http_status);
  }
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  if (!configured.ok()) return configured;
  if (stream.stopped) return Status::Ok();
  if (!stream.failure.ok()) return stream.failure;
  if (code != CURLE_OK) {
    return Unavailable("watch " + path + ": " +
                       (error[0] != '\0' ? error : curl_easy_strerror(code)));
  }
  if (stream.http_status != 200) {
    return HttpError(stream.http_status, stream.error_body, "watch " + path);
  }
  // The server ended the stream (timeoutSeconds); a final line without a
  // newline is still an event.
  if (!stream.pending.empty() && !HandleWatchLine(stream, stream.pending)) {
    return stream.stopped ? Status::Ok() : stream.failure;
  }
  return Status::Ok();
}

}  // namespace gpurm::kube
