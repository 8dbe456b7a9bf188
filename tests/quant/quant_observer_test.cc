// Calibration observers on distributions whose answer is known.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <random>

#include "modelpress/quant.h"

namespace modelpress::quant {
namespace {

CalibrationOptions With(CalibrationMethod m) {
  CalibrationOptions o;
  o.method = m;
  return o;
}

TEST(QuantObserver, MinMaxAcrossBatches) {
  RangeObserver o(With(CalibrationMethod::kMinMax));
  const std::vector<float> a = {0.5f, -1.0f, 2.0f}, b = {3.0f, -0.25f, std::nanf("")};
  o.Observe(a);
  o.Observe(b);
  EXPECT_EQ(o.count(), 5);  // NaN ignored
  EXPECT_EQ(o.Range(), std::make_pair(-1.0f, 3.0f));
  EXPECT_TRUE(o.histogram().empty());  // minmax keeps no histogram
}

TEST(QuantObserver, HistogramGrowsByMergingBinPairs) {
  CalibrationOptions opt = With(CalibrationMethod::kPercentile);
  opt.bins = 8;
  RangeObserver o(opt);
  const std::vector<float> first = {0.0f, 0.1f, 0.6f, -0.9f, 1.0f};
  o.Observe(first);
  const double w0 = o.bin_width();
  EXPECT_NEAR(w0, 1.0 / 8, 1e-6);
  const std::vector<float> second = {3.5f};
  o.Observe(second);
  // 3.5 needs 4x the range: two doublings, edges stay multiples of w0.
  EXPECT_DOUBLE_EQ(o.bin_width(), 4 * w0);
  const auto& h = o.histogram();
  EXPECT_DOUBLE_EQ(std::accumulate(h.begin(), h.end(), 0.0), 6.0);
  // Bins are now 0.5 wide (a hair more: the first range is widened by 1e-7
  // so its maximum falls inside): {0, 0.1} | {0.6, 0.9, 1.0} | ... | {3.5} in bin 6.
  EXPECT_DOUBLE_EQ(h[0], 2.0);
  EXPECT_DOUBLE_EQ(h[1], 3.0);
  EXPECT_DOUBLE_EQ(h[6], 1.0);
}

TEST(QuantObserver, PercentileOnUniformWithOutliers) {
  // 99,990 values uniform in [0, 1) and 10 outliers at 100: keeping 99.99%
  // of |x| clips at about 1 (within one bin of 100 / 2048).
  std::vector<float> v;
  for (int i = 0; i < 99990; ++i) v.push_back(static_cast<float>(i) / 99990.0f);
  for (int i = 0; i < 10; ++i) v.push_back(100.0f);
  CalibrationOptions opt = With(CalibrationMethod::kPercentile);
  opt.percentile = 99.99;
  RangeObserver p(opt);
  p.Observe(v);
  const auto [lo, hi] = p.Range();
  EXPECT_EQ(lo, 0.0f);
  EXPECT_GT(hi, 0.95f);
  EXPECT_LT(hi, 1.0f + 100.0f / 2048 + 1e-3f);
  // 100% keeps everything up to the largest value's bin.
  opt.percentile = 100;
  RangeObserver all(opt);
  all.Observe(v);
  EXPECT_EQ(all.Range().second, 100.0f);  // clipped to the observed max
}

TEST(QuantObserver, PercentileThresholdDirect) {
  const std::vector<double> h = {10, 20, 30, 40};  // total 100
  EXPECT_DOUBLE_EQ(PercentileThreshold(h, 0.5, 10), 0.5);
  EXPECT_DOUBLE_EQ(PercentileThreshold(h, 0.5, 30), 1.0);
  EXPECT_DOUBLE_EQ(PercentileThreshold(h, 0.5, 60.5), 2.0);
  EXPECT_DOUBLE_EQ(PercentileThreshold(h, 0.5, 100), 2.0);
  EXPECT_EQ(PercentileThreshold(std::vector<double>(4, 0.0), 0.5, 50), 0.0);
}

TEST(QuantObserver, EntropyClipsAGaussianTailButNotAUniform) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(200000);
  for (float& x : v) x = normal(rng);
  v[0] = 40.0f;  // one far outlier stretches the histogram
  RangeObserver o(With(CalibrationMethod::kEntropy));
  o.Observe(v);
  const auto [lo, hi] = o.Range();
  // The KL optimum for a unit Gaussian with 128 levels sits a few sigma
  // out, far below the outlier.
  EXPECT_GT(hi, 2.0f);
  EXPECT_LT(hi, 8.0f);
  EXPECT_EQ(lo, -hi);
  // A uniform distribution has no tail worth clipping.
  std::vector<float> u(100000);
  for (size_t i = 0; i < u.size(); ++i) u[i] = static_cast<float>(i) / static_cast<float>(u.size());
  RangeObserver ou(With(CalibrationMethod::kEntropy));
  ou.Observe(u);
  EXPECT_GT(ou.Range().second, 0.9f);
}

TEST(QuantObserver, EntropyThresholdEdgeCases) {
  EXPECT_DOUBLE_EQ(EntropyThreshold(std::vector<double>(100, 1.0), 0.1, 128), 10.0);  // fewer bins than levels
  EXPECT_EQ(EntropyThreshold(std::vector<double>(2048, 0.0), 0.1, 128), 0.0);
  // Mass only in the first 100 bins: no candidate beyond them is better.
  std::vector<double> h(2048, 0.0);
  for (int i = 0; i < 100; ++i) h[i] = 5;
  EXPECT_LE(EntropyThreshold(h, 1.0, 128), 128.0);
}

TEST(QuantObserver, AllZerosAndLateRange) {
  RangeObserver o(With(CalibrationMethod::kPercentile));
  const std::vector<float> z(100, 0.0f), later = {2.0f};
  o.Observe(z);
  EXPECT_EQ(o.Range(), std::make_pair(0.0f, 0.0f));
  o.Observe(later);
  EXPECT_DOUBLE_EQ(o.histogram()[0], 100.0);  // the zeros seen before the range was known
  EXPECT_GT(o.Range().second, 1.99f);
}

}  // namespace
}  // namespace modelpress::quant
