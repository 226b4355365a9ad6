#include "monitor/http_metrics.h"

#include <algorithm>
#include <array>

namespace gpurm {
namespace {

constexpr char kRequestsName[] = "gpurm_http_requests_total";
constexpr char kDurationsName[] = "gpurm_http_request_duration_seconds";

std::string_view MethodLabel(std::string_view method) {
  static constexpr std::array<std::string_view, 7> kKnown = {"GET",  "POST",  "PUT",    "DELETE",
                                                             "HEAD", "PATCH", "OPTIONS"};
  for (std::string_view known : kKnown) {
    if (method == known) return known;
  }
  return "other";
}

}  // namespace

const std::vector<double>& HttpMetrics::DefaultBuckets() {
  static const std::vector<double> kBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                               0.25,  0.5,    1,     2.5,  5,     10};
  return kBuckets;
}

HttpMetrics::HttpMetrics(std::vector<double> buckets)
    : buckets_([&buckets] {
        std::sort(buckets.begin(), buckets.end());
        buckets.erase(std::unique(buckets.begin(), buckets.end()), buckets.end());
        return std::move(buckets);
      }()),
      bucket_labels_([this] {
        std::vector<std::string> labels;
        for (const double bound : buckets_) {
          labels.push_back(PrometheusText::RenderLabels({{"le", FormatMetricValue(bound)}}));
        }
        labels.push_back(PrometheusText::RenderLabels({{"le", "+Inf"}}));
        return labels;
      }()),
      requests_family_(PrometheusText::RenderFamily(
          kRequestsName, "counter",
          "HTTP requests answered, by method, route pattern and status code.")),
      durations_family_(PrometheusText::RenderFamily(
          kDurationsName, "histogram",
          "Time to produce HTTP responses (handler time, excluding network I/O).")) {}

void HttpMetrics::Observe(std::string_view method, std::string_view route, int status,
                          double seconds) {
  const std::string_view method_label = MethodLabel(method);
  const std::string_view route_label = route.empty() ? "unmatched" : route;
  const size_t bucket = static_cast<size_t>(
      std::lower_bound(buckets_.begin(), buckets_.end(), seconds) - buckets_.begin());
  std::lock_guard<std::mutex> lock(mutex_);
  // Looked up by view: the labels are copied only for a new series.
  auto request = requests_.find(std::tuple(method_label, route_label, status));
  if (request == requests_.end()) {
    Counter counter;
    counter.sample_start = PrometheusText::RenderSampleStart(
        kRequestsName, PrometheusText::RenderLabels({{"method", std::string(method_label)},
                                                     {"route", std::string(route_label)},
                                                     {"code", std::to_string(status)}}));
    request = requests_
                  .emplace(std::tuple(std::string(method_label), std::string(route_label), status),
                           std::move(counter))
                  .first;
  }
  ++request->second.count;
  auto duration = durations_.find(std::tuple(method_label, route_label));
  if (duration == durations_.end()) {
    Histogram created;
    const std::string labels = PrometheusText::RenderLabels(
        {{"method", std::string(method_label)}, {"route", std::string(route_label)}});
    const std::string name(kDurationsName);
    for (const std::string& bucket_label : bucket_labels_) {
      created.bucket_starts.push_back(
          PrometheusText::RenderSampleStart(name + "_bucket", labels, bucket_label));
    }
    created.sum_start = PrometheusText::RenderSampleStart(name + "_sum", labels);
    created.count_start = PrometheusText::RenderSampleStart(name + "_count", labels);
    created.counts.assign(buckets_.size() + 1, 0);
    duration = durations_
                   .emplace(std::tuple(std::string(method_label), std::string(route_label)),
                            std::move(created))
                   .first;
  }
  Histogram& histogram = duration->second;
  ++histogram.counts[bucket];
  ++histogram.count;
  histogram.sum += seconds;
}

void HttpMetrics::Write(PrometheusText& out) const {
  std::lock_guard<std::mutex> lock(mutex_);
  out.AppendRendered(requests_family_);
  for (const auto& [key, counter] : requests_) {
    out.SampleAfter(counter.sample_start, static_cast<double>(counter.count));
  }
  out.AppendRendered(durations_family_);
  for (const auto& [key, histogram] : durations_) {
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= buckets_.size(); ++i) {
      cumulative += histogram.counts[i];
      out.SampleAfter(histogram.bucket_starts[i], static_cast<double>(cumulative));
    }
    out.SampleAfter(histogram.sum_start, histogram.sum);
    out.SampleAfter(histogram.count_start, static_cast<double>(histogram.count));
  }
}

}  // namespace gpurm
