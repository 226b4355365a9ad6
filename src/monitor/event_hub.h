// EventHub: fans GPU change events out to subscribers (SSE streams, tests)
// through one bounded queue per subscriber. Publishing never blocks on a
// consumer: a subscriber that falls behind loses its oldest events and is
// told how many on its next read.
#ifndef GPURM_MONITOR_EVENT_HUB_H_
#define GPURM_MONITOR_EVENT_HUB_H_

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "monitor/events.h"

namespace gpurm {

struct EventBatch {
  std::vector<std::shared_ptr<const GpuEvent>> events;  // Oldest first.
  // Events this subscriber lost (queue full) since its previous read; they
  // were older than every event in `events`.
  uint64_t dropped = 0;
  // The hub was closed or the subscription cancelled, and `events` holds the
  // last ones: nothing more will come.
  bool closed = false;
};

// One consumer's queue. Thread-safe; typically one thread reads while the
// publisher writes.
class EventSubscription {
 public:
  ~EventSubscription();  // Cancels.
  EventSubscription(const EventSubscription&) = delete;
  EventSubscription& operator=(const EventSubscription&) = delete;

  // Takes up to `max_events` queued events without waiting.
  EventBatch Poll(size_t max_events = SIZE_MAX);
  // Like Poll, but first waits up to `timeout` for an event, a drop or the end.
  EventBatch WaitFor(std::chrono::milliseconds timeout, size_t max_events = SIZE_MAX);

  // `notify` is called, on the publishing thread, after events were queued
  // and when the subscription ends. It must be quick and must not call back
  // into this subscription (post work elsewhere instead). Replaces any
  // previous callback; is never called after Cancel() returns, and setting
  // one after Cancel() does nothing.
  void SetNotify(std::function<void()> notify);

  // Ends the subscription: the hub stops queueing to it, queued events can
  // still be polled, and the next reads report `closed` once it is empty.
  // Idempotent; safe from any thread except from inside `notify`.
  void Cancel();

 private:
  friend class EventHub;
  struct Shared;
  explicit EventSubscription(std::shared_ptr<Shared> shared) : shared_(std::move(shared)) {}

  std::shared_ptr<Shared> shared_;
};

struct EventHubStats {
  size_t subscribers = 0;
  uint64_t published = 0;  // Events published since the start.
  uint64_t dropped = 0;    // Events dropped from slow subscribers' queues, summed.
};

// Thread-safe.
class EventHub {
 public:
  // Each subscriber queues at most `queue_capacity` (>= 1) events.
  explicit EventHub(size_t queue_capacity = 1024);
  ~EventHub();  // Closes.
  EventHub(const EventHub&) = delete;
  EventHub& operator=(const EventHub&) = delete;

  // A new subscriber that receives events published from now on. After
  // Close(), the subscription is born closed.
  std::unique_ptr<EventSubscription> Subscribe();
  // Numbers the events (sequence 1, 2, ...) in order and queues them to every
  // subscriber. Never blocks on a subscriber. Returns the sequence number of
  // the first event (the others follow consecutively), or 0 when nothing was
  // published (no events, or the hub is closed).
  uint64_t Publish(std::vector<GpuEvent> events);
  // Ends every subscription (they drain what is queued, then report closed).
  void Close();

  EventHubStats stats() const;
  size_t queue_capacity() const { return queue_capacity_; }

 private:
  const size_t queue_capacity_;
  mutable std::mutex mutex_;  // Guards the members below.
  bool closed_ = false;
  uint64_t next_sequence_ = 1;
  uint64_t published_ = 0;
  uint64_t dropped_from_cancelled_ = 0;
  std::vector<std::shared_ptr<EventSubscription::Shared>> subscribers_;
};

}  // namespace gpurm

#endif  // GPURM_MONITOR_EVENT_HUB_H_
