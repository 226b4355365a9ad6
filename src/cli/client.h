// A small blocking HTTP/JSON client for the gpurm daemon, on libcurl.
// Each request uses its own curl handle, so one HttpClient may be used from
// several threads. The only process-wide state is libcurl's one-time global
// initialisation, done on first use.
#ifndef GPURM_CLI_CLIENT_H_
#define GPURM_CLI_CLIENT_H_

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace gpurm::cli {

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

struct HttpResponse {
  long status = 0;      // HTTP status code.
  nlohmann::json body;  // The parsed body; null when empty or not JSON.
  std::string raw_body;
};

// How an https:// daemon is verified, and the client's own certificate.
// Verification is always on (peer and host name, TLS 1.2+) unless
// `insecure` is set, which only the explicit --insecure flag does.
struct TlsClientOptions {
  std::string ca_bundle;    // PEM CA certificates to trust; empty = the system's store.
  std::string client_cert;  // PEM client certificate for mutual TLS; needs client_key.
  std::string client_key;   // PEM private key of client_cert.
  bool insecure = false;    // Skip verification: anyone on the path can read and change traffic.
};

// The TLS settings of clients whose options name none: those given to
// SetDefaultTlsOptions (the CLI's --cacert, --cert, --key, --insecure), else
// the environment's GPURM_CA_BUNDLE, GPURM_CLIENT_CERT and GPURM_CLIENT_KEY.
// Thread-safe.
TlsClientOptions DefaultTlsOptions();
void SetDefaultTlsOptions(TlsClientOptions options);

// The bearer token of clients whose options name none, sent as
// "Authorization: Bearer <token>": the one given to SetDefaultToken (the
// CLI's --token or --token-file), else $GPURM_TOKEN, else the first line of
// the file $GPURM_TOKEN_FILE names. "" = send none. Thread-safe.
std::string DefaultToken();
void SetDefaultToken(std::string token);
// The token in a file: its first line, without surrounding white space.
// kInvalidArgument naming the path when unreadable or empty.
Result<std::string> ReadBearerTokenFile(const std::string& path);

struct HttpClientOptions {
  // Scheme, host and port, e.g. "http://127.0.0.1:8000". Trailing slashes are
  // ignored; request paths start with '/'.
  std::string base_url = "http://127.0.0.1:8000";
  std::chrono::milliseconds timeout{10'000};         // Whole request.
  std::chrono::milliseconds connect_timeout{3'000};  // TCP connect only.
  HttpHeaders headers;                               // Sent with every request.
  std::optional<TlsClientOptions> tls;               // Unset: DefaultTlsOptions().
  std::optional<std::string> token;                  // Unset: DefaultToken(); "": none.
};

class HttpClient {
 public:
  explicit HttpClient(HttpClientOptions options);

  // Any HTTP status, 4xx and 5xx included, is a successful exchange and comes
  // back as a response. A non-OK Status (kUnavailable) means no response was
  // received: connection refused, timeout, bad URL...; its message names the
  // URL and libcurl's reason.
  Result<HttpResponse> Get(std::string_view path, const HttpHeaders& headers = {}) const;
  Result<HttpResponse> Post(std::string_view path, const nlohmann::json& body,
                            const HttpHeaders& headers = {}) const;
  Result<HttpResponse> Delete(std::string_view path, const HttpHeaders& headers = {}) const;

  const std::string& base_url() const { return options_.base_url; }

 private:
  // `body` may be null (no request body).
  Result<HttpResponse> Send(const char* method, std::string_view path, const nlohmann::json* body,
                            const HttpHeaders& headers) const;

  HttpClientOptions options_;
};

}  // namespace gpurm::cli

#endif  // GPURM_CLI_CLIENT_H_
