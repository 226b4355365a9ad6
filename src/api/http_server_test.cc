// The HTTP server over real sockets: answers' heads (framing, persistence,
// fields with line breaks left out), large cached parts sent from memory
// files, streamed responses (chunked framing,
// keep-alive payloads, client disconnects, draining on Stop), the connection
// cap, the rate limit on a FakeClock, hostile clients (silent, idle and
// non-reading connections, repeated headers, too many streams), and TLS
// start-up errors, and answers given on the I/O thread (Router::AddNonBlocking)
// with the same limits, token checks and bytes.
#include "api/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "support/loopback.h"

namespace gpurm {
namespace {

// A stream the test feeds by hand.
class ScriptedStream final : public ResponseStream {
 public:
  void Start(std::function<void()> wake) override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!closed_) wake_ = std::move(wake);
    started_ = true;
    changed_.notify_all();
  }
  std::string Pull(bool* done) override {
    std::lock_guard<std::mutex> lock(mutex_);
    *done = ended_;
    return std::exchange(pending_, "");
  }
  std::string KeepAlive() override { return ": keep-alive\n\n"; }
  void Close() override {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
    ended_ = true;
    wake_ = nullptr;
    changed_.notify_all();
  }

  // Test side. wake only posts work, so calling it under the lock is fine,
  // and guarantees no call after Close.
  void Push(const std::string& data, bool end = false) {
    std::lock_guard<std::mutex> lock(mutex_);
    pending_ += data;
    ended_ = ended_ || end;
    if (wake_) wake_();
  }
  void WaitStarted() {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [this] { return started_; });
  }
  void WaitClosed() {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [this] { return closed_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::function<void()> wake_;
  std::string pending_;
  bool started_ = false;
  bool ended_ = false;
  bool closed_ = false;
};

// A blocking loopback client. Reads time out after 60 s so that a broken
// server fails the test instead of hanging it.
class Client {
 public:
  explicit Client(uint16_t port) : fd_(testing::ConnectLoopback(port)), connected_(fd_ >= 0) {}
  ~Client() { Disconnect(); }

  bool connected() const { return connected_; }
  void Send(const std::string& data) {
    ASSERT_EQ(::write(fd_, data.data(), data.size()), static_cast<ssize_t>(data.size()));
  }
  // Reads until `needle` has arrived (true) or the connection ends (false).
  bool ReadUntil(const std::string& needle) {
    while (received_.find(needle) == std::string::npos) {
      if (!ReadSome()) return false;
    }
    return true;
  }
  // Reads until `bytes` bytes have arrived (true) or the connection ends.
  bool ReadAtLeast(size_t bytes) {
    while (received_.size() < bytes) {
      if (!ReadSome()) return false;
    }
    return true;
  }
  void ReadToEnd() {
    while (ReadSome()) {
    }
  }
  void Disconnect() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  const std::string& received() const { return received_; }
  std::string headers() const { return received_.substr(0, received_.find("\r\n\r\n") + 4); }
  // The body, decoded from chunks when `chunked`; `complete` tells whether
  // the terminating chunk arrived.
  std::string Body(bool chunked, bool* complete = nullptr) const {
    std::string rest = received_.substr(received_.find("\r\n\r\n") + 4);
    if (!chunked) return rest;
    std::string body;
    while (true) {
      const size_t line_end = rest.find("\r\n");
      if (line_end == std::string::npos) break;
      const size_t size = std::stoul(rest.substr(0, line_end), nullptr, 16);
      if (size == 0) {
        if (complete != nullptr) *complete = rest.substr(line_end) == "\r\n\r\n";
        return body;
      }
      body += rest.substr(line_end + 2, size);
      rest = rest.substr(line_end + 2 + size + 2);
    }
    if (complete != nullptr) *complete = false;
    return body;
  }

 private:
  bool ReadSome() {
    char buffer[4096];
    const ssize_t n = ::read(fd_, buffer, sizeof(buffer));
    if (n <= 0) return false;
    received_.append(buffer, static_cast<size_t>(n));
    return true;
  }

  int fd_;
  bool connected_ = false;
  std::string received_;
};

// The answer of the fixtures' plain routes.
HttpResponse OkAnswer(const HttpRequest&) {
  HttpResponse response;
  response.body = R"({"ok": true})";
  return response;
}

// A server on a free loopback port with one worker thread, started.
std::unique_ptr<HttpServer> StartedServer(HttpServerOptions options, const Router* router) {
  options.port = 0;
  options.worker_threads = 1;
  auto server = std::make_unique<HttpServer>(options, router);
  EXPECT_TRUE(server->Start().ok());
  return server;
}

class StreamingServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router_.Add("GET", "/stream", [this](const HttpRequest&) {
      HttpResponse response;
      response.content_type = "text/event-stream";
      response.headers.emplace_back("Cache-Control", "no-cache");
      response.stream = stream_;
      return response;
    });
    router_.Add("GET", "/plain", OkAnswer);
  }

  void StartServer(double keepalive_s = 15) {
    HttpServerOptions options;
    options.stream_keepalive_s = keepalive_s;
    server_ = StartedServer(options, &router_);
  }

  std::shared_ptr<ScriptedStream> stream_ = std::make_shared<ScriptedStream>();
  Router router_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(StreamingServerTest, WritesChunksAsTheStreamProducesThem) {
  StartServer();
  Client client(server_->port());
  ASSERT_TRUE(client.connected());
  client.Send("GET /stream HTTP/1.1\r\nHost: test\r\n\r\n");
  stream_->WaitStarted();
  ASSERT_TRUE(client.ReadUntil("\r\n\r\n"));
  const std::string headers = client.headers();
  EXPECT_NE(headers.find("HTTP/1.1 200 OK"), std::string::npos) << headers;
  EXPECT_NE(headers.find("Transfer-Encoding: chunked"), std::string::npos) << headers;
  EXPECT_NE(headers.find("Content-Type: text/event-stream"), std::string::npos) << headers;
  EXPECT_NE(headers.find("Cache-Control: no-cache"), std::string::npos) << headers;

  stream_->Push("data: one\n\n");
  ASSERT_TRUE(client.ReadUntil("data: one\n\n"));
  stream_->Push("data: two\n\n", /*end=*/true);
  client.ReadToEnd();
  bool complete = false;
  EXPECT_EQ(client.Body(true, &complete), "data: one\n\ndata: two\n\n");
  EXPECT_TRUE(complete);
  stream_->WaitClosed();  // The server closes the stream it ended.
}

