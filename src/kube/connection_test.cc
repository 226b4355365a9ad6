#include "kube/connection.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace gpurm::kube {
namespace {

class ConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("gpurm_kube_connection-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }
  std::filesystem::path dir_;
};

constexpr char kKubeconfig[] = R"(apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: prod
  cluster:
    server: https://10.0.0.1:6443/
    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==
- name: dev
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority: ca.crt
    insecure-skip-tls-verify: true
users:
- name: alice
  user:
    client-certificate-data: Y2VydA==
    client-key-data: a2V5
- name: bot
  user:
    tokenFile: token
- name: sso
  user:
    exec:
      command: kubelogin
contexts:
- name: dev
  context: {cluster: dev, user: bot, namespace: team-a}
- name: prod
  context: {cluster: prod, user: alice}
- name: sso
  context: {cluster: prod, user: sso}
)";

TEST_F(ConnectionTest, KubeconfigContexts) {
  const std::string path = Write("config", kKubeconfig);
  Result<Connection> dev = LoadKubeconfig(path);
  ASSERT_TRUE(dev.ok()) << dev.status().ToString();
  EXPECT_EQ(dev->server, "https://127.0.0.1:6443");
  EXPECT_EQ(dev->ca_file, (dir_ / "ca.crt").string());  // Relative to the file.
  EXPECT_TRUE(dev->insecure_skip_tls_verify);
  EXPECT_EQ(dev->token_file, (dir_ / "token").string());
  EXPECT_EQ(dev->default_namespace, "team-a");

  Result<Connection> prod = LoadKubeconfig(path, "prod");
  ASSERT_TRUE(prod.ok()) << prod.status().ToString();
  EXPECT_EQ(prod->server, "https://10.0.0.1:6443");
  EXPECT_EQ(prod->ca_pem, "-----BEGIN CERTIFICATE-----\n");
  EXPECT_EQ(prod->client_cert_pem, "cert");
  EXPECT_EQ(prod->client_key_pem, "key");
  EXPECT_EQ(prod->default_namespace, "default");

  Result<Connection> sso = LoadKubeconfig(path, "sso");
  ASSERT_FALSE(sso.ok());
  EXPECT_NE(sso.status().message().find("exec"), std::string::npos);
  Result<Connection> missing = LoadKubeconfig(path, "nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("no context named \"nope\""), std::string::npos);
  EXPECT_FALSE(LoadKubeconfig((dir_ / "absent").string()).ok());
}

TEST_F(ConnectionTest, InClusterNeedsTheServiceEnvironmentAndToken) {
  InClusterPaths paths;
  paths.token_file = Write("token", "abc\n");
  paths.ca_file = (dir_ / "ca.crt").string();
  paths.namespace_file = Write("namespace", "gpurm\n");
  unsetenv("KUBERNETES_SERVICE_HOST");
  EXPECT_EQ(InClusterConnection(paths).status().code(), StatusCode::kUnavailable);
  setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
  setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  Result<Connection> connection = InClusterConnection(paths);
  ASSERT_TRUE(connection.ok()) << connection.status().ToString();
  EXPECT_EQ(connection->server, "https://10.96.0.1:443");
  EXPECT_EQ(connection->token_file, paths.token_file);
  EXPECT_EQ(connection->default_namespace, "gpurm");
  unsetenv("KUBERNETES_SERVICE_HOST");
  unsetenv("KUBERNETES_SERVICE_PORT");
}

TEST(Base64Test, DecodesWithAndWithoutPadding) {
  EXPECT_EQ(*DecodeBase64("aGVsbG8="), "hello");
  EXPECT_EQ(*DecodeBase64("aGVsbG8"), "hello");
  EXPECT_EQ(*DecodeBase64("aGVs\nbG8="), "hello");
  EXPECT_FALSE(DecodeBase64("a$b").ok());
}

}  // namespace
}  // namespace gpurm::kube
