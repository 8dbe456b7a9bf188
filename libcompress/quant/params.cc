// Scale/zero-point math and weight quantization: the scalar reference every
// other part of quant/ builds on.
#include <algorithm>
#include <cstring>
#include <cmath>
#include <limits>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "modelpress/parallel.h"
#include "modelpress/quant.h"
#include "modelpress/sparsity.h"

namespace modelpress::quant {

std::string_view SchemeName(Scheme s) {
  switch (s) {
    case Scheme::kUint8Asymmetric: return "uint8";
    case Scheme::kInt8Symmetric: return "int8";
    case Scheme::kInt7Symmetric: return "int7";
  }
  return "?";
}

QRange RangeOf(Scheme s) {
  // int8 symmetric drops -128 so that +r and -r quantize to +q and -q (what
  // ONNX Runtime's tool and TensorRT use for symmetric tensors).
  switch (s) {
    case Scheme::kUint8Asymmetric: return {0, 255};
    case Scheme::kInt8Symmetric: return {-127, 127};
    case Scheme::kInt7Symmetric: return {-63, 63};
  }
  return {0, 255};
}

QuantParams ComputeParams(float rmin_in, float rmax_in, Scheme scheme) {
  double rmin = std::isnan(rmin_in) ? 0.0 : std::min<double>(rmin_in, 0.0);
  double rmax = std::isnan(rmax_in) ? 0.0 : std::max<double>(rmax_in, 0.0);
  const QRange q = RangeOf(scheme);
  const bool symmetric = scheme != Scheme::kUint8Asymmetric;
  if (symmetric) {
    const double absmax = std::max(-rmin, rmax);
    rmin = -absmax;
    rmax = absmax;
  }
  // In double, as ONNX Runtime's tool computes it, then stored as float.
  const double scale = (rmax - rmin) / static_cast<double>(q.qmax - q.qmin);
  if (!(scale >= static_cast<double>(std::numeric_limits<float>::min())) || !std::isfinite(scale)) {
    // An all-zero range (or one too small for a normal float scale): any
    // scale represents it; 1 keeps DequantizeLinear well defined.
    return {1.0f, 0};
  }
  QuantParams p;
  p.scale = static_cast<float>(scale);
  if (symmetric) {
    p.zero_point = 0;
  } else {
    const double zp = std::nearbyint(static_cast<double>(q.qmin) - rmin / scale);
    p.zero_point = static_cast<int32_t>(std::clamp(zp, static_cast<double>(q.qmin), static_cast<double>(q.qmax)));
  }
  return p;
}

int32_t QuantizeValue(float x, const QuantParams& p, Scheme scheme) {
  const QRange q = RangeOf(scheme);
  // x / scale in float and rounding half to even, as ONNX QuantizeLinear
  // (and ONNX Runtime's kernel) computes it; saturate afterwards.
  const float r = std::nearbyint(x / p.scale);
  const double v = static_cast<double>(r) + p.zero_point;
  if (std::isnan(v)) return p.zero_point;
  return static_cast<int32_t>(std::clamp(v, static_cast<double>(q.qmin), static_cast<double>(q.qmax)));
}

namespace {

// QuantizeValue for a symmetric scheme (zero point 0) with the bound qmax,
// in a form the compiler can vectorize: saturating before rounding gives the
// same integer (the bounds are integers), and within +-2^22 adding and
// subtracting 1.5*2^23 rounds half to even, as nearbyint does in the default
// rounding mode. NaN goes to the zero point.
inline int8_t QuantizeSymmetric(float x, float scale, float qmax) {
  float r = x / scale;
  r = r != r ? 0.0f : r;
  r = r < -qmax ? -qmax : (r > qmax ? qmax : r);
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23
  r = (r + kRound) - kRound;
  return static_cast<int8_t>(static_cast<int32_t>(r));
}

// Sums over one part of a weight, added up in a fixed order.
struct QuantTotals {
  double signal = 0, noise = 0;
  int64_t zeros_before = 0, zeros_after = 0;
  void Add(const QuantTotals& o) {
    signal += o.signal;
    noise += o.noise;
    zeros_before += o.zeros_before;
    zeros_after += o.zeros_after;
  }
};

// Quantizes n consecutive float32 elements, each with scale[i * scale_step]
// (step 0: one scale for all), and adds their sums to `t`. Elements go four
// at a time through SSE2 (part of every x86-64 CPU) with the same arithmetic
// as QuantizeSymmetric; the order of additions depends only on n, never on
// threads.
void QuantizeRun(const float* x, const float* scale, int64_t scale_step, int64_t n, float qmax, int8_t* y,
                 QuantTotals& t) {
  int64_t i = 0;
  double signal = 0, noise = 0;
  auto one = [&](int64_t k) {
    const float v = x[k], sc = scale[k * scale_step];
    const int8_t q = QuantizeSymmetric(v, sc, qmax);
    y[k] = q;
    const double d = static_cast<double>(v) - static_cast<double>(static_cast<float>(q) * sc);
    signal += static_cast<double>(v) * v;
    noise += d * d;
    t.zeros_before += v == 0.0f;
    t.zeros_after += q == 0;
  };
#ifdef __SSE2__
  const __m128 hi = _mm_set1_ps(qmax), lo = _mm_set1_ps(-qmax), round = _mm_set1_ps(12582912.0f), zero = _mm_setzero_ps();
  static constexpr int8_t kBits[16] = {0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4};  // set bits of a 4-bit mask
  __m128d s0 = _mm_setzero_pd(), s1 = s0, e0 = s0, e1 = s0;
  for (; i + 4 <= n; i += 4) {
    const __m128 v = _mm_loadu_ps(x + i);
    const __m128 sc = scale_step != 0 ? _mm_loadu_ps(scale + i) : _mm_set1_ps(*scale);
    __m128 r = _mm_div_ps(v, sc);
    r = _mm_and_ps(r, _mm_cmpord_ps(r, r));  // NaN -> 0
    r = _mm_min_ps(_mm_max_ps(r, lo), hi);
    r = _mm_sub_ps(_mm_add_ps(r, round), round);
    const __m128i q32 = _mm_cvttps_epi32(r);
    const __m128i q16 = _mm_packs_epi32(q32, q32);
    const int32_t q8 = _mm_cvtsi128_si32(_mm_packs_epi16(q16, q16));
    std::memcpy(y + i, &q8, 4);
    const __m128 deq = _mm_mul_ps(r, sc);  // r holds the integer q exactly
    const __m128d v0 = _mm_cvtps_pd(v), v1 = _mm_cvtps_pd(_mm_movehl_ps(v, v));
    const __m128d d0 = _mm_sub_pd(v0, _mm_cvtps_pd(deq)), d1 = _mm_sub_pd(v1, _mm_cvtps_pd(_mm_movehl_ps(deq, deq)));
    s0 = _mm_add_pd(s0, _mm_mul_pd(v0, v0));
    s1 = _mm_add_pd(s1, _mm_mul_pd(v1, v1));
    e0 = _mm_add_pd(e0, _mm_mul_pd(d0, d0));
    e1 = _mm_add_pd(e1, _mm_mul_pd(d1, d1));
    t.zeros_before += kBits[_mm_movemask_ps(_mm_cmpeq_ps(v, zero))];
    t.zeros_after += kBits[_mm_movemask_ps(_mm_cmpeq_ps(r, zero))];
  }
  double lanes[2];
  _mm_storeu_pd(lanes, _mm_add_pd(s0, s1));
  signal += lanes[0] + lanes[1];
  _mm_storeu_pd(lanes, _mm_add_pd(e0, e1));
  noise += lanes[0] + lanes[1];
#endif
  for (; i < n; ++i) one(i);
  t.signal += signal;
  t.noise += noise;
}

// The largest |x| of n consecutive float32 elements folded into max[i * step]
// (step 0: one maximum). NaN never compares greater.
void AbsMaxRun(const float* x, int64_t n, float* max, int64_t step) {
  if (step != 0) {
    for (int64_t i = 0; i < n; ++i) max[i] = std::max(max[i], std::abs(x[i]));
    return;
  }
  constexpr int kLanes = 8;
  float m[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int lane = 0; lane < kLanes; ++lane) m[lane] = std::max(m[lane], std::abs(x[i + lane]));
  }
  for (; i < n; ++i) m[0] = std::max(m[0], std::abs(x[i]));
  for (float v : m) *max = std::max(*max, v);
}

}  // namespace

