// PrometheusText: writes the Prometheus text exposition format (version
// 0.0.4): # HELP and # TYPE lines, then the family's samples, with label
// values and help text escaped as the format requires.
#ifndef GPURM_MONITOR_PROMETHEUS_TEXT_H_
#define GPURM_MONITOR_PROMETHEUS_TEXT_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gpurm {

// The Content-Type of the format.
inline constexpr char kPrometheusContentType[] = "text/plain; version=0.0.4; charset=utf-8";

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

// Not thread-safe; build one per scrape.
class PrometheusText {
 public:
  PrometheusText() = default;
  // Reserves room for `expected_bytes` of text, for a text written often.
  explicit PrometheusText(size_t expected_bytes) { text_.reserve(expected_bytes); }

  // Starts a family. `type` is "counter", "gauge" or "histogram". Every
  // family name must be written once, and its samples must follow it
  // directly (the format requires a family's samples to be contiguous).
  void Family(std::string_view name, std::string_view type, std::string_view help);
  // One sample line. `name` is the family name, or for histograms the family
  // name plus "_bucket", "_sum" or "_count". Label names must be valid
  // Prometheus names; values may be any UTF-8 text.
  void Sample(std::string_view name, const MetricLabels& labels, double value);
  // `labels` as Sample writes them between the braces (a="x",b="y"),
  // escaped: for a series written often, render its labels once and write
  // it with SampleRendered.
  static std::string RenderLabels(const MetricLabels& labels);
  // One sample line with labels rendered by RenderLabels: `labels`, then
  // `more_labels` (either may be empty).
  void SampleRendered(std::string_view name, std::string_view labels, std::string_view more_labels,
                      double value);

  const std::string& text() const { return text_; }
  std::string Take() { return std::move(text_); }

 private:
  std::string text_;
};

// A sample value as the format writes it: shortest round-trip decimal,
// "+Inf", "-Inf" or "NaN".
std::string FormatMetricValue(double value);

}  // namespace gpurm

#endif  // GPURM_MONITOR_PROMETHEUS_TEXT_H_
