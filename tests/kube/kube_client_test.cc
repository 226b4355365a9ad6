// The Kubernetes client and reflector against an API server
// (tests/kube/api_server.h): CRUD with optimistic concurrency, paginated
// lists, watches that resume from their resourceVersion, bookmarks, and a
// relist after 410 Gone.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>

#include "kube/api_server.h"
#include "kube/client.h"
#include "kube/reflector.h"
#include "support/eventually.h"

namespace gpurm {
namespace {

using nlohmann::json;
using testing::TestApiServer;

class KubeClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    Result<std::unique_ptr<TestApiServer>> started = TestApiServer::Start("gpurm-test");
    ASSERT_TRUE(started.ok()) << started.status().ToString();
    server_ = std::move(started).value().release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static TestApiServer* server_;
};
TestApiServer* KubeClientTest::server_ = nullptr;

json Lease(const std::string& name, const std::string& holder) {
  return {{"apiVersion", "coordination.k8s.io/v1"},
          {"kind", "Lease"},
          {"metadata", {{"name", name}, {"namespace", "gpurm-test"}}},
          {"spec", {{"holderIdentity", holder}, {"leaseDurationSeconds", 15}}}};
}

TEST_F(KubeClientTest, CreateReplaceWithStaleVersionConflictsAndDelete) {
  const kube::KubeClient& client = server_->client();
  const std::string leases = "/apis/coordination.k8s.io/v1/namespaces/gpurm-test/leases";
  Result<json> created = client.Create(leases, Lease("crud", "a"));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  const std::string version = (*created)["metadata"]["resourceVersion"];
  EXPECT_FALSE(version.empty());

  Result<json> again = client.Create(leases, Lease("crud", "b"));
  ASSERT_FALSE(again.ok());
  EXPECT_TRUE(kube::IsAlreadyExists(again.status())) << again.status().ToString();

  json first = *created;
  first["spec"]["holderIdentity"] = "b";
  Result<json> replaced = client.Replace(leases + "/crud", first);
  ASSERT_TRUE(replaced.ok()) << replaced.status().ToString();
  EXPECT_EQ((*replaced)["spec"]["holderIdentity"], "b");

  // `first` still carries the version before that update.
  first["spec"]["holderIdentity"] = "c";
  Result<json> stale = client.Replace(leases + "/crud", first);
  ASSERT_FALSE(stale.ok());
  EXPECT_TRUE(kube::IsConflict(stale.status())) << stale.status().ToString();
  EXPECT_NE(stale.status().message().find("the object has been modified"), std::string::npos);

  EXPECT_TRUE(client.Delete(leases + "/crud").ok());
  Result<json> gone = client.Get(leases + "/crud");
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.status().code(), StatusCode::kNotFound);
}

TEST_F(KubeClientTest, ListFollowsContinueTokens) {
  const kube::KubeClient& client = server_->client();
  const std::string leases = "/apis/coordination.k8s.io/v1/namespaces/gpurm-test/leases";
  for (int i = 0; i < 7; ++i) {
    json lease = Lease("page-" + std::to_string(i), "x");
    lease["metadata"]["labels"] = {{"test", "paging"}};
    ASSERT_TRUE(client.Create(leases, lease).ok());
  }
  kube::ListOptions options;
  options.label_selector = "test=paging";
  options.page_size = 3;
  Result<kube::ListResult> list = client.List(leases, options);
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  EXPECT_EQ(list->items.size(), 7u);
  EXPECT_FALSE(list->resource_version.empty());
}

TEST_F(KubeClientTest, WatchFromAVersionTheServerNoLongerKeepsIsGone) {
  const kube::KubeClient& client = server_->client();
  kube::WatchOptions options;
  options.resource_version = "1";
  options.timeout_s = 5;
  const Status watched = client.Watch(
      "/api/v1/namespaces/gpurm-test/pods", options, [](const kube::WatchEvent&) { return true; },
      nullptr);
  EXPECT_TRUE(kube::IsGone(watched)) << watched.ToString();
}

