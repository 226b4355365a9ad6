#include "cli/table.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <utility>

namespace gpurm::cli {
namespace {

double ClampRatio(double ratio) { return std::isnan(ratio) ? 0.0 : std::clamp(ratio, 0.0, 1.0); }

}  // namespace

Table::Table(std::vector<std::string> headers)
    : headers_(std::move(headers)), aligns_(headers_.size(), Align::kLeft) {}

void Table::SetAlign(size_t column, Align align) {
  if (column < aligns_.size()) aligns_[column] = align;
}

void Table::AddRow(std::vector<std::string> cells) {
  cells.resize(headers_.size());
  rows_.push_back(std::move(cells));
}

std::string Table::Render() const {
  std::vector<size_t> widths(headers_.size());
  for (size_t c = 0; c < headers_.size(); ++c) {
    widths[c] = DisplayWidth(headers_[c]);
    for (const auto& row : rows_) widths[c] = std::max(widths[c], DisplayWidth(row[c]));
  }
  std::string out;
  auto render_line = [&](const std::vector<std::string>& cells) {
    std::string line;
    for (size_t c = 0; c < cells.size(); ++c) {
      if (c > 0) line += "  ";
      const std::string padding(widths[c] - DisplayWidth(cells[c]), ' ');
      line += aligns_[c] == Align::kRight ? padding + cells[c] : cells[c] + padding;
    }
    line.erase(line.find_last_not_of(' ') + 1);
    out += line;
    out += '\n';
  };
  render_line(headers_);
  for (const auto& row : rows_) render_line(row);
  return out;
}

size_t DisplayWidth(const std::string& text) {
  return static_cast<size_t>(std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

std::string Bar(double ratio, int width) {
  width = std::max(width, 0);
  const int filled = static_cast<int>(std::lround(ClampRatio(ratio) * width));
  return "[" + std::string(static_cast<size_t>(filled), '#') +
         std::string(static_cast<size_t>(width - filled), ' ') + "]";
}

std::string MemoryBar(double used_gb, double total_gb, int width) {
  const double ratio = total_gb > 0.0 ? used_gb / total_gb : 0.0;
  return Bar(ratio, width) + " " + FormatGb(used_gb) + "/" + FormatGb(total_gb) + " GB";
}

std::string PercentBar(double ratio, int width) {
  char percent[8];
  std::snprintf(percent, sizeof(percent), "%3ld%%", std::lround(ClampRatio(ratio) * 100.0));
  return Bar(ratio, width) + " " + percent;
}

std::string FormatGb(double gb) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f", std::isfinite(gb) ? gb : 0.0);
  return text;
}

}  // namespace gpurm::cli
