// TLS and the HTTP limits against the real daemon binary.
//
// TLS: a test CA and server/client certificates are generated at test time
// with the openssl command (no private key is committed). The daemon serves
// https; the CLI and the C++ client succeed with the CA and fail
// verification without it; SIGHUP makes new connections get a new
// certificate (told apart by serial number) while an open connection keeps
// working; a bad certificate on reload keeps the old one; with a client CA,
// a client without a certificate is refused; the event stream works over
// TLS. Limits: per-client rate limit (429, Retry-After, JSON error),
// per-client connection cap (503 JSON, other addresses unaffected), and a
// slowloris client cut off by the header timeout.
//
// No timed assertions: waits are bounded by generous deadlines and only
// outcomes are checked.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli/client.h"
#include "support/daemon_process.h"
#include "support/eventually.h"
#include "support/loopback.h"
#include "support/run_command.h"
#include "support/test_pki.h"

namespace gpurm {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using testing::TestPki;
using testing::WriteFile;

uint16_t PortOf(const std::string& base_url) {
  return static_cast<uint16_t>(std::stoi(base_url.substr(base_url.rfind(':') + 1)));
}

struct RawResponse {
  int status = 0;  // 0: no (complete) response.
  std::string head;
  std::string body;
  std::string Header(const std::string& name) const {
    const std::string key = "\r\n" + name + ": ";
    const size_t at = head.find(key);
    if (at == std::string::npos) return "";
    const size_t start = at + key.size();
    return head.substr(start, head.find("\r\n", start) - start);
  }
};

// Reads one response (Content-Length delimited) with `read`, which returns
// like recv(2).
template <class Read>
RawResponse ReadResponse(Read read) {
  std::string data;
  char buffer[4096];
  size_t head_end = std::string::npos;
  while ((head_end = data.find("\r\n\r\n")) == std::string::npos) {
    const int n = read(buffer, sizeof(buffer));
    if (n <= 0) return {};
    data.append(buffer, static_cast<size_t>(n));
  }
  RawResponse response;
  response.head = data.substr(0, head_end + 2);
  response.body = data.substr(head_end + 4);
  const std::string length = response.Header("Content-Length");
  const size_t want = length.empty() ? 0 : std::stoul(length);
  while (response.body.size() < want) {
    const int n = read(buffer, sizeof(buffer));
    if (n <= 0) return {};
    response.body.append(buffer, static_cast<size_t>(n));
  }
  response.status = std::stoi(response.head.substr(9, 3));
  return response;
}

RawResponse PlainRequest(int fd, const std::string& request) {
  ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  return ReadResponse([fd](char* buffer, int size) {
    return static_cast<int>(::recv(fd, buffer, static_cast<size_t>(size), 0));
  });
}

const char kHealthRequest[] = "GET /api/v1/gpu/health HTTP/1.1\r\nHost: localhost\r\n\r\n";

// A TLS connection made with OpenSSL directly, to see the certificate the
// server presents. Verification is off here on purpose: the tests compare
// serial numbers; verification itself is tested through the real clients.
class TlsConnection {
 public:
  // `cert`/`key`: the client's certificate, or empty.
  explicit TlsConnection(uint16_t port, const std::string& cert = "", const std::string& key = "")
      : context_(SSL_CTX_new(TLS_client_method())) {
    if (!cert.empty()) {
      SSL_CTX_use_certificate_chain_file(context_.get(), cert.c_str());
      SSL_CTX_use_PrivateKey_file(context_.get(), key.c_str(), SSL_FILETYPE_PEM);
    }
    fd_ = testing::ConnectLoopback(port);
    ssl_.reset(SSL_new(context_.get()));
    SSL_set_fd(ssl_.get(), fd_);
    connected_ = fd_ >= 0 && SSL_connect(ssl_.get()) == 1;
    ERR_clear_error();
  }
  ~TlsConnection() {
    ssl_.reset();
    if (fd_ >= 0) ::close(fd_);
  }

  bool connected() const { return connected_; }

