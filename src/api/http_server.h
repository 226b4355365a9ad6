// HttpServer: Boost.Beast listener -> session -> Router. I/O threads read,
// write and answer what is ready without blocking (routes added with
// Router::AddNonBlocking, e.g. a cached /status); every other handler runs on
// a separate worker pool, so a slow ledger write never stalls other
// connections. Both paths pass the same limits, rate limiter, guard and
// token check. Limits everywhere: body and header
// size, idle/header/read/write timeouts (slowloris), connection count in
// all and per client address, request rate per client address. Every limit
// that can be answered is answered with a JSON error (413, 431, 429 with
// Retry-After, 503) and never with a hang; a connection that times out is
// closed (it has not sent a request that could be answered).
//
// TLS (optional): with `tls.cert_file` set, every connection is TLS 1.2+.
// ReloadTls() builds a new context from the same files; connections
// accepted afterwards use it, open ones keep theirs. A reload that fails
// keeps the old context.
//
// Hostile clients (docs/SECURITY.md): a connection must start its first
// request within first_request_timeout_s of accept. When every slot is
// taken, a new connection closes the connection that has been idle longest
// (waiting for a first or next request) and takes its place; when none is
// idle, up to reserved_connections more are admitted for GET
// /api/v1/gpu/health and /metrics only, so liveness and metrics answer while
// slow readers and streams fill the pool. Each remote address may hold
// max_streams_per_client streams (429 beyond); a stream whose write the
// client does not take within stream_send_timeout_s is dropped. A request
// repeating a header that must be single (Authorization, Host,
// Content-Type, Origin, Idempotency-Key, X-Gpurm-Owner, ...) is refused with
// 400 naming it, rather than one copy silently winning.
//
// A handler may answer with a streamed body (HttpResponse::stream, e.g.
// Server-Sent Events): the session writes the headers, then whatever the
// stream has ready each time it wakes the session (chunked for HTTP/1.1,
// until close for HTTP/1.0), and the stream's keep-alive payload after
// stream_keepalive_s of quiet. Nothing on that path blocks an I/O thread.
// The stream ends when it says so, when the client closes the connection,
// or when the server drains.
#ifndef GPURM_API_HTTP_SERVER_H_
#define GPURM_API_HTTP_SERVER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "api/http_types.h"
#include "api/router.h"
#include "api/tls_context.h"
#include "core/clock.h"
#include "core/status.h"

namespace gpurm {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8000;  // 0 = any free port (see HttpServer::port()).
  int io_threads = 1;
  int worker_threads = 2;
  uint64_t max_body_bytes = 1 << 20;
  uint32_t max_header_bytes = 16 * 1024;
  // Reading a request body, writing a response, a TLS handshake.
  double timeout_s = 30;
  // From a request's first byte to the end of its headers: a client that
  // trickles headers (slowloris) is cut off after this.
  double header_timeout_s = 10;
  // How long a connection may wait for its next request.
  double idle_timeout_s = 60;
  int max_connections = 1024;          // Beyond this, new connections get 503.
  int max_connections_per_client = 0;  // Per remote address; 0 = no cap. 503 beyond.
  // Token bucket per remote address: requests per second and burst; rate 0 =
  // no limit. Beyond it: 429 with Retry-After.
  double rate_limit_rps = 0;
  double rate_limit_burst = 0;  // < 1 is taken as max(1, rate_limit_rps).
  TlsFiles tls;                 // cert_file empty = plain HTTP.
  double drain_timeout_s = 10;  // Stop() waits this long for in-flight requests.
  // A streamed response (HttpResponse::stream) quiet for this long gets the
  // stream's keep-alive payload.
  double stream_keepalive_s = 15;
  // Time for the rate limiter; null = the system clock. Must outlive the server.
  const Clock* clock = nullptr;

  // --- Hostile clients (see above) ---
  double first_request_timeout_s = 5;
  int reserved_connections = 8;
  int max_streams_per_client = 8;  // 0 = no cap.
  double stream_send_timeout_s = 10;
};

// Called after each response is produced, on the thread that produced it:
// an I/O thread for answers given there (Router::DispatchNow), so it must
// not block; a worker thread for the others.
using RequestObserver =
    std::function<void(const HttpRequest&, const HttpResponse&, double duration_ms)>;

class HttpServer {
 public:
  // `router` must outlive the server.
  HttpServer(HttpServerOptions options, const Router* router, RequestObserver observer = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts serving. kUnavailable when the address cannot be bound;
  // kInvalidArgument naming the file when the TLS files cannot be loaded.
  Status Start();
  // Rebuilds the TLS context from options().tls's files for connections
  // accepted from now on. On error the current context stays in use and the
  // error says why. OK and nothing done without TLS. Thread-safe.
  Status ReloadTls();
  // The bound port (useful with port 0).
  uint16_t port() const { return bound_port_; }
  // Graceful: stops accepting, closes streamed responses (their clients get
  // a properly ended body), lets requests in flight finish (bounded by
  // drain_timeout_s), then stops all threads. Idempotent.
  void Stop();

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
  uint16_t bound_port_ = 0;
};

}  // namespace gpurm

#endif  // GPURM_API_HTTP_SERVER_H_
