// Access control against the real daemon: bearer tokens from a file made by
// `gpurm token create`, roles, owners from tokens, the audit log, reloading
// the token file without a restart, the per-owner cap under concurrency, and
// the refusal to serve a non-loopback address without tokens.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/daemon_process.h"
#include "support/eventually.h"

namespace gpurm {
namespace {

using nlohmann::json;

constexpr char kApi[] = "/api/v1/gpu";
constexpr int kCap = 3;

struct CommandResult {
  int exit_code = -1;
  std::string out;
};

// Runs the gpurm binary; stderr is dropped unless `merge_stderr`.
CommandResult Gpurm(const std::string& args, bool merge_stderr = false) {
  const std::string command =
      testing::GpurmBinary() + " " + args + (merge_stderr ? " 2>&1" : " 2>/dev/null");
  CommandResult result;
  FILE* pipe = ::popen(command.c_str(), "r");
  std::array<char, 4096> buffer{};
  size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) {
    result.out.append(buffer.data(), n);
  }
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class AuthE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("gpurm-auth");
    tokens_file_ = dir_ + "/tokens";
    for (const auto& [name, role] :
         std::vector<std::pair<std::string, std::string>>{{"val", "viewer"},
                                                          {"alice", "user"},
                                                          {"bob", "user"},
                                                          {"racer", "user"},
                                                          {"root", "admin"}}) {
      tokens_[name] = CreateToken(name, role);
      ASSERT_FALSE(tokens_[name].empty());
    }
    const std::string config = dir_ + "/gpu_config.yaml";
    std::ofstream(config) << "server:\n  max_allocations_per_owner: " << kCap
                          << "\n  auth:\n    tokens_file: " << tokens_file_ << "\n";
    daemon_ = std::make_unique<testing::DaemonProcess>(dir_, testing::ExampleInventoryArgs());
    daemon_->set_config(config);
    std::string error;
    ASSERT_TRUE(daemon_->Start(&error)) << error;
  }

  std::string CreateToken(const std::string& name, const std::string& role) {
    CommandResult created =
        Gpurm("token create --name " + name + " --role " + role + " --file " + tokens_file_);
    EXPECT_EQ(created.exit_code, 0);
    if (!created.out.empty() && created.out.back() == '\n') created.out.pop_back();
    return created.out;
  }

  // A client sending `name`'s token ("" = none), plus X-Gpurm-Owner when set.
  cli::HttpClient As(const std::string& name, const std::string& owner_header = "") {
    cli::HttpClientOptions options;
    options.base_url = daemon_->base_url();
    options.token = name.empty() ? "" : tokens_.at(name);
    if (!owner_header.empty()) options.headers.emplace_back("X-Gpurm-Owner", owner_header);
    return cli::HttpClient(options);
  }

  std::string AuditLog() { return ReadFile(dir_ + "/logs/audit.log"); }

  std::string dir_;
  std::string tokens_file_;
  std::map<std::string, std::string> tokens_;
  std::unique_ptr<testing::DaemonProcess> daemon_;
};

