// Plain-text rendering for the CLI: aligned tables and small bar charts.
// Pure functions, no I/O.
#ifndef GPURM_CLI_TABLE_H_
#define GPURM_CLI_TABLE_H_

#include <cstddef>
#include <string>
#include <vector>

namespace gpurm::cli {

// A table with a header row. Columns are separated by two spaces and padded to
// their widest cell (counted in UTF-8 code points); trailing blanks are never
// written. Rows with fewer cells than headers are padded with empty cells;
// extra cells are dropped.
class Table {
 public:
  enum class Align { kLeft, kRight };

  explicit Table(std::vector<std::string> headers);

  // Right-aligns numbers, for example. Columns are left-aligned by default;
  // an out-of-range column is ignored.
  void SetAlign(size_t column, Align align);
  void AddRow(std::vector<std::string> cells);
  size_t row_count() const { return rows_.size(); }

  // Header line, then one line per row, each ending in '\n'.
  std::string Render() const;

 private:
  std::vector<std::string> headers_;
  std::vector<Align> aligns_;
  std::vector<std::vector<std::string>> rows_;
};

// Display width of `text` in code points (UTF-8 continuation bytes do not count).
size_t DisplayWidth(const std::string& text);

// "[####      ]": `ratio` (clamped to 0..1; NaN counts as 0) of `width` cells
// filled, rounded to the nearest cell.
std::string Bar(double ratio, int width = 10);

// "[#####     ] 12.0/32.0 GB": used memory against total. A total of 0 or less
// gives an empty bar.
std::string MemoryBar(double used_gb, double total_gb, int width = 10);

// "[###       ]  31%": a 0..1 ratio as a bar and a whole percentage.
std::string PercentBar(double ratio, int width = 10);

// One decimal: 12 -> "12.0".
std::string FormatGb(double gb);

}  // namespace gpurm::cli

#endif  // GPURM_CLI_TABLE_H_