TEST_F(StreamingServerTest, SendsKeepAlivesWhileQuiet) {
  StartServer(/*keepalive_s=*/0.02);
  Client client(server_->port());
  client.Send("GET /stream HTTP/1.1\r\nHost: test\r\n\r\n");
  ASSERT_TRUE(client.ReadUntil(": keep-alive\n\n"));
  stream_->Push("data: x\n\n");
  ASSERT_TRUE(client.ReadUntil("data: x\n\n"));
}

TEST_F(StreamingServerTest, AClientThatGoesAwayClosesTheStream) {
  StartServer();
  {
    Client client(server_->port());
    client.Send("GET /stream HTTP/1.1\r\nHost: test\r\n\r\n");
    ASSERT_TRUE(client.ReadUntil("\r\n\r\n"));
  }
  stream_->WaitClosed();
}

TEST_F(StreamingServerTest, StopEndsOpenStreamsProperly) {
  StartServer();
  Client client(server_->port());
  client.Send("GET /stream HTTP/1.1\r\nHost: test\r\n\r\n");
  stream_->WaitStarted();
  stream_->Push("data: before stop\n\n");
  ASSERT_TRUE(client.ReadUntil("data: before stop\n\n"));
  std::thread stopper([this] { server_->Stop(); });
  client.ReadToEnd();
  stopper.join();
  bool complete = false;
  EXPECT_EQ(client.Body(true, &complete), "data: before stop\n\n");
  EXPECT_TRUE(complete);
  stream_->WaitClosed();
}

TEST_F(StreamingServerTest, Http10GetsABodyDelimitedByClose) {
  StartServer();
  Client client(server_->port());
  client.Send("GET /stream HTTP/1.0\r\n\r\n");
  stream_->WaitStarted();
  stream_->Push("data: a\n\n", /*end=*/true);
  client.ReadToEnd();
  EXPECT_EQ(client.headers().find("chunked"), std::string::npos) << client.headers();
  EXPECT_EQ(client.Body(false), "data: a\n\n");
}