  // The server certificate's serial number, upper-case hex.
  std::string PeerSerial() const {
    X509* cert = SSL_get1_peer_certificate(ssl_.get());
    if (cert == nullptr) return "";
    BIGNUM* number = ASN1_INTEGER_to_BN(X509_get_serialNumber(cert), nullptr);
    char* hex = BN_bn2hex(number);
    std::string serial = hex;
    OPENSSL_free(hex);
    BN_free(number);
    X509_free(cert);
    return serial;
  }

  int Read(char* buffer, int size) { return SSL_read(ssl_.get(), buffer, size); }
  int Write(const std::string& data) {
    return SSL_write(ssl_.get(), data.data(), static_cast<int>(data.size()));
  }

  RawResponse Request(const std::string& request) {
    if (Write(request) <= 0) return {};
    return ReadResponse([this](char* buffer, int size) { return Read(buffer, size); });
  }

 private:
  struct ContextDeleter {
    void operator()(SSL_CTX* context) const { SSL_CTX_free(context); }
  };
  struct SslDeleter {
    void operator()(SSL* ssl) const { SSL_free(ssl); }
  };
  std::unique_ptr<SSL_CTX, ContextDeleter> context_;
  std::unique_ptr<SSL, SslDeleter> ssl_;
  int fd_ = -1;
  bool connected_ = false;
};

cli::HttpClient ClientFor(const std::string& base_url, cli::TlsClientOptions tls) {
  cli::HttpClientOptions options;
  options.base_url = base_url;
  options.tls = std::move(tls);
  return cli::HttpClient(options);
}

class TlsE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("gpurm-tls");
    pki_ = std::make_unique<TestPki>(dir_);
    ASSERT_NO_FATAL_FAILURE(pki_->MakeCa("ca"));
    ASSERT_NO_FATAL_FAILURE(pki_->MakeLeaf("server", "ca", "1001", "serverAuth"));
  }
  void TearDown() override {
    daemon_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Starts the daemon over TLS with `extra_tls` lines under server.tls and
  // `extra_server` lines under server.
  void StartDaemon(const std::string& extra_tls = "", const std::string& extra_server = "") {
    const std::string config = dir_ + "/gpu_config.yaml";
    WriteFile(config, "server:\n" + extra_server +
                          "  tls:\n    cert_file: " + pki_->Path("server.pem") +
                          "\n    key_file: " + pki_->Path("server.key") + "\n" + extra_tls);
    daemon_ = std::make_unique<testing::DaemonProcess>(dir_, testing::ExampleInventoryArgs());
    daemon_->set_config(config);
    cli::TlsClientOptions tls;
    tls.ca_bundle = pki_->Path("ca.pem");
    if (!extra_tls.empty()) {
      tls.client_cert = pki_->Path("client.pem");
      tls.client_key = pki_->Path("client.key");
    }
    daemon_->set_tls(tls);
    std::string error;
    ASSERT_TRUE(daemon_->Start(&error)) << error;
  }

  uint16_t port() const { return PortOf(daemon_->base_url()); }

  testing::CommandResult Cli(std::vector<std::string> args) {
    std::vector<std::string> argv = {testing::GpurmBinary(), "--url", daemon_->base_url()};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::RunCommand(argv, std::chrono::seconds(60));
  }

  std::string dir_;
  std::unique_ptr<TestPki> pki_;
  std::unique_ptr<testing::DaemonProcess> daemon_;
};

