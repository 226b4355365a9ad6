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

  // For text written on every scrape, rendered once: what Family writes,
  // and a sample line up to its value ("name{labels} "; `labels` as
  // RenderLabels writes them, or empty). Written with AppendRendered and
  // SampleAfter, they give the same text as Family and SampleRendered.
  static std::string RenderFamily(std::string_view name, std::string_view type,
                                  std::string_view help);
  static std::string RenderSampleStart(std::string_view name, std::string_view labels,
                                       std::string_view more_labels = {});
  void AppendRendered(std::string_view rendered) { text_ += rendered; }
  // A sample line: `sample_start` (RenderSampleStart), the value, newline.
  void SampleAfter(std::string_view sample_start, double value);

  const std::string& text() const { return text_; }
  std::string Take() { return std::move(text_); }

 private:
  std::string text_;
};

// A family of one sample without labels (a process-wide counter or gauge),
// rendered once. Immutable: safe to share between threads.
class PrometheusScalar {
 public:
  PrometheusScalar(std::string_view name, std::string_view type, std::string_view help);
  // Appends the family and its sample with `value`.
  void Write(PrometheusText& out, double value) const;

 private:
  std::string rendered_;  // The family's lines, then the sample's name and a space.
};

// A sample value as the format writes it: an integer within +-2^53 in
// plain digits, any other number as its shortest round-trip decimal, "+Inf",
// "-Inf" or "NaN".
std::string FormatMetricValue(double value);

}  // namespace gpurm

#endif  // GPURM_MONITOR_PROMETHEUS_TEXT_H_
