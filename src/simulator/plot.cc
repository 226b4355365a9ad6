#include "simulator/plot.h"

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>

namespace gpurm::sim {
namespace {

// Row-major 5x7 glyphs ('#' = ink); text is drawn lower-cased.
struct Glyph {
  char c;
  const char* rows[7];
};

constexpr Glyph kFont[] = {
    {'0', {".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."}},
    {'1', {"..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."}},
    {'2', {".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"}},
    {'3', {"#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."}},
    {'4', {"...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."}},
    {'5', {"#####", "#....", "####.", "....#", "....#", "#...#", ".###."}},
    {'6', {"..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."}},
    {'7', {"#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."}},
    {'8', {".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."}},
    {'9', {".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."}},
    {'a', {".....", ".....", ".###.", "....#", ".####", "#...#", ".####"}},
    {'b', {"#....", "#....", "#.##.", "##..#", "#...#", "#...#", "####."}},
    {'c', {".....", ".....", ".###.", "#....", "#....", "#...#", ".###."}},
    {'d', {"....#", "....#", ".##.#", "#..##", "#...#", "#...#", ".####"}},
    {'e', {".....", ".....", ".###.", "#...#", "#####", "#....", ".###."}},
    {'f', {"..##.", ".#..#", ".#...", "###..", ".#...", ".#...", ".#..."}},
    {'g', {".....", ".####", "#...#", "#...#", ".####", "....#", ".###."}},
    {'h', {"#....", "#....", "#.##.", "##..#", "#...#", "#...#", "#...#"}},
    {'i', {"..#..", ".....", ".##..", "..#..", "..#..", "..#..", ".###."}},
    {'j', {"...#.", ".....", "..##.", "...#.", "...#.", "#..#.", ".##.."}},
    {'k', {"#....", "#....", "#..#.", "#.#..", "##...", "#.#..", "#..#."}},
    {'l', {".##..", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."}},
    {'m', {".....", ".....", "##.#.", "#.#.#", "#.#.#", "#...#", "#...#"}},
    {'n', {".....", ".....", "#.##.", "##..#", "#...#", "#...#", "#...#"}},
    {'o', {".....", ".....", ".###.", "#...#", "#...#", "#...#", ".###."}},
    {'p', {".....", ".....", "####.", "#...#", "####.", "#....", "#...."}},
    {'q', {".....", ".....", ".##.#", "#..##", ".####", "....#", "....#"}},
    {'r', {".....", ".....", "#.##.", "##..#", "#....", "#....", "#...."}},
    {'s', {".....", ".....", ".###.", "#....", ".###.", "....#", "####."}},
    {'t', {".#...", ".#...", "###..", ".#...", ".#...", ".#..#", "..##."}},
    {'u', {".....", ".....", "#...#", "#...#", "#...#", "#..##", ".##.#"}},
    {'v', {".....", ".....", "#...#", "#...#", "#...#", ".#.#.", "..#.."}},
    {'w', {".....", ".....", "#...#", "#...#", "#.#.#", "#.#.#", ".#.#."}},
    {'x', {".....", ".....", "#...#", ".#.#.", "..#..", ".#.#.", "#...#"}},
    {'y', {".....", ".....", "#...#", "#...#", ".####", "....#", ".###."}},
    {'z', {".....", ".....", "#####", "...#.", "..#..", ".#...", "#####"}},
    {'.', {".....", ".....", ".....", ".....", ".....", ".##..", ".##.."}},
    {',', {".....", ".....", ".....", ".....", ".##..", "..#..", ".#..."}},
    {'%', {"##...", "##..#", "...#.", "..#..", ".#...", "#..##", "...##"}},
    {'-', {".....", ".....", ".....", "#####", ".....", ".....", "....."}},
    {'+', {".....", "..#..", "..#..", "#####", "..#..", "..#..", "....."}},
    {'=', {".....", ".....", "#####", ".....", "#####", ".....", "....."}},
    {'(', {"...#.", "..#..", ".#...", ".#...", ".#...", "..#..", "...#."}},
    {')', {".#...", "..#..", "...#.", "...#.", "...#.", "..#..", ".#..."}},
    {':', {".....", ".##..", ".##..", ".....", ".##..", ".##..", "....."}},
    {'/', {".....", "....#", "...#.", "..#..", ".#...", "#....", "....."}},
    {'_', {".....", ".....", ".....", ".....", ".....", ".....", "#####"}},
};

const Glyph* FindGlyph(char c) {
  const char lower = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const Glyph& glyph : kFont) {
    if (glyph.c == lower) return &glyph;
  }
  return nullptr;  // Spaces and unknown characters leave a gap.
}

// Palette: white, black, grid gray, mid gray, then series colours.
constexpr uint8_t kPalette[][3] = {
    {255, 255, 255}, {0, 0, 0},      {225, 225, 225}, {150, 150, 150},
    {31, 119, 180},  {255, 127, 14}, {44, 160, 44},   {214, 39, 40},
    {148, 103, 189}, {140, 86, 75},  {227, 119, 194}, {23, 190, 207},
};
constexpr uint8_t kWhite = 0, kBlack = 1, kGrid = 2, kGray = 3, kFirstSeries = 4;
constexpr int kSeriesColours = 8;

class Canvas {
 public:
  Canvas(int width, int height)
      : width_(width), height_(height), pixels_(static_cast<size_t>(width) * height, kWhite) {}

  void Set(int x, int y, uint8_t colour) {
    if (x < 0 || y < 0 || x >= width_ || y >= height_) return;
    pixels_[static_cast<size_t>(y) * width_ + x] = colour;
  }

  void Line(int x0, int y0, int x1, int y1, uint8_t colour, int thickness = 1, int dash = 0) {
    const int dx = std::abs(x1 - x0);
    const int dy = -std::abs(y1 - y0);
    const int sx = x0 < x1 ? 1 : -1;
    const int sy = y0 < y1 ? 1 : -1;
    int error = dx + dy;
    for (int step = 0;; ++step) {
      if (dash == 0 || (step / dash) % 2 == 0) {
        for (int t = 0; t < thickness; ++t) {
          for (int u = 0; u < thickness; ++u) Set(x0 + t, y0 + u, colour);
        }
      }
      if (x0 == x1 && y0 == y1) break;
      const int e2 = 2 * error;
      if (e2 >= dy) {
        error += dy;
        x0 += sx;
      }
      if (e2 <= dx) {
        error += dx;
        y0 += sy;
      }
    }
  }

  // Text at (x, y) = top-left, `scale` pixels per font pixel; `vertical`
  // draws it rotated a quarter turn counter-clockwise, (x, y) = bottom-left.
  void Text(int x, int y, const std::string& text, uint8_t colour, int scale = 2,
            bool vertical = false) {
    int advance = 0;
    for (char c : text) {
      if (const Glyph* glyph = FindGlyph(c)) {
        for (int row = 0; row < 7; ++row) {
          for (int col = 0; col < 5; ++col) {
            if (glyph->rows[row][col] != '#') continue;
            for (int a = 0; a < scale; ++a) {
              for (int b = 0; b < scale; ++b) {
                if (vertical) {
                  Set(x + row * scale + b, y - (advance + col * scale + a), colour);
                } else {
                  Set(x + advance + col * scale + a, y + row * scale + b, colour);
                }
              }
            }
          }
        }
      }
      advance += 6 * scale;
    }
  }

  static int TextWidth(const std::string& text, int scale = 2) {
    return static_cast<int>(text.size()) * 6 * scale;
  }

  int width() const { return width_; }
  int height() const { return height_; }
  const std::vector<uint8_t>& pixels() const { return pixels_; }

 private:
  int width_;
  int height_;
  std::vector<uint8_t> pixels_;
};

void AppendBigEndian(std::string& out, uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(value >> shift));
}

void AppendChunk(std::string& out, const char type[4], const std::string& data) {
  AppendBigEndian(out, static_cast<uint32_t>(data.size()));
  std::string body(type, 4);
  body += data;
  out += body;
  AppendBigEndian(out, static_cast<uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(body.data()),
                                                   static_cast<uInt>(body.size()))));
}