TEST_F(TlsE2eTest, ClientsWithTheCaSucceedAndWithoutItFailVerification) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  ASSERT_EQ(daemon_->base_url().rfind("https://", 0), 0u);

  cli::TlsClientOptions trusted;
  trusted.ca_bundle = pki_->Path("ca.pem");
  Result<cli::HttpResponse> ok = ClientFor(daemon_->base_url(), trusted).Get("/api/v1/gpu/nodes");
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_EQ(ok->status, 200);

  // The system trust store does not know the test CA.
  Result<cli::HttpResponse> untrusted =
      ClientFor(daemon_->base_url(), cli::TlsClientOptions{}).Get("/api/v1/gpu/nodes");
  ASSERT_FALSE(untrusted.ok());
  EXPECT_THAT(untrusted.status().message(), HasSubstr("certificate"));

  // Plain HTTP to the TLS port gets no answer a client could take for one.
  Result<cli::HttpResponse> plain =
      ClientFor("http://127.0.0.1:" + std::to_string(port()), trusted).Get("/api/v1/gpu/nodes");
  EXPECT_TRUE(!plain.ok() || plain->status != 200);

  // The CLI: --cacert or GPURM_CA_BUNDLE; --insecure only when asked.
  const testing::CommandResult with_ca = Cli({"--cacert", pki_->Path("ca.pem"), "status"});
  EXPECT_EQ(with_ca.exit_code, 0) << with_ca.output;
  const testing::CommandResult without_ca = Cli({"status"});
  EXPECT_NE(without_ca.exit_code, 0) << without_ca.output;
  EXPECT_THAT(without_ca.output, HasSubstr("certificate"));
  const testing::CommandResult insecure = Cli({"--insecure", "status"});
  EXPECT_EQ(insecure.exit_code, 0) << insecure.output;
  ::setenv("GPURM_CA_BUNDLE", pki_->Path("ca.pem").c_str(), 1);
  const testing::CommandResult from_env = Cli({"status"});
  ::unsetenv("GPURM_CA_BUNDLE");
  EXPECT_EQ(from_env.exit_code, 0) << from_env.output;
}

TEST_F(TlsE2eTest, OnlyTls12AndLaterAreAccepted) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  SSL_CTX* context = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_min_proto_version(context, TLS1_VERSION);
  SSL_CTX_set_max_proto_version(context, TLS1_1_VERSION);
  SSL_CTX_set_security_level(context, 0);
  SSL* ssl = SSL_new(context);
  const int fd = testing::ConnectLoopback(port());
  SSL_set_fd(ssl, fd);
  EXPECT_NE(SSL_connect(ssl), 1);
  ERR_clear_error();
  SSL_free(ssl);
  SSL_CTX_free(context);
  ::close(fd);
}

TEST_F(TlsE2eTest, SighupServesTheNewCertificateToNewConnectionsAndKeepsOpenOnes) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  TlsConnection open(port());
  ASSERT_TRUE(open.connected());
  EXPECT_EQ(open.PeerSerial(), "1001");
  ASSERT_EQ(open.Request(kHealthRequest).status, 200);

  // A new certificate in place of the old one, then SIGHUP.
  ASSERT_NO_FATAL_FAILURE(pki_->MakeLeaf("server", "ca", "2002", "serverAuth"));
  ASSERT_EQ(::kill(daemon_->pid(), SIGHUP), 0);
  EXPECT_TRUE(testing::Eventually([&] { return TlsConnection(port()).PeerSerial() == "2002"; }))
      << daemon_->LogTail();

  // The connection opened before the reload still works, on the old certificate.
  EXPECT_EQ(open.Request(kHealthRequest).status, 200);
  EXPECT_EQ(open.PeerSerial(), "1001");
  // Clients verify the new certificate with the same CA.
  cli::TlsClientOptions trusted;
  trusted.ca_bundle = pki_->Path("ca.pem");
  Result<cli::HttpResponse> ok = ClientFor(daemon_->base_url(), trusted).Get("/api/v1/gpu/health");
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_EQ(ok->status, 200);
}

TEST_F(TlsE2eTest, ABadCertificateOnReloadKeepsTheOldOne) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  WriteFile(pki_->Path("server.pem"), "not a certificate\n");
  ASSERT_EQ(::kill(daemon_->pid(), SIGHUP), 0);
  EXPECT_TRUE(testing::Eventually([&] {
    return daemon_->LogTail().find("TLS reload failed") != std::string::npos;
  })) << daemon_->LogTail();
  EXPECT_THAT(daemon_->LogTail(), HasSubstr(pki_->Path("server.pem")));
  TlsConnection after(port());
  ASSERT_TRUE(after.connected());
  EXPECT_EQ(after.PeerSerial(), "1001");
  EXPECT_EQ(after.Request(kHealthRequest).status, 200);
}

