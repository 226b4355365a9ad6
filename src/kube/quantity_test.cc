#include "kube/quantity.h"

#include <gtest/gtest.h>

namespace gpurm::kube {
namespace {

TEST(QuantityTest, ParsesTheApiServersForms) {
  EXPECT_EQ(ParseQuantity("8"), 8);
  EXPECT_EQ(ParseQuantity("500m"), 0.5);
  EXPECT_EQ(ParseQuantity("16Gi"), 16.0 * 1024 * 1024 * 1024);
  EXPECT_EQ(ParseQuantity("2k"), 2000);
  EXPECT_EQ(ParseQuantity("1e3"), 1000);
  EXPECT_EQ(ParseQuantity("1.5"), 1.5);
  EXPECT_EQ(ParseQuantity("+4"), 4);
  for (const char* bad : {"", "Gi", "8x", "1e", "--1", "1.2.3"}) {
    EXPECT_FALSE(ParseQuantity(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace gpurm::kube
