#include "monitor/prometheus_text.h"

#include <charconv>
#include <cmath>

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

// Appends FormatMetricValue(value) without a temporary string.
void AppendMetricValue(std::string& out, double value) {
  if (std::isnan(value)) {
    out += "NaN";
  } else if (std::isinf(value)) {
    out += value > 0 ? "+Inf" : "-Inf";
  } else {
    char buffer[64];
    const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
    out.append(buffer, result.ptr);
  }
}

}  // namespace

std::string FormatMetricValue(double value) {
  std::string formatted;
  AppendMetricValue(formatted, value);
  return formatted;
}

void PrometheusText::Family(std::string_view name, std::string_view type, std::string_view help) {
  text_ += "# HELP ";
  text_ += name;
  text_ += ' ';
  AppendEscaped(text_, help, /*escape_quotes=*/false);
  text_ += "\n# TYPE ";
  text_ += name;
  text_ += ' ';
  text_ += type;
  text_ += '\n';
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
  text_ += name;
  if (!labels.empty() || !more_labels.empty()) {
    text_ += '{';
    text_ += labels;
    if (!labels.empty() && !more_labels.empty()) text_ += ',';
    text_ += more_labels;
    text_ += '}';
  }
  text_ += ' ';
  AppendMetricValue(text_, value);
  text_ += '\n';
}

}  // namespace gpurm
