#include "monitor/http_metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace gpurm {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(HttpMetricsTest, CountsByMethodRouteAndCode) {
  HttpMetrics metrics;
  metrics.Observe("GET", "/api/v1/gpu/status", 200, 0.002);
  metrics.Observe("GET", "/api/v1/gpu/status", 200, 0.003);
  metrics.Observe("DELETE", "/api/v1/gpu/allocations/{id}", 404, 0.001);
  PrometheusText out;
  metrics.Write(out);
  const std::string& text = out.text();
  EXPECT_THAT(text, HasSubstr("# TYPE gpurm_http_requests_total counter\n"));
  EXPECT_THAT(text, HasSubstr("gpurm_http_requests_total{method=\"GET\",route=\"/api/v1/gpu/"
                              "status\",code=\"200\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("gpurm_http_requests_total{method=\"DELETE\",route=\"/api/v1/gpu/"
                              "allocations/{id}\",code=\"404\"} 1\n"));
}

TEST(HttpMetricsTest, HistogramBucketsAreCumulative) {
  HttpMetrics metrics({0.01, 0.1});
  metrics.Observe("GET", "/r", 200, 0.005);
  metrics.Observe("GET", "/r", 200, 0.01);  // On the bound: le is inclusive.
  metrics.Observe("GET", "/r", 500, 0.05);
  metrics.Observe("GET", "/r", 200, 3);
  PrometheusText out;
  metrics.Write(out);
  const std::string& text = out.text();
  EXPECT_THAT(text, HasSubstr("# TYPE gpurm_http_request_duration_seconds histogram\n"));
  EXPECT_THAT(text,
              HasSubstr("gpurm_http_request_duration_seconds_bucket{method=\"GET\",route=\"/r\","
                        "le=\"0.01\"} 2\n"
                        "gpurm_http_request_duration_seconds_bucket{method=\"GET\",route=\"/r\","
                        "le=\"0.1\"} 3\n"
                        "gpurm_http_request_duration_seconds_bucket{method=\"GET\",route=\"/r\","
                        "le=\"+Inf\"} 4\n"
                        "gpurm_http_request_duration_seconds_sum{method=\"GET\",route=\"/r\"} "
                        "3.065\n"
                        "gpurm_http_request_duration_seconds_count{method=\"GET\",route=\"/r\"} "
                        "4\n"));
}

TEST(HttpMetricsTest, BoundsTheLabelValues) {
  HttpMetrics metrics;
  metrics.Observe("BREW", "", 404, 0.001);
  PrometheusText out;
  metrics.Write(out);
  EXPECT_THAT(out.text(), HasSubstr("method=\"other\",route=\"unmatched\",code=\"404\""));
  EXPECT_THAT(out.text(), Not(HasSubstr("BREW")));
}

TEST(HttpMetricsTest, EmptyFamiliesAreStillDeclared) {
  HttpMetrics metrics;
  PrometheusText out;
  metrics.Write(out);
  EXPECT_THAT(out.text(), HasSubstr("# TYPE gpurm_http_requests_total counter"));
  EXPECT_THAT(out.text(), HasSubstr("# TYPE gpurm_http_request_duration_seconds histogram"));
}

}  // namespace
}  // namespace gpurm
