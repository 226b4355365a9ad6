// HttpMetrics: the daemon's own request counters and latency histograms,
// exposed on /metrics as gpurm_http_requests_total and
// gpurm_http_request_duration_seconds. One instance is owned by the daemon
// and fed by the HTTP server's request observer.
#ifndef GPURM_MONITOR_HTTP_METRICS_H_
#define GPURM_MONITOR_HTTP_METRICS_H_

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "monitor/prometheus_text.h"

namespace gpurm {

// Thread-safe.
class HttpMetrics {
 public:
  // Upper bounds, in seconds, of the latency histogram's buckets (+Inf is
  // implicit): 1 ms .. 10 s.
  static const std::vector<double>& DefaultBuckets();

  explicit HttpMetrics(std::vector<double> buckets = DefaultBuckets());

  // Counts one request. `route` must be the route pattern (e.g.
  // "/api/v1/gpu/allocations/{id}"), not the path, so the label set stays
  // bounded; "" is recorded as "unmatched". Methods outside the standard
  // ones are recorded as "other", for the same reason.
  void Observe(std::string_view method, std::string_view route, int status, double seconds);

  // Appends both families (always present, possibly without samples).
  void Write(PrometheusText& out) const;

 private:
  // Each series keeps its sample lines rendered up to their values
  // (PrometheusText::RenderSampleStart) from when it is created: Write, on
  // every scrape, only appends them and the numbers.
  struct Counter {
    std::string sample_start;  // Labels method, route, code.
    uint64_t count = 0;
  };
  struct Histogram {
    std::vector<std::string> bucket_starts;  // Per bucket, then +Inf.
    std::string sum_start;
    std::string count_start;
    std::vector<uint64_t> counts;  // Per bucket, not cumulative.
    uint64_t count = 0;
    double sum = 0;
  };

  const std::vector<double> buckets_;
  const std::vector<std::string> bucket_labels_;  // le="<bound>" per bucket, then le="+Inf".
  const std::string requests_family_;             // Both families' # HELP and # TYPE.
  const std::string durations_family_;
  mutable std::mutex mutex_;  // Guards the maps.
  // Orders label tuples element by element, strings as string_views,
  // whatever their string type: transparent, so that Observe finds a series
  // by views of its labels and copies them only for a new one.
  struct LabelOrder {
    using is_transparent = void;
    template <class A, class B>
    bool operator()(const A& a, const B& b) const {
      return AsViews(a) < AsViews(b);
    }
    template <class... T>
    static auto AsViews(const std::tuple<T...>& labels) {
      return std::apply([](const auto&... label) { return std::tuple(View(label)...); }, labels);
    }
    static std::string_view View(std::string_view label) { return label; }
    static int View(int label) { return label; }
  };

  // (method, route, status) and (method, route).
  std::map<std::tuple<std::string, std::string, int>, Counter, LabelOrder> requests_;
  std::map<std::tuple<std::string, std::string>, Histogram, LabelOrder> durations_;
};

}  // namespace gpurm

#endif  // GPURM_MONITOR_HTTP_METRICS_H_