TEST_F(AuthE2eTest, RolesAndOwnersComeFromTokens) {
  const std::string api = kApi;
  const json one_gpu{{"gpu_count", 1}};
  // Liveness stays open; everything else needs a token.
  EXPECT_EQ(As("").Get(api + "/health")->status, 200);
  Result<cli::HttpResponse> anonymous = As("").Get(api + "/status");
  ASSERT_TRUE(anonymous.ok());
  EXPECT_EQ(anonymous->status, 401);
  EXPECT_EQ(anonymous->body["error"]["code"], "unauthenticated");
  EXPECT_EQ(As("val").Get(api + "/status")->status, 200);

  // A viewer cannot allocate.
  Result<cli::HttpResponse> viewer = As("val").Post(api + "/allocate", one_gpu);
  EXPECT_EQ(viewer->status, 403);
  EXPECT_EQ(viewer->body["error"]["code"], "permission_denied");

  // A user's allocation is theirs, whatever owner the request names.
  Result<cli::HttpResponse> allocated = As("alice", "bob").Post(api + "/allocate", one_gpu);
  ASSERT_EQ(allocated->status, 200) << allocated->raw_body;
  const std::string id = allocated->body["allocation_id"];
  EXPECT_EQ(allocated->body["allocation"]["owner"], "alice");

  // User B cannot release or renew user A's allocation; an admin can.
  EXPECT_EQ(As("bob").Delete(api + "/allocations/" + id)->status, 403);
  EXPECT_EQ(As("bob").Post(api + "/release", json{{"allocation_id", id}})->status, 403);
  EXPECT_EQ(As("bob").Post(api + "/allocations/" + id + "/heartbeat", json::object())->status, 403);
  EXPECT_EQ(As("alice").Get(api + "/allocations/" + id)->body["state"], "active");
  EXPECT_EQ(As("root").Delete(api + "/allocations/" + id)->status, 200);
  EXPECT_EQ(As("alice").Get(api + "/allocations/" + id)->body["state"], "released");

  // Every state change is in the audit log: who, what, the answer, from where.
  const std::string audit = AuditLog();
  for (const char* line :
       {"identity=alice role=user from=127.0.0.1 ", "identity=bob role=user from=127.0.0.1 ",
        "identity=root role=admin from=127.0.0.1 ", "identity=val role=viewer from=127.0.0.1 "}) {
    EXPECT_NE(audit.find(line), std::string::npos) << line << "\n" << audit;
  }
  EXPECT_NE(audit.find("path=/api/v1/gpu/allocate status=200 allocation=" + id + " owner=alice"),
            std::string::npos)
      << audit;
  EXPECT_NE(audit.find("method=DELETE path=/api/v1/gpu/allocations/" + id + " status=403"),
            std::string::npos)
      << audit;
  EXPECT_NE(audit.find("identity=root role=admin from=127.0.0.1 "), std::string::npos);
  EXPECT_EQ(audit.find("path=/api/v1/gpu/status"), std::string::npos);  // Reads are not audited.
  for (const auto& [name, token] : tokens_) {
    EXPECT_EQ(audit.find(token), std::string::npos) << "a token leaked into the audit log";
    EXPECT_EQ(ReadFile(tokens_file_).find(token), std::string::npos) << "stored in clear";
  }
}

TEST_F(AuthE2eTest, TheTokenFileIsReloadedWithoutARestart) {
  const std::string status = std::string(kApi) + "/status";
  ASSERT_EQ(As("bob").Get(status)->status, 200);
  ASSERT_EQ(Gpurm("token revoke bob --file " + tokens_file_).exit_code, 0);
  EXPECT_EQ(As("bob").Get(status)->status, 401);  // The very next request.
  tokens_["carol"] = CreateToken("carol", "viewer");
  EXPECT_EQ(As("carol").Get(status)->status, 200);

  // A broken file is not applied: the previous tokens keep working.
  { std::ofstream(tokens_file_, std::ios::app) << "mallory superuser plaintext\n"; }
  EXPECT_EQ(As("alice").Get(status)->status, 200);
  EXPECT_EQ(As("carol").Get(status)->status, 200);
  EXPECT_NE(daemon_->LogTail().find("not reloaded, still using the previous 5 identities"),
            std::string::npos)
      << daemon_->LogTail();
  EXPECT_NE(AuditLog().find("event=token_reload status=error"), std::string::npos);
  EXPECT_NE(AuditLog().find("event=token_reload status=ok identities=5"), std::string::npos);

  // SIGHUP re-reads the file even when it looks unchanged (here: still
  // broken, so refused again, and the daemon goes on with the old tokens).
  ASSERT_EQ(::kill(daemon_->pid(), SIGHUP), 0);
  const std::string log_path = dir_ + "/logs/gpu_resource_manager.log";
  testing::Eventually([&] {
    return ReadFile(log_path).find("received SIGHUP: token file re-read") != std::string::npos;
  });
  const std::string log = ReadFile(log_path);
  EXPECT_NE(log.find("received SIGHUP: token file re-read"), std::string::npos) << log;
  const std::string refused = "not reloaded, still using the previous 5 identities";
  EXPECT_NE(log.find(refused), log.rfind(refused)) << "the forced re-read was not reported";
  EXPECT_EQ(As("carol").Get(status)->status, 200);
}