double SqnrDb(double signal_energy, double noise_energy) {
  if (noise_energy <= 0) return signal_energy > 0 ? std::numeric_limits<double>::infinity() : 0.0;
  if (signal_energy <= 0) return 0.0;
  return 10.0 * std::log10(signal_energy / noise_energy);
}

Result<QuantizedWeight> QuantizeWeight(const TensorView& w, int axis, int threads, Scheme scheme) {
  std::vector<int8_t> values(static_cast<size_t>(std::max<int64_t>(w.size(), 0)));
  MP_ASSIGN_OR_RETURN(QuantizedWeight out, QuantizeWeightInto(w, axis, values, threads, scheme));
  out.values = std::move(values);
  return out;
}

Result<QuantizedWeight> QuantizeWeightInto(const TensorView& w, int axis, std::span<int8_t> values, int threads,
                                           Scheme scheme) {
  if (scheme == Scheme::kUint8Asymmetric) return InvalidArgument("weights are quantized with a symmetric scheme");
  if (!IsFloatingPoint(w.dtype())) {
    return InvalidArgument("cannot quantize a weight of type " + DTypeName(w.dtype()) + "; it must be floating point");
  }
  AxisSplit split{1, w.size(), 1};
  if (axis >= 0) {
    MP_ASSIGN_OR_RETURN(split, SplitAtAxis(w.shape(), axis));
  }
  if (static_cast<int64_t>(values.size()) != w.size()) {
    return InvalidArgument("the output holds " + std::to_string(values.size()) + " values for a weight of " +
                           std::to_string(w.size()) + " elements");
  }
  QuantizedWeight out;
  out.axis = axis;
  const int64_t channels = axis >= 0 ? split.length : 1;
  if (axis < 0) split = {w.size(), 1, 1};  // per tensor: every element in channel 0
  out.scales.resize(static_cast<size_t>(channels));
  const bool f32 = w.dtype() == DType::kFloat32 && w.contiguous();
  const float* pf = f32 ? w.span<float>().data() : nullptr;
  auto at = [&](int64_t i) { return pf ? pf[i] : static_cast<float>(w.AsDouble(i)); };
  const float qmax = static_cast<float>(RangeOf(scheme).qmax);
  const int64_t row = split.length * split.inner;  // elements per outer index

  // Element (o, c, i) sits at (o * length + c) * inner + i. With few outer
  // indices (a Conv weight on axis 0) every channel is a few contiguous runs
  // and channels are the parallel unit. Otherwise (a MatMul weight [in, out]
  // on axis 1, or per tensor) the weight is read in memory order, split into
  // a fixed number of parts of whole outer rows, each keeping its own
  // per-channel maxima and totals; parts are combined in order, so results
  // do not depend on the thread count.
  const bool by_channel = split.outer < 64;
  const int64_t parts = by_channel ? channels : std::min<int64_t>(split.outer, 32);
  auto part_rows = [&](int64_t part) {
    return std::pair{split.outer * part / parts, split.outer * (part + 1) / parts};
  };
  // Float32 runs go through the vectorizable kernels; other types are
  // converted one element at a time into a small buffer first.
  std::vector<float> absmax(static_cast<size_t>(channels), 0.0f);
  auto absmax_run = [&](int64_t first, int64_t n, float* max, int64_t step) {
    if (pf != nullptr) return AbsMaxRun(pf + first, n, max, step);
    for (int64_t i = 0; i < n; ++i) max[i * step] = std::max(max[i * step], std::abs(at(first + i)));
  };
  std::vector<float> part_max(by_channel ? 0 : static_cast<size_t>(parts * channels), 0.0f);
  ParallelFor(parts, [&](int64_t part) {
    if (by_channel) {
      for (int64_t o = 0; o < split.outer; ++o) absmax_run((o * split.length + part) * split.inner, split.inner, &absmax[part], 0);
      return;
    }
    float* m = &part_max[static_cast<size_t>(part * channels)];
    const auto [first, last] = part_rows(part);
    if (split.length == 1) return absmax_run(first * row, (last - first) * row, m, 0);  // per tensor
    for (int64_t o = first; o < last; ++o) {
      if (split.inner == 1) {
        absmax_run(o * row, channels, m, 1);
      } else {
        for (int64_t c = 0; c < channels; ++c) absmax_run(o * row + c * split.inner, split.inner, &m[c], 0);
      }
    }
  }, threads);
  for (int64_t part = 0; !by_channel && part < parts; ++part) {
    for (int64_t c = 0; c < channels; ++c) absmax[c] = std::max(absmax[c], part_max[static_cast<size_t>(part * channels + c)]);
  }
  for (int64_t c = 0; c < channels; ++c) out.scales[c] = ComputeParams(-absmax[c], absmax[c], scheme).scale;

  std::vector<QuantTotals> totals(static_cast<size_t>(parts));
  ParallelFor(parts, [&](int64_t part) {
    QuantTotals t;
    std::vector<float> converted;
    auto quantize_run = [&](int64_t first, int64_t n, const float* scale, int64_t step) {
      const float* x = pf != nullptr ? pf + first : nullptr;
      if (x == nullptr) {
        converted.resize(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) converted[i] = at(first + i);
        x = converted.data();
      }
      QuantizeRun(x, scale, step, n, qmax, values.data() + first, t);
    };
    if (by_channel) {
      for (int64_t o = 0; o < split.outer; ++o) quantize_run((o * split.length + part) * split.inner, split.inner, &out.scales[part], 0);
    } else {
      const auto [first, last] = part_rows(part);
      if (split.length == 1) {  // per tensor: the part is one run
        quantize_run(first * row, (last - first) * row, out.scales.data(), 0);
        totals[part] = t;
        return;
      }
      for (int64_t o = first; o < last; ++o) {
        if (split.inner == 1) {
          quantize_run(o * row, channels, out.scales.data(), 1);
        } else {
          for (int64_t c = 0; c < channels; ++c) quantize_run(o * row + c * split.inner, split.inner, &out.scales[c], 0);
        }
      }
    }
    totals[part] = t;
  }, threads);
  QuantTotals sum;
  for (const QuantTotals& t : totals) sum.Add(t);
  out.signal_energy = sum.signal;
  out.noise_energy = sum.noise;
  out.zeros_before = sum.zeros_before;
  out.zeros_after = sum.zeros_after;
  return out;
}

}  // namespace modelpress::quant
