// Hostile clients on a shared machine, against the real daemon binary: each
// finding of an adversarial pass (docs/SECURITY.md, section 9) replayed as
// it was found, and what the daemon now answers. Raw sockets where the
// finding is about bytes on the wire (headers, idle and silent connections).
//
// No timed assertions: waits are bounded by generous deadlines and only
// outcomes are checked.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "cli/client.h"
#include "support/daemon_process.h"
#include "support/loopback.h"

namespace gpurm {
namespace {

using nlohmann::json;

// A loopback TCP connection; reads time out after 60 s so that a broken
// daemon fails the test instead of hanging it.
class Connection {
 public:
  explicit Connection(uint16_t port) : fd_(testing::ConnectLoopback(port)), connected_(fd_ >= 0) {}
  ~Connection() { ::close(fd_); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  bool connected() const { return connected_; }
  void Send(const std::string& data) const { ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL); }
  // Everything until the daemon closes the connection (or 60 s pass).
  std::string ReadToEnd() const {
    std::string data;
    char buffer[4096];
    ssize_t n;
    while ((n = ::recv(fd_, buffer, sizeof(buffer), 0)) > 0) {
      data.append(buffer, static_cast<size_t>(n));
    }
    return data;
  }

 private:
  int fd_;
  bool connected_ = false;
};

struct RawAnswer {
  int status = 0;
  json body;
};

// One request with "Connection: close"; the answer's status and JSON body.
RawAnswer Exchange(uint16_t port, const std::string& method, const std::string& path,
                   const std::vector<std::string>& headers, const std::string& body = "") {
  Connection connection(port);
  std::string request = method + " " + path + " HTTP/1.1\r\nConnection: close\r\n";
  for (const std::string& header : headers) request += header + "\r\n";
  request += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  connection.Send(request);
  const std::string answer = connection.ReadToEnd();
  RawAnswer parsed;
  if (answer.size() < 12) return parsed;
  parsed.status = std::stoi(answer.substr(9, 3));
  const size_t body_start = answer.find("\r\n\r\n");
  if (body_start != std::string::npos) {
    parsed.body = json::parse(answer.substr(body_start + 4), nullptr, false);
  }
  return parsed;
}

class HostileClientsE2eTest : public ::testing::Test {
 protected:
  void StartDaemon(const std::string& server_keys = "") {
    dir_ = testing::MakeTempDir("gpurm-hostile");
    const std::string config = dir_ + "/gpu_config.yaml";
    std::ofstream(config) << "server:\n" << server_keys;
    daemon_ = std::make_unique<testing::DaemonProcess>(dir_, testing::ExampleInventoryArgs());
    daemon_->set_config(config);
    std::string error;
    ASSERT_TRUE(daemon_->Start(&error)) << error;
  }
  void TearDown() override {
    daemon_.reset();
    std::filesystem::remove_all(dir_);
  }
  uint16_t port() const {
    const std::string& url = daemon_->base_url();
    return static_cast<uint16_t>(std::stoi(url.substr(url.rfind(':') + 1)));
  }
  std::string host() const { return "Host: 127.0.0.1:" + std::to_string(port()); }

  cli::HttpResponse Post(const std::string& path, const json& body, const std::string& owner,
                         const cli::HttpHeaders& headers = {}) {
    auto response = daemon_->Client(owner).Post("/api/v1/gpu" + path, body, headers);
    EXPECT_TRUE(response.ok()) << response.status().ToString();
    return response.ok() ? *response : cli::HttpResponse{};
  }
  json Get(const std::string& path) {
    auto response = daemon_->Client().Get(path);
    EXPECT_TRUE(response.ok()) << response.status().ToString();
    return response.ok() ? response->body : json();
  }