std::string EncodePng(const Canvas& canvas) {
  const int width = canvas.width();
  const int height = canvas.height();
  std::string raw;
  raw.reserve(static_cast<size_t>(height) * (width + 1));
  for (int y = 0; y < height; ++y) {
    raw.push_back('\0');  // Filter type: none.
    raw.append(
        reinterpret_cast<const char*>(canvas.pixels().data()) + static_cast<size_t>(y) * width,
        static_cast<size_t>(width));
  }
  uLongf compressed_size = compressBound(static_cast<uLong>(raw.size()));
  std::string compressed(compressed_size, '\0');
  compress2(reinterpret_cast<Bytef*>(compressed.data()), &compressed_size,
            reinterpret_cast<const Bytef*>(raw.data()), static_cast<uLong>(raw.size()), 9);
  compressed.resize(compressed_size);

  std::string png("\x89PNG\r\n\x1a\n", 8);
  std::string header;
  AppendBigEndian(header, static_cast<uint32_t>(width));
  AppendBigEndian(header, static_cast<uint32_t>(height));
  header += std::string("\x08\x03\x00\x00\x00", 5);  // 8-bit palette, no interlace.
  AppendChunk(png, "IHDR", header);
  std::string palette;
  for (const auto& rgb : kPalette) palette.append(reinterpret_cast<const char*>(rgb), 3);
  AppendChunk(png, "PLTE", palette);
  AppendChunk(png, "IDAT", compressed);
  AppendChunk(png, "IEND", "");
  return png;
}

