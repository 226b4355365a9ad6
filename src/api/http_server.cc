#include "api/http_server.h"

#include <pthread.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <array>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "api/answer_files.h"
#include "api/json_codec.h"
#include "api/rate_limiter.h"

namespace gpurm {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// Why a new connection is turned away (answered 503 after its request), or
// kReserved: admitted beyond max_connections for the reserved paths only.
enum class Refusal { kNone, kReserved, kServerFull, kClientFull };

// Answered on reserved connections (HttpServerOptions::reserved_connections).
bool IsReservedPath(std::string_view target) {
  const std::string_view path = target.substr(0, target.find('?'));
  return path == "/api/v1/gpu/health" || path == "/metrics";
}

// Headers a request may carry once: with two, which one a check read and
// which one a handler used could differ (two Authorization headers, two
// Hosts), so both are refused.
bool MustBeSingle(const std::string& lower_case_name) {
  static constexpr std::string_view kSingle[] = {
      "authorization",   "host",         "content-type", "origin", "sec-fetch-site",
      "idempotency-key", "x-gpurm-owner"};
  return std::find(std::begin(kSingle), std::end(kSingle), lower_case_name) != std::end(kSingle);
}

// The send buffer of a connection carrying a stream: small, so that a
// subscriber that stops reading fills it soon and meets the send timeout.
constexpr int kStreamSendBufferBytes = 64 * 1024;

// A shared answer part this large is sent over plain TCP from its memory
// file (AnswerFiles) with sendfile(2); smaller answers are copied. Measured
// with wrk on loopback (2 vCPUs), against writing the part from memory:
// /nodes (14 KB) at 256 connections 80-84k -> 95k req/s, /metrics (74 KB)
// 36-38k -> 47-48k; nginx serves a 14 KB file as fast either way.
constexpr size_t kSendFileMinBytes = size_t{8} * 1024;

class HttpServer::Impl {
 public:
  Impl(HttpServerOptions options, const Router* router, RequestObserver observer)
      : options_(std::move(options)),
        router_(router),
        observer_(std::move(observer)),
        rate_limiter_(options_.rate_limit_rps,
                      options_.rate_limit_burst >= 1 ? options_.rate_limit_burst
                                                     : std::max(1.0, options_.rate_limit_rps),
                      options_.clock != nullptr ? options_.clock : &system_clock_),
        ioc_(options_.io_threads),
        acceptor_(asio::make_strand(ioc_)),
        workers_(static_cast<size_t>(options_.worker_threads)) {}

  Status Start(uint16_t* bound_port);
  void Stop();
  Status ReloadTls();

  const HttpServerOptions& options() const { return options_; }
  const Router& router() const { return *router_; }
  const RequestObserver& observer() const { return observer_; }
  asio::thread_pool& workers() { return workers_; }
  bool draining() const { return draining_.load(); }
  std::atomic<int>& in_flight() { return in_flight_; }
  RateLimiter& rate_limiter() { return rate_limiter_; }
  AnswerFiles& answer_files() { return answer_files_; }

  // Counts a new connection from `client` (empty: unknown address) and says
  // whether it is over a cap. Over max_connections it first closes the
  // longest idle connection and takes its place. Every call is matched by
  // one ReleaseConnection.
  Refusal AdmitConnection(const std::string& client);
  void ReleaseConnection(const std::string& client);

  // Connections waiting for a request, oldest first: MarkIdle registers one
  // with what closes it (it must post to the connection's strand) and
  // returns its id; UnmarkIdle (any id, also one already closed) removes it.
  uint64_t MarkIdle(std::function<void()> close);
  void UnmarkIdle(uint64_t id);

  // Counts a stream of `client`; false (counting nothing) beyond
  // max_streams_per_client. Matched by ReleaseStream when true.
  bool AdmitStream(const std::string& client);
  void ReleaseStream(const std::string& client);

  // Streamed responses in progress, so that Stop can end them. `pump` makes
  // the owning session look at its stream again (it posts to the session's
  // strand). Returns 0, registering nothing, once the server is draining.
  uint64_t RegisterStream(std::shared_ptr<ResponseStream> stream, std::function<void()> pump);
  void UnregisterStream(uint64_t id);

 private:
  struct StreamEntry {
    std::shared_ptr<ResponseStream> stream;
    std::function<void()> pump;
  };

  void Accept();
  bool StreamsDone();
  // Closes the connection idle longest; false when none is idle.
  bool CloseOldestIdle();
  std::shared_ptr<ssl::context> CurrentTlsContext();

