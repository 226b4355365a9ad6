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
  const int year = static_cast<int>(date.year());
  if (year < 0 || year > 9999) {
    char buffer[64];
    std::snprintf(buffer, sizeof(buffer), "%d-%02u-%02uT%02d:%02d:%02d.%03dZ", year,
                  static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                  static_cast<int>(ms_of_day / 3'600'000),
                  static_cast<int>(ms_of_day / 60'000 % 60),
                  static_cast<int>(ms_of_day / 1000 % 60), static_cast<int>(ms_of_day % 1000));
    return buffer;
  }
  std::string text = "0000-00-00T00:00:00.000Z";
  PutDigits(&text[0], year, 4);
  PutDigits(&text[5], static_cast<int>(static_cast<unsigned>(date.month())), 2);
  PutDigits(&text[8], static_cast<int>(static_cast<unsigned>(date.day())), 2);
  PutDigits(&text[11], static_cast<int>(ms_of_day / 3'600'000), 2);
  PutDigits(&text[14], static_cast<int>(ms_of_day / 60'000 % 60), 2);
  PutDigits(&text[17], static_cast<int>(ms_of_day / 1000 % 60), 2);
  PutDigits(&text[20], static_cast<int>(ms_of_day % 1000), 3);
  return text;
}

}  // namespace gpurm
