#include "core/clock.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>

namespace gpurm {

int64_t SystemClock::NowUnixMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

namespace {

// Writes `value` as `width` decimal digits (zero-padded) at `out`.
void PutDigits(char* out, int value, int width) {
  for (int i = width - 1; i >= 0; --i) {
    out[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
}

}  // namespace

// By calendar arithmetic rather than gmtime_r and snprintf: /status stamps
// every answer, and formatting was a few percent of its cost.
std::string FormatIso8601(int64_t unix_ms) {
  using std::chrono::days;
  using std::chrono::milliseconds;
  const std::chrono::sys_time<milliseconds> time{milliseconds(unix_ms)};
  const std::chrono::sys_days day = std::chrono::floor<days>(time);
  const std::chrono::year_month_day date{day};
  const int64_t ms_of_day = (time - day).count();
  const int fields[] = {static_cast<int>(date.year()),
                        static_cast<int>(static_cast<unsigned>(date.month())),
                        static_cast<int>(static_cast<unsigned>(date.day())),
                        static_cast<int>(ms_of_day / 3'600'000),
                        static_cast<int>(ms_of_day / 60'000 % 60),
                        static_cast<int>(ms_of_day / 1000 % 60),
                        static_cast<int>(ms_of_day % 1000)};
  if (fields[0] < 0 || fields[0] > 9999) {  // Beyond four digits: rare, so printf.
    char buffer[64];
    std::snprintf(buffer, sizeof(buffer), "%d-%02d-%02dT%02d:%02d:%02d.%03dZ", fields[0], fields[1],
                  fields[2], fields[3], fields[4], fields[5], fields[6]);
    return buffer;
  }
  // Where each field goes in the text, and its width.
  constexpr int kAt[] = {0, 5, 8, 11, 14, 17, 20};
  constexpr int kWidth[] = {4, 2, 2, 2, 2, 2, 3};
  std::string text = "0000-00-00T00:00:00.000Z";
  for (int i = 0; i < 7; ++i) PutDigits(&text[kAt[i]], fields[i], kWidth[i]);
  return text;
}

}  // namespace gpurm