  const HttpServerOptions options_;
  const Router* router_;
  const RequestObserver observer_;
  std::atomic<bool> draining_{false};
  std::atomic<bool> stopped_{false};
  std::atomic<int> connections_{0};
  std::atomic<int> in_flight_{0};
  SystemClock system_clock_;
  RateLimiter rate_limiter_;
  AnswerFiles answer_files_;
  // Connections per remote address. Touched once per connection (not per
  // request), so one mutex is no hot path.
  std::mutex clients_mutex_;
  std::unordered_map<std::string, int> connections_per_client_;
  std::mutex tls_mutex_;  // Guards tls_context_ (swapped by ReloadTls).
  std::shared_ptr<ssl::context> tls_context_;
  std::mutex streams_mutex_;  // Guards the three members below.
  bool streams_closing_ = false;
  uint64_t next_stream_id_ = 1;
  std::map<uint64_t, StreamEntry> streams_;
  std::unordered_map<std::string, int> streams_per_client_;  // Guarded by streams_mutex_.
  std::mutex idle_mutex_;                                    // Guards the two members below.
  uint64_t next_idle_id_ = 1;
  std::map<uint64_t, std::function<void()>> idle_;  // By id: oldest first.
  // Declared last, so destroyed first: destroying the io_context (and the
  // worker pool) destroys the handlers still queued, and with them the last
  // references to sessions, whose destructors give back their connection,
  // stream and idle slots in the members above -- which must still exist.
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  asio::thread_pool workers_;
  std::vector<std::thread> io_threads_;
};

namespace {

// How an answer's body is delimited.
enum class Framing {
  kContentLength,  // The body's size in Content-Length (none for 1xx, 204, 304).
  kChunked,        // Transfer-Encoding: chunked (a stream over HTTP/1.1).
  kUntilClose,     // The end of the connection (a stream over HTTP/1.0).
};

// True for the statuses whose answers have no body (RFC 9110, 6.4.1).
bool StatusHasNoBody(int status) { return status < 200 || status == 204 || status == 304; }

// True when `text` could end a header line early (response splitting).
bool HasLineBreak(std::string_view text) { return text.find_first_of("\r\n") != text.npos; }

// The status line and header fields of `response`, through the blank line
// that ends them. Written here rather than by Beast's serializer because it
// is on every answer's path, and a cached answer costs little besides it and
// the write. The server writes Server, Content-Type, Content-Length or
// Transfer-Encoding and Connection; `response.headers` must not repeat them.
// A field whose name or value holds a line break is left out.
std::string ResponseHead(const HttpResponse& response, unsigned version, bool keep_alive,
                         Framing framing, uint64_t body_size) {
  std::string head;
  head.reserve(160);
  head += version >= 11 ? "HTTP/1.1 " : "HTTP/1.0 ";
  head += std::to_string(response.status);
  head += ' ';
  const beast::string_view reason =
      http::obsolete_reason(static_cast<http::status>(response.status));
  head.append(reason.data(), reason.size());
  head += "\r\nServer: gpurm\r\nContent-Type: ";
  head += HasLineBreak(response.content_type) ? "application/octet-stream" : response.content_type;
  head += "\r\n";
  for (const auto& [name, value] : response.headers) {
    if (HasLineBreak(name) || HasLineBreak(value)) continue;
    head += name;
    head += ": ";
    head += value;
    head += "\r\n";
  }
  switch (framing) {
    case Framing::kContentLength:
      if (!StatusHasNoBody(response.status)) {
        head += "Content-Length: ";
        head += std::to_string(body_size);
        head += "\r\n";
      }
      break;
    case Framing::kChunked:
      head += "Transfer-Encoding: chunked\r\n";
      break;
    case Framing::kUntilClose:
      break;
  }
  // HTTP/1.1 connections persist unless closed; HTTP/1.0 ones end unless kept.
  if (version >= 11 && !keep_alive) head += "Connection: close\r\n";
  if (version < 11 && keep_alive) head += "Connection: keep-alive\r\n";
  head += "\r\n";
  return head;
}

// An answer ready to write: its head, then its body's parts -- the shared
// prefix, the per-request part, the shared suffix -- the shared ones sent
// from the cache that holds them, uncopied. Kept alive by the write.
struct OutgoingAnswer {
  // Buffers(): head, prefix, body, suffix.
  static constexpr size_t kParts = 4;
  static constexpr size_t kPrefix = 1;
  static constexpr size_t kSuffix = 3;

  OutgoingAnswer(HttpResponse response, unsigned version, bool keep_alive)
      : prefix(std::move(response.shared_prefix)),
        body(std::move(response.body)),
        suffix(std::move(response.shared_suffix)) {
    if (StatusHasNoBody(response.status)) {
      prefix.reset();
      body.clear();
      suffix.reset();
    }
    head = ResponseHead(response, version, keep_alive, Framing::kContentLength,
                        Size(prefix) + body.size() + Size(suffix));
  }

  std::array<asio::const_buffer, kParts> Buffers() const {
    return {asio::buffer(head), prefix ? asio::buffer(*prefix) : asio::const_buffer(),
            asio::buffer(body), suffix ? asio::buffer(*suffix) : asio::const_buffer()};
  }

  // Which shared part (kPrefix or kSuffix) to send from a memory file: the
  // suffix when it has at least `min_bytes`, else the prefix when it has;
  // 0 when neither.
  size_t FilePart(size_t min_bytes) const {
    if (Size(suffix) >= min_bytes) return kSuffix;
    if (Size(prefix) >= min_bytes) return kPrefix;
    return 0;
  }
  const std::shared_ptr<const std::string>& Shared(size_t part) const {
    return part == kPrefix ? prefix : suffix;
  }

  std::string head;
  std::shared_ptr<const std::string> prefix;  // May be null.
  std::string body;
  std::shared_ptr<const std::string> suffix;  // May be null.

 private:
  static size_t Size(const std::shared_ptr<const std::string>& part) {
    return part ? part->size() : 0;
  }
};

HttpResponse ErrorOnly(int status, StatusCode code, const std::string& message,
                       const std::string& field = "") {
  HttpResponse response;
  response.status = status;
  response.body = ErrorJson(Status(code, message, field))
                      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return response;
}

// One connection, over plain TCP (Stream = beast::tcp_stream) or TLS
// (Stream = TlsStream). Lives as long as an async operation holds a
// shared_ptr. Every member is used on the connection's strand only.
template <class Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
 public:
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

