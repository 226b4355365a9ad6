// kill -9 of the daemon in the middle of allocations, then restart on the
// same ledger: every allocation acknowledged with success is still there
// (and still active unless its release was acknowledged), every acknowledged
// release stuck, and no GPU is held twice. Repeated for several kill rounds.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "support/daemon_process.h"

namespace gpurm {
namespace {

using nlohmann::json;

TEST(CrashRecoveryTest, AcknowledgedAllocationsSurviveKillNine) {
  constexpr int kRounds = 8;
  const std::string dir = testing::MakeTempDir("gpurm-crash");
  testing::DaemonProcess daemon(
      dir, {"--inventory", testing::SourceDir() + "/examples/cluster-3node.yaml"});

  std::mutex mutex;
  std::set<std::string> acknowledged_active;     // Allocated, release not acknowledged.
  std::set<std::string> acknowledged_released;   // Release acknowledged.
  std::set<std::string> release_unacknowledged;  // Release sent, answer lost in the kill.
  std::mt19937 random(42);
  int total_acknowledged = 0;
  int allocations_checked = 0;

  for (int round = 0; round <= kRounds; ++round) {
    std::string error;
    ASSERT_TRUE(daemon.Start(&error)) << "round " << round << ": " << error;

    // Everything acknowledged before the previous kill must be there. A
    // release that was sent but not acknowledged may or may not have happened.
    cli::HttpClient checker = daemon.Client();
    for (const std::string& id : acknowledged_active) {
      auto answer = checker.Get("/api/v1/gpu/allocations/" + id);
      ASSERT_TRUE(answer.ok());
      ASSERT_EQ(answer->status, 200) << "round " << round << ": lost allocation " << id;
      if (!release_unacknowledged.count(id)) {
        EXPECT_EQ(answer->body["state"], "active") << "round " << round << ": " << id;
      }
      ++allocations_checked;
    }
    for (const std::string& id : acknowledged_released) {
      auto answer = checker.Get("/api/v1/gpu/allocations/" + id);
      ASSERT_TRUE(answer.ok());
      EXPECT_EQ(answer->body["state"], "released")
          << "round " << round << ": release of " << id << " was acknowledged but not kept";
    }
    auto active = checker.Get("/api/v1/gpu/allocations");
    ASSERT_TRUE(active.ok());
    std::map<std::string, int> exclusive_holders;
    std::map<std::string, double> shared_gb;
    for (const json& allocation : active->body["allocations"]) {
      for (const json& grant : allocation["gpus"]) {
        if (grant["exclusive"].get<bool>()) {
          ++exclusive_holders[grant["gpu_uuid"]];
        } else {
          shared_gb[grant["gpu_uuid"]] += grant["memory_gb"].get<double>();
        }
      }
    }
    for (const auto& [uuid, holders] : exclusive_holders) {
      EXPECT_EQ(holders, 1) << uuid << " held twice after restart";
      EXPECT_EQ(shared_gb.count(uuid), 0u) << uuid << " held exclusively and shared";
    }
    for (const auto& [uuid, gb] : shared_gb) {
      EXPECT_LE(gb, 16.0) << uuid << " (a 16 GB T4) has more GB of slices than it has";
    }

    if (round == kRounds) break;  // The last start only checks.

    // A storm of allocate/release from 4 clients, killed after a random delay.
    std::atomic<bool> stop{false};
    std::vector<std::thread> clients;
    for (int c = 0; c < 4; ++c) {
      clients.emplace_back([&, c] {
        cli::HttpClient client = daemon.Client("crash-" + std::to_string(c));
        std::mt19937 local(static_cast<unsigned>(round * 10 + c));
        std::vector<std::string> mine;
        while (!stop) {
          if (!mine.empty() && local() % 2 == 0) {
            const std::string id = mine.back();
            {
              std::lock_guard<std::mutex> lock(mutex);
              release_unacknowledged.insert(id);
            }
            auto answer = client.Delete("/api/v1/gpu/allocations/" + id);
            if (answer.ok() && answer->status == 200) {
              std::lock_guard<std::mutex> lock(mutex);
              acknowledged_active.erase(id);
              acknowledged_released.insert(id);
              release_unacknowledged.erase(id);
              mine.pop_back();
            }
            continue;
          }
          auto answer = client.Post("/api/v1/gpu/allocate",
                                    json{{"gpu_type", "T4"}, {"shared", true}, {"memory_gb", 1.0}});
          if (answer.ok() && answer->status == 200) {
            std::lock_guard<std::mutex> lock(mutex);
            acknowledged_active.insert(answer->body["allocation_id"].get<std::string>());
            mine.push_back(answer->body["allocation_id"]);
            ++total_acknowledged;
          }
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(150 + random() % 350));
    daemon.Kill();
    stop = true;
    for (std::thread& t : clients) t.join();
  }
  EXPECT_GT(total_acknowledged, kRounds) << "the storm should have made allocations";
  std::printf(
      "crash recovery: %d kills, %d acknowledged allocations, %d allocation checks, %zu "
      "acknowledged releases\n",
      kRounds, total_acknowledged, allocations_checked, acknowledged_released.size());
}

}  // namespace
}  // namespace gpurm
