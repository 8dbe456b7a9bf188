// Calibration observers: running min/max and a histogram of |x| that grows
// by merging bin pairs, so a stream of batches needs constant memory.
#include <algorithm>
#include <cmath>
#include <limits>

#include "modelpress/quant.h"

namespace modelpress::quant {

std::string_view CalibrationMethodName(CalibrationMethod m) {
  switch (m) {
    case CalibrationMethod::kMinMax: return "minmax";
    case CalibrationMethod::kPercentile: return "percentile";
    case CalibrationMethod::kEntropy: return "entropy";
  }
  return "?";
}

RangeObserver::RangeObserver(const CalibrationOptions& options) : options_(options) {
  if (options_.method != CalibrationMethod::kMinMax) hist_.assign(static_cast<size_t>(std::max(options_.bins, 1)), 0.0);
}

void RangeObserver::Grow(double needed_max) {
  const size_t bins = hist_.size();
  if (width_ == 0) {
    // The first non-zero range. Slightly wider than the maximum so that it
    // falls inside the last bin rather than on its upper edge.
    width_ = needed_max / static_cast<double>(bins) * (1.0 + 1e-7);
    if (width_ == 0 || !std::isfinite(width_)) width_ = std::numeric_limits<double>::min();
    hist_[0] += zeros_;
    zeros_ = 0;
    return;
  }
  // Double the range until it covers `needed_max`: bin k of the new
  // histogram is bins 2k and 2k+1 of the old one, edges stay exact.
  while (width_ * static_cast<double>(bins) <= needed_max) {
    for (size_t k = 0; k < bins / 2; ++k) hist_[k] = hist_[2 * k] + hist_[2 * k + 1];
    if (bins % 2) hist_[bins / 2] = hist_[bins - 1];
    std::fill(hist_.begin() + static_cast<std::ptrdiff_t>((bins + 1) / 2), hist_.end(), 0.0);
    width_ *= 2;
  }
}

void RangeObserver::Observe(std::span<const float> values) {
  float lo = std::numeric_limits<float>::infinity(), hi = -lo;
  double amax = 0;
  int64_t n = 0;
  for (float v : values) {
    if (std::isnan(v)) continue;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
    if (std::isfinite(v)) amax = std::max(amax, static_cast<double>(std::abs(v)));
    ++n;
  }
  if (n == 0) return;
  if (!any_) {
    min_ = lo;
    max_ = hi;
    any_ = true;
  } else {
    min_ = std::min(min_, lo);
    max_ = std::max(max_, hi);
  }
  count_ += n;
  if (hist_.empty()) return;
  if (amax > 0 && (width_ == 0 || amax >= width_ * static_cast<double>(hist_.size()))) Grow(amax);
  if (width_ == 0) {
    zeros_ += static_cast<double>(n);  // every value is 0 so far
    return;
  }
  const size_t last = hist_.size() - 1;
  const double inv = 1.0 / width_;
  for (float v : values) {
    if (!std::isfinite(v)) continue;
    const double b = std::abs(static_cast<double>(v)) * inv;
    hist_[std::min(static_cast<size_t>(b), last)] += 1.0;
  }
}

double PercentileThreshold(std::span<const double> hist, double width, double percentile) {
  double total = 0;
  for (double c : hist) total += c;
  if (total <= 0 || hist.empty()) return 0;
  const double want = total * std::clamp(percentile, 0.0, 100.0) / 100.0;
  double acc = 0;
  for (size_t i = 0; i < hist.size(); ++i) {
    acc += hist[i];
    // A relative slack so that 100 percent is reached despite rounding.
    if (acc >= want * (1 - 1e-12)) return static_cast<double>(i + 1) * width;
  }
  return static_cast<double>(hist.size()) * width;
}

namespace {

// KL(p || q) of two unnormalised distributions of equal length. Bins where
// p is 0 contribute nothing. A bin where p has mass but q has none (the
// candidate cannot represent values the reference holds) gets q = 1e-4
// (after normalisation) instead of an infinite divergence, the smoothing
// TensorRT-style calibrators use, so such candidates lose without ending
// the comparison.
double KlDivergence(std::span<const double> p, std::span<const double> q) {
  double sp = 0, sq = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    sp += p[i];
    sq += q[i];
  }
  if (sp <= 0 || sq <= 0) return std::numeric_limits<double>::infinity();
  constexpr double kEps = 1e-4;
  double kl = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] <= 0) continue;
    const double pi = p[i] / sp;
    const double qi = q[i] > 0 ? q[i] / sq : kEps;
    kl += pi * std::log(pi / qi);
  }
  return kl;
}

}  // namespace

double EntropyThreshold(std::span<const double> hist, double width, int quantized_bins) {
  const size_t bins = hist.size();
  const size_t levels = static_cast<size_t>(std::max(quantized_bins, 1));
  if (bins == 0) return 0;
  if (bins <= levels) return static_cast<double>(bins) * width;
  // Trailing empty bins carry no information; candidates past the last
  // occupied bin only repeat it.
  size_t used = bins;
  while (used > 0 && hist[used - 1] <= 0) --used;
  if (used == 0) return 0;
  std::vector<double> suffix(bins + 1, 0.0);  // suffix[i] = mass of bins i..end
  for (size_t i = bins; i-- > 0;) suffix[i] = suffix[i + 1] + hist[i];
  double best_kl = std::numeric_limits<double>::infinity();
  size_t best_i = std::max(used, levels);
  std::vector<double> p(bins), q(bins);
  for (size_t i = levels; i <= std::max(used, levels); ++i) {
    // Reference: the first i bins, the clipped tail folded into the last.
    std::copy(hist.begin(), hist.begin() + static_cast<std::ptrdiff_t>(i), p.begin());
    p[i - 1] += suffix[i];
    // Candidate: the first i bins (without the tail) merged into `levels`
    // groups of i / levels bins (the last group takes the remainder), each
    // group's mass spread evenly over the bins where the reference is
    // non-empty. The tail is not in the candidate: clipping it costs.
    const size_t group = i / levels;
    for (size_t g = 0; g < levels; ++g) {
      const size_t lo = g * group;
      const size_t hi = g + 1 == levels ? i : lo + group;
      double mass = 0;
      size_t nonzero = 0;
      for (size_t k = lo; k < hi; ++k) {
        mass += hist[k];
        nonzero += p[k] > 0;
      }
      for (size_t k = lo; k < hi; ++k) q[k] = (p[k] > 0 && nonzero) ? mass / static_cast<double>(nonzero) : 0.0;
    }
    const double kl = KlDivergence(std::span<const double>(p.data(), i), std::span<const double>(q.data(), i));
    if (kl < best_kl) {
      best_kl = kl;
      best_i = i;
    }
  }
  return static_cast<double>(best_i) * width;
}

std::pair<float, float> RangeObserver::Range() const {
  if (!any_) return {0.0f, 0.0f};
  double t = 0;
  switch (options_.method) {
    case CalibrationMethod::kMinMax: return {min_, max_};
    case CalibrationMethod::kPercentile: t = PercentileThreshold(hist_, width_, options_.percentile); break;
    case CalibrationMethod::kEntropy: t = EntropyThreshold(hist_, width_, options_.quantized_bins); break;
  }
  const float tf = static_cast<float>(t);
  return {std::max(min_, -tf), std::min(max_, tf)};
}

}  // namespace modelpress::quant
