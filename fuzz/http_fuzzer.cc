// The HTTP layer end to end, without sockets: raw bytes go through a Beast
// request parser configured as the server configures it (HttpServerOptions'
// header and body limits), are converted to an HttpRequest exactly as the
// server's session does, and are dispatched by a Router holding the real API
// routes over a real GpuManager (static inventory of examples/, SQLite ledger
// on a temporary directory). The same bytes also go to SetTarget and
// UrlDecode directly.
//
// Besides not crashing: no request may produce a 500 (the server maps an
// escaped exception to 500, so either is a handler bug), and every JSON
// answer must be valid JSON.
#include <unistd.h>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "api/handlers.h"
#include "api/http_server.h"
#include "api/http_types.h"
#include "api/router.h"
#include "config/config.h"
#include "core/clock.h"
#include "inventory/inventory.h"
#include "inventory/providers/static/static_provider.h"
#include "ledger/sqlite_ledger.h"
#include "manager/manager.h"

namespace {

namespace beast = boost::beast;
namespace http = beast::http;

// The daemon as `gpurm serve --inventory examples/cluster-3node.yaml` wires
// it, minus the network. Built once per fuzzing process.
class Daemon {
 public:
  Daemon() {
    const char* shm = "/dev/shm";
    std::string pattern = std::string(std::filesystem::is_directory(shm) ? shm : "/tmp") +
                          "/gpurm-http-fuzzer.XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) std::abort();
    dir_ = pattern;
    auto ledger = gpurm::OpenSqliteLedger(dir_ + "/ledger.db");
    if (!ledger.ok()) Fail(ledger.status());
    ledger_ = std::move(ledger).value();
    inventory_ = std::make_unique<gpurm::Inventory>(
        std::make_unique<gpurm::StaticProvider>(GPURM_SOURCE_DIR "/examples/cluster-3node.yaml",
                                                gpurm::Config{}.gpu_memory_specs),
        &clock_, 16);
    if (gpurm::Status status = inventory_->Refresh(); !status.ok()) Fail(status);
    manager_ =
        std::make_unique<gpurm::GpuManager>(inventory_.get(), ledger_.get(), &clock_, "binpack");
    context_.manager = manager_.get();
    context_.openapi_document = R"({"openapi": "3.0.3"})";
    gpurm::RegisterApiRoutes(context_, router_);
  }
  ~Daemon() {
    manager_.reset();
    inventory_.reset();
    ledger_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  const gpurm::Router& router() const { return router_; }

  // Ends what an input allocated, so every input meets the same free cluster.
  void ReleaseAll() {
    for (const gpurm::Allocation& allocation : ledger_->List(gpurm::AllocationFilter{})) {
      (void)manager_->Release(allocation.id);
    }
  }

 private:
  [[noreturn]] static void Fail(const gpurm::Status& status) {
    std::fprintf(stderr, "http_fuzzer set-up: %s\n", status.ToString().c_str());
    std::abort();
  }

  std::string dir_;
  gpurm::SystemClock clock_;
  std::unique_ptr<gpurm::Ledger> ledger_;
  std::unique_ptr<gpurm::Inventory> inventory_;
  std::unique_ptr<gpurm::GpuManager> manager_;
  gpurm::ApiContext context_;
  gpurm::Router router_;
};

Daemon* daemon_instance = nullptr;

void DestroyDaemon() { delete daemon_instance; }

// Parses `bytes` as one request, as the session's async_read would. False
// when the server would have answered 400/413/431 without dispatching.
bool ParseRequest(std::string_view bytes, gpurm::HttpRequest* out) {
  const gpurm::HttpServerOptions options;
  http::request_parser<http::string_body> parser;
  parser.eager(true);
  parser.body_limit(options.max_body_bytes);
  parser.header_limit(options.max_header_bytes);
  beast::error_code ec;
  size_t offset = 0;
  while (offset < bytes.size() && !parser.is_done()) {
    const size_t used =
        parser.put(boost::asio::buffer(bytes.data() + offset, bytes.size() - offset), ec);
    offset += used;
    if (ec == http::error::need_more) {
      ec = {};
      if (used == 0) break;
    } else if (ec) {
      return false;
    }
  }
  if (!parser.is_done()) {
    parser.put_eof(ec);
    if (ec || !parser.is_done()) return false;
  }
  http::request<http::string_body> request = parser.release();
  // As HttpServer's session converts it.
  out->method = std::string(request.method_string());
  out->SetTarget(std::string_view(request.target().data(), request.target().size()));
  for (const auto& field : request) {
    std::string name(field.name_string());
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out->headers[name] = std::string(field.value());
  }
  out->body = std::move(request.body());
  out->remote_address = "127.0.0.1";
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  daemon_instance = new Daemon();
  std::atexit(DestroyDaemon);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  (void)gpurm::UrlDecode(bytes, true);
  (void)gpurm::UrlDecode(bytes, false);
  gpurm::HttpRequest direct;
  direct.SetTarget(bytes);

  gpurm::HttpRequest request;
  if (!ParseRequest(bytes, &request)) return 0;
  const gpurm::HttpResponse response = daemon_instance->router().Dispatch(std::move(request));
  // A cached answer's body starts with a shared prefix: check the whole body.
  const std::string body = response.FullBody();
  if (response.status >= 500 && response.status != 503) {
    std::fprintf(stderr, "HTTP %d: %s\n", response.status, body.c_str());
    std::abort();
  }
  if (response.content_type == "application/json" && !nlohmann::json::accept(body)) {
    std::fprintf(stderr, "invalid JSON answer: %s\n", body.c_str());
    std::abort();
  }
  daemon_instance->ReleaseAll();
  return 0;
}