  // `tls_context` (TLS only) is the context `stream` was made with; the
  // session keeps it alive. `client` was counted by AdmitConnection.
  Session(Stream stream, std::shared_ptr<ssl::context> tls_context, std::string client,
          Refusal refusal, HttpServer::Impl* server)
      : tls_context_(std::move(tls_context)),
        stream_(std::move(stream)),
        server_(server),
        client_(std::move(client)),
        refusal_(refusal),
        keepalive_timer_(stream_.get_executor()),
        send_deadline_(stream_.get_executor()) {}
  ~Session() {
    // Normally ended already; this covers a drain that timed out.
    if (body_stream_) body_stream_->Close();
    if (stream_admitted_) server_->ReleaseStream(client_);
    LeaveIdle();
    server_->ReleaseConnection(client_);
  }

  void Run() {
    asio::dispatch(stream_.get_executor(), [self = this->shared_from_this()] {
      if constexpr (kTls) {
        self->Lowest().expires_after(self->Seconds(self->server_->options().timeout_s));
        self->stream_.async_handshake(ssl::stream_base::server, [self](beast::error_code ec) {
          if (ec) {
            self->Close();
            return;
          }
          self->WaitForRequest();
        });
      } else {
        // Answers sent from memory files (WriteWithFile) call sendfile(2)
        // on the socket itself, which must then not block the I/O thread.
        beast::error_code ec;
        self->Lowest().socket().non_blocking(true, ec);
        if (ec) {
          self->Close();
          return;
        }
        self->WaitForRequest();
      }
    });
  }

 private:
  beast::tcp_stream& Lowest() { return beast::get_lowest_layer(stream_); }

  static std::chrono::steady_clock::duration Seconds(double seconds) {
    return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  }
  std::chrono::steady_clock::duration Timeout() const {
    return Seconds(server_->options().timeout_s);
  }
  std::chrono::steady_clock::duration StreamSendTimeout() const {
    return Seconds(server_->options().stream_send_timeout_s);
  }

  // Waits for the first byte of the next request -- first_request_timeout_s
  // for a connection's first, idle_timeout_s for a kept-alive one's next --
  // then reads its headers under the header timeout. A connection that is
  // refused waits no longer than the first request's timeout or the header
  // timeout. While it waits, an admitted connection is idle: the server may
  // close it to make room for a new one.
  void WaitForRequest() {
    if (buffer_.size() > 0) {  // Pipelined: the next request has begun.
      ReadHeader();
      return;
    }
    if constexpr (!kTls) {
      // A busy client's next request is often here already: read without
      // waiting (the socket is non-blocking), and only a connection that
      // has nothing to read is marked idle and waits.
      if (chained_ < kMaxChained) {
        const asio::mutable_buffer space = buffer_.prepare(4096);
        ssize_t received;
        do {
          received =
              ::recv(Lowest().socket().native_handle(), space.data(), space.size(), MSG_DONTWAIT);
        } while (received < 0 && errno == EINTR);
        if (received > 0) {
          buffer_.commit(static_cast<size_t>(received));
          ReadHeader();
          return;
        }
        if (received == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
          Close();  // The client closed, or the connection failed.
          return;
        }
      }
    }
    chained_ = 0;  // What follows completes on a fresh stack.
    const HttpServerOptions& options = server_->options();
    double wait_s = requests_read_ == 0 ? options.first_request_timeout_s : options.idle_timeout_s;
    if (refusal_ != Refusal::kNone) {
      wait_s = std::min(options.first_request_timeout_s, options.header_timeout_s);
    } else {
      std::weak_ptr<Session> weak = this->weak_from_this();
      idle_id_ = server_->MarkIdle([weak, executor = stream_.get_executor()] {
        asio::post(executor, [weak] {
          if (auto self = weak.lock()) self->Close();
        });
      });
    }
    Lowest().expires_after(Seconds(wait_s));
    stream_.async_read_some(buffer_.prepare(4096),
                            [self = this->shared_from_this()](beast::error_code ec, size_t bytes) {
                              self->LeaveIdle();
                              if (ec) {
                                self->Close();
                                return;
                              }
                              self->buffer_.commit(bytes);
                              self->ReadHeader();
                            });
  }

  void LeaveIdle() {
    if (idle_id_ == 0) return;
    server_->UnmarkIdle(idle_id_);
    idle_id_ = 0;
  }

