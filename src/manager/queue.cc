#include "manager/queue.h"

#include <utility>

namespace gpurm {

const char* QueueStateName(QueueState state) {
  switch (state) {
    case QueueState::kWaiting:
      return "waiting";
    case QueueState::kGranted:
      return "granted";
    case QueueState::kExpired:
      return "expired";
    case QueueState::kCancelled:
      return "cancelled";
    case QueueState::kFailed:
      return "failed";
  }
  return "failed";
}

AllocationQueue::AllocationQueue(size_t max_waiting, size_t max_finished,
                                 int64_t finished_retention_ms)
    : max_waiting_(max_waiting),
      max_finished_(max_finished),
      finished_retention_ms_(finished_retention_ms) {}

AllocationQueue::OrderKey AllocationQueue::KeyOf(const QueueEntry& entry) {
  return {-entry.priority, entry.sequence, entry.id};
}

Result<QueueEntry> AllocationQueue::Add(QueueEntry entry) {
  if (order_.size() >= max_waiting_) {
    return Status(StatusCode::kResourceExhausted,
                  "the queue is full (" + std::to_string(max_waiting_) + " waiting requests)");
  }
  entry.sequence = next_sequence_++;
  entry.state = QueueState::kWaiting;
  order_.insert(KeyOf(entry));
  const std::string id = entry.id;
  auto [it, inserted] = entries_.insert_or_assign(id, std::move(entry));
  return it->second;
}

std::vector<std::string> AllocationQueue::WaitingIds() const {
  std::vector<std::string> ids;
  ids.reserve(order_.size());
  for (const OrderKey& key : order_) ids.push_back(std::get<2>(key));
  return ids;
}

QueueEntry* AllocationQueue::Find(const std::string& id) {
  auto it = entries_.find(id);
  return it == entries_.end() ? nullptr : &it->second;
}

const QueueEntry* AllocationQueue::Find(const std::string& id) const {
  auto it = entries_.find(id);
  return it == entries_.end() ? nullptr : &it->second;
}

const QueueEntry* AllocationQueue::FindWaiting(const std::string& owner,
                                               const std::string& key) const {
  if (key.empty()) return nullptr;
  for (const OrderKey& order : order_) {
    const QueueEntry& entry = entries_.at(std::get<2>(order));
    if (entry.owner == owner && entry.idempotency_key == key) return &entry;
  }
  return nullptr;
}

size_t AllocationQueue::WaitingOf(const std::string& owner) const {
  size_t count = 0;
  for (const OrderKey& order : order_) count += entries_.at(std::get<2>(order)).owner == owner;
  return count;
}

double AllocationQueue::WaitingGpuHoursOf(const std::string& owner) const {
  double hours = 0;
  for (const OrderKey& order : order_) {
    const QueueEntry& entry = entries_.at(std::get<2>(order));
    if (entry.owner != owner) continue;
    hours += entry.request.gpu_count *
             static_cast<double>(entry.deadline_unix_ms - entry.enqueued_unix_ms) / 3'600'000.0;
  }
  return hours;
}

size_t AllocationQueue::Position(const std::string& id) const {
  const QueueEntry* entry = Find(id);
  if (entry == nullptr || entry->state != QueueState::kWaiting) return 0;
  size_t position = 1;
  for (const OrderKey& key : order_) {
    if (std::get<2>(key) == id) return position;
    ++position;
  }
  return 0;
}

std::optional<int> AllocationQueue::HeadPriority() const {
  if (order_.empty()) return std::nullopt;
  return -std::get<0>(*order_.begin());
}

void AllocationQueue::Finish(const std::string& id, QueueState state, int64_t now_unix_ms,
                             std::string message, std::optional<Allocation> allocation) {
  QueueEntry* entry = Find(id);
  if (entry == nullptr || entry->state != QueueState::kWaiting) return;
  order_.erase(KeyOf(*entry));
  entry->state = state;
  entry->ended_unix_ms = now_unix_ms;
  entry->message = std::move(message);
  entry->allocation = std::move(allocation);
  finished_.emplace(now_unix_ms, id);
}

std::vector<QueueEntry> AllocationQueue::ExpireDue(int64_t now_unix_ms) {
  std::vector<std::string> due;
  for (const OrderKey& key : order_) {
    const QueueEntry& entry = entries_.at(std::get<2>(key));
    if (entry.deadline_unix_ms <= now_unix_ms) due.push_back(entry.id);
  }
  std::vector<QueueEntry> expired;
  for (const std::string& id : due) {
    QueueEntry* entry = Find(id);
    Finish(id, QueueState::kExpired, now_unix_ms,
           "no GPUs freed up within wait_timeout_seconds; last reason: " + entry->message);
    expired.push_back(*entry);
  }
  return expired;
}

void AllocationQueue::Prune(int64_t now_unix_ms) {
  while (!finished_.empty() && (finished_.size() > max_finished_ ||
                                finished_.begin()->first + finished_retention_ms_ <= now_unix_ms)) {
    entries_.erase(finished_.begin()->second);
    finished_.erase(finished_.begin());
  }
}

std::vector<QueueEntry> AllocationQueue::List(bool include_finished) const {
  std::vector<QueueEntry> list;
  for (const OrderKey& key : order_) list.push_back(entries_.at(std::get<2>(key)));
  if (include_finished) {
    for (auto it = finished_.rbegin(); it != finished_.rend(); ++it) {
      list.push_back(entries_.at(it->second));
    }
  }
  return list;
}

}  // namespace gpurm
