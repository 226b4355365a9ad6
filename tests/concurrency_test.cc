// 32 concurrent clients allocate and release against the real daemon for a
// minute (GPURM_STRESS_SECONDS overrides). The invariant — no GPU held twice,
// no shared GPU holding more memory than it has — is asserted after every
// grant, both on what the clients were told and on the daemon's own list.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "support/daemon_process.h"
#include "support/holdings.h"

namespace gpurm {
namespace {

using nlohmann::json;

TEST(ConcurrencyTest, ManyClientsNeverOverAllocate) {
  const char* seconds_env = std::getenv("GPURM_STRESS_SECONDS");
  const int seconds = seconds_env != nullptr ? std::atoi(seconds_env) : 60;
  const std::string dir = testing::MakeTempDir("gpurm-stress");
  testing::DaemonProcess daemon(dir, testing::ExampleInventoryArgs());
  std::string error;
  ASSERT_TRUE(daemon.Start(&error)) << error;

  Result<std::map<std::string, double>> total_gb = testing::GpuMemoryTotals(daemon.Client());
  ASSERT_TRUE(total_gb.ok()) << total_gb.status().ToString();
  ASSERT_EQ(total_gb->size(), 16u);
  testing::Holdings holdings(*total_gb);

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  std::atomic<int> granted{0};
  std::atomic<int> refused{0};
  std::atomic<int> released{0};
  std::vector<std::string> violations;
  std::mutex violations_mutex;
  auto report = [&](const std::string& violation) {
    std::lock_guard<std::mutex> lock(violations_mutex);
    violations.push_back(violation);
  };

  std::vector<std::thread> clients;
  for (int c = 0; c < 32; ++c) {
    clients.emplace_back([&, c] {
      std::mt19937 random(static_cast<unsigned>(c));
      cli::HttpClient client = daemon.Client("client-" + std::to_string(c));
      const char* types[] = {"V100", "A100", "T4", ""};
      while (std::chrono::steady_clock::now() < deadline) {
        json request = {{"gpu_type", types[random() % 4]}};
        if (random() % 3 == 0) {
          request["shared"] = true;
          request["memory_gb"] = 2.0 + static_cast<double>(random() % 6);
        } else {
          request["gpu_count"] = 1 + static_cast<int>(random() % 3);
        }
        auto answer = client.Post("/api/v1/gpu/allocate", request);
        if (!answer.ok()) {
          report("transport error: " + answer.status().ToString());
          return;
        }
        if (answer->status == 409) {
          ++refused;
          continue;
        }
        if (answer->status != 200) {
          report("unexpected " + std::to_string(answer->status) + ": " + answer->raw_body);
          return;
        }
        ++granted;
        const json gpus = answer->body["gpus"];
        if (std::string violation = holdings.Add(gpus); !violation.empty()) report(violation);
        if (random() % 8 == 0) {
          auto listed = client.Get("/api/v1/gpu/allocations");
          if (listed.ok()) {
            std::string violation = holdings.CheckAllocations(listed->body["allocations"]);
            if (!violation.empty()) report("daemon's list: " + violation);
          }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(random() % 5));
        holdings.Remove(gpus);
        auto release = client.Delete("/api/v1/gpu/allocations/" +
                                     answer->body["allocation_id"].get<std::string>());
        if (!release.ok() || release->status != 200) {
          report("release failed");
          return;
        }
        ++released;
      }
    });
  }
  for (std::thread& t : clients) t.join();

  EXPECT_TRUE(violations.empty()) << violations.size()
                                  << " violations, first: " << violations.front();
  EXPECT_GT(granted.load(), 0);
  EXPECT_GT(refused.load(), 0) << "the load should have saturated the cluster at times";
  EXPECT_EQ(granted.load(), released.load());
  auto remaining = daemon.Client().Get("/api/v1/gpu/allocations");
  ASSERT_TRUE(remaining.ok());
  EXPECT_EQ(remaining->body["count"], 0);
  std::printf("stress: %d s, %d granted, %d refused (cluster full), %d released\n", seconds,
              granted.load(), refused.load(), released.load());
  EXPECT_EQ(daemon.Terminate(), 0);
}

}  // namespace
}  // namespace gpurm