  void ReadHeader() {
    parser_.emplace();
    parser_->body_limit(server_->options().max_body_bytes);
    parser_->header_limit(server_->options().max_header_bytes);
    if (chained_ < kMaxChained) {
      ++chained_;
      beast::error_code ec;
      if (ParseBuffered(ec)) {
        OnRead(ec);
        return;
      }
    }
    chained_ = 0;  // What follows completes on a fresh stack.
    Lowest().expires_after(Seconds(server_->options().header_timeout_s));
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = this->shared_from_this()](beast::error_code ec, size_t) {
          if (ec || self->parser_->is_done()) {
            self->OnRead(ec);
            return;
          }
          self->Lowest().expires_after(self->Timeout());
          http::async_read(self->stream_, self->buffer_, *self->parser_,
                           [self](beast::error_code body_ec, size_t) { self->OnRead(body_ec); });
        });
  }

  // Parses what the buffer holds. True when that ends the request -- it is
  // whole, or `ec` says what is wrong with it (as reading it would) -- so
  // that it is answered without an asynchronous read and its timer; false
  // when more must be read (the parser keeps what it has parsed).
  bool ParseBuffered(beast::error_code& ec) {
    parser_->eager(true);
    while (buffer_.size() > 0 && !parser_->is_done()) {
      const size_t used = parser_->put(buffer_.data(), ec);
      buffer_.consume(used);
      if (ec == http::error::need_more) {
        ec = {};
        return false;
      }
      if (ec) return true;
      if (used == 0) return false;
    }
    return parser_->is_done();
  }

  void OnRead(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
        ec == asio::error::eof || ec == ssl::error::stream_truncated) {
      Close();
      return;
    }
    if (ec == http::error::body_limit) {
      Write(ErrorOnly(413, StatusCode::kResourceExhausted,
                      "request body larger than " +
                          std::to_string(server_->options().max_body_bytes) + " bytes",
                      "body"),
            11, false);
      return;
    }
    if (ec == http::error::header_limit) {
      Write(ErrorOnly(431, StatusCode::kResourceExhausted,
                      "request headers larger than " +
                          std::to_string(server_->options().max_header_bytes) + " bytes",
                      "headers"),
            11, false);
      return;
    }
    if (ec) {
      Write(ErrorOnly(400, StatusCode::kInvalidArgument, "malformed HTTP request: " + ec.message()),
            11, false);
      return;
    }
    http::request<http::string_body> request = parser_->release();
    ++requests_read_;
    const unsigned version = request.version();
    // A reserved connection serves one request of the reserved paths.
    const bool reserved_request =
        refusal_ == Refusal::kReserved && request.method() == http::verb::get &&
        IsReservedPath(std::string_view(request.target().data(), request.target().size()));
    const bool keep_alive = request.keep_alive() && refusal_ == Refusal::kNone;
    if (refusal_ != Refusal::kNone && !reserved_request) {
      // The request was read first so that closing does not reset the
      // connection under the answer.
      Write(ErrorOnly(503, StatusCode::kUnavailable,
                      refusal_ == Refusal::kClientFull
                          ? "too many connections from " + client_ + "; retry later"
                          : "too many connections to the server; retry later"),
            version, false);
      return;
    }
    if (const RateLimiter::Decision decision = server_->rate_limiter().Acquire(client_);
        !decision.allowed) {
      HttpResponse response = ErrorOnly(429, StatusCode::kResourceExhausted,
                                        "too many requests from " + client_ + "; retry after " +
                                            std::to_string(decision.retry_after_s) + " s");
      response.headers.emplace_back("Retry-After", std::to_string(decision.retry_after_s));
      Write(response, version, keep_alive && !server_->draining());
      return;
    }
    HttpRequest converted;
    converted.method.assign(request.method_string().data(), request.method_string().size());
    converted.SetTarget(std::string_view(request.target().data(), request.target().size()));
    for (const auto& field : request) {
      std::string name(field.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      auto [it, inserted] = converted.headers.try_emplace(name);
      if (!inserted && MustBeSingle(name)) {
        Write(ErrorOnly(400, StatusCode::kInvalidArgument,
                        "the header may be given once; this request repeats it",
                        std::string{field.name_string()}),
              version, false);
        return;
      }
      it->second.assign(field.value().data(), field.value().size());
    }
    converted.body = std::move(request.body());
    converted.remote_address = client_;

    // A route with a non-blocking handler is answered here, on the I/O
    // thread, when it can be (Router::DispatchNow): no hop to a worker and
    // back for an answer that is ready.
    if (std::optional<HttpResponse> now = HandleNow(converted)) {
      if (now->stream) {
        StartStream(std::move(*now), version);
      } else {
        Write(std::move(*now), version, keep_alive && !server_->draining());
      }
      return;
    }
    // Other handlers may block (ledger fsync): run them on the worker pool,
    // then come back to this connection's strand to write.
    server_->in_flight().fetch_add(1);
    asio::post(
        server_->workers(), [self = this->shared_from_this(), converted = std::move(converted),
                             version, keep_alive]() mutable {
          HttpResponse response = self->Handle(converted);
          asio::post(self->stream_.get_executor(), [self, response = std::move(response), version,
                                                    keep_alive]() mutable {
            if (response.stream) {
              self->StartStream(std::move(response), version);
            } else {
              self->Write(std::move(response), version, keep_alive && !self->server_->draining());
            }
            self->server_->in_flight().fetch_sub(1);
          });
        });
  }

  // The router's answer to `request` now, on this I/O thread, told to the
  // observer; nullopt (and nothing told) when a worker must answer it.
  std::optional<HttpResponse> HandleNow(HttpRequest& request) {
    return Observed(request, [&] { return server_->router().DispatchNow(request); });
  }

  // The router's answer to `request`, told to the observer.
  HttpResponse Handle(const HttpRequest& request) {
    return *Observed(
        request, [&] { return std::optional<HttpResponse>(server_->router().Dispatch(request)); });
  }

  // What `dispatch()` answers to `request`, told to the observer with the
  // time it took; nullopt (and nothing told) when it answers nothing. A
  // handler's exception is a 500: a handler bug must cost one request, not
  // the daemon.
  template <class Dispatch>
  std::optional<HttpResponse> Observed(const HttpRequest& request, Dispatch dispatch) {
    const auto start = std::chrono::steady_clock::now();
    std::optional<HttpResponse> response;
    try {
      response = dispatch();
    } catch (const std::exception& e) {
      response = ErrorOnly(500, StatusCode::kInternal, std::string("internal error: ") + e.what());
    }
    if (!response) return std::nullopt;
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (server_->observer()) server_->observer()(request, *response, ms);
    return response;
  }

  // --- Streamed responses (all on the connection's strand) ----------------

  void StartStream(HttpResponse response, unsigned version) {
    if (!server_->AdmitStream(client_)) {
      response.stream->Close();
      Write(ErrorOnly(429, StatusCode::kResourceExhausted,
                      "too many streams from " + client_ + " (at most " +
                          std::to_string(server_->options().max_streams_per_client) +
                          "); close one first"),
            version, false);
      return;
    }
    stream_admitted_ = true;
    std::weak_ptr<Session> weak = this->weak_from_this();
    auto executor = stream_.get_executor();
    stream_id_ = server_->RegisterStream(response.stream, [weak, executor] {
      asio::post(executor, [weak] {
        if (auto self = weak.lock()) self->PumpStream();
      });
    });
    if (stream_id_ == 0) {
      response.stream->Close();
      Write(ErrorOnly(503, StatusCode::kUnavailable, "the server is shutting down"), version,
            false);
      return;
    }
    body_stream_ = std::move(response.stream);
    chunked_ = version >= 11;
    beast::error_code ignored;
    Lowest().socket().set_option(asio::socket_base::send_buffer_size(kStreamSendBufferBytes),
                                 ignored);
    // The connection ends with the stream: say so, and delimit the body by
    // chunks (HTTP/1.1) or by closing (HTTP/1.0).
    auto head = std::make_shared<const std::string>(ResponseHead(
        response, version, false, chunked_ ? Framing::kChunked : Framing::kUntilClose, 0));
    Lowest().expires_after(StreamSendTimeout());
    asio::async_write(stream_, asio::buffer(*head),
                      [self = this->shared_from_this(), head](beast::error_code ec, size_t) {
                        if (ec) {
                          self->EndStream();
                          return;
                        }
                        self->OnStreamHeaderWritten();
                      });
  }

  void OnStreamHeaderWritten() {
    Lowest().expires_never();
    header_written_ = true;
    std::weak_ptr<Session> weak = this->weak_from_this();
    auto executor = stream_.get_executor();
    body_stream_->Start([weak, executor] {
      asio::post(executor, [weak] {
        if (auto self = weak.lock()) self->PumpStream();
      });
    });
    // The client sends nothing more on a stream; a completed read means it
    // closed the connection (or broke protocol): either way the stream ends.
    stream_.async_read_some(asio::buffer(probe_),
                            [self = this->shared_from_this()](beast::error_code, size_t) {
                              if (self->stream_ended_) return;
                              self->body_stream_->Close();
                              self->PumpStream();
                            });
    ArmKeepAlive();
    PumpStream();
  }

  void PumpStream() {
    if (!header_written_ || writing_ || stream_finishing_ || stream_ended_) return;
    bool done = false;
    std::string data = body_stream_->Pull(&done);
    if (!data.empty()) {
      WriteStreamData(std::move(data), done);
    } else if (done) {
      FinishStream();
    }
  }

  void WriteStreamData(std::string data, bool then_finish) {
    writing_ = true;
    auto payload = std::make_shared<std::string>(std::move(data));
    auto on_written = [self = this->shared_from_this(), payload, then_finish](beast::error_code ec,
                                                                              size_t) {
      self->writing_ = false;
      self->Lowest().expires_never();
      if (ec) {
        self->EndStream();
        return;
      }
      if (then_finish) {
        self->FinishStream();
        return;
      }
      self->ArmKeepAlive();
      self->PumpStream();
    };
    Lowest().expires_after(StreamSendTimeout());
    if (chunked_) {
      asio::async_write(stream_, http::make_chunk(asio::buffer(*payload)), std::move(on_written));
    } else {
      asio::async_write(stream_, asio::buffer(*payload), std::move(on_written));
    }
  }

  void ArmKeepAlive() {
    keepalive_timer_.expires_after(Seconds(server_->options().stream_keepalive_s));
    keepalive_timer_.async_wait([self = this->shared_from_this()](beast::error_code ec) {
      if (ec || self->writing_ || self->stream_finishing_ || self->stream_ended_) return;
      self->WriteStreamData(self->body_stream_->KeepAlive(), false);
    });
  }

  // The stream has nothing more: end the body properly, then the connection.
  void FinishStream() {
    if (stream_finishing_) return;
    stream_finishing_ = true;
    keepalive_timer_.cancel();
    if (!chunked_) {
      EndStream();
      return;
    }
    writing_ = true;
    Lowest().expires_after(StreamSendTimeout());
    asio::async_write(stream_, http::make_chunk_last(),
                      [self = this->shared_from_this()](beast::error_code, size_t) {
                        self->writing_ = false;
                        self->EndStream();
                      });
  }

  void EndStream() {
    if (stream_ended_) return;
    stream_ended_ = true;
    keepalive_timer_.cancel();
    body_stream_->Close();
    server_->UnregisterStream(stream_id_);
    if (stream_admitted_) server_->ReleaseStream(client_);
    stream_admitted_ = false;
    Close();
  }

  void Write(HttpResponse response, unsigned version, bool keep_alive) {
    auto answer = std::make_shared<const OutgoingAnswer>(std::move(response), version, keep_alive);
    if constexpr (!kTls) {
      if (const size_t part = answer->FilePart(kSendFileMinBytes); part != 0) {
        if (std::shared_ptr<const AnswerFile> file =
                server_->answer_files().For(answer->Shared(part))) {
          WriteWithFile(std::move(answer), std::move(file), part, keep_alive);
          return;
        }
      }
      WriteNow(std::move(answer), keep_alive);
      return;
    }
    Lowest().expires_after(Timeout());
    asio::async_write(stream_, answer->Buffers(),
                      [self = this->shared_from_this(), answer, keep_alive](
                          beast::error_code ec, size_t) { self->AfterAnswer(!ec, keep_alive); });
  }

  // Next after an answer: the connection's next request, or its end.
  void AfterAnswer(bool written, bool keep_alive) {
    if (!written || !keep_alive) {
      Close();
      return;
    }
    WaitForRequest();
  }

  // --- Answers written by the session itself (plain TCP; strand only) -----

  // Writes `buffers` with one sendmsg(2) (`flags` added), as much as the
  // socket's buffer takes now. Returns the bytes written, or nullopt on an
  // error (the connection is done).
  std::optional<size_t> SendNow(
      const std::array<asio::const_buffer, OutgoingAnswer::kParts>& buffers, int flags) {
    std::array<iovec, OutgoingAnswer::kParts> iov{};
    size_t iov_count = 0;
    for (const asio::const_buffer& buffer : buffers) {
      if (buffer.size() == 0) continue;
      iov[iov_count++] = {const_cast<void*>(buffer.data()), buffer.size()};
    }
    if (iov_count == 0) return 0;
    msghdr message{};
    message.msg_iov = iov.data();
    message.msg_iovlen = iov_count;
    ssize_t sent;
    do {
      // Non-blocking since Run().
      sent = ::sendmsg(Lowest().socket().native_handle(), &message,
                       flags | MSG_NOSIGNAL | MSG_DONTWAIT);
    } while (sent < 0 && errno == EINTR);
    if (sent >= 0) return static_cast<size_t>(sent);
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    return std::nullopt;
  }

  // Writes `buffers` (parts of `answer`, which the write keeps alive), then
  // calls then(written). Most fit the socket's buffer and leave at once in
  // one sendmsg, without the stream's write operation and its timer (the
  // largest cost of a small cached answer after the system calls); what
  // the buffer does not take is written as the stream writes, waiting for
  // room under the write timeout.
  template <class Then>
  void SendThen(std::shared_ptr<const OutgoingAnswer> answer,
                const std::array<asio::const_buffer, OutgoingAnswer::kParts>& buffers, int flags,
                Then then) {
    const std::optional<size_t> sent = SendNow(buffers, flags);
    if (!sent || *sent == asio::buffer_size(buffers)) {
      then(sent.has_value());
      return;
    }
    beast::buffers_suffix<std::array<asio::const_buffer, OutgoingAnswer::kParts>> remaining(
        buffers);
    remaining.consume(*sent);
    Lowest().expires_after(Timeout());
    asio::async_write(stream_, remaining,
                      [answer = std::move(answer), then = std::move(then)](
                          beast::error_code ec, size_t) mutable { then(!ec); });
  }

  // Writes `answer` from memory.
  void WriteNow(std::shared_ptr<const OutgoingAnswer> answer, bool keep_alive) {
    const std::array<asio::const_buffer, OutgoingAnswer::kParts> buffers = answer->Buffers();
    SendThen(std::move(answer), buffers, 0,
             [self = this->shared_from_this(), keep_alive](bool written) {
               self->AfterAnswer(written, keep_alive);
             });
  }

  // Writes `answer` with its shared part `part` sent from `file` (which
  // holds it) by sendfile(2): the parts before it in one write flagged
  // MSG_MORE, so that they leave with the file's first bytes, the file, then
  // the parts after it. Most answers leave at once; one that meets a full
  // socket buffer while sending the file waits for room under a deadline --
  // the write timeout, as for any answer -- since those waits are not the
  // stream's operations.
  void WriteWithFile(std::shared_ptr<const OutgoingAnswer> answer,
                     std::shared_ptr<const AnswerFile> file, size_t part, bool keep_alive) {
    const std::array<asio::const_buffer, OutgoingAnswer::kParts> before =
        OnlyParts(answer->Buffers(), 0, part);
    SendThen(
        answer, before, MSG_MORE,
        [self = this->shared_from_this(), answer, file, part, keep_alive](bool written) mutable {
          if (!written) {
            self->EndFileAnswer(false, keep_alive);
            return;
          }
          self->SendFileFrom(std::move(answer), std::move(file), part, 0, keep_alive);
        });
  }

  // `buffers` with those outside [first, end) emptied.
  static std::array<asio::const_buffer, OutgoingAnswer::kParts> OnlyParts(
      std::array<asio::const_buffer, OutgoingAnswer::kParts> buffers, size_t first, size_t end) {
    for (size_t i = 0; i < buffers.size(); ++i) {
      if (i < first || i >= end) buffers[i] = asio::const_buffer();
    }
    return buffers;
  }

  // Arms the deadline of the answer being sent from a file, once per answer.
  void SetFileAnswerDeadline() {
    if (file_answer_deadline_set_) return;
    file_answer_deadline_set_ = true;
    const uint64_t generation = ++file_answer_generation_;
    send_deadline_.expires_after(Timeout());
    send_deadline_.async_wait([weak = this->weak_from_this(), generation](beast::error_code e) {
      auto self = weak.lock();
      if (e || !self || self->file_answer_generation_ != generation) return;
      self->Close();  // Fails the pending wait or write, which ends the answer.
    });
  }

  // Sends `file` (the answer's part `part`) from `offset` on, waiting for
  // room in the socket's buffer whenever it is full, then the parts after it.
  void SendFileFrom(std::shared_ptr<const OutgoingAnswer> answer,
                    std::shared_ptr<const AnswerFile> file, size_t part, off_t offset,
                    bool keep_alive) {
    tcp::socket& socket = Lowest().socket();
    while (static_cast<size_t>(offset) < file->size()) {
      const ssize_t n = ::sendfile(socket.native_handle(), file->fd(), &offset,
                                   file->size() - static_cast<size_t>(offset));
      if (n > 0 || (n < 0 && errno == EINTR)) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        SetFileAnswerDeadline();
        socket.async_wait(
            tcp::socket::wait_write, [self = this->shared_from_this(), answer, file, part, offset,
                                      keep_alive](beast::error_code ec) mutable {
              if (ec) {
                self->EndFileAnswer(false, keep_alive);
                return;
              }
              self->SendFileFrom(std::move(answer), std::move(file), part, offset, keep_alive);
            });
        return;
      }
      EndFileAnswer(false, keep_alive);  // An error, or a file shorter than it said.
      return;
    }
    const auto after = OnlyParts(answer->Buffers(), part + 1, OutgoingAnswer::kParts);
    SendThen(std::move(answer), after, 0,
             [self = this->shared_from_this(), keep_alive](bool written) {
               self->EndFileAnswer(written, keep_alive);
             });
  }

  void EndFileAnswer(bool written, bool keep_alive) {
    if (file_answer_deadline_set_) {
      ++file_answer_generation_;  // A deadline firing late finds another generation.
      send_deadline_.cancel();
      file_answer_deadline_set_ = false;
    }
    AfterAnswer(written, keep_alive);
  }

  // Over TLS no close_notify is sent: every answer is delimited by its
  // Content-Length or chunking (or, for an HTTP/1.0 stream, by the end of
  // the stream's events), and waiting for the peer's close_notify would hold
  // the connection open at the client's pleasure.
  void Close() {
    beast::error_code ignored;
    Lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
    Lowest().socket().close(ignored);
  }

  std::shared_ptr<ssl::context> tls_context_;  // Outlives stream_ (declared first).
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  HttpServer::Impl* server_;
  const std::string client_;  // Remote address; "" when unknown.
  const Refusal refusal_;
  uint64_t requests_read_ = 0;
  // Requests read and answered one after another on this call stack
  // (WaitForRequest and ReadHeader without waiting): bounded, so that a
  // client pipelining many requests cannot grow the stack; reset when the
  // session waits for an asynchronous operation.
  static constexpr int kMaxChained = 16;
  int chained_ = 0;
  uint64_t idle_id_ = 0;  // Non-zero while marked idle (MarkIdle).

  // Streamed response state; strand only.
  std::shared_ptr<ResponseStream> body_stream_;
  uint64_t stream_id_ = 0;
  asio::steady_timer keepalive_timer_;
  // The deadline of an answer sent from a memory file, and which answer it
  // is for (WriteWithFile).
  asio::steady_timer send_deadline_;
  uint64_t file_answer_generation_ = 0;
  bool file_answer_deadline_set_ = false;
  std::array<char, 1> probe_{};
  bool chunked_ = false;
  bool header_written_ = false;
  bool writing_ = false;
  bool stream_finishing_ = false;
  bool stream_ended_ = false;
  bool stream_admitted_ = false;  // Counted by AdmitStream.
};

}  // namespace

