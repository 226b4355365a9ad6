// kill -9 of the daemon at random points of a storm of allocate/release, then
// restart on the same ledger; repeated GPURM_CRASH_KILLS times (default 60).
// Between each kill and the restart `gpurm ledger check` must pass on the
// ledger the kill left behind. After each restart:
//  (a) every allocation acknowledged with success is there, with the GPUs it
//      was granted, and active unless its release was acknowledged; every
//      acknowledged release stuck;
//  (b) no GPU is held twice (on the daemon's own list of active allocations);
//  (c) allocations nobody was told about (their answer lost in the kill) are
//      at most the allocate requests that were in flight at the kill.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "support/daemon_process.h"
#include "support/holdings.h"
#include "support/run_command.h"

namespace gpurm {
namespace {

using nlohmann::json;

constexpr int kClients = 6;

// The GPUs of an allocation as "uuid/exclusive" strings, sorted: what must
// survive a crash unchanged.
std::vector<std::string> GrantKeys(const json& gpus) {
  std::vector<std::string> keys;
  for (const json& grant : gpus) {
    keys.push_back(grant["gpu_uuid"].get<std::string>() +
                   (grant["exclusive"].get<bool>() ? "/exclusive" : "/shared"));
  }
  std::sort(keys.begin(), keys.end());
  return keys;
}

// A random request: whole GPUs of some type, or a slice of a T4.
// With the longest lease the daemon allows: allocations are checked to stay
// active across every round of the test, which takes longer than the
// server's default lease.
json RandomRequest(std::mt19937& random) {
  static const char* const kTypes[] = {"V100", "A100", "T4", ""};
  constexpr int kLeaseS = 86'400;  // server.max_lease_ttl_s in gpu_config.yaml.
  if (random() % 3 == 0) {
    return {{"gpu_type", "T4"},
            {"shared", true},
            {"memory_gb", 1.0 + random() % 4},
            {"lease_ttl_seconds", kLeaseS}};
  }
  return {{"gpu_type", kTypes[random() % 4]},
          {"gpu_count", 1 + static_cast<int>(random() % 2)},
          {"lease_ttl_seconds", kLeaseS}};
}

// What the clients were told, across all rounds.
struct Acknowledged {
  std::mutex mutex;
  std::map<std::string, std::vector<std::string>> active;  // id -> grant keys.
  std::set<std::string> released;                          // Release acknowledged.
  std::set<std::string> release_in_doubt;                  // Release sent, answer lost in the kill.
  int allocations = 0;
};

TEST(CrashRecoveryTest, AcknowledgedAllocationsSurviveKillNine) {
  const char* kills_env = std::getenv("GPURM_CRASH_KILLS");
  const int kills = kills_env != nullptr ? std::max(1, std::atoi(kills_env)) : 60;
  const std::string dir = testing::MakeTempDir("gpurm-crash");
  testing::DaemonProcess daemon(dir, testing::ExampleInventoryArgs());

  Acknowledged acknowledged;
  std::mt19937 random(42);
  int allocations_checked = 0;
  int orphans_seen = 0;
  std::map<std::string, double> total_gb;

  for (int round = 0; round <= kills; ++round) {
    if (round > 0) {
      // (c) The ledger the kill left, checked before anything replays it.
      testing::CommandResult check = testing::RunCommand(
          {testing::GpurmBinary(), "ledger", "check", "--data-dir", dir + "/data"});
      ASSERT_EQ(check.exit_code, 0) << "round " << round << ": " << check.output;
    }
    std::string error;
    ASSERT_TRUE(daemon.Start(&error)) << "round " << round << ": " << error;
    cli::HttpClient checker = daemon.Client();
    if (total_gb.empty()) {
      Result<std::map<std::string, double>> totals = testing::GpuMemoryTotals(checker);
      ASSERT_TRUE(totals.ok()) << totals.status().ToString();
      total_gb = *totals;
    }

    // (a) Everything acknowledged before the kill is there, as acknowledged.
    for (const auto& [id, grants] : acknowledged.active) {
      auto answer = checker.Get("/api/v1/gpu/allocations/" + id);
      ASSERT_TRUE(answer.ok()) << answer.status().ToString();
      ASSERT_EQ(answer->status, 200) << "round " << round << ": lost allocation " << id;
      EXPECT_EQ(GrantKeys(answer->body["gpus"]), grants) << "round " << round << ": " << id;
      if (!acknowledged.release_in_doubt.count(id)) {
        EXPECT_EQ(answer->body["state"], "active") << "round " << round << ": " << id;
      }
      ++allocations_checked;
    }
    for (const std::string& id : acknowledged.released) {
      auto answer = checker.Get("/api/v1/gpu/allocations/" + id);
      ASSERT_TRUE(answer.ok());
      EXPECT_EQ(answer->body["state"], "released")
          << "round " << round << ": release of " << id << " was acknowledged but not kept";
    }

    // (b) No GPU held twice, and no allocation appeared from nowhere.
    auto active = checker.Get("/api/v1/gpu/allocations");
    ASSERT_TRUE(active.ok());
    const std::string violation =
        testing::Holdings(total_gb).CheckAllocations(active->body["allocations"]);
    EXPECT_TRUE(violation.empty()) << "round " << round << ": " << violation;
    std::vector<std::string> orphans;
    for (const json& allocation : active->body["allocations"]) {
      const std::string id = allocation["allocation_id"];
      if (!acknowledged.active.count(id)) orphans.push_back(id);
    }
    EXPECT_LE(orphans.size(), static_cast<size_t>(kClients))
        << "round " << round << ": more unacknowledged allocations than requests in flight";
    orphans_seen += static_cast<int>(orphans.size());

    if (round == kills) break;  // The last start only checks.

    // Settle what the kill left in doubt, and free GPUs for the next storm:
    // release the orphans, the releases in doubt and about half of the rest.
    // The other half must survive further kills.
    std::vector<std::string> to_release = orphans;
    for (const auto& [id, grants] : acknowledged.active) {
      if (acknowledged.release_in_doubt.count(id) || random() % 2 == 0) to_release.push_back(id);
    }
    for (const std::string& id : to_release) {
      auto answer = checker.Delete("/api/v1/gpu/allocations/" + id);
      ASSERT_TRUE(answer.ok() && answer->status == 200) << "round " << round << ": " << id;
      if (acknowledged.active.erase(id) > 0) acknowledged.released.insert(id);
    }
    acknowledged.release_in_doubt.clear();

    // The storm: kClients clients allocate and release their own allocations
    // until the daemon is killed after a random delay (from "at once" on).
    std::atomic<bool> stop{false};
    std::vector<std::thread> clients;
    for (int c = 0; c < kClients; ++c) {
      clients.emplace_back([&, c] {
        cli::HttpClient client = daemon.Client("crash-" + std::to_string(c));
        std::mt19937 local(static_cast<unsigned>(round * 100 + c));
        std::vector<std::string> mine;
        while (!stop) {
          if (!mine.empty() && local() % 2 == 0) {
            const std::string id = mine.back();
            {
              std::lock_guard<std::mutex> lock(acknowledged.mutex);
              acknowledged.release_in_doubt.insert(id);
            }
            auto answer = client.Delete("/api/v1/gpu/allocations/" + id);
            if (answer.ok() && answer->status == 200) {
              std::lock_guard<std::mutex> lock(acknowledged.mutex);
              acknowledged.active.erase(id);
              acknowledged.released.insert(id);
              acknowledged.release_in_doubt.erase(id);
              mine.pop_back();
            }
            continue;
          }
          auto answer = client.Post("/api/v1/gpu/allocate", RandomRequest(local));
          if (answer.ok() && answer->status == 200) {
            const std::string id = answer->body["allocation_id"];
            std::lock_guard<std::mutex> lock(acknowledged.mutex);
            acknowledged.active[id] = GrantKeys(answer->body["gpus"]);
            ++acknowledged.allocations;
            mine.push_back(id);
          }
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(random() % 400));
    daemon.Kill();
    stop = true;
    for (std::thread& t : clients) t.join();
  }
  EXPECT_GT(acknowledged.allocations, kills) << "the storm should have made allocations";
  std::printf(
      "crash recovery: %d kills survived, %d acknowledged allocations, %d allocation checks, "
      "%zu acknowledged releases, %d unacknowledged allocations found and released\n",
      kills, acknowledged.allocations, allocations_checked, acknowledged.released.size(),
      orphans_seen);
}

}  // namespace
}  // namespace gpurm
