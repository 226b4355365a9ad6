#include "monitor/prometheus_text.h"

#include <charconv>
#include <cmath>
#include <cstdint>

namespace gpurm {
namespace {

// Appends the runs without a character to escape in bulk (help texts and
// label values rarely have any), each escape on its own. Scans by hand:
// string_view::find_first_of calls memchr on the set for every character,
// which was most of rendering a family's help line.
void AppendEscaped(std::string& out, std::string_view text, bool escape_quotes) {
  size_t run = 0;  // Start of the run not yet appended.
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c != '\\' && c != '\n' && (c != '"' || !escape_quotes)) continue;
    out.append(text.substr(run, i - run));
    out += c == '\n' ? "\\n" : c == '\\' ? "\\\\" : "\\\"";
    run = i + 1;
  }
  out.append(text.substr(run));
}

// Appends a="x",b="y" (escaped values).
void AppendLabels(std::string& out, const MetricLabels& labels) {
  bool first = true;
  for (const auto& [label, label_value] : labels) {
    if (!first) out += ',';
    first = false;
    out += label;
    out += "=\"";
    AppendEscaped(out, label_value, /*escape_quotes=*/true);
    out += '"';
  }
}

// Largest magnitude below which every integer is a double: counters and
// byte counts, written as integers (formatting them as integers is several
// times cheaper than the shortest round-trip form, and reads better than
// its "1e+06").
constexpr double kExactIntegerLimit = 9007199254740992.0;  // 2^53

// Appends FormatMetricValue(value) without a temporary string.
void AppendMetricValue(std::string& out, double value) {
  char buffer[64];
  std::to_chars_result result{};
  if (std::abs(value) < kExactIntegerLimit && value == std::trunc(value)) {
    result = std::to_chars(buffer, buffer + sizeof(buffer), static_cast<int64_t>(value));
  } else if (std::isnan(value)) {
    out += "NaN";
    return;
  } else if (std::isinf(value)) {
    out += value > 0 ? "+Inf" : "-Inf";
    return;
  } else {
    result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  }
  out.append(buffer, result.ptr);
}

// Appends the family's # HELP and # TYPE lines.
void AppendFamily(std::string& out, std::string_view name, std::string_view type,
                  std::string_view help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  AppendEscaped(out, help, /*escape_quotes=*/false);
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

// Appends a sample line up to its value: name{labels,more_labels} and a space.
void AppendSampleStart(std::string& out, std::string_view name, std::string_view labels,
                       std::string_view more_labels) {
  out += name;
  if (!labels.empty() || !more_labels.empty()) {
    out += '{';
    out += labels;
    if (!labels.empty() && !more_labels.empty()) out += ',';
    out += more_labels;
    out += '}';
  }
  out += ' ';
}

}  // namespace

std::string FormatMetricValue(double value) {
  std::string formatted;
  AppendMetricValue(formatted, value);
  return formatted;
}

void PrometheusText::Family(std::string_view name, std::string_view type, std::string_view help) {
  AppendFamily(text_, name, type, help);
}

void PrometheusText::Sample(std::string_view name, const MetricLabels& labels, double value) {
  text_ += name;
  if (!labels.empty()) {
    text_ += '{';
    AppendLabels(text_, labels);
    text_ += '}';
  }
  text_ += ' ';
  AppendMetricValue(text_, value);
  text_ += '\n';
}

std::string PrometheusText::RenderLabels(const MetricLabels& labels) {
  std::string rendered;
  AppendLabels(rendered, labels);
  return rendered;
}

void PrometheusText::SampleRendered(std::string_view name, std::string_view labels,
                                    std::string_view more_labels, double value) {
  AppendSampleStart(text_, name, labels, more_labels);
  AppendMetricValue(text_, value);
  text_ += '\n';
}

std::string PrometheusText::RenderFamily(std::string_view name, std::string_view type,
                                         std::string_view help) {
  std::string rendered;
  AppendFamily(rendered, name, type, help);
  return rendered;
}

std::string PrometheusText::RenderSampleStart(std::string_view name, std::string_view labels,
                                              std::string_view more_labels) {
  std::string rendered;
  AppendSampleStart(rendered, name, labels, more_labels);
  return rendered;
}

void PrometheusText::SampleAfter(std::string_view sample_start, double value) {
  text_ += sample_start;
  AppendMetricValue(text_, value);
  text_ += '\n';
}

PrometheusScalar::PrometheusScalar(std::string_view name, std::string_view type,
                                   std::string_view help)
    : rendered_(PrometheusText::RenderFamily(name, type, help) +
                PrometheusText::RenderSampleStart(name, {})) {}

void PrometheusScalar::Write(PrometheusText& out, double value) const {
  out.SampleAfter(rendered_, value);
}

}  // namespace gpurm