  std::string dir_;
  std::unique_ptr<testing::DaemonProcess> daemon_;
};

// Finding 1: the issue's curl -- text/plain, a foreign Origin and Host --
// released alice's allocation. Now each of them alone is refused and the
// allocation stays.
TEST_F(HostileClientsE2eTest, ACrossSiteReleaseChangesNothing) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  ASSERT_EQ(Post("/allocate", {{"gpu_count", 2}, {"node_name", "gpu-node-2"}}, "alice").status,
            200);
  const std::string release = R"({"node_name":"gpu-node-2","gpu_count":2,"owner":"alice"})";
  const std::string path = "/api/v1/gpu/release";
  RawAnswer rebound = Exchange(
      port(), "POST", path,
      {"Host: evil.example", "Origin: http://evil.example", "Content-Type: text/plain"}, release);
  EXPECT_EQ(rebound.status, 403);
  EXPECT_EQ(rebound.body["error"]["field"], "Host");
  RawAnswer cross_origin =
      Exchange(port(), "POST", path,
               {host(), "Origin: http://evil.example", "Content-Type: text/plain"}, release);
  EXPECT_EQ(cross_origin.status, 403);
  EXPECT_EQ(cross_origin.body["error"]["field"], "Origin");
  RawAnswer cross_site =
      Exchange(port(), "POST", path,
               {host(), "Sec-Fetch-Site: cross-site", "Content-Type: application/json"}, release);
  EXPECT_EQ(cross_site.status, 403);
  EXPECT_EQ(cross_site.body["error"]["field"], "Sec-Fetch-Site");
  RawAnswer form = Exchange(port(), "POST", path, {host(), "Content-Type: text/plain"}, release);
  EXPECT_EQ(form.status, 415);
  EXPECT_EQ(form.body["error"]["field"], "Content-Type");
  EXPECT_EQ(Get("/api/v1/gpu/allocations")["count"], 1);
  // A rebound name cannot read either.
  EXPECT_EQ(Exchange(port(), "GET", "/api/v1/gpu/allocations", {"Host: evil.example"}).status, 403);
  // The daemon's own page (same origin, JSON) still can.
  RawAnswer own = Exchange(port(), "POST", path,
                           {host(), "Origin: http://127.0.0.1:" + std::to_string(port()),
                            "Sec-Fetch-Site: same-origin", "Content-Type: application/json"},
                           release);
  EXPECT_EQ(own.status, 200) << own.body.dump();
}

// Finding 2 (and the key reused with another body): a retry under a key
// whose allocation was released is refused, never answered with GPUs that
// now belong to someone else.
TEST_F(HostileClientsE2eTest, AStaleIdempotencyKeyIsRefusedNeverReplayed) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  const json request = {{"gpu_count", 8}, {"gpu_type", "A100"}};
  const cli::HttpHeaders key = {{"Idempotency-Key", "job-1"}};
  cli::HttpResponse first = Post("/allocate", request, "alice", key);
  ASSERT_EQ(first.status, 200) << first.raw_body;
  EXPECT_EQ(Post("/allocate", {{"gpu_count", 1}, {"gpu_type", "T4"}}, "alice", key).status, 422);
  const std::string id = first.body["allocation_id"];
  ASSERT_TRUE(daemon_->Client("alice").Delete("/api/v1/gpu/allocations/" + id).ok());
  ASSERT_EQ(Post("/allocate", request, "bob").status, 200);
  cli::HttpResponse stale = Post("/allocate", request, "alice", key);
  EXPECT_EQ(stale.status, 409) << stale.raw_body;
  EXPECT_EQ(stale.body["error"]["field"], "Idempotency-Key");
  EXPECT_FALSE(stale.body.contains("gpu_config"));
  // The key survives a restart with its request (the digest is in the ledger).
  ASSERT_EQ(daemon_->Terminate(), 0);
  std::string error;
  ASSERT_TRUE(daemon_->Start(&error)) << error;
  EXPECT_EQ(Post("/allocate", request, "alice", key).status, 409);
}

// Finding 3: idle connections that never send a request, and event
// subscribers that never read, no longer keep /health from answering.
TEST_F(HostileClientsE2eTest, IdleConnectionsAndSilentSubscribersDoNotLockOutHealth) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon(
      "  max_connections: 64\n  max_streams_per_client: 4\n  first_request_timeout_s: 30\n"));
  std::vector<std::unique_ptr<Connection>> idle;
  for (int i = 0; i < 200; ++i) idle.push_back(std::make_unique<Connection>(port()));
  std::vector<std::unique_ptr<Connection>> subscribers;
  int refused_streams = 0;
  for (int i = 0; i < 6; ++i) {
    auto subscriber = std::make_unique<Connection>(port());
    subscriber->Send("GET /api/v1/gpu/events HTTP/1.1\r\n" + host() + "\r\n\r\n");
    subscribers.push_back(std::move(subscriber));
  }
  for (int i = 0; i < 3; ++i) {
    RawAnswer health = Exchange(port(), "GET", "/api/v1/gpu/health", {host()});
    EXPECT_EQ(health.status, 200) << health.body.dump();
  }
  // Beyond max_streams_per_client, event streams are refused.
  for (int i = 0; i < 2; ++i) {
    RawAnswer stream = Exchange(port(), "GET", "/api/v1/gpu/events", {host()});
    refused_streams += stream.status == 429 ? 1 : 0;
  }
  EXPECT_EQ(refused_streams, 2);
}

