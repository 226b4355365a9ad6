// Eventually: the one way tests wait for something another thread or process
// does. It polls a condition until it holds or a deadline passes, so no test
// waits forever and none relies on a fixed sleep being long enough.
#ifndef GPURM_TESTS_SUPPORT_EVENTUALLY_H_
#define GPURM_TESTS_SUPPORT_EVENTUALLY_H_

#include <chrono>
#include <thread>

namespace gpurm::testing {

// Long enough for a loaded 2-core CI machine running sanitizers; a healthy
// run returns in milliseconds.
inline constexpr std::chrono::milliseconds kPatience{60'000};

// Polls `condition` (a callable returning bool) every `interval` until it
// returns true (then true) or `patience` has passed (then false, after one
// last look). Use as EXPECT_TRUE(Eventually([&] { return ...; })) << why.
template <typename Condition>
bool Eventually(Condition&& condition, std::chrono::milliseconds patience = kPatience,
                std::chrono::milliseconds interval = std::chrono::milliseconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + patience;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(interval);
  }
  return static_cast<bool>(condition());
}

}  // namespace gpurm::testing

#endif  // GPURM_TESTS_SUPPORT_EVENTUALLY_H_