Status HttpServer::Impl::Start(uint16_t* bound_port) {
  if (options_.tls.enabled()) {
    Result<std::shared_ptr<ssl::context>> context = MakeServerTlsContext(options_.tls);
    if (!context.ok()) return context.status();
    tls_context_ = *std::move(context);
  }
  beast::error_code ec;
  const auto address = asio::ip::make_address(options_.host, ec);
  if (ec)
    return Unavailable("cannot parse listen address \"" + options_.host + "\": " + ec.message());
  const tcp::endpoint endpoint(address, options_.port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Unavailable("cannot listen on " + options_.host + ":" + std::to_string(options_.port) +
                       ": " + ec.message());
  }
  *bound_port = acceptor_.local_endpoint().port();
  Accept();
  for (int i = 0; i < options_.io_threads; ++i) {
    io_threads_.emplace_back([this] {
      // sendfile(2) to a connection the client closed raises SIGPIPE in the
      // sending thread (it takes no MSG_NOSIGNAL); blocked here, the call
      // fails with EPIPE instead, whatever the process does with the signal.
      sigset_t pipe;
      sigemptyset(&pipe);
      sigaddset(&pipe, SIGPIPE);
      pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
      ioc_.run();
    });
  }
  return Status::Ok();
}

void HttpServer::Impl::Accept() {
  // A connection's handlers run one at a time: on a strand of its own with
  // several I/O threads; with one, the thread is that strand (and a strand's
  // lock on every handler would be pure cost).
  const asio::any_io_executor executor = options_.io_threads > 1
                                             ? asio::any_io_executor(asio::make_strand(ioc_))
                                             : asio::any_io_executor(ioc_.get_executor());
  acceptor_.async_accept(executor, [this](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    } else {
      beast::error_code endpoint_error;
      const auto remote = socket.remote_endpoint(endpoint_error);
      std::string client = endpoint_error ? "" : remote.address().to_string();
      // An answer may leave in more than one write (head, file, rest): Nagle's
      // algorithm would hold the last one for the client's delayed ACK (40 ms).
      beast::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      const Refusal refusal = AdmitConnection(client);
      if (std::shared_ptr<ssl::context> context = CurrentTlsContext()) {
        auto session = std::make_shared<Session<TlsStream>>(
            TlsStream(beast::tcp_stream(std::move(socket)), *context), context, std::move(client),
            refusal, this);
        session->Run();
      } else {
        auto session = std::make_shared<Session<beast::tcp_stream>>(
            beast::tcp_stream(std::move(socket)), nullptr, std::move(client), refusal, this);
        session->Run();
      }
    }
    if (acceptor_.is_open()) Accept();
  });
}

