#include "codec/json_fields.h"

#include <gtest/gtest.h>

#include <climits>

namespace gpurm {
namespace {

using nlohmann::json;

TEST(ReadIntegerTest, AcceptsWholeNumbersWrittenEitherWay) {
  EXPECT_EQ(*ReadInteger("n", json(7), 0, 10), 7);
  EXPECT_EQ(*ReadInteger("n", json(7.0), 0, 10), 7);
  EXPECT_EQ(*ReadInteger("n", json(-3), -5, 10), -3);
}

TEST(ReadIntegerTest, OutOfRangeNamesTheBoundsAndTheValue) {
  const Status status = ReadInteger("gpu_count", json(5000), 1, 4096).status();
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(status.field(), "gpu_count");
  EXPECT_EQ(status.message(), "must be between 1 and 4096, got 5000");
}

TEST(ReadIntegerTest, NumbersBeyondInt64AreOutOfRangeNotOfTheWrongType) {
  // 2^63 parses as an unsigned integer; 1e300 as a whole double.
  const json two_pow_63 = json::parse("9223372036854775808");
  EXPECT_EQ(ReadInteger("n", two_pow_63, 1, 4096).status().message(),
            "must be between 1 and 4096, got 9223372036854775808");
  EXPECT_EQ(ReadInteger("n", json(1e300), 0, INT64_MAX).status().message().rfind("must be", 0), 0u);
  EXPECT_EQ(ReadInteger("n", json::parse("18446744073709551615"), INT64_MIN, INT64_MAX)
                .status()
                .message()
                .rfind("must be between", 0),
            0u);
}

TEST(ReadIntegerTest, FractionsAndOtherTypesAreTheWrongType) {
  // A fraction is named by its value: "a number" would not say what is wrong.
  EXPECT_EQ(ReadInteger("n", json(2.5), 0, 10).status().message(), "expected an integer, got 2.5");
  EXPECT_EQ(ReadInteger("n", json("2"), 0, 10).status().message(),
            "expected an integer, got a string");
  EXPECT_EQ(ReadInteger("n", json(true), 0, 10).status().message(),
            "expected an integer, got a boolean");
}

}  // namespace
}  // namespace gpurm