TEST_F(HostileClientsE2eTest, ASilentConnectionIsClosed) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon("  first_request_timeout_s: 0.2\n"));
  Connection silent(port());
  ASSERT_TRUE(silent.connected());
  EXPECT_EQ(silent.ReadToEnd(), "");  // Returns once the daemon closes it.
}

// Finding 4: no answer is larger than a page; pages link to the next.
TEST_F(HostileClientsE2eTest, ListsArePagesWithNextLinks) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  for (int i = 0; i < 3; ++i) {
    cli::HttpResponse allocated = Post("/allocate", {{"gpu_type", "T4"}}, "alice");
    ASSERT_EQ(allocated.status, 200);
  }
  EXPECT_EQ(Exchange(port(), "GET", "/api/v1/gpu/allocations?all=true&limit=100000", {host()})
                .body["error"]["field"],
            "limit");
  json page = Get("/api/v1/gpu/allocations?limit=2");
  ASSERT_EQ(page["count"], 2);
  ASSERT_TRUE(page["next"].is_string());
  json last = Get(page["next"].get<std::string>());
  EXPECT_EQ(last["count"], 1);
  EXPECT_TRUE(last["next"].is_null());
}

// Finding 5: one owner can no longer fill the queue.
TEST_F(HostileClientsE2eTest, OneOwnerCannotFillTheQueue) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon("  max_queued_per_owner: 2\n"));
  const json all_a100 = {{"gpu_count", 8}, {"gpu_type", "A100"}};
  ASSERT_EQ(Post("/allocate", all_a100, "holder").status, 200);
  json waiting = all_a100;
  waiting["wait"] = true;
  EXPECT_EQ(Post("/allocate", waiting, "flood").status, 202);
  EXPECT_EQ(Post("/allocate", waiting, "flood").status, 202);
  cli::HttpResponse third = Post("/allocate", waiting, "flood");
  EXPECT_EQ(third.status, 429) << third.raw_body;
  EXPECT_EQ(third.body["error"]["field"], "max_queued_per_owner");
  EXPECT_EQ(Post("/allocate", waiting, "someone-else").status, 202);
}

// Findings 6 and 7, as the issue reproduced them.
TEST_F(HostileClientsE2eTest, SmallerFindings) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  const auto field_of = [&](const std::string& path, const std::string& body,
                            const std::vector<std::string>& extra = {}) {
    std::vector<std::string> headers = {host(), "Content-Type: application/json"};
    headers.insert(headers.end(), extra.begin(), extra.end());
    RawAnswer answer = Exchange(port(), "POST", path, headers, body);
    EXPECT_EQ(answer.status, 400) << path << " " << body << ": " << answer.body.dump();
    return answer.body["error"]["field"].get<std::string>();
  };
  for (const char* path : {"/api/v1/gpu/allocate", "/api/v1/gpu/validate"}) {
    EXPECT_EQ(field_of(path, R"({"memory_gb": 1e-9, "shared": true, "gpu_type": "T4"})"),
              "memory_gb");
    EXPECT_EQ(field_of(path, R"({"priority": 1001})"), "priority");
    EXPECT_EQ(field_of(path, R"({"wait_timeout_seconds": 0})"), "wait_timeout_seconds");
    EXPECT_EQ(field_of(path, R"({"wait_timeout_seconds": 1e308})"), "wait_timeout_seconds");
    EXPECT_EQ(field_of(path, R"({"gpu_count": 9223372036854775808})"), "gpu_count");
    EXPECT_EQ(field_of(path, R"({"gpu_count": 1, "gpu_count": 4})"), "gpu_count");
  }
  EXPECT_EQ(field_of("/api/v1/gpu/allocate", R"({"gpu_type": "T4"})",
                     {"X-Gpurm-Owner: " + std::string(15'000, 'o')}),
            "X-Gpurm-Owner");
  EXPECT_EQ(field_of("/api/v1/gpu/allocate", R"({"gpu_type": "T4"})",
                     {"Authorization: Bearer a", "Authorization: Bearer b"}),
            "Authorization");
  EXPECT_EQ(Get("/api/v1/gpu/allocations?all=true")["count"], 0);
  // /nodes and /validate agree about shared GPUs with free memory.
  ASSERT_EQ(
      Post("/allocate",
           {{"gpu_count", 4}, {"node_name", "gpu-node-1"}, {"shared", true}, {"memory_gb", 1}},
           "alice")
          .status,
      200);
  EXPECT_EQ(Get("/api/v1/gpu/nodes?gpu_type=V100&min_memory_gb=5")["count"], 1);
  EXPECT_EQ(Post("/validate", {{"gpu_type", "V100"}, {"memory_gb", 5}, {"shared", true}}, "alice")
                .body["possible_now"],
            true);
}

}  // namespace
}  // namespace gpurm