Refusal HttpServer::Impl::AdmitConnection(const std::string& client) {
  const int total = connections_.fetch_add(1) + 1;
  int from_client = 0;
  if (!client.empty()) {
    std::lock_guard<std::mutex> lock(clients_mutex_);
    from_client = ++connections_per_client_[client];
  }
  if (options_.max_connections_per_client > 0 &&
      from_client > options_.max_connections_per_client) {
    return Refusal::kClientFull;
  }
  if (total <= options_.max_connections) return Refusal::kNone;
  // The closed connection leaves soon and this one takes its slot (the
  // count is over the cap by the closings in flight, never for long).
  if (CloseOldestIdle()) return Refusal::kNone;
  if (total <= options_.max_connections + options_.reserved_connections) return Refusal::kReserved;
  return Refusal::kServerFull;
}

uint64_t HttpServer::Impl::MarkIdle(std::function<void()> close) {
  std::lock_guard<std::mutex> lock(idle_mutex_);
  const uint64_t id = next_idle_id_++;
  idle_.emplace(id, std::move(close));
  return id;
}

void HttpServer::Impl::UnmarkIdle(uint64_t id) {
  std::lock_guard<std::mutex> lock(idle_mutex_);
  idle_.erase(id);
}

bool HttpServer::Impl::CloseOldestIdle() {
  std::function<void()> close;
  {
    std::lock_guard<std::mutex> lock(idle_mutex_);
    if (idle_.empty()) return false;
    close = std::move(idle_.begin()->second);
    idle_.erase(idle_.begin());
  }
  close();
  return true;
}