TEST_F(StreamingServerTest, AnOpenStreamHoldsNoWorker) {
  StartServer();  // One worker thread.
  Client streaming(server_->port());
  streaming.Send("GET /stream HTTP/1.1\r\nHost: test\r\n\r\n");
  stream_->WaitStarted();
  Client plain(server_->port());
  plain.Send("GET /plain HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
  plain.ReadToEnd();
  EXPECT_NE(plain.received().find(R"({"ok": true})"), std::string::npos) << plain.received();
}

// --- Answers -----------------------------------------------------------------

// The head the server writes for an answer: status line, the server's own
// fields, the handler's, framing and connection persistence per HTTP version.
class AnswerHeadServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router_.Add("GET", "/plain", [](const HttpRequest& request) {
      HttpResponse response = OkAnswer(request);
      response.headers.emplace_back("Cache-Control", "no-cache");
      return response;
    });
    router_.Add("GET", "/split", [](const HttpRequest&) {
      HttpResponse response;
      response.body = "{}";
      response.headers.emplace_back("X-Echo", "a\r\nSet-Cookie: stolen=1");
      response.headers.emplace_back("X-Kept", "yes");
      return response;
    });
    router_.Add("GET", "/unchanged", [](const HttpRequest&) {
      HttpResponse response;
      response.status = 304;
      response.body = "never sent";
      response.headers.emplace_back("ETag", "\"v1\"");
      return response;
    });
    server_ = StartedServer(HttpServerOptions{}, &router_);
  }

  Router router_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(AnswerHeadServerTest, Http11KeepsTheConnectionAndSaysSoOnlyWhenClosing) {
  Client client(server_->port());
  client.Send("GET /plain HTTP/1.1\r\nHost: test\r\n\r\n");
  ASSERT_TRUE(client.ReadUntil(R"({"ok": true})"));
  EXPECT_EQ(client.received(),
            "HTTP/1.1 200 OK\r\nServer: gpurm\r\nContent-Type: application/json\r\n"
            "Cache-Control: no-cache\r\nContent-Length: 12\r\n\r\n{\"ok\": true}");
  // The same connection answers again; asked to close, the answer says so.
  client.Send("GET /plain HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
  client.ReadToEnd();
  const std::string second = client.received().substr(client.received().find('}') + 1);
  EXPECT_EQ(second.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << second;
  EXPECT_NE(second.find("Content-Length: 12\r\nConnection: close\r\n\r\n"), std::string::npos)
      << second;
}

TEST_F(AnswerHeadServerTest, Http10ClosesUnlessAskedToKeepAlive) {
  Client closing(server_->port());
  closing.Send("GET /plain HTTP/1.0\r\n\r\n");
  closing.ReadToEnd();  // Returns only because the server closes.
  EXPECT_EQ(closing.received().rfind("HTTP/1.0 200 OK\r\n", 0), 0u) << closing.received();
  EXPECT_EQ(closing.headers().find("Connection"), std::string::npos) << closing.headers();

  Client kept(server_->port());
  kept.Send("GET /plain HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  ASSERT_TRUE(kept.ReadUntil(R"({"ok": true})"));
  EXPECT_NE(kept.headers().find("Connection: keep-alive\r\n"), std::string::npos) << kept.headers();
}

TEST_F(AnswerHeadServerTest, AFieldWithALineBreakIsLeftOut) {
  Client client(server_->port());
  client.Send("GET /split HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
  client.ReadToEnd();
  EXPECT_EQ(client.received().find("Set-Cookie"), std::string::npos) << client.received();
  EXPECT_EQ(client.received().find("X-Echo"), std::string::npos) << client.received();
  EXPECT_NE(client.headers().find("X-Kept: yes\r\n"), std::string::npos) << client.headers();
  EXPECT_EQ(client.Body(false), "{}");
}

TEST_F(AnswerHeadServerTest, NotModifiedHasNeitherBodyNorLength) {
  Client client(server_->port());
  client.Send("GET /unchanged HTTP/1.1\r\nHost: test\r\n\r\n");
  ASSERT_TRUE(client.ReadUntil("\r\n\r\n"));
  EXPECT_EQ(client.received(),
            "HTTP/1.1 304 Not Modified\r\nServer: gpurm\r\nContent-Type: application/json\r\n"
            "ETag: \"v1\"\r\n\r\n");
  // Nothing follows the head: the next answer on the connection starts at once.
  client.Send("GET /plain HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
  client.ReadToEnd();
  EXPECT_EQ(client.received().find("never sent"), std::string::npos) << client.received();
  EXPECT_NE(client.received().find("\r\n\r\nHTTP/1.1 200 OK\r\n"), std::string::npos)
      << client.received();
}

// Answers whose shared part is large enough to be sent from a memory file
// (sendfile) over plain TCP: the same bytes as a plain write, in the parts'
// order, and the write timeout still closes a connection that stops reading.
class LargeAnswerServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Far larger than loopback's socket buffers can hold (a few MB for a
    // client that does not read), so the send waits for room.
    large_ = std::make_shared<const std::string>(Pattern(32 << 20));
    router_.Add("GET", "/suffix", [this](const HttpRequest&) {
      HttpResponse response;
      response.content_type = "text/plain";
      response.body = "live part\n";
      response.shared_suffix = large_;
      return response;
    });
    router_.Add("GET", "/prefix", [this](const HttpRequest&) {
      HttpResponse response;
      response.shared_prefix = large_;
      response.body = "tail";
      return response;
    });
    // Written from memory: a per-request body between two small shared parts.
    router_.Add("GET", "/copied", [this](const HttpRequest&) {
      HttpResponse response;
      response.shared_prefix = std::make_shared<const std::string>("head part\n");
      response.body = *large_;
      response.shared_suffix = std::make_shared<const std::string>("\nend");
      return response;
    });
  }
  void StartServer(double timeout_s = 30) {
    HttpServerOptions options;
    options.timeout_s = timeout_s;
    server_ = StartedServer(options, &router_);
  }
  // Bytes that differ along their length, so a misplaced piece shows.
  static std::string Pattern(size_t size) {
    std::string text(size, '\0');
    for (size_t i = 0; i < size; ++i) text[i] = static_cast<char>('a' + (i * 7 + i / 4096) % 26);
    return text;
  }

  std::shared_ptr<const std::string> large_;
  Router router_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(LargeAnswerServerTest, SendsTheSameBytesInOrderAndKeepsTheConnection) {
  StartServer();
  Client client(server_->port());
  client.Send("GET /suffix HTTP/1.1\r\nHost: test\r\n\r\n");
  const std::string expected_body = "live part\n" + *large_;
  ASSERT_TRUE(client.ReadUntil("\r\n\r\n"));
  ASSERT_TRUE(client.ReadAtLeast(client.headers().size() + expected_body.size()));
  EXPECT_NE(client.headers().find("Content-Length: " + std::to_string(expected_body.size())),
            std::string::npos)
      << client.headers();
  EXPECT_TRUE(client.Body(false) == expected_body) << "the body differs";
  // The same connection, the other order, and a close.
  client.Send("GET /prefix HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
  client.ReadToEnd();
  const std::string second =
      client.received().substr(client.headers().size() + expected_body.size());
  ASSERT_EQ(second.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << second.substr(0, 200);
  EXPECT_TRUE(second.substr(second.find("\r\n\r\n") + 4) == *large_ + "tail")
      << "the second body differs";
}

TEST_F(LargeAnswerServerTest, AClientThatStopsReadingIsClosedAfterTheWriteTimeout) {
  StartServer(/*timeout_s=*/0.5);
  // Sent from a memory file (sendfile) and from memory (sendmsg, then the
  // stream's write): both under the write timeout.
  for (const char* path : {"/suffix", "/copied"}) {
    SCOPED_TRACE(path);
    Client client(server_->port());
    client.Send(std::string("GET ") + path + " HTTP/1.1\r\nHost: test\r\n\r\n");
    // Read nothing for longer than the timeout: the server gives up on the
    // answer and closes, so reading then ends before the whole body.
    std::this_thread::sleep_for(std::chrono::milliseconds(2000));
    client.ReadToEnd();
    EXPECT_LT(client.received().size(), large_->size()) << "the whole answer was sent";
    // The server still answers others.
    Client other(server_->port());
    other.Send("GET /prefix HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    other.ReadToEnd();
    EXPECT_EQ(other.received().rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
  }
}

TEST_F(LargeAnswerServerTest, AnswersFromMemoryLargerThanTheSocketBufferArriveWhole) {
  StartServer();
  Client client(server_->port());
  const std::string expected_body = "head part\n" + *large_ + "\nend";
  client.Send("GET /copied HTTP/1.1\r\nHost: test\r\n\r\n");
  ASSERT_TRUE(client.ReadUntil("\r\n\r\n"));
  ASSERT_TRUE(client.ReadAtLeast(client.headers().size() + expected_body.size()));
  EXPECT_TRUE(client.Body(false) == expected_body) << "the body differs";
  const size_t first_size = client.received().size();
  client.Send("GET /copied HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
  client.ReadToEnd();
  const std::string second = client.received().substr(first_size);
  ASSERT_EQ(second.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << second.substr(0, 200);
  EXPECT_TRUE(second.substr(second.find("\r\n\r\n") + 4) == expected_body)
      << "the second body differs";
}

// --- Limits -----------------------------------------------------------------

class LimitsServerTest : public ::testing::Test {
 protected:
  void SetUp() override { router_.Add("GET", "/plain", OkAnswer); }
  void StartServer(HttpServerOptions options) {
    options.port = 0;
    options.worker_threads = 1;
    options.clock = &clock_;
    server_ = std::make_unique<HttpServer>(options, &router_);
    ASSERT_TRUE(server_->Start().ok());
  }

  FakeClock clock_;
  Router router_;
  std::unique_ptr<HttpServer> server_;
};

constexpr char kPlainRequest[] = "GET /plain HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";

TEST_F(LimitsServerTest, BeyondTheConnectionCapNewConnectionsGet503JsonAndAreClosed) {
  HttpServerOptions options;
  options.max_connections = 1;
  options.reserved_connections = 0;
  StartServer(options);
  Client first(server_->port());
  ASSERT_TRUE(first.connected());
  // Busy (its request has begun), so not a connection to close for room.
  first.Send("GET /plain HTTP/1.1\r\n");
  Client second(server_->port());
  second.Send(kPlainRequest);
  second.ReadToEnd();  // Returns: the server closes.
  EXPECT_EQ(second.received().rfind("HTTP/1.1 503", 0), 0u) << second.received();
  EXPECT_NE(second.received().find(R"("code":"unavailable")"), std::string::npos);
  EXPECT_NE(second.received().find("too many connections"), std::string::npos);
}

// --- Hostile clients ----------------------------------------------------------

class HostileClientServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* path : {"/plain", "/metrics"}) {
      router_.Add("GET", path, OkAnswer);
    }
    router_.Add("GET", "/stream", [this](const HttpRequest&) {
      HttpResponse response;
      response.content_type = "text/event-stream";
      auto stream = std::make_shared<ScriptedStream>();
      {
        std::lock_guard<std::mutex> lock(mutex_);
        streams_.push_back(stream);
      }
      response.stream = std::move(stream);
      return response;
    });
  }
  void StartServer(HttpServerOptions options) {
    options.port = 0;
    options.worker_threads = 1;
    server_ = std::make_unique<HttpServer>(options, &router_);
    ASSERT_TRUE(server_->Start().ok());
  }
  std::shared_ptr<ScriptedStream> Stream(size_t i) {
    std::lock_guard<std::mutex> lock(mutex_);
    return streams_.at(i);
  }

  Router router_;
  std::unique_ptr<HttpServer> server_;
  std::mutex mutex_;
  std::vector<std::shared_ptr<ScriptedStream>> streams_;
};

// A connection that never sends a request is closed (first_request_timeout_s).
TEST_F(HostileClientServerTest, AConnectionThatSendsNothingIsClosed) {
  HttpServerOptions options;
  options.first_request_timeout_s = 0.05;
  StartServer(options);
  Client silent(server_->port());
  ASSERT_TRUE(silent.connected());
  silent.ReadToEnd();  // Returns once the server closes it.
  EXPECT_EQ(silent.received(), "");
}

// When every slot is taken, the connection idle longest makes room: idle
// connections cannot lock out a new client.
TEST_F(HostileClientServerTest, AnIdleConnectionMakesRoomForANewOne) {
  HttpServerOptions options;
  options.max_connections = 1;
  options.reserved_connections = 0;
  StartServer(options);
  Client idle(server_->port());
  idle.Send("GET /plain HTTP/1.1\r\nHost: test\r\n\r\n");  // Kept alive, then idle.
  ASSERT_TRUE(idle.ReadUntil(R"({"ok": true})"));
  Client fresh(server_->port());
  fresh.Send(kPlainRequest);
  fresh.ReadToEnd();
  EXPECT_EQ(fresh.received().rfind("HTTP/1.1 200", 0), 0u) << fresh.received();
  idle.ReadToEnd();  // Returns: the server closed the idle one.
}

// With every slot busy (a request in progress), the reserve still answers
// /metrics (and /api/v1/gpu/health), and nothing else.
TEST_F(HostileClientServerTest, TheReserveAnswersOnlyHealthAndMetrics) {
  HttpServerOptions options;
  options.max_connections = 1;
  options.reserved_connections = 1;
  StartServer(options);
  Client busy(server_->port());
  busy.Send("GET /plain HTTP/1.1\r\n");
  Client metrics(server_->port());
  metrics.Send("GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n");
  metrics.ReadToEnd();  // Closed after its one answer.
  EXPECT_EQ(metrics.received().rfind("HTTP/1.1 200", 0), 0u) << metrics.received();
  Client plain(server_->port());
  plain.Send(kPlainRequest);
  plain.ReadToEnd();
  EXPECT_EQ(plain.received().rfind("HTTP/1.1 503", 0), 0u) << plain.received();
}

TEST_F(HostileClientServerTest, ARepeatedAuthorizationHeaderIsRefused) {
  StartServer(HttpServerOptions{});
  Client client(server_->port());
  client.Send(
      "GET /plain HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer a\r\n"
      "Authorization: Bearer b\r\n\r\n");
  client.ReadToEnd();
  EXPECT_EQ(client.received().rfind("HTTP/1.1 400", 0), 0u) << client.received();
  EXPECT_NE(client.received().find(R"("field":"Authorization")"), std::string::npos);
  Client hosts(server_->port());
  hosts.Send("GET /plain HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n");
  hosts.ReadToEnd();
  EXPECT_EQ(hosts.received().rfind("HTTP/1.1 400", 0), 0u) << hosts.received();
}

TEST_F(HostileClientServerTest, StreamsPerClientAreCapped) {
  HttpServerOptions options;
  options.max_streams_per_client = 1;
  StartServer(options);
  Client first(server_->port());
  first.Send("GET /stream HTTP/1.1\r\nHost: test\r\n\r\n");
  ASSERT_TRUE(first.ReadUntil("\r\n\r\n"));
  Client second(server_->port());
  second.Send("GET /stream HTTP/1.1\r\nHost: test\r\n\r\n");
  second.ReadToEnd();
  EXPECT_EQ(second.received().rfind("HTTP/1.1 429", 0), 0u) << second.received();
  Stream(1)->WaitClosed();  // The refused stream is closed, the first goes on.
  Stream(0)->Push("data: still here\n\n");
  EXPECT_TRUE(first.ReadUntil("data: still here"));
}

// A subscriber that does not read is dropped once a write is not taken
// within stream_send_timeout_s (instead of holding its slot for ever).
TEST_F(HostileClientServerTest, ASubscriberThatDoesNotReadIsDropped) {
  HttpServerOptions options;
  options.stream_send_timeout_s = 0.05;
  StartServer(options);
  Client reader_that_stops(server_->port());
  reader_that_stops.Send("GET /stream HTTP/1.1\r\nHost: test\r\n\r\n");
  ASSERT_TRUE(reader_that_stops.ReadUntil("\r\n\r\n"));
  Stream(0)->WaitStarted();
  // Far more than the socket buffers hold; the client reads none of it.
  const std::string event = "data: " + std::string(size_t{64} * 1024, 'x') + "\n\n";
  for (int i = 0; i < 512; ++i) Stream(0)->Push(event);
  Stream(0)->WaitClosed();
}

TEST_F(LimitsServerTest, TheRateLimitRefillsWithTheClock) {
  HttpServerOptions options;
  options.rate_limit_rps = 1;
  options.rate_limit_burst = 2;
  StartServer(options);
  const auto status_of_one_request = [this] {
    Client client(server_->port());
    client.Send(kPlainRequest);
    client.ReadToEnd();
    return client.received().substr(0, 12);
  };
  EXPECT_EQ(status_of_one_request(), "HTTP/1.1 200");
  EXPECT_EQ(status_of_one_request(), "HTTP/1.1 200");
  Client limited(server_->port());
  limited.Send(kPlainRequest);
  limited.ReadToEnd();
  EXPECT_EQ(limited.received().rfind("HTTP/1.1 429", 0), 0u) << limited.received();
  EXPECT_NE(limited.received().find("Retry-After: 1\r\n"), std::string::npos);
  EXPECT_NE(limited.received().find(R"("code":"resource_exhausted")"), std::string::npos);
  clock_.AdvanceMs(1000);
  EXPECT_EQ(status_of_one_request(), "HTTP/1.1 200");
}

// --- Answers on the I/O thread (Router::AddNonBlocking) ---------------------

class NonBlockingServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router_.AddNonBlocking(
        "GET", "/cached", Access::kViewer,
        [](const HttpRequest&) -> std::optional<HttpResponse> { return Cached(); },
        [](const HttpRequest&) { return Cached(); });
    router_.AddNonBlocking(
        "GET", "/miss", Access::kPublic, [](const HttpRequest&) { return std::nullopt; },
        [](const HttpRequest&) {
          HttpResponse response;
          response.body = R"({"built": true})";
          return response;
        });
    // Holds the only worker until the test lets it go.
    router_.Add("GET", "/block", Access::kPublic, [this](const HttpRequest&) {
      std::unique_lock<std::mutex> lock(mutex_);
      blocked_ = true;
      changed_.notify_all();
      changed_.wait(lock, [this] { return released_; });
      return HttpResponse{};
    });
    router_.RequireTokens([](std::string_view token) -> std::optional<Principal> {
      if (token == "viewer-token") return Principal{"ada", Role::kViewer};
      if (token == "agent-token") return Principal{"node-1", Role::kAgent};
      return std::nullopt;
    });
  }
  void TearDown() override { Release(); }

  // A prefix shared with a cache and a per-request rest.
  static HttpResponse Cached() {
    static const auto kPrefix = std::make_shared<const std::string>(R"({"cached": )");
    HttpResponse response;
    response.shared_prefix = kPrefix;
    response.body = "true}";
    return response;
  }

  void StartServer(HttpServerOptions options = {}) {
    options.port = 0;
    options.worker_threads = 1;
    options.clock = &clock_;
    server_ = std::make_unique<HttpServer>(options, &router_);
    ASSERT_TRUE(server_->Start().ok());
  }
  std::string Get(const std::string& path, const std::string& token = "viewer-token") {
    Client client(server_->port());
    client.Send("GET " + path + " HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer " + token +
                "\r\nConnection: close\r\n\r\n");
    client.ReadToEnd();
    return client.received();
  }
  void WaitBlocked() {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [this] { return blocked_; });
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mutex_);
    released_ = true;
    changed_.notify_all();
  }

  FakeClock clock_;
  Router router_;
  std::unique_ptr<HttpServer> server_;
  std::mutex mutex_;
  std::condition_variable changed_;
  bool blocked_ = false;
  bool released_ = false;
};

TEST_F(NonBlockingServerTest, ManyPipelinedRequestsAreAllAnsweredInOrder) {
  StartServer();
  // Far more than the server answers on one call stack (it reads the
  // buffered ones without waiting, a bounded number at a time), alternating
  // the I/O thread's answers with the workers'.
  constexpr int kRequests = 300;
  std::string requests;
  for (int i = 0; i < kRequests; ++i) {
    requests += std::string("GET ") + (i % 3 == 2 ? "/miss" : "/cached") +
                " HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer viewer-token\r\n" +
                (i == kRequests - 1 ? "Connection: close\r\n" : "") + "\r\n";
  }
  Client client(server_->port());
  client.Send(requests);
  client.ReadToEnd();
  const std::string& received = client.received();
  size_t at = 0;
  for (int i = 0; i < kRequests; ++i) {
    SCOPED_TRACE(i);
    ASSERT_EQ(received.compare(at, 17, "HTTP/1.1 200 OK\r\n"), 0) << received.substr(at, 100);
    const size_t body = received.find("\r\n\r\n", at) + 4;
    const std::string expected = i % 3 == 2 ? R"({"built": true})" : R"({"cached": true})";
    ASSERT_EQ(received.compare(body, expected.size(), expected), 0) << received.substr(body, 40);
    at = body + expected.size();
  }
  EXPECT_EQ(at, received.size());
}

TEST_F(NonBlockingServerTest, AnswersWhileEveryWorkerIsBusyWithTheSameBytes) {
  StartServer();
  Client blocking(server_->port());
  blocking.Send("GET /block HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
  WaitBlocked();
  // The only worker is held: this answer can only come from the I/O thread.
  const std::string answer = Get("/cached");
  EXPECT_EQ(answer.rfind("HTTP/1.1 200", 0), 0u) << answer;
  EXPECT_NE(answer.find("Content-Length: 16\r\n"), std::string::npos) << answer;
  EXPECT_EQ(answer.substr(answer.find("\r\n\r\n") + 4), R"({"cached": true})");
  Release();
  blocking.ReadToEnd();
  EXPECT_EQ(blocking.received().rfind("HTTP/1.1 200", 0), 0u) << blocking.received();
}

TEST_F(NonBlockingServerTest, TokensAreCheckedOnTheIoThread) {
  StartServer();
  Client blocking(server_->port());
  blocking.Send("GET /block HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
  WaitBlocked();
  const std::string unknown = Get("/cached", "wrong-token");
  EXPECT_EQ(unknown.rfind("HTTP/1.1 401", 0), 0u) << unknown;
  EXPECT_NE(unknown.find("WWW-Authenticate: Bearer"), std::string::npos) << unknown;
  EXPECT_NE(unknown.find(R"("code":"unauthenticated")"), std::string::npos) << unknown;
  const std::string low_role = Get("/cached", "agent-token");
  EXPECT_EQ(low_role.rfind("HTTP/1.1 403", 0), 0u) << low_role;
  EXPECT_NE(low_role.find(R"("code":"permission_denied")"), std::string::npos) << low_role;
}

TEST_F(NonBlockingServerTest, TheRateLimitHoldsOnTheIoThread) {
  HttpServerOptions options;
  options.rate_limit_rps = 1;
  options.rate_limit_burst = 1;
  StartServer(options);
  EXPECT_EQ(Get("/cached").rfind("HTTP/1.1 200", 0), 0u);
  const std::string limited = Get("/cached");
  EXPECT_EQ(limited.rfind("HTTP/1.1 429", 0), 0u) << limited;
  EXPECT_NE(limited.find("Retry-After: 1\r\n"), std::string::npos) << limited;
  clock_.AdvanceMs(1000);
  EXPECT_EQ(Get("/cached").rfind("HTTP/1.1 200", 0), 0u);
}

TEST_F(NonBlockingServerTest, WhatCannotBeAnsweredNowGoesToAWorker) {
  StartServer();
  const std::string built = Get("/miss");
  EXPECT_EQ(built.rfind("HTTP/1.1 200", 0), 0u) << built;
  EXPECT_EQ(built.substr(built.find("\r\n\r\n") + 4), R"({"built": true})");
}

TEST(HttpServerTlsTest, StartFailsNamingAMissingCertificate) {
  Router router;
  HttpServerOptions options;
  options.port = 0;
  options.tls.cert_file = "/nonexistent/gpurm-cert.pem";
  options.tls.key_file = "/nonexistent/gpurm-key.pem";
  HttpServer server(options, &router);
  const Status started = server.Start();
  ASSERT_FALSE(started.ok());
  EXPECT_EQ(started.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(started.message().find("/nonexistent/gpurm-cert.pem"), std::string::npos)
      << started.message();
}

TEST(HttpServerTlsTest, ReloadWithoutTlsDoesNothing) {
  Router router;
  HttpServerOptions options;
  options.port = 0;
  HttpServer server(options, &router);
  ASSERT_TRUE(server.Start().ok());
  EXPECT_TRUE(server.ReloadTls().ok());
}

}  // namespace
}  // namespace gpurm
