#include "model/gemm_rows.h"

#include <gtest/gtest.h>

#include <set>

namespace fastdiss {
namespace {

TEST(PaddedGemmRowsTest, FewShapesAndLittlePadding) {
  std::set<int64_t> shapes;
  for (int64_t rows = 1; rows <= 8192; ++rows) {
    const int64_t padded = PaddedGemmRows(rows);
    ASSERT_GE(padded, rows);
    ASSERT_LE(padded * 8, rows * 9) << rows;            // at most 12.5% more
    ASSERT_EQ(PaddedGemmRows(padded), padded) << rows;  // a padded count stays as it is
    shapes.insert(padded);
  }
  EXPECT_LT(shapes.size(), 90u);
  EXPECT_EQ(PaddedGemmRows(1), 1);
  EXPECT_EQ(PaddedGemmRows(15), 15);
  EXPECT_EQ(PaddedGemmRows(17), 18);
  EXPECT_EQ(PaddedGemmRows(421), 448);
  EXPECT_EQ(PaddedGemmRows(448), 448);
  EXPECT_EQ(PaddedGemmRows(449), 480);
}

}  // namespace
}  // namespace fastdiss