TEST_F(TlsE2eTest, WithAClientCaClientsWithoutACertificateAreRefused) {
  ASSERT_NO_FATAL_FAILURE(pki_->MakeCa("clients"));
  ASSERT_NO_FATAL_FAILURE(pki_->MakeLeaf("client", "clients", "3003", "clientAuth"));
  ASSERT_NO_FATAL_FAILURE(StartDaemon("    client_ca_file: " + pki_->Path("clients.pem") + "\n"));

  cli::TlsClientOptions with_cert;
  with_cert.ca_bundle = pki_->Path("ca.pem");
  with_cert.client_cert = pki_->Path("client.pem");
  with_cert.client_key = pki_->Path("client.key");
  Result<cli::HttpResponse> ok =
      ClientFor(daemon_->base_url(), with_cert).Get("/api/v1/gpu/health");
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_EQ(ok->status, 200);

  cli::TlsClientOptions without_cert;
  without_cert.ca_bundle = pki_->Path("ca.pem");
  Result<cli::HttpResponse> refused =
      ClientFor(daemon_->base_url(), without_cert).Get("/api/v1/gpu/health");
  EXPECT_FALSE(refused.ok() && refused->status == 200);

  // A certificate from another CA (the server's own) is refused too.
  TlsConnection wrong_ca(port(), pki_->Path("server.pem"), pki_->Path("server.key"));
  EXPECT_EQ(wrong_ca.Request(kHealthRequest).status, 0);

  const testing::CommandResult cli =
      Cli({"--cacert", pki_->Path("ca.pem"), "--cert", pki_->Path("client.pem"), "--key",
           pki_->Path("client.key"), "status"});
  EXPECT_EQ(cli.exit_code, 0) << cli.output;
}

TEST_F(TlsE2eTest, TheEventStreamWorksOverTls) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  TlsConnection stream(port());
  ASSERT_TRUE(stream.connected());
  const std::string request = "GET /api/v1/gpu/events HTTP/1.1\r\nHost: localhost\r\n\r\n";
  ASSERT_GT(stream.Write(request), 0);
  // The stream has no end: read until the headers and the first event are in.
  std::string data;
  char buffer[4096];
  while (data.find("\r\n\r\n") == std::string::npos ||
         data.find("\n\n", data.find("\r\n\r\n") + 4) == std::string::npos) {
    const int n = stream.Read(buffer, sizeof(buffer));
    ASSERT_GT(n, 0) << "stream ended early: " << data;
    data.append(buffer, static_cast<size_t>(n));
  }
  EXPECT_EQ(data.rfind("HTTP/1.1 200", 0), 0u) << data;
  EXPECT_THAT(data, HasSubstr("text/event-stream"));
}

TEST_F(TlsE2eTest, LimitsAnswerOverTlsToo) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon(
      "", "  rate_limit_rps: 0.01\n  rate_limit_burst: 3\n  max_connections_per_client: 2\n"));
  TlsConnection first(port());
  ASSERT_TRUE(first.connected());
  RawResponse limited;
  for (int i = 0; i < 10 && limited.status != 429; ++i) {
    limited = first.Request(kHealthRequest);
    ASSERT_NE(limited.status, 0) << "no answer to request " << i;
  }
  EXPECT_EQ(limited.status, 429);
  EXPECT_GE(std::stoi(limited.Header("Retry-After")), 1);
  EXPECT_EQ(json::parse(limited.body)["error"]["code"], "resource_exhausted");

  TlsConnection second(port());
  ASSERT_TRUE(second.connected());
  // The health checks' connections may take a moment to be released.
  RawResponse refused;
  EXPECT_TRUE(testing::Eventually([&] {
    TlsConnection third(port());
    refused = third.Request(kHealthRequest);
    return refused.status == 503;
  }));
  EXPECT_EQ(json::parse(refused.body)["error"]["code"], "unavailable");
}

