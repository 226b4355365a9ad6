#include "inventory/providers/common/islands.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace gpurm {
namespace {

using ::testing::ElementsAre;

TEST(GroupIslandsTest, DirectLinksAndSwitchesMakeIslands) {
  // 0-1 linked directly; 2 and 3 through switch "sw"; 4 alone; 5 reaches a
  // switch no other GPU reaches.
  EXPECT_THAT(GroupIslands({{"a", {"b"}},
                            {"b", {"a"}},
                            {"c", {"sw"}},
                            {"d", {"sw", "sw"}},
                            {"e", {}},
                            {"f", {"lonely-switch"}}}),
              ElementsAre(0, 0, 2, 2, -1, -1));
}

TEST(GroupIslandsTest, OneWayLinksJoinToo) {
  EXPECT_THAT(GroupIslands({{"a", {}}, {"b", {"c"}}, {"c", {"a"}}}), ElementsAre(0, 0, 0));
}

TEST(GroupIslandsTest, EmptyInput) { EXPECT_TRUE(GroupIslands({}).empty()); }

}  // namespace
}  // namespace gpurm
