// 200 concurrent clients for a minute (GPURM_STRESS_CLIENTS and
// GPURM_STRESS_SECONDS override) against the real daemon, each running a
// random mix of allocate, release, heartbeat, status and list. After every
// step the client asserts the no-over-allocation invariant: on what all
// clients were granted (testing::Holdings), on the daemon's own list when the
// step read it, and on the counts of /status. Latency percentiles per
// operation are printed, not asserted (no timed assertions in tests).
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "support/daemon_process.h"
#include "support/holdings.h"

namespace gpurm {
namespace {

using nlohmann::json;

enum Op { kAllocate, kRelease, kHeartbeat, kStatus, kList, kOpCount };
constexpr const char* kOpNames[kOpCount] = {"allocate", "release", "heartbeat", "status", "list"};

int EnvInt(const char* name, int fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && std::atoi(value) > 0 ? std::atoi(value) : fallback;
}

// Latencies in microseconds per operation; one per client, merged at the end.
using Latencies = std::array<std::vector<int64_t>, kOpCount>;

double Percentile(std::vector<int64_t>& values, double p) {
  if (values.empty()) return 0;
  const size_t rank = std::min(values.size() - 1, static_cast<size_t>(p * values.size()));
  std::nth_element(values.begin(), values.begin() + static_cast<ptrdiff_t>(rank), values.end());
  return static_cast<double>(values[rank]) / 1000.0;
}

struct Held {
  std::string id;
  json gpus;
};

TEST(StressTest, TwoHundredClientsMixedOperationsNeverOverAllocate) {
  const int clients = EnvInt("GPURM_STRESS_CLIENTS", 200);
  const int seconds = EnvInt("GPURM_STRESS_SECONDS", 60);
  const std::string dir = testing::MakeTempDir("gpurm-stress200");
  testing::DaemonProcess daemon(dir, testing::ExampleInventoryArgs());
  std::string error;
  ASSERT_TRUE(daemon.Start(&error)) << error;
  Result<std::map<std::string, double>> total_gb = testing::GpuMemoryTotals(daemon.Client());
  ASSERT_TRUE(total_gb.ok()) << total_gb.status().ToString();
  const int total_gpus = static_cast<int>(total_gb->size());
  testing::Holdings holdings(*total_gb);

  std::atomic<int64_t> steps{0};
  std::atomic<int> granted{0};
  std::atomic<int> refused{0};
  std::vector<std::string> violations;
  std::vector<Latencies> latencies(static_cast<size_t>(clients));
  std::mutex mutex;
  auto report = [&](const std::string& violation) {
    std::lock_guard<std::mutex> lock(mutex);
    violations.push_back(violation);
  };

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      std::mt19937 random(static_cast<unsigned>(c) * 7919u);
      cli::HttpClientOptions options;
      options.base_url = daemon.base_url();
      options.timeout = std::chrono::seconds(60);  // A saturated daemon queues; never a failure.
      options.headers.emplace_back("X-Gpurm-Owner", "stress-" + std::to_string(c));
      cli::HttpClient client(options);
      Latencies& mine = latencies[static_cast<size_t>(c)];
      std::vector<Held> held;

      // One request, timed; a transport error or an unexpected status is a
      // violation that ends this client.
      auto call = [&](Op op, auto&& send,
                      std::initializer_list<long> expected) -> std::optional<cli::HttpResponse> {
        const auto start = std::chrono::steady_clock::now();
        Result<cli::HttpResponse> answer = send();
        mine[op].push_back(std::chrono::duration_cast<std::chrono::microseconds>(
                               std::chrono::steady_clock::now() - start)
                               .count());
        if (!answer.ok()) {
          report(std::string(kOpNames[op]) + ": " + answer.status().ToString());
          return std::nullopt;
        }
        if (std::find(expected.begin(), expected.end(), answer->status) == expected.end()) {
          report(std::string(kOpNames[op]) + ": unexpected " + std::to_string(answer->status) +
                 ": " + answer->raw_body);
          return std::nullopt;
        }
        return *std::move(answer);
      };

      while (std::chrono::steady_clock::now() < deadline) {
        const unsigned dice = random() % 100;
        Op op = dice < 40   ? kAllocate
                : dice < 60 ? kRelease
                : dice < 75 ? kHeartbeat
                : dice < 90 ? kStatus
                            : kList;
        if ((op == kRelease || op == kHeartbeat) && held.empty()) op = kAllocate;
        if (op == kAllocate && held.size() >= 2) op = kRelease;

        if (op == kAllocate) {
          static const char* const kTypes[] = {"V100", "A100", "T4", ""};
          json request = {{"gpu_type", kTypes[random() % 4]}, {"lease_ttl_seconds", 3600}};
          if (random() % 3 == 0) {
            request["shared"] = true;
            request["memory_gb"] = 1.0 + static_cast<double>(random() % 8);
          } else {
            request["gpu_count"] = 1 + static_cast<int>(random() % 2);
          }
          auto answer =
              call(op, [&] { return client.Post("/api/v1/gpu/allocate", request); }, {200, 409});
          if (!answer) return;
          if (answer->status == 409) {
            ++refused;
          } else {
            ++granted;
            // The grants as recorded (reads answer these; the top-level "gpus"
            // also say how each GPU is shared with processes outside gpurm).
            held.push_back({answer->body["allocation_id"], answer->body["allocation"]["gpus"]});
            if (std::string v = holdings.Add(held.back().gpus); !v.empty()) report(v);
          }
        } else if (op == kRelease) {
          const size_t pick = random() % held.size();
          const Held release = held[pick];
          held.erase(held.begin() + static_cast<ptrdiff_t>(pick));
          holdings.Remove(release.gpus);
          auto answer = call(
              op, [&] { return client.Delete("/api/v1/gpu/allocations/" + release.id); }, {200});
          if (!answer) return;
          if (answer->body["allocation"]["state"] != "released") {
            report("release of " + release.id + " answered " + answer->raw_body);
          }
        } else if (op == kHeartbeat) {
          const Held& beat = held[random() % held.size()];
          auto answer = call(op,
                             [&] {
                               return client.Post(
                                   "/api/v1/gpu/allocations/" + beat.id + "/heartbeat", json());
                             },
                             {200});
          if (!answer) return;
          if (answer->body["allocation"]["state"] != "active" ||
              answer->body["allocation"]["gpus"] != beat.gpus) {
            report("heartbeat of " + beat.id + " answered " + answer->raw_body);
          }
        } else if (op == kStatus) {
          auto answer = call(op, [&] { return client.Get("/api/v1/gpu/status"); }, {200});
          if (!answer) return;
          const json& body = answer->body;
          if (body["total_gpus"] != total_gpus ||
              body["available_gpus"].get<int>() + body["allocated_gpus"].get<int>() > total_gpus) {
            report("status counts more GPUs than exist: " + answer->raw_body);
          }
        } else {
          auto answer = call(op, [&] { return client.Get("/api/v1/gpu/allocations"); }, {200});
          if (!answer) return;
          if (std::string v = holdings.CheckAllocations(answer->body["allocations"]); !v.empty()) {
            report("daemon's list: " + v);
          }
        }
        if (std::string v = holdings.CheckRecorded(); !v.empty()) report(v);
        ++steps;
      }
      for (const Held& release : held) {
        holdings.Remove(release.gpus);
        if (!call(kRelease, [&] { return client.Delete("/api/v1/gpu/allocations/" + release.id); },
                  {200})) {
          return;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();

  EXPECT_TRUE(violations.empty()) << violations.size()
                                  << " violations, first: " << violations.front();
  EXPECT_GT(granted.load(), 0);
  auto remaining = daemon.Client().Get("/api/v1/gpu/allocations");
  ASSERT_TRUE(remaining.ok());
  EXPECT_EQ(remaining->body["count"], 0) << remaining->raw_body;

  std::printf("stress: %d clients, %d s, %lld steps (%.0f/s), %d granted, %d refused (full)\n",
              clients, seconds, static_cast<long long>(steps.load()),
              static_cast<double>(steps.load()) / seconds, granted.load(), refused.load());
  std::vector<int64_t> all;
  for (int op = 0; op < kOpCount; ++op) {
    std::vector<int64_t> merged;
    for (Latencies& client_latencies : latencies) {
      merged.insert(merged.end(), client_latencies[op].begin(), client_latencies[op].end());
    }
    all.insert(all.end(), merged.begin(), merged.end());
    const size_t count = merged.size();
    const double p50 = Percentile(merged, 0.50);
    const double p99 = Percentile(merged, 0.99);
    std::printf("stress latency %-9s n=%-7zu p50 %8.2f ms  p99 %8.2f ms\n", kOpNames[op], count,
                p50, p99);
  }
  const size_t count = all.size();
  const double p50 = Percentile(all, 0.50);
  const double p99 = Percentile(all, 0.99);
  std::printf("stress latency %-9s n=%-7zu p50 %8.2f ms  p99 %8.2f ms\n", "all", count, p50, p99);
  EXPECT_EQ(daemon.Terminate(), 0);
}

}  // namespace
}  // namespace gpurm