std::string FormatTick(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%g", std::round(value * 1000.0) / 10.0);
  return std::string(buffer) + "%";
}

}  // namespace

std::string RenderPng(const PlotSpec& spec, int width, int height) {
  Canvas canvas(width, height);
  const int left = 90;
  const int right = width - 30;
  const int top = 50;
  const int bottom = height - 70;
  const double x_max = spec.x_max > 0 ? spec.x_max : 1;
  const double y_max = spec.y_max > 0 ? spec.y_max : 1;
  auto px = [&](double x) {
    return left + static_cast<int>(std::lround(x / x_max * (right - left)));
  };
  auto py = [&](double y) {
    return bottom - static_cast<int>(std::lround(y / y_max * (bottom - top)));
  };

  // Grid and ticks every 10% (every 20% when the axis is long).
  auto tick_step = [](double max) { return max > 1.5 ? 0.2 : 0.1; };
  for (double x = 0; x <= x_max + 1e-9; x += tick_step(x_max)) {
    canvas.Line(px(x), top, px(x), bottom, kGrid);
    const std::string label = FormatTick(x);
    canvas.Text(px(x) - Canvas::TextWidth(label) / 2, bottom + 8, label, kBlack);
  }
  for (double y = 0; y <= y_max + 1e-9; y += tick_step(y_max)) {
    canvas.Line(left, py(y), right, py(y), kGrid);
    const std::string label = FormatTick(y);
    canvas.Text(left - 8 - Canvas::TextWidth(label), py(y) - 7, label, kBlack);
  }
  canvas.Line(left, top, left, bottom, kBlack);
  canvas.Line(left, bottom, right, bottom, kBlack);
  canvas.Line(right, top, right, bottom, kBlack);
  canvas.Line(left, top, right, top, kBlack);
  if (spec.diagonal) {
    const double end = std::min(x_max, y_max);
    canvas.Line(px(0), py(0), px(end), py(end), kGray, 1, 6);
  }
  for (size_t s = 0; s < spec.series.size(); ++s) {
    const uint8_t colour = static_cast<uint8_t>(kFirstSeries + s % kSeriesColours);
    const auto& points = spec.series[s].points;
    for (size_t i = 1; i < points.size(); ++i) {
      canvas.Line(px(points[i - 1].first), py(points[i - 1].second), px(points[i].first),
                  py(points[i].second), colour, 2);
    }
  }
  // Legend, top-left inside the plot.
  int legend_y = top + 12;
  for (size_t s = 0; s < spec.series.size(); ++s) {
    const uint8_t colour = static_cast<uint8_t>(kFirstSeries + s % kSeriesColours);
    canvas.Line(left + 14, legend_y + 6, left + 44, legend_y + 6, colour, 3);
    canvas.Text(left + 52, legend_y, spec.series[s].label, kBlack);
    legend_y += 22;
  }
  canvas.Text((width - Canvas::TextWidth(spec.title)) / 2, 16, spec.title, kBlack);
  canvas.Text((left + right - Canvas::TextWidth(spec.x_label)) / 2, height - 30, spec.x_label,
              kBlack);
  canvas.Text(18, (top + bottom + Canvas::TextWidth(spec.y_label)) / 2, spec.y_label, kBlack, 2,
              /*vertical=*/true);
  return EncodePng(canvas);
}

Status WritePng(const PlotSpec& spec, const std::string& path) {
  const std::string png = RenderPng(spec);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return Unavailable("cannot write " + path);
  out.write(png.data(), static_cast<std::streamsize>(png.size()));
  out.close();
  if (!out) return Unavailable("cannot write " + path);
  return Status::Ok();
}

}  // namespace gpurm::sim