TEST_F(KubeClientTest, ReflectorResumesWatchesFromItsVersionAndSeesBookmarks) {
  kube::ReflectorOptions options;
  options.path = "/apis/coordination.k8s.io/v1/namespaces/gpurm-test/leases";
  options.label_selector = "test=reflector";
  options.watch_timeout_s = 1;  // Every watch ends after a second and is resumed.
  kube::Reflector reflector(&server_->client(), options);
  reflector.Start();
  ASSERT_TRUE(
      reflector.WaitFor([](const kube::ReflectorView& v) { return v.synced; }, testing::kPatience));

  const std::string leases = "/apis/coordination.k8s.io/v1/namespaces/gpurm-test/leases";
  for (int i = 0; i < 3; ++i) {
    json lease = Lease("watched-" + std::to_string(i), "x");
    lease["metadata"]["labels"] = {{"test", "reflector"}};
    ASSERT_TRUE(server_->client().Create(leases, lease).ok());
    // Let at least one watch end between creations.
    const uint64_t watches = reflector.View().stats.watches;
    ASSERT_TRUE(reflector.WaitFor(
        [&](const kube::ReflectorView& v) { return v.stats.watches > watches + 1; },
        testing::kPatience));
  }
  ASSERT_TRUE(reflector.WaitFor([](const kube::ReflectorView& v) { return v.objects->size() == 3; },
                                testing::kPatience));
  ASSERT_TRUE(server_->client().Delete(leases + "/watched-1").ok());
  ASSERT_TRUE(reflector.WaitFor(
      [](const kube::ReflectorView& v) {
        return v.objects->size() == 2 && !v.objects->contains("gpurm-test/watched-1");
      },
      testing::kPatience));
  const kube::ReflectorView view = reflector.View();
  EXPECT_EQ(view.stats.lists, 1u) << "a resumed watch must not list again";
  EXPECT_GE(view.stats.watches, 4u);
  EXPECT_EQ(view.stats.gone, 0u);
  if (!server_->real()) {
    // The real server sends bookmarks about once a minute; the fake twice a second.
    ASSERT_TRUE(reflector.WaitFor(
        [](const kube::ReflectorView& v) { return v.stats.bookmarks > 0; }, testing::kPatience));
  }
}

TEST_F(KubeClientTest, ReflectorListsAgainAfterGone) {
  if (server_->real()) GTEST_SKIP() << "forcing 410 needs the fake's /compact";
  kube::ReflectorOptions options;
  options.path = "/api/v1/namespaces/gpurm-test/pods";
  options.watch_timeout_s = 1;
  options.retry_delay_s = 0.1;
  kube::Reflector reflector(&server_->client(), options);
  reflector.Start();
  ASSERT_TRUE(
      reflector.WaitFor([](const kube::ReflectorView& v) { return v.synced; }, testing::kPatience));
  // Stop the watch between two requests is not possible from outside, so
  // forget the history while the reflector is between watches or in one:
  // either its next watch or the running one ends with 410.
  ASSERT_TRUE(
      server_->CreatePod("gpurm-test", "before-gone", "", "nvidia.com/gpu", 0, "Pending").ok());
  ASSERT_TRUE(server_->Compact().ok());
  ASSERT_TRUE(
      server_->CreatePod("gpurm-test", "after-gone", "", "nvidia.com/gpu", 0, "Pending").ok());
  ASSERT_TRUE(reflector.WaitFor(
      [](const kube::ReflectorView& v) {
        return v.objects->contains("gpurm-test/before-gone") &&
               v.objects->contains("gpurm-test/after-gone");
      },
      testing::kPatience));
  const kube::ReflectorView view = reflector.View();
  EXPECT_GE(view.stats.gone, 1u);
  EXPECT_GE(view.stats.lists, 2u);
}

}  // namespace
}  // namespace gpurm
