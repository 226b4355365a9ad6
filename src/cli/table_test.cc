#include "cli/table.h"

#include <gtest/gtest.h>

#include <cmath>

namespace gpurm::cli {
namespace {

TEST(TableTest, AlignsColumnsToTheWidestCell) {
  Table table({"NODE", "GPUS"});
  table.SetAlign(1, Table::Align::kRight);
  table.AddRow({"n1", "4"});
  table.AddRow({"worker-long", "16"});
  EXPECT_EQ(table.Render(),
            "NODE         GPUS\n"
            "n1              4\n"
            "worker-long    16\n");
}

TEST(TableTest, NoTrailingBlanksAndShortRowsArePadded) {
  Table table({"A", "B", "C"});
  table.AddRow({"x"});
  table.AddRow({"yy", "zzz", "w", "dropped"});
  EXPECT_EQ(table.row_count(), 2u);
  EXPECT_EQ(table.Render(),
            "A   B    C\n"
            "x\n"
            "yy  zzz  w\n");
}

TEST(TableTest, HeaderOnly) { EXPECT_EQ(Table({"ID", "OWNER"}).Render(), "ID  OWNER\n"); }

TEST(TableTest, OutOfRangeAlignIsIgnored) {
  Table table({"A"});
  table.SetAlign(5, Table::Align::kRight);
  table.AddRow({"abc"});
  EXPECT_EQ(table.Render(), "A\nabc\n");
}

TEST(TableTest, WidthCountsCodePoints) {
  EXPECT_EQ(DisplayWidth("abc"), 3u);
  EXPECT_EQ(DisplayWidth("n\xC3\xB6"
                         "de"),
            4u);  // "növe" style: ö is two bytes.
  Table table({"NAME", "X"});
  table.AddRow({"n\xC3\xB6", "1"});
  EXPECT_EQ(table.Render(), "NAME  X\nn\xC3\xB6    1\n");
}

TEST(BarTest, FillsToTheNearestCell) {
  EXPECT_EQ(Bar(0.0), "[          ]");
  EXPECT_EQ(Bar(0.5), "[#####     ]");
  EXPECT_EQ(Bar(1.0), "[##########]");
  EXPECT_EQ(Bar(0.26, 4), "[#   ]");
  EXPECT_EQ(Bar(0.38, 4), "[##  ]");
}

TEST(BarTest, ClampsOutOfRangeAndNan) {
  EXPECT_EQ(Bar(-1.0, 4), "[    ]");
  EXPECT_EQ(Bar(7.0, 4), "[####]");
  EXPECT_EQ(Bar(std::nan(""), 4), "[    ]");
  EXPECT_EQ(Bar(0.5, 0), "[]");
  EXPECT_EQ(Bar(0.5, -3), "[]");
}

TEST(BarTest, MemoryBar) {
  EXPECT_EQ(MemoryBar(12.0, 32.0), "[####      ] 12.0/32.0 GB");
  EXPECT_EQ(MemoryBar(16.0, 32.0), "[#####     ] 16.0/32.0 GB");
  EXPECT_EQ(MemoryBar(0.0, 80.0), "[          ] 0.0/80.0 GB");
  EXPECT_EQ(MemoryBar(1.0, 0.0), "[          ] 1.0/0.0 GB");
}

TEST(BarTest, PercentBar) {
  EXPECT_EQ(PercentBar(0.31), "[###       ]  31%");
  EXPECT_EQ(PercentBar(1.0), "[##########] 100%");
  EXPECT_EQ(PercentBar(0.0, 2), "[  ]   0%");
}

TEST(FormatGbTest, OneDecimal) {
  EXPECT_EQ(FormatGb(12), "12.0");
  EXPECT_EQ(FormatGb(15.75), "15.8");
  EXPECT_EQ(FormatGb(std::nan("")), "0.0");
}

}  // namespace
}  // namespace gpurm::cli