TEST_F(TlsE2eTest, AKeyThatDoesNotMatchTheCertificateIsAStartupError) {
  ASSERT_NO_FATAL_FAILURE(pki_->MakeLeaf("other", "ca", "4004", "serverAuth"));
  WriteFile(dir_ + "/mismatch.yaml", "server:\n  tls:\n    cert_file: " + pki_->Path("server.pem") +
                                         "\n    key_file: " + pki_->Path("other.key") + "\n");
  const testing::CommandResult serve = testing::RunCommand(
      {testing::GpurmBinary(), "serve", "--listen", "127.0.0.1:0", "--data-dir", dir_ + "/data",
       "--log-dir", dir_ + "/logs", "--config", dir_ + "/mismatch.yaml", "--inventory",
       testing::SourceDir() + "/examples/cluster-3node.yaml"},
      std::chrono::seconds(60));
  EXPECT_FALSE(serve.timed_out) << serve.output;
  EXPECT_EQ(serve.exit_code, 2) << serve.output;
  EXPECT_THAT(serve.output, HasSubstr("does not match"));
  EXPECT_THAT(serve.output, HasSubstr(pki_->Path("other.key")));
}

TEST(TlsStartupTest, AMissingCertificateIsAClearStartupError) {
  const std::string dir = testing::MakeTempDir("gpurm-tls-start");
  const std::string missing = dir + "/nowhere/server.pem";
  WriteFile(dir + "/gpu_config.yaml", "server:\n  tls:\n    cert_file: " + missing +
                                          "\n    key_file: " + dir + "/server.key\n");
  const testing::CommandResult serve = testing::RunCommand(
      {testing::GpurmBinary(), "serve", "--listen", "127.0.0.1:0", "--data-dir", dir + "/data",
       "--log-dir", dir + "/logs", "--config", dir + "/gpu_config.yaml", "--inventory",
       testing::SourceDir() + "/examples/cluster-3node.yaml"},
      std::chrono::seconds(60));
  EXPECT_FALSE(serve.timed_out) << serve.output;
  EXPECT_NE(serve.exit_code, 0) << serve.output;
  EXPECT_THAT(serve.output, HasSubstr(missing));
  EXPECT_THAT(serve.output, HasSubstr("server.tls.cert_file"));
  EXPECT_EQ(serve.exit_code, 2);  // A configuration error.
  std::filesystem::remove_all(dir);
}

// --- Limits (plain HTTP; they are the same code over TLS) --------------------

class LimitsE2eTest : public ::testing::Test {
 protected:
  void StartDaemon(const std::string& server_keys) {
    dir_ = testing::MakeTempDir("gpurm-limits");
    const std::string config = dir_ + "/gpu_config.yaml";
    WriteFile(config, "server:\n" + server_keys);
    daemon_ = std::make_unique<testing::DaemonProcess>(dir_, testing::ExampleInventoryArgs());
    daemon_->set_config(config);
    std::string error;
    ASSERT_TRUE(daemon_->Start(&error)) << error;
  }
  void TearDown() override {
    daemon_.reset();
    std::filesystem::remove_all(dir_);
  }
  uint16_t port() const { return PortOf(daemon_->base_url()); }

  std::string dir_;
  std::unique_ptr<testing::DaemonProcess> daemon_;
};

TEST_F(LimitsE2eTest, OverTheRateLimitRequestsGet429WithRetryAfter) {
  // One request per 100 s after a burst of 3: the burst is spent quickly.
  ASSERT_NO_FATAL_FAILURE(StartDaemon("  rate_limit_rps: 0.01\n  rate_limit_burst: 3\n"));
  const int fd = testing::ConnectLoopback(port());
  ASSERT_GE(fd, 0);
  RawResponse limited;
  for (int i = 0; i < 10 && limited.status != 429; ++i) {
    limited = PlainRequest(fd, kHealthRequest);
    ASSERT_NE(limited.status, 0) << "no answer to request " << i;
  }
  ::close(fd);
  ASSERT_EQ(limited.status, 429);
  const int retry_after = std::stoi(limited.Header("Retry-After"));
  EXPECT_GE(retry_after, 1);
  EXPECT_LE(retry_after, 100);
  const json body = json::parse(limited.body);
  EXPECT_EQ(body["error"]["code"], "resource_exhausted");
  EXPECT_THAT(body["error"]["message"].get<std::string>(), HasSubstr("too many requests"));
  EXPECT_TRUE(body["error"].contains("field"));

  // Another client address has its own bucket.
  const int other = testing::ConnectLoopback(port(), {.source = "127.0.0.2"});
  ASSERT_GE(other, 0);
  EXPECT_EQ(PlainRequest(other, kHealthRequest).status, 200);
  ::close(other);
}