bool HttpServer::Impl::AdmitStream(const std::string& client) {
  std::lock_guard<std::mutex> lock(streams_mutex_);
  int& count = streams_per_client_[client];
  if (options_.max_streams_per_client > 0 && count >= options_.max_streams_per_client) {
    if (count == 0) streams_per_client_.erase(client);
    return false;
  }
  ++count;
  return true;
}

void HttpServer::Impl::ReleaseStream(const std::string& client) {
  std::lock_guard<std::mutex> lock(streams_mutex_);
  const auto it = streams_per_client_.find(client);
  if (it != streams_per_client_.end() && --it->second <= 0) streams_per_client_.erase(it);
}

void HttpServer::Impl::ReleaseConnection(const std::string& client) {
  connections_.fetch_sub(1);
  if (client.empty()) return;
  std::lock_guard<std::mutex> lock(clients_mutex_);
  const auto it = connections_per_client_.find(client);
  if (it != connections_per_client_.end() && --it->second <= 0) connections_per_client_.erase(it);
}

std::shared_ptr<ssl::context> HttpServer::Impl::CurrentTlsContext() {
  std::lock_guard<std::mutex> lock(tls_mutex_);
  return tls_context_;
}

Status HttpServer::Impl::ReloadTls() {
  if (!options_.tls.enabled()) return Status::Ok();
  // Built outside the lock: loading files must not stall accepting.
  Result<std::shared_ptr<ssl::context>> context = MakeServerTlsContext(options_.tls);
  if (!context.ok()) return context.status();
  std::lock_guard<std::mutex> lock(tls_mutex_);
  tls_context_ = *std::move(context);
  return Status::Ok();
}

