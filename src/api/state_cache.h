// StateCache: the latest answer an endpoint built from the manager's state,
// kept until that state changes, so that the answer can be given again
// without building it -- also on an I/O thread (Router::AddNonBlocking),
// since looking it up never blocks.
#ifndef GPURM_API_STATE_CACHE_H_
#define GPURM_API_STATE_CACHE_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>

#include "manager/manager.h"

namespace gpurm {

// What an answer built from CurrentState(), the ledger's active allocations
// and the inventory snapshot depends on: equal keys, equal state.
struct StateKey {
  uint64_t manager_version = 0;       // GpuManager::Version().
  uint64_t inventory_generation = 0;  // The latest snapshot's; 0 = none yet.

  bool operator==(const StateKey&) const = default;
};

// The key of the state now. Read it before reading the state an answer is
// built from: the answer is then never older than its key (it may be newer,
// which costs a rebuild, never a stale answer). Non-blocking: a lock-free
// read and the inventory's brief snapshot lock.
inline StateKey CurrentStateKey(const GpuManager& manager) {
  StateKey key;
  key.manager_version = manager.Version();
  const std::shared_ptr<const InventorySnapshot> snapshot = manager.inventory().Snapshot();
  key.inventory_generation = snapshot ? snapshot->generation : 0;
  return key;
}

// The key to build an answer under, for a worker (it may block): the key
// once the manager's free state is settled for the latest snapshot.
// CurrentState() rebuilds it for a new snapshot, which moves the version, so
// a key read before that would be outdated by the build itself and cost
// every new snapshot a second build.
inline StateKey KeyForBuilding(const GpuManager& manager) {
  static_cast<void>(manager.CurrentState());
  return CurrentStateKey(manager);
}

// The latest `Answer` (immutable once stored), shared by every thread
// answering the endpoint. Concurrent builders may each store one; the last
// store wins, which costs at most another rebuild. Callers serve only what
// LoadCurrent(CurrentStateKey()) returns.
// Thread-safe; the mutex is held only to copy the pointer (not
// std::atomic<std::shared_ptr>: libstdc++ 12 implements that with a lock
// bit ThreadSanitizer cannot see).
template <class Answer>
class StateCache {
 public:
  std::shared_ptr<const Answer> Load() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return answer_;
  }
  // The stored answer when it was built under `key` (Answer::key) and `key`
  // has an inventory snapshot (before the first one nothing is served from
  // the cache); else null. Non-blocking.
  std::shared_ptr<const Answer> LoadCurrent(const StateKey& key) const {
    std::shared_ptr<const Answer> answer = Load();
    if (key.inventory_generation == 0 || !answer || answer->key != key) return nullptr;
    return answer;
  }
  void Store(std::shared_ptr<const Answer> answer) {
    std::lock_guard<std::mutex> lock(mutex_);
    answer_.swap(answer);  // The old answer is freed outside the lock, by `answer`.
  }

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const Answer> answer_;
};

}  // namespace gpurm

#endif  // GPURM_API_STATE_CACHE_H_
