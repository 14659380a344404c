#include "base/stats.h"

#include <gtest/gtest.h>

namespace glassbox {
namespace {

TEST(Stats, QuantilesInterpolateLikeNumpy) {
  // numpy.quantile([7, 1, 3, 5], q) for q = 0, 0.5, 0.9, 1: 1, 4, 6.4, 7.
  const std::vector<double> v{7.0, 1.0, 3.0, 5.0};
  EXPECT_DOUBLE_EQ(quantile(v, 0.0), 1.0);
  EXPECT_DOUBLE_EQ(quantile(v, 0.5), 4.0);
  EXPECT_DOUBLE_EQ(quantile(v, 0.9), 6.4);
  EXPECT_DOUBLE_EQ(quantile(v, 1.0), 7.0);
  EXPECT_DOUBLE_EQ(quantile({2.5}, 0.99), 2.5);
  EXPECT_EQ(quantile({}, 0.5), 0.0);
}

}  // namespace
}  // namespace glassbox