uint64_t HttpServer::Impl::RegisterStream(std::shared_ptr<ResponseStream> stream,
                                          std::function<void()> pump) {
  std::lock_guard<std::mutex> lock(streams_mutex_);
  if (streams_closing_) return 0;
  const uint64_t id = next_stream_id_++;
  streams_.emplace(id, StreamEntry{std::move(stream), std::move(pump)});
  return id;
}

void HttpServer::Impl::UnregisterStream(uint64_t id) {
  std::lock_guard<std::mutex> lock(streams_mutex_);
  streams_.erase(id);
}

bool HttpServer::Impl::StreamsDone() {
  std::lock_guard<std::mutex> lock(streams_mutex_);
  return streams_.empty();
}

void HttpServer::Impl::Stop() {
  if (stopped_.exchange(true)) return;
  draining_ = true;
  asio::post(acceptor_.get_executor(), [this] {
    beast::error_code ignored;
    acceptor_.close(ignored);
  });
  // Streams would never finish by themselves: end them. After Close no
  // stream wakes a session, so nothing posts to the I/O context once it
  // stops below.
  std::vector<StreamEntry> open_streams;
  {
    std::lock_guard<std::mutex> lock(streams_mutex_);
    streams_closing_ = true;
    for (const auto& [id, entry] : streams_) open_streams.push_back(entry);
  }
  for (const StreamEntry& entry : open_streams) {
    entry.stream->Close();
    entry.pump();
  }
  const auto deadline =
      std::chrono::steady_clock::now() +
      std::chrono::milliseconds(static_cast<int64_t>(options_.drain_timeout_s * 1000));
  while ((in_flight_.load() > 0 || !StreamsDone()) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  workers_.join();
  ioc_.stop();
  for (std::thread& thread : io_threads_) {
    if (thread.joinable()) thread.join();
  }
}

HttpServer::HttpServer(HttpServerOptions options, const Router* router, RequestObserver observer)
    : impl_(std::make_unique<Impl>(std::move(options), router, std::move(observer))) {}

HttpServer::~HttpServer() { Stop(); }

Status HttpServer::Start() { return impl_->Start(&bound_port_); }

Status HttpServer::ReloadTls() { return impl_->ReloadTls(); }

void HttpServer::Stop() { impl_->Stop(); }

}  // namespace gpurm
