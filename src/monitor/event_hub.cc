#include "monitor/event_hub.h"

#include <algorithm>
#include <utility>

namespace gpurm {

struct EventSubscription::Shared {
  explicit Shared(size_t queue_capacity) : capacity(queue_capacity) {}

  const size_t capacity;
  std::mutex mutex;  // Guards queue, the counters and closed.
  std::condition_variable ready;
  std::deque<std::shared_ptr<const GpuEvent>> queue;
  uint64_t dropped_unreported = 0;
  uint64_t dropped_total = 0;
  bool closed = false;

  // Held while `notify` runs, so that Cancel/SetNotify wait for a call in
  // progress and no call starts after them.
  std::mutex notify_mutex;
  std::function<void()> notify;
  bool cancelled = false;  // Guarded by notify_mutex: no callback after Cancel.

  void Notify() {
    std::lock_guard<std::mutex> lock(notify_mutex);
    if (notify) notify();
  }

  void Close() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      closed = true;
    }
    ready.notify_all();
  }

  EventBatch Take(size_t max_events) {
    EventBatch batch;
    const size_t n = std::min(max_events, queue.size());
    batch.events.assign(std::make_move_iterator(queue.begin()),
                        std::make_move_iterator(queue.begin() + static_cast<std::ptrdiff_t>(n)));
    queue.erase(queue.begin(), queue.begin() + static_cast<std::ptrdiff_t>(n));
    batch.dropped = std::exchange(dropped_unreported, 0);
    batch.closed = closed && queue.empty();
    return batch;
  }
};

EventSubscription::~EventSubscription() { Cancel(); }

EventBatch EventSubscription::Poll(size_t max_events) {
  std::lock_guard<std::mutex> lock(shared_->mutex);
  return shared_->Take(max_events);
}

EventBatch EventSubscription::WaitFor(std::chrono::milliseconds timeout, size_t max_events) {
  std::unique_lock<std::mutex> lock(shared_->mutex);
  shared_->ready.wait_for(lock, timeout, [this] {
    return !shared_->queue.empty() || shared_->dropped_unreported > 0 || shared_->closed;
  });
  return shared_->Take(max_events);
}

void EventSubscription::SetNotify(std::function<void()> notify) {
  std::lock_guard<std::mutex> lock(shared_->notify_mutex);
  if (!shared_->cancelled) shared_->notify = std::move(notify);
}

void EventSubscription::Cancel() {
  {
    std::lock_guard<std::mutex> lock(shared_->notify_mutex);
    shared_->cancelled = true;
    shared_->notify = nullptr;
  }
  shared_->Close();
}

EventHub::EventHub(size_t queue_capacity) : queue_capacity_(std::max<size_t>(1, queue_capacity)) {}

EventHub::~EventHub() { Close(); }

std::unique_ptr<EventSubscription> EventHub::Subscribe() {
  auto shared = std::make_shared<EventSubscription::Shared>(queue_capacity_);
  std::lock_guard<std::mutex> lock(mutex_);
  if (closed_) {
    shared->closed = true;
  } else {
    subscribers_.push_back(shared);
  }
  return std::unique_ptr<EventSubscription>(new EventSubscription(std::move(shared)));
}

uint64_t EventHub::Publish(std::vector<GpuEvent> events) {
  if (events.empty()) return 0;
  std::vector<std::shared_ptr<EventSubscription::Shared>> woken;
  uint64_t first_sequence = 0;
  {
    // Numbering and queueing under one lock keeps every queue in sequence
    // order even if two threads publish.
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) return 0;
    first_sequence = next_sequence_;
    std::vector<std::shared_ptr<const GpuEvent>> numbered;
    numbered.reserve(events.size());
    for (GpuEvent& event : events) {
      event.sequence = next_sequence_++;
      numbered.push_back(std::make_shared<const GpuEvent>(std::move(event)));
    }
    published_ += numbered.size();
    // Cancelled subscribers leave here; their drop counts stay in the stats.
    std::erase_if(subscribers_, [this](const std::shared_ptr<EventSubscription::Shared>& s) {
      std::lock_guard<std::mutex> sub_lock(s->mutex);
      if (s->closed) dropped_from_cancelled_ += s->dropped_total;
      return s->closed;
    });
    for (const auto& subscriber : subscribers_) {
      {
        std::lock_guard<std::mutex> sub_lock(subscriber->mutex);
        for (const auto& event : numbered) {
          if (subscriber->queue.size() >= subscriber->capacity) {
            subscriber->queue.pop_front();
            ++subscriber->dropped_unreported;
            ++subscriber->dropped_total;
          }
          subscriber->queue.push_back(event);
        }
      }
      subscriber->ready.notify_all();
    }
    woken = subscribers_;
  }
  for (const auto& subscriber : woken) subscriber->Notify();
  return first_sequence;
}

void EventHub::Close() {
  std::vector<std::shared_ptr<EventSubscription::Shared>> subscribers;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) return;
    closed_ = true;
    for (const auto& subscriber : subscribers_) {
      std::lock_guard<std::mutex> sub_lock(subscriber->mutex);
      dropped_from_cancelled_ += subscriber->dropped_total;
    }
    subscribers.swap(subscribers_);
  }
  for (const auto& subscriber : subscribers) {
    subscriber->Close();
    subscriber->Notify();
  }
}

EventHubStats EventHub::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  EventHubStats stats;
  stats.published = published_;
  stats.dropped = dropped_from_cancelled_;
  for (const auto& subscriber : subscribers_) {
    std::lock_guard<std::mutex> sub_lock(subscriber->mutex);
    stats.dropped += subscriber->dropped_total;
    if (!subscriber->closed) ++stats.subscribers;
  }
  return stats;
}

}  // namespace gpurm
