// The per-GPU sampling workers: jobs run off the caller's thread, one per
// worker at a time, a busy worker takes no second job, and a worker stuck in
// its job does not hold up the others or the pool's destruction.
#include "inventory/providers/common/sampling_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

namespace gpurm {
namespace {

// A gate a job waits at until the test opens it.
class Gate {
 public:
  void Open() {
    std::lock_guard<std::mutex> lock(mutex_);
    open_ = true;
    opened_.notify_all();
  }
  void Wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    opened_.wait(lock, [&] { return open_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable opened_;
  bool open_ = false;
};

// Far enough away that only a broken pool reaches it.
std::chrono::steady_clock::time_point Eventually() {
  return std::chrono::steady_clock::now() + std::chrono::minutes(5);
}

TEST(SamplingPoolTest, RunsEachJobOnItsWorkerOffTheCallersThread) {
  SamplingPool pool(3);
  EXPECT_EQ(pool.size(), 3u);
  std::thread::id ran_on[3];
  for (size_t i = 0; i < 3; ++i) {
    ASSERT_TRUE(pool.Post(i, [&ran_on, i] { ran_on[i] = std::this_thread::get_id(); }));
  }
  ASSERT_TRUE(pool.WaitIdle(Eventually()));
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_NE(ran_on[i], std::this_thread::get_id());
    EXPECT_FALSE(pool.Busy(i));
  }
  EXPECT_NE(ran_on[0], ran_on[1]);
  EXPECT_GE(pool.cpu_seconds(), 0.0);
}

TEST(SamplingPoolTest, AStuckWorkerTakesNoSecondJobAndStallsNoOther) {
  SamplingPool pool(2);
  Gate gate;
  std::atomic<int> stuck_runs{0};
  ASSERT_TRUE(pool.Post(0, [&] {
    ++stuck_runs;
    gate.Wait();
  }));
  // The deadline passes with worker 0 still inside its job.
  EXPECT_FALSE(pool.WaitIdle(std::chrono::steady_clock::now()));
  EXPECT_TRUE(pool.Busy(0));
  EXPECT_FALSE(pool.Post(0, [&] { ++stuck_runs; }));

  // Worker 1 goes on meanwhile.
  std::atomic<int> other_runs{0};
  for (int pass = 0; pass < 3; ++pass) {
    while (!pool.Post(1, [&] { ++other_runs; })) std::this_thread::yield();
  }
  while (other_runs.load() < 3) std::this_thread::yield();
  EXPECT_TRUE(pool.Busy(0));

  gate.Open();
  ASSERT_TRUE(pool.WaitIdle(Eventually()));
  EXPECT_EQ(stuck_runs.load(), 1);  // The refused job never ran.
  EXPECT_TRUE(pool.Post(0, [&] { ++stuck_runs; }));
  ASSERT_TRUE(pool.WaitIdle(Eventually()));
  EXPECT_EQ(stuck_runs.load(), 2);
}

TEST(SamplingPoolTest, DestructionDetachesAStuckWorkerWhichFinishesLater) {
  auto gate = std::make_shared<Gate>();
  auto finished = std::make_shared<std::atomic<bool>>(false);
  {
    SamplingPool pool(2);
    // The job owns what it uses, as LocalProvider's jobs do.
    ASSERT_TRUE(pool.Post(0, [gate, finished] {
      gate->Wait();
      *finished = true;
    }));
    ASSERT_TRUE(pool.Post(1, [] {}));
    EXPECT_FALSE(pool.WaitIdle(std::chrono::steady_clock::now()));
  }  // Returns although worker 0 is still inside its job.
  EXPECT_FALSE(finished->load());
  gate->Open();
  while (!finished->load()) std::this_thread::yield();
}

}  // namespace
}  // namespace gpurm
