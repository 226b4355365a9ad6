#include "cli/client.h"

#include <curl/curl.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>

namespace gpurm::cli {
namespace {

using nlohmann::json;

// curl_global_init is not thread-safe and must run once before any handle is
// made; a function-local static gives exactly that.
bool EnsureCurlInitialised() {
  static const bool initialised = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  return initialised;
}

size_t AppendToString(char* data, size_t size, size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

std::mutex& DefaultTlsMutex() {
  static std::mutex mutex;
  return mutex;
}
std::optional<TlsClientOptions>& DefaultTls() {
  static std::optional<TlsClientOptions> options;  // Guarded by DefaultTlsMutex().
  return options;
}

std::mutex& DefaultTokenMutex() {
  static std::mutex mutex;
  return mutex;
}
std::optional<std::string>& DefaultTokenValue() {
  static std::optional<std::string> token;  // Guarded by DefaultTokenMutex().
  return token;
}

std::string Env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

struct CurlDeleter {
  void operator()(CURL* handle) const { curl_easy_cleanup(handle); }
};
struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};

}  // namespace

TlsClientOptions DefaultTlsOptions() {
  {
    std::lock_guard<std::mutex> lock(DefaultTlsMutex());
    if (DefaultTls()) return *DefaultTls();
  }
  TlsClientOptions options;
  options.ca_bundle = Env("GPURM_CA_BUNDLE");
  options.client_cert = Env("GPURM_CLIENT_CERT");
  options.client_key = Env("GPURM_CLIENT_KEY");
  return options;
}

void SetDefaultTlsOptions(TlsClientOptions options) {
  std::lock_guard<std::mutex> lock(DefaultTlsMutex());
  DefaultTls() = std::move(options);
}

std::string DefaultToken() {
  {
    std::lock_guard<std::mutex> lock(DefaultTokenMutex());
    if (DefaultTokenValue()) return *DefaultTokenValue();
  }
  std::string token = Env("GPURM_TOKEN");
  if (!token.empty() || Env("GPURM_TOKEN_FILE").empty()) return token;
  Result<std::string> from_file = ReadBearerTokenFile(Env("GPURM_TOKEN_FILE"));
  // Unreadable: send none, and the daemon's 401 says a token is needed.
  return from_file.ok() ? *from_file : "";
}

void SetDefaultToken(std::string token) {
  std::lock_guard<std::mutex> lock(DefaultTokenMutex());
  DefaultTokenValue() = std::move(token);
}

Result<std::string> ReadBearerTokenFile(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) {
    return InvalidArgument("cannot read a token from '" + path + "'", "token_file");
  }
  const size_t start = line.find_first_not_of(" \t\r");
  const size_t end = line.find_last_not_of(" \t\r");
  if (start == std::string::npos) {
    return InvalidArgument("the first line of '" + path + "' is empty", "token_file");
  }
  return line.substr(start, end - start + 1);
}

HttpClient::HttpClient(HttpClientOptions options) : options_(std::move(options)) {
  if (!options_.tls) options_.tls = DefaultTlsOptions();
  if (!options_.token) options_.token = DefaultToken();
  while (!options_.base_url.empty() && options_.base_url.back() == '/') {
    options_.base_url.pop_back();
  }
}

Result<HttpResponse> HttpClient::Get(std::string_view path, const HttpHeaders& headers) const {
  return Send("GET", path, nullptr, headers);
}

Result<HttpResponse> HttpClient::Post(std::string_view path, const json& body,
                                      const HttpHeaders& headers) const {
  return Send("POST", path, &body, headers);
}

Result<HttpResponse> HttpClient::Delete(std::string_view path, const HttpHeaders& headers) const {
  return Send("DELETE", path, nullptr, headers);
}

Result<HttpResponse> HttpClient::Send(const char* method, std::string_view path, const json* body,
                                      const HttpHeaders& headers) const {
  const std::string url = options_.base_url + std::string(path);
  if (!EnsureCurlInitialised()) return Internal("libcurl failed to initialise");
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) return Internal("libcurl failed to create a handle");

  // Invalid UTF-8 in user input is replaced rather than thrown on.
  const std::string payload =
      body ? body->dump(-1, ' ', false, json::error_handler_t::replace) : std::string();

  curl_slist* list = nullptr;
  auto append = [&list](std::string line) {
    // A CR or LF in a value would let it inject further headers.
    for (char& c : line) {
      if (c == '\r' || c == '\n') c = ' ';
    }
    // On failure curl_slist_append returns null and leaves the list intact.
    if (curl_slist* grown = curl_slist_append(list, line.c_str())) list = grown;
  };
  append("Accept: application/json");
  if (body) append("Content-Type: application/json");
  if (!options_.token->empty()) append("Authorization: Bearer " + *options_.token);
  for (const auto& [name, value] : options_.headers) append(name + ": " + value);
  for (const auto& [name, value] : headers) append(name + ": " + value);
  const std::unique_ptr<curl_slist, SlistDeleter> header_list(list);

  std::string received;
  char error[CURL_ERROR_SIZE] = {};
  CURL* handle = curl.get();
  curl_easy_setopt(handle, CURLOPT_URL, url.c_str());
  curl_easy_setopt(handle, CURLOPT_CUSTOMREQUEST, method);
  if (body) {
    curl_easy_setopt(handle, CURLOPT_POSTFIELDS, payload.c_str());
    curl_easy_setopt(handle, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(payload.size()));
  }
  curl_easy_setopt(handle, CURLOPT_HTTPHEADER, header_list.get());
  curl_easy_setopt(handle, CURLOPT_USERAGENT, "gpurm-cli");
  curl_easy_setopt(handle, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout.count()));
  curl_easy_setopt(handle, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options_.connect_timeout.count()));
  // Timeouts without SIGALRM: safe in multi-threaded callers.
  curl_easy_setopt(handle, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, &AppendToString);
  curl_easy_setopt(handle, CURLOPT_WRITEDATA, &received);
  curl_easy_setopt(handle, CURLOPT_ERRORBUFFER, error);
  // Only the daemon's schemes: no file://, no redirects to elsewhere.
  curl_easy_setopt(handle, CURLOPT_PROTOCOLS_STR, "http,https");
  const TlsClientOptions& tls = *options_.tls;
  curl_easy_setopt(handle, CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));
  curl_easy_setopt(handle, CURLOPT_SSL_VERIFYPEER, tls.insecure ? 0L : 1L);
  curl_easy_setopt(handle, CURLOPT_SSL_VERIFYHOST, tls.insecure ? 0L : 2L);
  if (!tls.ca_bundle.empty()) curl_easy_setopt(handle, CURLOPT_CAINFO, tls.ca_bundle.c_str());
  if (!tls.client_cert.empty()) {
    curl_easy_setopt(handle, CURLOPT_SSLCERT, tls.client_cert.c_str());
    curl_easy_setopt(handle, CURLOPT_SSLCERTTYPE, "PEM");
  }
  if (!tls.client_key.empty()) curl_easy_setopt(handle, CURLOPT_SSLKEY, tls.client_key.c_str());

  const CURLcode code = curl_easy_perform(handle);
  if (code != CURLE_OK) {
    const std::string reason = error[0] != '\0' ? error : curl_easy_strerror(code);
    return Unavailable("cannot reach " + url + ": " + reason);
  }
  HttpResponse response;
  curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &response.status);
  response.body = json::parse(received, nullptr, /*allow_exceptions=*/false);
  if (response.body.is_discarded()) response.body = nullptr;
  response.raw_body = std::move(received);
  return response;
}

}  // namespace gpurm::cli
