#include "api/http_server.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "api/json_codec.h"

namespace gpurm {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

class HttpServer::Impl {
 public:
  Impl(HttpServerOptions options, const Router* router, RequestObserver observer)
      : options_(std::move(options)),
        router_(router),
        observer_(std::move(observer)),
        ioc_(options_.io_threads),
        acceptor_(asio::make_strand(ioc_)),
        workers_(static_cast<size_t>(options_.worker_threads)) {}

  Status Start(uint16_t* bound_port);
  void Stop();

  const HttpServerOptions& options() const { return options_; }
  const Router& router() const { return *router_; }
  const RequestObserver& observer() const { return observer_; }
  asio::thread_pool& workers() { return workers_; }
  bool draining() const { return draining_.load(); }
  std::atomic<int>& connections() { return connections_; }
  std::atomic<int>& in_flight() { return in_flight_; }

 private:
  void Accept();

  const HttpServerOptions options_;
  const Router* router_;
  const RequestObserver observer_;
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  asio::thread_pool workers_;
  std::vector<std::thread> io_threads_;
  std::atomic<bool> draining_{false};
  std::atomic<bool> stopped_{false};
  std::atomic<int> connections_{0};
  std::atomic<int> in_flight_{0};
};

namespace {

http::response<http::string_body> ToBeast(const HttpResponse& response, unsigned version,
                                          bool keep_alive) {
  http::response<http::string_body> out{static_cast<http::status>(response.status), version};
  out.set(http::field::server, "gpurm");
  out.set(http::field::content_type, response.content_type);
  for (const auto& [name, value] : response.headers) out.set(name, value);
  out.body() = response.body;
  out.keep_alive(keep_alive);
  out.prepare_payload();
  return out;
}

HttpResponse ErrorOnly(int status, StatusCode code, const std::string& message,
                       const std::string& field = "") {
  HttpResponse response;
  response.status = status;
  response.body = ErrorJson(Status(code, message, field)).dump();
  return response;
}

// One connection. Lives as long as an async operation holds a shared_ptr.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, HttpServer::Impl* server)
      : stream_(std::move(socket)), server_(server) {
    server_->connections().fetch_add(1);
  }
  ~Session() { server_->connections().fetch_sub(1); }

  void Run() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->Read(); });
  }

  // Answers 503 and closes: used when over the connection limit.
  void RejectBusy() {
    auto self = shared_from_this();
    asio::dispatch(stream_.get_executor(), [self] {
      self->Write(ErrorOnly(503, StatusCode::kUnavailable, "too many connections; retry later"), 11,
                  false);
    });
  }

 private:
  std::chrono::steady_clock::duration Timeout() const {
    return std::chrono::milliseconds(static_cast<int64_t>(server_->options().timeout_s * 1000));
  }

  void Read() {
    parser_.emplace();
    parser_->body_limit(server_->options().max_body_bytes);
    parser_->header_limit(server_->options().max_header_bytes);
    stream_.expires_after(Timeout());
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset) {
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
      Write(ErrorOnly(431, StatusCode::kResourceExhausted, "request headers too large"), 11, false);
      return;
    }
    if (ec) {
      Write(ErrorOnly(400, StatusCode::kInvalidArgument, "malformed HTTP request: " + ec.message()),
            11, false);
      return;
    }
    http::request<http::string_body> request = parser_->release();
    HttpRequest converted;
    converted.method = std::string(request.method_string());
    converted.SetTarget(std::string_view(request.target().data(), request.target().size()));
    for (const auto& field : request) {
      std::string name(field.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      converted.headers[name] = std::string(field.value());
    }
    converted.body = std::move(request.body());
    beast::error_code endpoint_error;
    const auto remote = stream_.socket().remote_endpoint(endpoint_error);
    if (!endpoint_error) converted.remote_address = remote.address().to_string();
    const unsigned version = request.version();
    const bool keep_alive = request.keep_alive();

    // Handlers may block (ledger fsync): run them on the worker pool, then
    // come back to this connection's strand to write.
    server_->in_flight().fetch_add(1);
    asio::post(server_->workers(), [self = shared_from_this(), converted = std::move(converted),
                                    version, keep_alive]() mutable {
      const auto start = std::chrono::steady_clock::now();
      HttpResponse response;
      try {
        response = self->server_->router().Dispatch(converted);
      } catch (const std::exception& e) {
        // A handler bug must cost one request, not the daemon.
        response =
            ErrorOnly(500, StatusCode::kInternal, std::string("internal error: ") + e.what());
      }
      const double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
              .count();
      if (self->server_->observer()) self->server_->observer()(converted, response, ms);
      asio::post(self->stream_.get_executor(),
                 [self, response = std::move(response), version, keep_alive]() {
                   self->Write(response, version, keep_alive && !self->server_->draining());
                   self->server_->in_flight().fetch_sub(1);
                 });
    });
  }

  void Write(const HttpResponse& response, unsigned version, bool keep_alive) {
    auto message =
        std::make_shared<http::response<http::string_body>>(ToBeast(response, version, keep_alive));
    stream_.expires_after(Timeout());
    http::async_write(
        stream_, *message,
        [self = shared_from_this(), message, keep_alive](beast::error_code ec, size_t) {
          if (ec || !keep_alive) {
            self->Close();
            return;
          }
          self->Read();
        });
  }

  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.socket().close(ignored);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  HttpServer::Impl* server_;
};

}  // namespace

Status HttpServer::Impl::Start(uint16_t* bound_port) {
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
  for (int i = 0; i < options_.io_threads; ++i) io_threads_.emplace_back([this] { ioc_.run(); });
  return Status::Ok();
}

void HttpServer::Impl::Accept() {
  acceptor_.async_accept(asio::make_strand(ioc_), [this](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    } else {
      auto session = std::make_shared<Session>(std::move(socket), this);
      if (connections_.load() > options_.max_connections) {
        session->RejectBusy();
      } else {
        session->Run();
      }
    }
    if (acceptor_.is_open()) Accept();
  });
}

void HttpServer::Impl::Stop() {
  if (stopped_.exchange(true)) return;
  draining_ = true;
  asio::post(acceptor_.get_executor(), [this] {
    beast::error_code ignored;
    acceptor_.close(ignored);
  });
  const auto deadline =
      std::chrono::steady_clock::now() +
      std::chrono::milliseconds(static_cast<int64_t>(options_.drain_timeout_s * 1000));
  while (in_flight_.load() > 0 && std::chrono::steady_clock::now() < deadline) {
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

void HttpServer::Stop() { impl_->Stop(); }

}  // namespace gpurm
