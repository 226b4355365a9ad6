#include "monitor/sampler.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "inventory/testing/scripted_provider.h"

namespace gpurm {
namespace {

using ::testing::ElementsAre;

constexpr int64_t kIntervalMs = 30'000;

class SamplerTest : public ::testing::Test {
 protected:
  SamplerTest() {
    script_->SetNodes({testing::H100Node("n1", 2)});
    inventory_ = std::make_unique<Inventory>(std::make_unique<testing::ScriptedProvider>(script_),
                                             &clock_, /*history_capacity=*/3);
    subscription_ = hub_.Subscribe();
    sampler_ = std::make_unique<Sampler>(inventory_.get(), &clock_, &hub_, SamplerOptions{30, 0.05},
                                         [this](const SampleReport& report) {
                                           std::lock_guard<std::mutex> lock(reports_mutex_);
                                           reports_.push_back(report);
                                         });
  }

  std::vector<SampleReport> Reports() {
    std::lock_guard<std::mutex> lock(reports_mutex_);
    return reports_;
  }

  FakeClock clock_;
  std::shared_ptr<testing::Script> script_ = std::make_shared<testing::Script>();
  std::unique_ptr<Inventory> inventory_;
  EventHub hub_;
  std::unique_ptr<EventSubscription> subscription_;
  std::unique_ptr<Sampler> sampler_;
  std::mutex reports_mutex_;
  std::vector<SampleReport> reports_;
};

TEST_F(SamplerTest, SamplesAtOnceThenEveryIntervalOfClockTime) {
  sampler_->Start();
  EXPECT_EQ(sampler_->Sync(), 1u);
  EXPECT_EQ(script_->discover_calls(), 1);
  ASSERT_NE(inventory_->Snapshot(), nullptr);

  clock_.AdvanceMs(kIntervalMs - 1);
  EXPECT_EQ(sampler_->Sync(), 1u);  // Not due yet.
  clock_.AdvanceMs(1);
  EXPECT_EQ(sampler_->Sync(), 2u);
  EXPECT_EQ(sampler_->Sync(), 2u);  // Once per interval, however often woken.
  clock_.AdvanceMs(kIntervalMs);
  EXPECT_EQ(sampler_->Sync(), 3u);
  EXPECT_EQ(script_->discover_calls(), 3);
  EXPECT_EQ(inventory_->Snapshot()->taken_unix_ms, clock_.NowUnixMs());
}

TEST_F(SamplerTest, ProvidersAreOnlyCalledOnTheSamplerThread) {
  sampler_->Start();
  ASSERT_TRUE(sampler_->SampleNow().ok());
  EXPECT_NE(script_->last_caller(), std::this_thread::get_id());
}

TEST_F(SamplerTest, OnDemandSamplesDoNotWaitForTheClock) {
  sampler_->Start();
  sampler_->Sync();
  EXPECT_TRUE(sampler_->SampleNow().ok());
  EXPECT_TRUE(sampler_->SampleNow().ok());
  EXPECT_EQ(script_->discover_calls(), 3);
  // An on-demand pass restarts the interval from its own time.
  clock_.AdvanceMs(kIntervalMs - 1);
  EXPECT_EQ(sampler_->Sync(), 3u);
}

TEST_F(SamplerTest, PublishesOnlyChangesBeyondTheThreshold) {
  sampler_->Start();
  sampler_->Sync();
  EventBatch batch = subscription_->Poll();
  ASSERT_EQ(batch.events.size(), 2u);  // Both GPUs appear.
  EXPECT_EQ(batch.events[0]->type, GpuEventType::kAdded);

  script_->EditGpu(0, [](Gpu& gpu) { gpu.utilization = 0.02; });
  clock_.AdvanceMs(kIntervalMs);
  sampler_->Sync();
  EXPECT_TRUE(subscription_->Poll().events.empty());

  script_->EditGpu(1, [](Gpu& gpu) { gpu.utilization = 0.9; });
  clock_.AdvanceMs(kIntervalMs);
  sampler_->Sync();
  batch = subscription_->Poll();
  ASSERT_EQ(batch.events.size(), 1u);
  EXPECT_EQ(batch.events[0]->gpu_uuid, "n1-gpu1");
  EXPECT_THAT(batch.events[0]->changed, ElementsAre("utilization"));
  EXPECT_EQ(batch.events[0]->unix_ms, clock_.NowUnixMs());
  EXPECT_EQ(sampler_->stats().events, 3u);
}

TEST_F(SamplerTest, HealthTransitionsArePublished) {
  sampler_->Start();
  sampler_->Sync();
  subscription_->Poll();
  script_->EditGpu(0, [](Gpu& gpu) {
    gpu.healthy = false;
    gpu.health_reason = "XID 48: double-bit ECC error";
  });
  ASSERT_TRUE(sampler_->SampleNow().ok());
  EventBatch batch = subscription_->Poll();
  ASSERT_EQ(batch.events.size(), 1u);
  EXPECT_EQ(batch.events[0]->type, GpuEventType::kHealth);
  EXPECT_EQ(batch.events[0]->current.health_reason, "XID 48: double-bit ECC error");
  // The observer sees it too, for the log, with the published number.
  const std::vector<SampleReport> reports = Reports();
  ASSERT_EQ(reports.back().notable_events.size(), 1u);
  EXPECT_EQ(reports.back().notable_events[0].sequence, batch.events[0]->sequence);
  // The first pass's additions are not notable (the daemon logs a summary).
  EXPECT_TRUE(reports.front().notable_events.empty());
}

TEST_F(SamplerTest, KeepsTheInventoryHistoryBounded) {
  sampler_->Start();
  sampler_->Sync();
  for (int i = 1; i <= 4; ++i) {
    script_->EditGpu(0, [i](Gpu& gpu) { gpu.utilization = 0.1 * i; });
    clock_.AdvanceMs(kIntervalMs);
    sampler_->Sync();
  }
  const std::vector<GpuSample> history = inventory_->History("n1-gpu0", 0);
  ASSERT_EQ(history.size(), 3u);  // The capacity given to the Inventory.
  EXPECT_DOUBLE_EQ(history.back().utilization, 0.4);
  EXPECT_EQ(history.back().unix_ms, clock_.NowUnixMs());
  EXPECT_EQ(history.front().unix_ms, clock_.NowUnixMs() - 2 * kIntervalMs);
}

TEST_F(SamplerTest, StaleGpusGetNoHistoryAndProviderThreadsCountAsSamplerCpu) {
  sampler_->Start();
  sampler_->Sync();
  const double cpu_before = sampler_->stats().cpu_seconds;
  // GPU 1's sampling timed out (LocalProvider's report); its workers spent 5 s.
  script_->SetStale({"n1-gpu1"}, 5.0);
  clock_.AdvanceMs(kIntervalMs);
  sampler_->Sync();
  EXPECT_EQ(inventory_->History("n1-gpu0", 0).size(), 2u);
  EXPECT_EQ(inventory_->History("n1-gpu1", 0).size(), 1u);
  EXPECT_GE(sampler_->stats().cpu_seconds - cpu_before, 5.0);
  EXPECT_GE(Reports().back().cpu_seconds, 5.0);
  EXPECT_EQ(inventory_->ProviderCpuSeconds(), 5.0);
}

TEST_F(SamplerTest, AFailingProviderKeepsTheLastSnapshotAndIsReported) {
  sampler_->Start();
  sampler_->Sync();
  const uint64_t generation = inventory_->Snapshot()->generation;
  script_->SetFailure("driver went away");
  const Status status = sampler_->SampleNow();
  EXPECT_EQ(status.code(), StatusCode::kUnavailable);
  EXPECT_EQ(inventory_->Snapshot()->generation, generation);
  script_->SetFailure("");
  EXPECT_TRUE(sampler_->SampleNow().ok());

  const std::vector<SampleReport> reports = Reports();
  ASSERT_EQ(reports.size(), 3u);
  EXPECT_TRUE(reports[0].first);
  EXPECT_EQ(reports[0].gpus, 2u);
  EXPECT_EQ(reports[0].events, 2u);
  EXPECT_FALSE(reports[1].status.ok());
  EXPECT_FALSE(reports[2].first);
  const SamplerStats stats = sampler_->stats();
  EXPECT_EQ(stats.passes, 3u);
  EXPECT_EQ(stats.failures, 1u);
  EXPECT_EQ(stats.gpu_samples, 4u);
}

TEST_F(SamplerTest, AClockThatJumpsBackRestartsTheSchedule) {
  sampler_->Start();
  sampler_->Sync();
  clock_.AdvanceMs(-10 * kIntervalMs);
  EXPECT_EQ(sampler_->Sync(), 2u);
  clock_.AdvanceMs(kIntervalMs);
  EXPECT_EQ(sampler_->Sync(), 3u);
}

TEST_F(SamplerTest, StopEndsThePassesAndWaitingCallsReturn) {
  EXPECT_EQ(sampler_->SampleNow().code(), StatusCode::kUnavailable);  // Not started.
  EXPECT_EQ(sampler_->Sync(), 0u);
  sampler_->Start();
  sampler_->Sync();
  sampler_->Stop();
  sampler_->Stop();
  EXPECT_EQ(sampler_->SampleNow().code(), StatusCode::kUnavailable);
  clock_.AdvanceMs(kIntervalMs);
  EXPECT_EQ(sampler_->Sync(), 1u);
  EXPECT_EQ(script_->discover_calls(), 1);
}

TEST_F(SamplerTest, SampleNowGivesUpAfterItsTimeoutWhileThePassGoesOn) {
  // The observer holds the first on-demand pass until the test lets it go.
  std::mutex gate;
  std::unique_lock<std::mutex> closed(gate);
  int passes = 0;
  std::atomic<bool> second_pass_held{false};
  Sampler sampler(inventory_.get(), &clock_, &hub_, SamplerOptions{30, 0.05},
                  [&gate, &passes, &second_pass_held](const SampleReport&) {
                    if (++passes == 2) {
                      second_pass_held = true;
                      std::lock_guard<std::mutex> wait_for_the_test(gate);
                    }
                  });
  sampler.Start();
  sampler.Sync();
  EXPECT_EQ(sampler.SampleNow(std::chrono::milliseconds(1)).code(), StatusCode::kUnavailable);
  // However slow the machine, the given-up pass is under way before the next
  // SampleNow, which therefore needs a pass of its own.
  while (!second_pass_held) std::this_thread::yield();
  closed.unlock();
  EXPECT_TRUE(sampler.SampleNow().ok());
  EXPECT_EQ(sampler.stats().passes, 3u);
}

TEST_F(SamplerTest, RequestSampleRunsAPassWithoutWaiting) {
  sampler_->Start();
  sampler_->Sync();
  sampler_->RequestSample();
  // The request is served before a later Sync returns: Sync's iteration sees
  // the pending request.
  EXPECT_EQ(sampler_->Sync(), 2u);
}

}  // namespace
}  // namespace gpurm
