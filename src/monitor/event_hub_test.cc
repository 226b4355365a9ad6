#include "monitor/event_hub.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace gpurm {
namespace {

std::vector<GpuEvent> Events(int count) {
  std::vector<GpuEvent> events(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) events[static_cast<size_t>(i)].gpu_index = i;
  return events;
}

TEST(EventHubTest, EverySubscriberGetsEveryEventInOrder) {
  EventHub hub(16);
  auto a = hub.Subscribe();
  auto b = hub.Subscribe();
  EXPECT_EQ(hub.Publish(Events(3)), 1u);
  EXPECT_EQ(hub.Publish(Events(2)), 4u);
  EXPECT_EQ(hub.Publish({}), 0u);
  EventBatch batch = a->Poll();
  ASSERT_EQ(batch.events.size(), 5u);
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(batch.events[i]->sequence, i + 1);
  EXPECT_EQ(batch.dropped, 0u);
  EXPECT_FALSE(batch.closed);
  EXPECT_EQ(b->Poll(2).events.size(), 2u);
  EXPECT_EQ(b->Poll().events.front()->sequence, 3u);
  EXPECT_TRUE(a->Poll().events.empty());
  EXPECT_EQ(hub.stats().published, 5u);
  EXPECT_EQ(hub.stats().subscribers, 2u);
}

TEST(EventHubTest, LateSubscribersOnlySeeNewEvents) {
  EventHub hub;
  hub.Publish(Events(2));
  auto late = hub.Subscribe();
  EXPECT_TRUE(late->Poll().events.empty());
  hub.Publish(Events(1));
  EXPECT_EQ(late->Poll().events.at(0)->sequence, 3u);
}

TEST(EventHubTest, ASlowSubscriberLosesTheOldestAndIsToldHowMany) {
  EventHub hub(4);
  auto slow = hub.Subscribe();
  auto fast = hub.Subscribe();
  hub.Publish(Events(3));
  EXPECT_EQ(fast->Poll().events.size(), 3u);
  hub.Publish(Events(3));  // slow now has 6 events for 4 places.
  EventBatch batch = slow->Poll();
  EXPECT_EQ(batch.dropped, 2u);
  ASSERT_EQ(batch.events.size(), 4u);
  EXPECT_EQ(batch.events.front()->sequence, 3u);
  EXPECT_EQ(batch.events.back()->sequence, 6u);
  // The fast one lost nothing; the drop is reported once.
  EXPECT_EQ(fast->Poll().dropped, 0u);
  EXPECT_EQ(slow->Poll().dropped, 0u);
  EXPECT_EQ(hub.stats().dropped, 2u);
}

TEST(EventHubTest, CancelledSubscriptionsDrainThenReportClosed) {
  EventHub hub;
  auto subscription = hub.Subscribe();
  hub.Publish(Events(2));
  subscription->Cancel();
  hub.Publish(Events(1));  // Not queued any more.
  EventBatch batch = subscription->Poll(1);
  EXPECT_EQ(batch.events.size(), 1u);
  EXPECT_FALSE(batch.closed);
  batch = subscription->Poll();
  EXPECT_EQ(batch.events.size(), 1u);
  EXPECT_TRUE(batch.closed);
  EXPECT_EQ(hub.stats().subscribers, 0u);
}

TEST(EventHubTest, DestroyingASubscriptionUnsubscribes) {
  EventHub hub;
  { auto gone = hub.Subscribe(); }
  hub.Publish(Events(1));
  EXPECT_EQ(hub.stats().subscribers, 0u);
}

TEST(EventHubTest, CloseEndsEverySubscriptionAndLaterOnesAreBornClosed) {
  EventHub hub;
  auto subscription = hub.Subscribe();
  int notified = 0;
  subscription->SetNotify([&notified] { ++notified; });
  hub.Close();
  EXPECT_EQ(notified, 1);
  EXPECT_TRUE(subscription->Poll().closed);
  EXPECT_TRUE(hub.Subscribe()->Poll().closed);
  EXPECT_EQ(hub.Publish(Events(1)), 0u);
  EXPECT_EQ(hub.stats().published, 0u);
}

TEST(EventHubTest, NotifyIsCalledPerPublishAndNeverAfterCancel) {
  EventHub hub;
  auto subscription = hub.Subscribe();
  int notified = 0;
  subscription->SetNotify([&notified] { ++notified; });
  hub.Publish(Events(3));
  hub.Publish({});  // Nothing to publish: no call.
  EXPECT_EQ(notified, 1);
  subscription->Cancel();
  subscription->SetNotify([&notified] { ++notified; });  // Too late: ignored.
  hub.Publish(Events(1));
  hub.Close();
  EXPECT_EQ(notified, 1);
}

TEST(EventHubTest, WaitForReturnsWhenAnotherThreadPublishes) {
  EventHub hub;
  auto subscription = hub.Subscribe();
  std::thread publisher([&hub] { hub.Publish(Events(1)); });
  // Generous timeout: the test asserts on what arrives, not on how fast.
  EventBatch batch;
  while (batch.events.empty()) batch = subscription->WaitFor(std::chrono::seconds(30));
  publisher.join();
  EXPECT_EQ(batch.events.front()->sequence, 1u);
}

TEST(EventHubTest, ConcurrentPublishersKeepEveryQueueInSequenceOrder) {
  EventHub hub(100000);
  auto subscription = hub.Subscribe();
  std::vector<std::thread> publishers;
  publishers.reserve(4);
  for (int t = 0; t < 4; ++t) {
    publishers.emplace_back([&hub] {
      for (int i = 0; i < 250; ++i) hub.Publish(Events(2));
    });
  }
  for (std::thread& publisher : publishers) publisher.join();
  EventBatch batch = subscription->Poll();
  ASSERT_EQ(batch.events.size(), 2000u);
  for (size_t i = 0; i < batch.events.size(); ++i) EXPECT_EQ(batch.events[i]->sequence, i + 1);
}

}  // namespace
}  // namespace gpurm