TEST_F(AuthE2eTest, TheCliSendsTheToken) {
  const std::string url = " --url " + daemon_->base_url();
  EXPECT_EQ(Gpurm("status" + url + " --token " + tokens_.at("val")).exit_code, 0);
  CommandResult refused = Gpurm("status" + url, /*merge_stderr=*/true);
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.out.find("--token"), std::string::npos) << refused.out;
  const std::string token_file = dir_ + "/alice.token";
  std::ofstream(token_file) << tokens_.at("alice") << "\n";
  CommandResult allocated =
      Gpurm("allocate --gpus 1 -o json --owner bob" + url + " --token-file " + token_file);
  ASSERT_EQ(allocated.exit_code, 0) << allocated.out;
  EXPECT_EQ(json::parse(allocated.out)["allocation"]["owner"], "alice");
  EXPECT_EQ(Gpurm("allocate --gpus 1" + url + " --token " + tokens_.at("val")).exit_code, 1);
}

// Many clients of one identity racing: the cap is never exceeded, and each
// refusal is a 429 naming it.
TEST_F(AuthE2eTest, ConcurrentClientsOfOneIdentityNeverExceedTheCap) {
  constexpr int kClients = 8;
  constexpr int kAttempts = 4;
  std::atomic<int> granted{0};
  std::atomic<int> capped{0};
  std::atomic<int> other{0};
  std::vector<std::thread> clients;
  clients.reserve(kClients);
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&] {
      const cli::HttpClient client = As("racer");
      for (int i = 0; i < kAttempts; ++i) {
        Result<cli::HttpResponse> answer =
            client.Post(std::string(kApi) + "/allocate", json{{"gpu_count", 1}});
        if (answer.ok() && answer->status == 200) {
          ++granted;
        } else if (answer.ok() && answer->status == 429 &&
                   answer->body["error"]["field"] == "max_allocations_per_owner") {
          ++capped;
        } else {
          ++other;
        }
      }
    });
  }
  for (std::thread& t : clients) t.join();
  EXPECT_EQ(granted.load(), kCap);
  EXPECT_EQ(capped.load(), kClients * kAttempts - kCap);
  EXPECT_EQ(other.load(), 0);
  Result<cli::HttpResponse> listed = As("val").Get(std::string(kApi) + "/allocations?owner=racer");
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->body["count"], kCap);
}

TEST(AuthStartupTest, RefusesANonLoopbackAddressWithoutTokens) {
  const std::string dir = testing::MakeTempDir("gpurm-auth-start");
  const std::string config = dir + "/gpu_config.yaml";
  std::ofstream(config) << "log_level: INFO\n";
  const std::string serve = "serve --config " + config + " --data-dir " + dir + "/data" +
                            " --log-dir " + dir + "/logs --inventory " + testing::SourceDir() +
                            "/examples/cluster-3node.yaml --listen 0.0.0.0:0";
  // `timeout`: were the check missing, the daemon would serve until killed.
  const std::string command = "timeout 20 " + testing::GpurmBinary() + " " + serve + " 2>&1";
  CommandResult refused;
  FILE* pipe = ::popen(command.c_str(), "r");
  std::array<char, 4096> buffer{};
  size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) {
    refused.out.append(buffer.data(), n);
  }
  const int status = ::pclose(pipe);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2) << refused.out;
  EXPECT_NE(refused.out.find("server.auth.tokens_file is not set"), std::string::npos)
      << refused.out;
}

}  // namespace
}  // namespace gpurm
