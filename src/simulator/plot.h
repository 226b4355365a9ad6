// A line chart written as a PNG, with no plotting tool needed: a small
// raster canvas, a built-in 5x7 font and zlib for the image data. Used by
// `gpurm simulate --plot` for the allocated-share vs. arrived-share curves.
#ifndef GPURM_SIMULATOR_PLOT_H_
#define GPURM_SIMULATOR_PLOT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace gpurm::sim {

struct PlotSeries {
  std::string label;
  std::vector<std::pair<double, double>> points;  // (x, y), x ascending.
};

struct PlotSpec {
  std::string title;
  std::string x_label;
  std::string y_label;
  double x_max = 1;  // Axes run from 0 to x_max / y_max.
  double y_max = 1;
  bool diagonal = false;  // Draw y = x (the ideal curve) dashed.
  std::vector<PlotSeries> series;
};

// Renders the chart as PNG bytes (width x height pixels).
std::string RenderPng(const PlotSpec& spec, int width = 960, int height = 640);

// RenderPng to a file; kUnavailable when it cannot be written.
Status WritePng(const PlotSpec& spec, const std::string& path);

}  // namespace gpurm::sim

#endif  // GPURM_SIMULATOR_PLOT_H_