TEST_F(LimitsE2eTest, OverThePerClientConnectionCapConnectionsGet503AndClose) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon("  max_connections_per_client: 2\n"));
  // An address of its own: the start-up health check's connection (from
  // 127.0.0.1) may not be closed yet and would count against the cap.
  const char* capped = "127.0.0.3";
  const int first = testing::ConnectLoopback(port(), {.source = capped});
  const int second = testing::ConnectLoopback(port(), {.source = capped});
  ASSERT_GE(first, 0);
  ASSERT_GE(second, 0);
  // Both are answered (they are within the cap).
  EXPECT_EQ(PlainRequest(first, kHealthRequest).status, 200);
  EXPECT_EQ(PlainRequest(second, kHealthRequest).status, 200);

  const int third = testing::ConnectLoopback(port(), {.source = capped});
  ASSERT_GE(third, 0);
  const RawResponse refused = PlainRequest(third, kHealthRequest);
  EXPECT_EQ(refused.status, 503);
  EXPECT_EQ(json::parse(refused.body)["error"]["code"], "unavailable");
  EXPECT_THAT(refused.Header("Connection"), HasSubstr("close"));
  char byte = 0;
  EXPECT_EQ(::recv(third, &byte, 1, 0), 0);  // Closed by the server.
  ::close(third);

  // Another address is not capped by this one's connections.
  const int other = testing::ConnectLoopback(port(), {.source = "127.0.0.2"});
  ASSERT_GE(other, 0);
  EXPECT_EQ(PlainRequest(other, kHealthRequest).status, 200);
  ::close(other);

  // Once one closes, the address may connect again.
  ::close(first);
  EXPECT_TRUE(testing::Eventually([&] {
    const int again = testing::ConnectLoopback(port(), {.source = capped});
    const int status = PlainRequest(again, kHealthRequest).status;
    ::close(again);
    return status == 200;
  }));
  ::close(second);
}

TEST_F(LimitsE2eTest, ASlowlorisClientIsCutOffAfterTheHeaderTimeout) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon("  header_timeout_s: 1\n"));
  const int fd = testing::ConnectLoopback(port());
  ASSERT_GE(fd, 0);
  // 300 header bytes at one per 100 ms would take 30 s: far beyond 1 s.
  const std::string request =
      "GET /api/v1/gpu/health HTTP/1.1\r\nHost: localhost\r\nX-Pad: " + std::string(240, 'a') +
      "\r\n\r\n";
  size_t sent = 0;
  bool closed = false;
  for (; sent < request.size() && !closed; ++sent) {
    if (::send(fd, &request[sent], 1, MSG_NOSIGNAL) != 1) {
      closed = true;
      break;
    }
    char byte = 0;
    const ssize_t n = ::recv(fd, &byte, 1, MSG_DONTWAIT);
    closed = n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ::close(fd);
  EXPECT_TRUE(closed) << "the server waited for all " << request.size() << " bytes";
  EXPECT_LT(sent, request.size());
  // The daemon still serves others.
  Result<cli::HttpResponse> health = daemon_->Client().Get("/api/v1/gpu/health");
  ASSERT_TRUE(health.ok()) << health.status().message();
  EXPECT_EQ(health->status, 200);
}

TEST_F(LimitsE2eTest, OversizedHeadersGet431Json) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon("  max_header_bytes: 1024\n"));
  const int fd = testing::ConnectLoopback(port());
  ASSERT_GE(fd, 0);
  const RawResponse response = PlainRequest(
      fd, "GET /api/v1/gpu/health HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(4096, 'b') +
              "\r\n\r\n");
  ::close(fd);
  EXPECT_EQ(response.status, 431);
  EXPECT_EQ(json::parse(response.body)["error"]["code"], "resource_exhausted");
}

}  // namespace
}  // namespace gpurm
